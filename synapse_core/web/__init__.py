"""The web page: plain HTML, CSS and JavaScript modules shipped in the package (no build
step), served at ``/`` beside the API under ``/api``."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import HTMLResponse

from synapse_core.api.security import RequestGuard

STATIC = Path(__file__).parent / "static"
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css"}
MEDIA_TYPES |= {".svg": "image/svg+xml"}
# The page runs only its own scripts and talks only to its own origin; no other site may frame it
# (a framed page could be clicked through by another site).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self'; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@cache
def _assets() -> dict[str, tuple[bytes, str]]:
    """Every static file by its path under static/, with its ETag (read once per process)."""
    out = {}
    for path in sorted(STATIC.rglob("*")):
        if path.is_file() and path.suffix in MEDIA_TYPES:
            data = path.read_bytes()
            out[path.relative_to(STATIC).as_posix()] = (data, '"' + hashlib.sha256(data).hexdigest()[:20] + '"')
    return out


def _answer(request: Request, name: str) -> Response:
    found = _assets().get(name)
    if found is None:
        raise HTTPException(404, detail=f"no page file {name!r}")
    data, etag = found
    headers = {**PAGE_HEADERS, "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=MEDIA_TYPES[Path(name).suffix], headers=headers)


def page_router(allowed_hosts: Collection[str] = ()) -> APIRouter:
    """``/`` and ``/static/...``; Host-checked like the API (the page holds no data: the API's
    routes decide what needs the token)."""
    guard = RequestGuard(allowed_hosts)
    r = APIRouter(dependencies=[Depends(guard.check_host)], include_in_schema=False)

    @r.get("/", response_class=HTMLResponse)
    def index(request: Request) -> Response:
        return _answer(request, "index.html")

    @r.get("/static/{name:path}")
    def static(name: str, request: Request) -> Response:
        return _answer(request, name)

    return r
