"""A small Civitai REST client on httpx, faithful to the real API's quirks.

* The token goes as ``Authorization: Bearer`` to the API host only, never to a
  redirect target on another host (storage hosts reject it) and never into a message.
* 429, 5xx and dropped connections are retried with exponential backoff and jitter,
  honouring ``Retry-After``; other 4xx are mapped to errors saying what to do.
* A web page where JSON or a model file was expected is an error, not data.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import httpx

from synapse_civitai.credentials import TOKEN_ENV, load_token, redact
from synapse_civitai.refs import base_url
from synapse_core import __version__
from synapse_core.errors import SourceError, SynapseError, UpstreamGone
from synapse_core.http_download import (
    Backoff,
    Retryable,
    download_client,
    filename_from_disposition,
    looks_like_html,
    receive_body,
    resume_headers,
    retry_after,
    unreachable,
)
from synapse_core.sources import MAX_PREVIEW_BYTES, DownloadSink

__all__ = ["CivitaiClient", "CivitaiError", "LoginRequired", "Retryable", "filename_from_disposition"]

MAX_REDIRECTS = 5
MAX_JSON_BYTES = 32 * 1024 * 1024
"""An API answer larger than this is refused (the largest real page, 100 models, is a few MB)."""
T = TypeVar("T")
LOGIN_HINT = f"set {TOKEN_ENV} or run 'synapse civitai login'"


class CivitaiError(SourceError):
    """Civitai answered with an error the user can act on."""


class LoginRequired(CivitaiError):
    """The file needs a logged-in user."""

    code = "login_required"


def _unreachable(url: str, exc: httpx.TransportError) -> Retryable:
    """A request that got no answer, said so that the user knows where to look."""
    hint = "check the network connection" + (
        " and SYNAPSE_CIVITAI_URL" if os.environ.get("SYNAPSE_CIVITAI_URL") else ""
    )
    return unreachable(url, exc, hint)


def _error_text(response: httpx.Response) -> tuple[str, dict[str, Any]]:
    """The error message of a JSON or text error body."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200], {}
    if isinstance(body, dict):
        message = body.get("message") or body.get("error") or ""
        return str(message), body
    return str(body)[:200], {}


def _parse_json(body: bytes, what: str) -> Any:
    """JSON from Civitai; what is not JSON is retried, JSON nested too deeply to parse is refused."""
    try:
        return json.loads(body)
    except RecursionError:
        raise CivitaiError(f"{what}: Civitai answered with JSON nested too deeply to read; refused") from None
    except ValueError:
        raise Retryable("Civitai answered with something that is not JSON") from None


def is_web_page(response: httpx.Response, body: bytes | None = None) -> bool:
    """Whether a response is HTML (a Cloudflare check, a maintenance or login page).

    ``body`` is the start of the content, for streamed responses that were not read.
    """
    kind = response.headers.get("content-type", "").lower()
    if kind.startswith("text/html"):
        return True
    return looks_like_html(response.content if body is None else body)


