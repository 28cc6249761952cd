"""Safe defaults for the HTTP API: Host checks (DNS rebinding), same-origin state
changes, state changes only as JSON (which no cross-site form can send), and a bearer
token (or the session cookie the web page gets for it) whenever the server listens
beyond loopback."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import socket
from collections.abc import Collection
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# What an HTML form can send (and fetch() without a CORS preflight): never accepted for a change.
FORM_CONTENT_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
SESSION_COOKIE = "synapse_session"


MAX_BODY_BYTES = 1024 * 1024
"""The largest request body read (every API body is a small JSON object); more is 413."""


def is_loopback(host: str) -> bool:
    """Whether a bind address or host name reaches this machine only: judged by the addresses
    it resolves to, never by how the name looks ('127.0.0.1.example.com' is not loopback)."""
    name = host.strip().removeprefix("[").removesuffix("]")
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None)
    except (OSError, UnicodeError):
        return False  # a name that does not resolve here is not known to be loopback
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in addresses)


WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})
# Documentation addresses (RFC 5737, RFC 3849): connecting a UDP socket to one sends nothing but
# tells which local address the machine would use to reach the network.
_PROBE_ADDRESSES = ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1"))


def is_wildcard(host: str) -> bool:
    """Whether a bind address listens on every interface."""
    return host.strip() in WILDCARD_HOSTS


def machine_names() -> set[str]:
    """The names and addresses a client may use to reach this machine, as a Host header spells
    them (IPv6 in brackets): its host name, fully qualified name, what they resolve to and the
    address of each network it routes to. Found with the standard library only (portable)."""
    names = {socket.gethostname(), socket.getfqdn()}
    addresses: set[str] = set()
    for name in list(names):
        with contextlib.suppress(OSError, UnicodeError):
            addresses |= {str(info[4][0]) for info in socket.getaddrinfo(name, None)}
    for family, probe in _PROBE_ADDRESSES:
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as udp:
                udp.connect((probe, 9))
                addresses.add(str(udp.getsockname()[0]))
        except OSError:
            pass  # no route of that family
    for address in addresses:
        bare = address.split("%")[0]
        names.add(f"[{bare}]" if ":" in bare else bare)
    return {n.lower() for n in names if n}


def _has_side_effects(request: Request) -> bool:
    """GETs that ask sources and write data/ (update-checks.json): guarded like a POST."""
    path = request.url.path
    if path.endswith("/updates/plan"):
        return True
    return path.endswith("/search") and request.query_params.get("remote", "").lower() in ("true", "1", "yes", "on")


async def read_bounded_body(request: Request, limit: int = MAX_BODY_BYTES) -> None:
    """Read the body before anything else does, refusing more than ``limit`` bytes (413) without
    holding more than that; call only after the guard accepted the request."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise HTTPException(413, detail=f"the request body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, detail=f"the request body is larger than {limit} bytes")
    request._body = bytes(body)  # what request.body() returns from now on (starlette's cache)


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
        self.check_request(request)
        if self.token is not None and not self.authenticated(request):
            raise HTTPException(401, detail="a valid 'Authorization: Bearer <SYNAPSE_API_TOKEN>' is required")

    def check_host(self, request: Request) -> None:
        """Refuse a Host header that is not served here (DNS rebinding)."""
        host_header = request.headers.get("host", "")
        if _host_name(host_header.lower()) not in self.allowed_hosts:
            raise HTTPException(403, detail=f"host {host_header!r} is not served here")

    def check_request(self, request: Request) -> None:
        """Everything but the token: the Host, and for state changes the origin and the body's type."""
        self.check_host(request)
        if request.method in STATE_CHANGING or _has_side_effects(request):
            self._check_origin(request, request.headers.get("host", ""))
        if request.method in STATE_CHANGING:
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type in FORM_CONTENT_TYPES:
                raise HTTPException(415, detail="state changes take a JSON body (Content-Type: application/json)")

    def authenticated(self, request: Request) -> bool:
        """Whether the request carries the token, as a Bearer header or as the page's session cookie."""
        if self.token is None:
            return True
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), self.token):
            return True
        cookie = request.cookies.get(SESSION_COOKIE)
        return cookie is not None and hmac.compare_digest(cookie, self.session_value())

    def session_value(self) -> str:
        """The session cookie's value: derived from the token (never the token itself), so it
        survives a restart and stops working when the token changes."""
        assert self.token is not None
        return hmac.new(self.token.encode(), b"synapse web session", hashlib.sha256).hexdigest()

    def token_matches(self, given: str) -> bool:
        """Whether ``given`` is the token (constant time)."""
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

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
