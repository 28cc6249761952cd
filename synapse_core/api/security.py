"""Safe defaults for the HTTP API: Host checks (DNS rebinding), same-origin state
changes, and a bearer token whenever the server listens beyond loopback."""

from __future__ import annotations

import hmac
from collections.abc import Collection
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_loopback(host: str) -> bool:
    """Whether a bind address or host name is loopback only."""
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def _host_name(value: str) -> str:
    if value.startswith("["):
        return value.split("]")[0] + "]"
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class RequestGuard:
    """A FastAPI dependency that refuses requests a browser page could forge."""

    def __init__(
        self, allowed_hosts: Collection[str] = (), allowed_origins: Collection[str] = (), token: str | None = None
    ) -> None:
        self.allowed_hosts = frozenset(LOOPBACK_HOSTS | {h.lower() for h in allowed_hosts})
        self.allowed_origins = frozenset(o.rstrip("/").lower() for o in allowed_origins)
        self.token = token

    def __call__(self, request: Request) -> None:
        host_header = request.headers.get("host", "")
        if _host_name(host_header.lower()) not in self.allowed_hosts:
            raise HTTPException(403, detail=f"host {host_header!r} is not served here")
        if request.method in STATE_CHANGING:
            self._check_origin(request, host_header)
        if self.token is not None:
            given = request.headers.get("authorization", "")
            scheme, _, value = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip(), self.token):
                raise HTTPException(401, detail="a valid 'Authorization: Bearer <SYNAPSE_API_TOKEN>' is required")

    def _check_origin(self, request: Request, host_header: str) -> None:
        origin = request.headers.get("origin")
        if origin is None:
            # browsers send Origin with cross-origin POSTs; without one, trust only non-browser clients
            if request.headers.get("sec-fetch-site") == "cross-site":
                raise HTTPException(403, detail="cross-site requests that change state are refused")
            return
        if origin != "null" and urlsplit(origin).netloc.lower() == host_header.lower():
            return
        if origin.rstrip("/").lower() in self.allowed_origins:
            return
        raise HTTPException(403, detail=f"cross-origin requests from {origin} are refused (allow it in config)")
