"""The HTTP API: FastAPI routers over the Store (install the ``api`` extra).

    from fastapi import FastAPI
    from synapse_core.api import create_store_routers

    app = FastAPI()
    for router in create_store_routers():
        app.include_router(router, prefix="/api")

Request and response bodies are the same models the Store returns (and the CLI
prints with --json). Errors are ``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations

from synapse_core.api.app import create_app
from synapse_core.api.routes import create_store_routers

__all__ = ["create_app", "create_store_routers"]
