"""An httpx transport for file downloads that lets the caller read the body with ``readinto``.

httpx (h11 underneath) hands a body over as new ``bytes`` objects, copying every byte
twice in Python and holding the GIL while it parses, which starves the thread hashing the
download. Model files are gigabytes, so downloads go through the standard library's
``http.client`` instead: the response carries a ``readinto`` extension that fills the
caller's buffer straight from the socket. Everything else (headers, status, redirects,
errors, retries) stays plain httpx. The client uses httpx's own transport when the
environment names a proxy (a custom transport would bypass it); responses then simply
lack the extension, as do content-coded ones.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator

import httpx

READINTO = "synapse.readinto"
"""``response.extensions[READINTO]``: fills a buffer with body bytes, returns the count (0 at the end)."""


def _transport_error(exc: Exception, request: httpx.Request) -> httpx.TransportError:
    if isinstance(exc, socket.timeout | TimeoutError):
        return httpx.ReadTimeout(str(exc) or "timed out", request=request)
    if isinstance(exc, http.client.HTTPException):
        return httpx.RemoteProtocolError(str(exc) or type(exc).__name__, request=request)
    return httpx.ReadError(str(exc) or type(exc).__name__, request=request)


class _Body(httpx.SyncByteStream):
    """The response body, as chunks (for httpx) or through ``readinto`` (for the fast path)."""

    def __init__(
        self, request: httpx.Request, connection: http.client.HTTPConnection, response: http.client.HTTPResponse
    ) -> None:
        self._connection = connection
        self._response = response
        self._request = request

    def readinto(self, buffer: memoryview) -> int:
        try:
            return self._response.readinto(buffer)
        except (OSError, http.client.HTTPException) as exc:
            raise _transport_error(exc, self._request) from exc

    def __iter__(self) -> Iterator[bytes]:
        buffer = bytearray(1024 * 1024)
        while n := self.readinto(memoryview(buffer)):
            yield bytes(buffer[:n])

    def close(self) -> None:
        self._response.close()
        self._connection.close()


class DownloadTransport(httpx.BaseTransport):
    """HTTP/1.1 over ``http.client``, one connection per request (downloads are few and long)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._ssl: ssl.SSLContext | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        connection: http.client.HTTPConnection
        if url.scheme == "https":
            self._ssl = self._ssl or httpx.create_ssl_context()  # the roots httpx trusts
            connection = http.client.HTTPSConnection(url.host, url.port, timeout=self.timeout, context=self._ssl)
        else:
            connection = http.client.HTTPConnection(url.host, url.port, timeout=self.timeout)
        try:
            path = url.raw_path.decode("ascii")
            connection.putrequest(request.method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in request.headers.raw:
                connection.putheader(name.decode("latin-1"), value.decode("latin-1"))
            connection.endheaders(request.read() or None)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            if isinstance(exc, ConnectionRefusedError | socket.gaierror):
                raise httpx.ConnectError(str(exc), request=request) from exc
            raise _transport_error(exc, request) from exc
        body = _Body(request, connection, response)
        headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.getheaders()]
        encoded = response.getheader("content-encoding", "identity").lower() not in ("", "identity")
        extensions = {} if encoded else {READINTO: body.readinto}  # a coded body must go through httpx's decoder
        return httpx.Response(response.status, headers=headers, stream=body, extensions=extensions, request=request)
