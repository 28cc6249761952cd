"""Downloading over HTTP into a :class:`~synapse_core.sources.DownloadSink`, for any source.

What every source that downloads needs, naming none of them:

* :func:`download_client`: httpx on the fast transport of :mod:`synapse_core.http_transport`
  (bodies read with ``readinto``), or httpx's own when the environment names a proxy;
* :class:`Retryable` and :class:`Backoff`: 429, 5xx and dropped connections retried with
  exponential backoff and jitter, honouring ``Retry-After``;
* :func:`resume_headers` and :func:`receive_body`: ``Range``/``If-Range`` from the partial bytes,
  the answer (206, 200, 416) checked against them, a web page refused where a file was expected,
  a body longer than promised cut off, a short one retried from where it stopped;
* :func:`filename_from_disposition`: the name a server gives in ``Content-Disposition``.

The core still hashes and checks every byte (:mod:`synapse_core.downloads`); these helpers
only get the bytes there.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import attrs
import httpx

from synapse_core.errors import IntegrityError, SourceError
from synapse_core.http_transport import READINTO, DownloadTransport
from synapse_core.sources import DownloadSink

log = logging.getLogger("synapse")

T = TypeVar("T")
Readinto = Callable[[memoryview], int]
SOCKET_READ = 1024 * 1024


class Retryable(Exception):
    """An answer worth retrying (429, 5xx, a dropped connection); ``reason`` is one line."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


MAX_WAIT_SECONDS = 60.0
"""The longest a server's Retry-After is waited for; asking for more gives up at once."""


class WaitTooLong(SourceError):
    """The server asks to wait longer than :data:`MAX_WAIT_SECONDS` (Retry-After)."""


def _duration(seconds: float) -> str:
    """'3 h', '2 days': a wait as people say it."""
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 60:.0f} min"


@attrs.define
class Backoff:
    """Retries with exponential backoff and jitter (at most 30 s, or what Retry-After asks, up to
    60 s; a server asking for more is given up on at once, with its time). Each wait is said
    (the "synapse" logger's warning, shown on stderr by the CLI)."""

    retries: int = 5
    base: float = 1.0
    sleep: Callable[[float], None] = time.sleep

    def run(
        self, attempt: Callable[[], T], give_up: Callable[[Retryable, int], Exception], what: str = "the request"
    ) -> T:
        """``attempt()`` until it does not raise Retryable; then ``give_up(last, tries)`` is raised."""
        for number in range(self.retries + 1):
            try:
                return attempt()
            except Retryable as exc:
                if number == self.retries:
                    raise give_up(exc, number + 1) from None
                delay = min(30.0, self.base * 2**number) * random.uniform(0.5, 1.0)
                if exc.retry_after is not None:
                    if exc.retry_after > MAX_WAIT_SECONDS:
                        until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(time.time() + exc.retry_after))
                        raise WaitTooLong(
                            f"{what}: the server asks to wait {_duration(exc.retry_after)} ({exc.reason}, "
                            f"Retry-After); try again after {until}"
                        ) from None
                    delay = max(delay, exc.retry_after)
                log.warning(
                    "%s: %s; trying again in %.0f s (%d of %d)", what, exc.reason, delay, number + 1, self.retries
                )
                self.sleep(delay)
        raise AssertionError("unreachable")


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (a number or an HTTP date)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    parsed = email.utils.parsedate_to_datetime(value) if "," in value else None
    return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def unreachable(url: str, exc: httpx.TransportError, hint: str = "check the network connection") -> Retryable:
    """A request that got no answer, said so that the user knows where to look."""
    host = urlsplit(url).netloc
    if isinstance(exc, httpx.TimeoutException):
        return Retryable(f"{host} did not answer in time ({type(exc).__name__}); {hint}")
    return Retryable(f"cannot reach {host} ({type(exc).__name__}); {hint}")


def _read_bigger_pieces() -> None:
    """httpcore reads 64 KiB per socket read, which makes a multi-GB download spend its time in
    Python. Model files are huge: read a megabyte at a time (httpcore's class constant; it only
    sizes buffers, so other httpx users in this process are unaffected otherwise)."""
    import httpcore._sync.http11 as http11

    if getattr(http11.HTTP11Connection, "READ_NUM_BYTES", SOCKET_READ) < SOCKET_READ:
        http11.HTTP11Connection.READ_NUM_BYTES = SOCKET_READ


def download_client(settings: Mapping[str, Any]) -> httpx.Client:
    """An httpx client for model files (``settings`` as for ``httpx.Client``, with a Timeout):
    the fast transport, unless the environment names a proxy (httpx honours those only with its
    own transport)."""
    _read_bigger_pieces()
    if urllib.request.getproxies():
        return httpx.Client(**settings)
    return httpx.Client(transport=DownloadTransport(settings["timeout"].read), **settings)