class CivitaiClient:
    """Talks to one Civitai origin. Thread-safe (httpx.Client is)."""

    def __init__(
        self,
        base: str | None = None,
        token: str | None = None,
        *,
        retries: int = 5,
        backoff: float | None = None,
        timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base = (base or base_url()).rstrip("/")
        self.token = token if token is not None else load_token()
        self.retries = retries
        self.backoff = backoff if backoff is not None else float(os.environ.get("SYNAPSE_CIVITAI_BACKOFF", "1.0"))
        self.sleep = sleep
        self.api_host = urlsplit(self.base).netloc.lower()
        self._settings: dict[str, Any] = {
            "timeout": httpx.Timeout(timeout, connect=15.0),
            "follow_redirects": False,
            "headers": {"User-Agent": f"Synapse/{__version__} (synapse-store model manager)"},
        }
        self._clients: dict[str, httpx.Client] = {}
        self._clients_lock = threading.Lock()

    def _client(self, purpose: str, make: Callable[[], httpx.Client]) -> httpx.Client:
        """Clients are made on first use: each loads TLS roots, and a command often needs one."""
        with self._clients_lock:
            if purpose not in self._clients:
                self._clients[purpose] = make()
            return self._clients[purpose]

    @property
    def http(self) -> httpx.Client:
        """The client for API requests and images (httpx's pooled transport)."""
        return self._client("api", lambda: httpx.Client(**self._settings))

    @property
    def downloads(self) -> httpx.Client:
        """The client for model files (synapse_core.http_download.download_client)."""

        def make() -> httpx.Client:
            return download_client(self._settings)

        return self._client("downloads", make)

    def close(self) -> None:
        """Release connections."""
        with self._clients_lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    # -- requests ----------------------------------------------------------------

    def _headers_for(self, url: str) -> dict[str, str]:
        if self.token and urlsplit(url).netloc.lower() == self.api_host:
            return {"Authorization": f"Bearer {self.token}"}
        return {}

    def _message(self, text: str) -> str:
        return redact(text, self.token)

    def with_retries(self, what: str, attempt: Callable[[], T]) -> T:
        """Run ``attempt``, retrying Retryable outcomes with exponential backoff and jitter."""

        def give_up(exc: Retryable, tries: int) -> CivitaiError:
            if exc.reason.startswith("429"):
                return CivitaiError(f"{what}: Civitai is rate limiting; try again in a few minutes")
            return CivitaiError(f"{what}: {self._message(exc.reason)} (after {tries} tries)")

        return Backoff(self.retries, self.backoff, self.sleep).run(attempt, give_up, what)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None, *, what: str = "") -> Any:
        """GET an API path and return its JSON, with retries and error mapping."""
        url = f"{self.base}{path}"
        label = what or path

        def attempt() -> Any:
            request = self.http.build_request("GET", url, params=params, headers=self._headers_for(url))
            response, body = self._send_bounded(request, label)
            if is_web_page(response, body) or "json" not in response.headers.get("content-type", "json"):
                raise Retryable("Civitai answered with a web page instead of data (maintenance or a bot check)")
            return _parse_json(body, label)

        return self.with_retries(label, attempt)

    def _send_bounded(self, request: httpx.Request, what: str) -> tuple[httpx.Response, bytes]:
        """Send an API request and read at most MAX_JSON_BYTES of its answer (a network is untrusted)."""
        try:
            response = self.http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise _unreachable(str(request.url), exc) from exc
        try:
            body = bytearray()
            try:
                for chunk in response.iter_bytes():  # decoded: a compressed bomb is bounded too
                    body += chunk
                    if len(body) > MAX_JSON_BYTES:
                        raise CivitaiError(
                            f"{what}: Civitai's answer is larger than {MAX_JSON_BYTES >> 20} MiB; refused"
                        )
            except (httpx.TransportError, httpx.StreamError) as exc:
                raise Retryable(f"the answer was cut off ({type(exc).__name__})") from exc
        finally:
            response.close()
        # the same answer, read: the body is already decoded, so its encoding headers go
        headers = [(k, v) for k, v in response.headers.raw if k.lower() not in (b"content-encoding", b"content-length")]
        read = httpx.Response(response.status_code, headers=headers, content=bytes(body), request=request)
        self.raise_for_status(read, what)
        return read, read.content

    def post_json(self, path: str, body: Any, *, what: str = "") -> Any:
        """POST JSON to an API path and return its JSON."""
        url = f"{self.base}{path}"

        def attempt() -> Any:
            request = self.http.build_request("POST", url, json=body, headers=self._headers_for(url))
            _, answer = self._send_bounded(request, what or path)
            return _parse_json(answer, what or path)

        return self.with_retries(what or path, attempt)

    def raise_for_status(self, response: httpx.Response, what: str) -> None:
        """Map an error status to a Retryable or a CivitaiError that says what to do."""
        status = response.status_code
        if status < 400:
            return
        if status == 429 or status >= 500:
            raise Retryable(f"{status} from Civitai", retry_after(response.headers.get("retry-after")))
        transient = "private" in response.headers.get("cache-control", "").lower()
        if status == 404 and transient and response.request.url.path.startswith("/api/download/"):
            # the download endpoint's storage-resolve failure: a 404 that may be transient, not "gone"
            raise Retryable("404 from Civitai (its storage did not answer)")
        if is_web_page(response):
            raise Retryable(f"{status}: Civitai answered with a web page (a bot check or maintenance)")
        message, body = _error_text(response)
        from_api = urlsplit(str(response.request.url)).netloc.lower() == self.api_host
        raise self._client_error(status, message, body, what, from_api)

    def _client_error(
        self, status: int, message: str, body: Mapping[str, Any], what: str, from_api: bool = True
    ) -> SynapseError:
        lowered = message.lower()
        if status == 401 and "disabled downloads" in lowered:
            return CivitaiError(f"{what}: the creator has disabled downloads of this file on Civitai")
        if status == 401:
            return LoginRequired(f"{what}: Civitai requires a logged-in user for this; {LOGIN_HINT}")
        if status == 403 and "early access" in (str(body.get("error", "")) + lowered):
            deadline = body.get("deadline")
            until = f" until {deadline}" if deadline else ""
            return CivitaiError(f"{what}: this version is in Early Access{until}; it can be downloaded after that")
        if status == 403:
            return CivitaiError(f"{what}: Civitai refused access ({self._message(message) or 'forbidden'})")
        if status in (404, 410) and not from_api:
            # only the API saying the model is gone means removed; a storage host's 404 may pass
            return CivitaiError(f"{what}: the download host answered {status}; try again later")
        if status == 404:
            return UpstreamGone(f"{what}: not found on Civitai (removed, unpublished or never existed)", "removed")
        if status == 410:
            return UpstreamGone(f"{what}: the model is archived on Civitai and can no longer be downloaded", "archived")
        return CivitaiError(f"{what}: Civitai answered {status}: {self._message(message)[:150]}")

    # -- API calls ---------------------------------------------------------------

    def model(self, model_id: int) -> dict[str, Any]:
        """GET /api/v1/models/{id}."""
        data: dict[str, Any] = self.get_json(f"/api/v1/models/{model_id}", what=f"Civitai model {model_id}")
        return data

    def version(self, version_id: int) -> dict[str, Any]:
        """GET /api/v1/model-versions/{id}."""
        data: dict[str, Any] = self.get_json(
            f"/api/v1/model-versions/{version_id}", what=f"Civitai version {version_id}"
        )
        return data

    def models_by_ids(self, ids: list[int]) -> list[dict[str, Any]]:
        """GET /api/v1/models?ids=... in batches of up to 100."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(ids), 100):
            batch = ids[start : start + 100]
            # nsfw=true: without it the list hides mature models, which would look removed
            params = {"ids": ",".join(str(i) for i in batch), "limit": 100, "nsfw": "true"}
            data = self.get_json("/api/v1/models", params, what="Civitai models")
            found.extend(data.get("items", []))
        return found

    def version_by_hash(self, value: str) -> dict[str, Any] | None:
        """GET /api/v1/model-versions/by-hash/{hash}: any hash type Civitai stores (AutoV1, AutoV2,
        AutoV3, SHA256, CRC32, BLAKE3); None when no file has it (404)."""
        try:
            data: dict[str, Any] = self.get_json(
                f"/api/v1/model-versions/by-hash/{value.upper()}", what=f"Civitai hash {value}"
            )
        except UpstreamGone as gone:
            if gone.upstream == "removed":
                return None
            raise
        return data

    def versions_by_hash(self, sha256s: list[str]) -> list[dict[str, Any]]:
        """POST /api/v1/model-versions/by-hash (up to 100 SHA256 per call)."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(sha256s), 100):
            batch = [h.upper() for h in sha256s[start : start + 100]]
            data = self.post_json("/api/v1/model-versions/by-hash", batch, what="Civitai hash look-up")
            found.extend(data if isinstance(data, list) else [])
        return found

    def search(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """GET /api/v1/models with search parameters."""
        data: dict[str, Any] = self.get_json("/api/v1/models", params, what="Civitai search")
        return data

    def get_bytes(self, url: str, *, what: str, limit: int = MAX_PREVIEW_BYTES) -> bytes:
        """A small file (a preview), following redirects; larger than ``limit`` bytes is refused."""

        def attempt() -> bytes:
            with self._open(url, {}, what) as response:
                data = bytearray()
                try:
                    for chunk in response.iter_bytes():
                        data += chunk
                        if len(data) > limit:
                            raise CivitaiError(f"{what}: larger than {limit >> 20} MiB")
                except (httpx.TransportError, httpx.StreamError) as exc:
                    raise Retryable(f"the answer was cut off ({type(exc).__name__})") from exc
                return bytes(data)

        return self.with_retries(what, attempt)

    # -- downloads ---------------------------------------------------------------

    @contextmanager
    def _open(
        self, url: str, headers: Mapping[str, str], what: str, passthrough: frozenset[int] = frozenset()
    ) -> Iterator[httpx.Response]:
        """Send a streaming GET, following redirects by hand so the token never leaves the API host.

        Error statuses raise, except those in ``passthrough``, which the caller handles.
        """
        for _ in range(MAX_REDIRECTS + 1):
            request = self.downloads.build_request("GET", url, headers={**headers, **self._headers_for(url)})
            try:
                response = self.downloads.send(request, stream=True)
            except httpx.TransportError as exc:
                raise _unreachable(url, exc) from exc
            if response.is_redirect:
                location = response.headers.get("location", "")
                response.close()
                target = urljoin(url, location)
                if urlsplit(target).scheme not in ("http", "https"):
                    scheme = urlsplit(target).scheme or "no scheme"
                    raise CivitaiError(f"{what}: Civitai redirected to an address this client refuses ({scheme}:)")
                if "reason=download-auth" in target or urlsplit(target).path.startswith("/login"):
                    raise LoginRequired(f"{what}: Civitai requires you to be logged in to download it; {LOGIN_HINT}")
                url = target
                continue
            try:
                if response.status_code >= 400 and response.status_code not in passthrough:
                    response.read()
                    self.raise_for_status(response, what)
                yield response
            finally:
                response.close()
            return
        raise CivitaiError(f"{what}: too many redirects")

    def download_name(self, url: str, *, what: str) -> str | None:
        """The file name the storage gives in Content-Disposition (asks for one byte, once)."""
        try:
            with self._open(url, {"Range": "bytes=0-0", "Accept-Encoding": "identity"}, what) as response:
                return filename_from_disposition(response.headers)
        except Retryable:
            return None

    def download(self, url: str, sink: DownloadSink, *, what: str) -> None:
        """Stream a file into ``sink``, resuming with Range/If-Range and retrying as needed."""
        self.with_retries(what, lambda: self._download_once(url, sink, what))

    def _download_once(self, url: str, sink: DownloadSink, what: str) -> None:
        with self._open(url, resume_headers(sink), what, passthrough=frozenset({416})) as response:
            receive_body(
                response,
                sink,
                lambda: CivitaiError(f"{what}: Civitai sent a web page or JSON instead of the model file"),
                what=what,
            )
