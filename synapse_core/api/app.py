"""The application `synapse serve` runs."""

from __future__ import annotations

from collections.abc import Collection

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from synapse_core import __version__
from synapse_core.api.routes import create_store_routers, error_response
from synapse_core.store import Store
from synapse_core.web import page_router


def create_app(store: Store | None = None, *, allowed_hosts: Collection[str] = (), token: str | None = None) -> FastAPI:
    """A FastAPI app with every router under /api, the OpenAPI schema at /api/openapi.json and
    the web page at /."""
    app = FastAPI(
        title="Synapse Store",
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    for router in create_store_routers(store, allowed_hosts=allowed_hosts, token=token):
        app.include_router(router, prefix="/api")
    app.include_router(page_router(allowed_hosts))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        """Unknown paths and methods answer in the API's error shape too."""
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        response = error_response(exc.status_code, code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    return app