def looks_like_html(data: bytes) -> bool:
    """Whether bytes start like an HTML page."""
    head = data[:64].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def resume_headers(sink: DownloadSink) -> dict[str, str]:
    """The headers of a GET that continues ``sink``'s partial bytes (of the file itself, uncompressed)."""
    headers = {"Accept-Encoding": "identity"}
    if sink.offset:
        headers["Range"] = f"bytes={sink.offset}-"
        if sink.validator:
            headers["If-Range"] = sink.validator
    return headers


def receive_body(
    response: httpx.Response,
    sink: DownloadSink,
    not_a_file: Callable[[], Exception],
    size: int | None = None,
    what: str = "the file",
) -> None:
    """Stream the answer to a :func:`resume_headers` request into ``sink``.

    ``not_a_file()`` is raised for a web page or JSON instead of the file; ``size``, when the
    source knows it, bounds the body: a longer one is refused (IntegrityError naming ``what``),
    never stored. Raises Retryable when the answer cannot continue the partial bytes or the
    body stops short."""
    if response.status_code == 416:
        # nothing after the partial: complete (killed before it was published) or too long
        full = re.fullmatch(r"bytes \*/(\d+)", response.headers.get("content-range", "").strip())
        if full and int(full[1]) == sink.offset:
            sink.begin(sink.offset, None)
            return  # the core checks the bytes' size and hash before publishing
        sink.restart()
        raise Retryable("the server could not resume the partial download; starting again")
    kind = response.headers.get("content-type", "").lower()
    if kind.startswith(("text/html", "application/json", "text/")):
        raise not_a_file()
    total = _check_answer(response, sink)
    if size is not None and total is not None and total != size:
        raise IntegrityError(f"{what}: the server sends {total} bytes, the source lists {size}; nothing was stored")
    validator = response.headers.get("etag") or response.headers.get("last-modified")
    sink.begin(total if total is not None else size, validator)
    limit = size if size is not None else total
    readinto = response.extensions.get(READINTO)
    try:
        if readinto is not None:
            sink.receive(_guarded(readinto, sink.offset, limit, not_a_file, what))
        else:
            for index, chunk in enumerate(response.iter_bytes()):
                if index == 0 and sink.offset == 0 and looks_like_html(chunk):
                    raise not_a_file()
                if limit is not None and sink.offset + len(chunk) > limit:
                    raise _too_long(what, limit)
                sink.write(chunk)
    except (httpx.TransportError, httpx.StreamError) as exc:
        raise Retryable(f"the download was interrupted ({type(exc).__name__})") from exc
    expected = total if total is not None else size
    if expected is not None and sink.offset < expected:
        raise Retryable(f"the download stopped at {sink.offset} of {expected} bytes")


def _check_answer(response: httpx.Response, sink: DownloadSink) -> int | None:
    """Check a 200/206 answer against the partial bytes; return the full size if known."""
    length = response.headers.get("content-length")
    if response.status_code == 206:
        match = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", response.headers.get("content-range", ""))
        if not match or int(match[1]) != sink.offset:
            sink.restart()
            raise Retryable("the server resumed at the wrong place; starting again")
        return int(match[3]) if match[3] != "*" else None
    if sink.offset:
        sink.restart()  # a 200 to a Range request: the whole file comes again
    return int(length) if length and length.isdigit() else None


def _too_long(what: str, limit: int) -> IntegrityError:
    return IntegrityError(f"{what}: the server sent more than its {limit} bytes; the extra bytes were not stored")


def _guarded(
    readinto: Readinto, offset: int, limit: int | None, not_a_file: Callable[[], Exception], what: str
) -> Readinto:
    """``readinto`` that refuses a body starting like an HTML page and one running past ``limit``."""
    first = offset == 0
    received = offset

    def read(buffer: memoryview) -> int:
        nonlocal first, received
        n = readinto(buffer)
        if first:
            first = False
            if looks_like_html(bytes(buffer[: min(n, 64)])):
                raise not_a_file()
        received += n
        if limit is not None and received > limit:
            raise _too_long(what, limit)
        return n

    return read


def filename_from_disposition(headers: httpx.Headers) -> str | None:
    """The file name in Content-Disposition: RFC 5987 ``filename*`` first, then a quoted
    ``filename=`` in raw UTF-8 (as some storages send it), repairing latin-1 mojibake."""
    raw = next((v for k, v in headers.raw if k.lower() == b"content-disposition"), None)
    if raw is None:
        return None
    extended = re.search(rb"filename\*\s*=\s*([^']*)'[^']*'([^;]+)", raw, re.IGNORECASE)
    if extended:
        charset = extended[1].decode("ascii", "replace") or "utf-8"
        return unquote(extended[2].decode("ascii", "replace").strip(), encoding=charset, errors="replace")
    plain = re.search(rb'filename\s*=\s*"((?:[^"\\]|\\.)*)"|filename\s*=\s*([^;]+)', raw, re.IGNORECASE)
    if not plain:
        return None
    value = (plain[1] if plain[1] is not None else plain[2]).strip()
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = value.decode("latin-1")
    try:
        return text.encode("latin-1").decode("utf-8")  # mojibake from a latin-1 round trip
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text
