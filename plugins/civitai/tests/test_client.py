"""The Civitai client on its own: file names from Content-Disposition, safe file names, the
User-Agent, where the token goes, and what answers become which errors (real HTTP to the fake)."""

from __future__ import annotations

import hashlib
import http.client
import http.server
import json
import socket
import threading
from collections.abc import Callable
from urllib.parse import quote, urlsplit

import httpx
import pytest

from synapse_civitai.client import CivitaiClient, CivitaiError, LoginRequired, filename_from_disposition
from synapse_civitai.fake_server import FakeCivitai, FakeFile
from synapse_core import __version__
from synapse_core.errors import UpstreamGone
from synapse_core.names import problem_with_name, sanitize_file_name

TOKEN = "tok-7f3c9e2a-client-secret"


class MemorySink:
    """A DownloadSink in memory (the core's PartialDownload writes to data/tmp instead)."""

    def __init__(self, data: bytes = b"", validator: str | None = None) -> None:
        self.data = bytearray(data)
        self._validator = validator
        self.restarts = 0
        self.total: int | None = None

    @property
    def offset(self) -> int:
        return len(self.data)

    @property
    def validator(self) -> str | None:
        return self._validator

    def begin(self, total: int | None, validator: str | None = None) -> None:
        self.total, self._validator = total, validator or self._validator

    def write(self, chunk: bytes) -> None:
        self.data += chunk

    def receive(self, readinto: Callable[[memoryview], int]) -> None:
        buffer = bytearray(256 * 1024)
        while n := readinto(memoryview(buffer)):
            self.data += buffer[:n]

    def restart(self) -> None:
        self.restarts += 1
        self.data.clear()


@pytest.fixture
def client(fake: FakeCivitai) -> CivitaiClient:
    made = CivitaiClient(base=fake.api_url, token="", backoff=0.01)
    yield made
    made.close()


@pytest.fixture
def token_client(fake: FakeCivitai) -> CivitaiClient:
    fake.add_token(TOKEN)
    made = CivitaiClient(base=fake.api_url, token=TOKEN, backoff=0.01)
    yield made
    made.close()


# -- Content-Disposition --------------------------------------------------------------------------------------------


def _headers(raw_value: bytes) -> httpx.Headers:
    return httpx.Headers([(b"content-disposition", raw_value)])


@pytest.mark.parametrize(
    "name",
    [
        "paper_lantern_v1.safetensors",
        "lanterne_été_✨.safetensors",
        "日本語の名前.safetensors",
        "with space (1).safetensors",
    ],
)
def test_raw_utf8_quoted_filename(name: str) -> None:
    """What Civitai's storage sends: filename="<raw UTF-8 bytes>"."""
    assert filename_from_disposition(_headers(b'attachment; filename="' + name.encode() + b'"')) == name


def test_rfc5987_filename_star_wins() -> None:
    name = "lanterne_été_✨.safetensors"
    value = f"attachment; filename=\"lanterne_?t?_?.safetensors\"; filename*=UTF-8''{quote(name, safe='')}"
    assert filename_from_disposition(_headers(value.encode())) == name


def test_rfc5987_filename_star_first() -> None:
    name = "été.safetensors"
    value = f"attachment; filename*=utf-8''{quote(name)}; filename=\"ete.safetensors\""
    assert filename_from_disposition(_headers(value.encode())) == name


def test_latin1_mojibake_is_repaired() -> None:
    """UTF-8 bytes that went through a latin-1 decode and were encoded again ("Ã©" for "é")."""
    name = "lanterne_été.safetensors"
    mojibake = name.encode("utf-8").decode("latin-1").encode("utf-8")
    assert filename_from_disposition(_headers(b'attachment; filename="' + mojibake + b'"')) == name


def test_latin1_bytes_are_read_as_latin1() -> None:
    assert filename_from_disposition(_headers(b'attachment; filename="caf\xe9.bin"')) == "café.bin"


def test_unquoted_filename_and_no_header() -> None:
    assert filename_from_disposition(_headers(b"attachment; filename=plain.safetensors")) == "plain.safetensors"
    assert filename_from_disposition(httpx.Headers({"content-type": "application/octet-stream"})) is None
    assert filename_from_disposition(_headers(b"inline")) is None


def test_the_fakes_storage_header_round_trips(fake: FakeCivitai, client: CivitaiClient) -> None:
    """End to end: the name the CDN's Content-Disposition carries, in both the raw and RFC 5987 styles."""
    name = "lanterne_été_✨.safetensors"
    fake.add_model(700001, name="Été Lights", type="LORA")
    fake.add_version(700001, 710001, name="v1", files=[FakeFile(720001, name, size=100, primary=True)])
    for style in ("raw", "rfc5987"):
        fake.disposition_style = style
        location = client.http.get(f"{fake.api_url}/api/download/models/710001").headers["location"]
        response = client.http.get(location)
        assert response.status_code == 200
        assert filename_from_disposition(response.headers) == name, style


# -- safe file names -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "../../etc/passwd",
        "..\\..\\Windows\\system32\\evil.dll",
        "/abs/path.safetensors",
        "a/../b.safetensors",
        "name\x00with\x1fcontrol\x7f.safetensors",
        "line\nbreak\r.safetensors",
        "CON",
        "con.safetensors",
        "NUL.txt",
        "com1.safetensors",
        "LPT9.tar.gz",
        "trailing.",
        "trailing dots...",
        "trailing space ",
        " leading space.safetensors",
        'quote"s and <angle> | pipe? star*:colon.safetensors',
        "..",
        ".",
        "...",
        "",
        "\u200b",
    ],
)
def test_sanitized_names_are_safe_everywhere(raw: str) -> None:
    name = sanitize_file_name(raw)
    assert name
    assert "/" not in name and "\\" not in name
    assert ".." not in name
    assert not any(ord(c) < 32 or ord(c) == 127 for c in name)
    assert problem_with_name(name) is None, (raw, name, problem_with_name(name))


@pytest.mark.parametrize("raw", ["lanterne_été_✨.safetensors", "日本語の名前.safetensors", "Ünïcödé-ß.ckpt"])
def test_unicode_is_kept(raw: str) -> None:
    assert sanitize_file_name(raw) == raw


def test_reserved_name_with_a_space_before_the_extension() -> None:
    name = sanitize_file_name("CON .safetensors")
    assert problem_with_name(name) is None, name


def test_long_names_keep_their_extension_and_fit_a_file_name() -> None:
    for raw in ("a" * 300 + ".safetensors", "✨" * 150 + ".safetensors"):
        name = sanitize_file_name(raw)
        assert name.endswith(".safetensors"), name
        assert len(name.encode("utf-8")) <= 255, len(name.encode("utf-8"))


# -- the client against the fake -------------------------------------------------------------------------------------


def test_user_agent_names_synapse_and_is_not_a_browser(fake: FakeCivitai, client: CivitaiClient) -> None:
    client.model(424242)
    agent = fake.requests_for("api", r"^/api/v1/models/424242$")[-1].header("user-agent") or ""
    assert "Synapse" in agent and __version__ in agent
    for marker in ("mozilla", "chrome", "safari", "firefox"):
        assert marker not in agent.lower()


def test_the_token_goes_to_the_api_host_only(fake: FakeCivitai, token_client: CivitaiClient) -> None:
    expected = fake.get_file(808003)[0].read()
    sink = MemorySink()
    token_client.model(424242)
    token_client.download(f"{fake.api_url}/api/download/models/909002", sink, what="x")
    assert bytes(sink.data) == expected
    api = fake.requests_for("api")
    cdn = fake.requests_for("cdn")
    assert api and cdn
    assert all(r.header("authorization") == f"Bearer {TOKEN}" for r in api)
    assert all(r.header("authorization") is None for r in cdn)
    assert all(TOKEN not in r.target for r in fake.requests), "the token must not travel in a URL"


def test_no_token_no_authorization_header(fake: FakeCivitai, client: CivitaiClient) -> None:
    client.model(424242)
    assert all(r.header("authorization") is None for r in fake.requests)


def test_a_302_to_storage_is_followed_without_the_token(fake: FakeCivitai, token_client: CivitaiClient) -> None:
    """Any redirect status to another host: followed by hand, the Authorization header left behind
    (the storage answers 400 to a request that carries one)."""
    file, _ = fake.get_file(808001)
    fake.inject(r"^/api/download/models/909001$", 302, headers={"Location": fake.signed_file_url(file, file.name)})
    sink = MemorySink()
    token_client.download(f"{fake.api_url}/api/download/models/909001", sink, what="x")
    assert hashlib.sha256(sink.data).hexdigest() == fake.file_sha256(808001)
    assert fake.requests_for("api", r"^/api/download/")[-1].header("authorization") == f"Bearer {TOKEN}"
    assert all(r.header("authorization") is None for r in fake.requests_for("cdn"))


def test_a_relative_login_redirect_means_login_required(fake: FakeCivitai, client: CivitaiClient) -> None:
    """The browser-style answer: 307 to /login?returnUrl=...&reason=download-auth (relative)."""
    fake.inject(
        r"^/api/download/models/909001$",
        307,
        headers={"Location": "/login?returnUrl=%2Fmodel-versions%2F909001&reason=download-auth"},
    )
    with pytest.raises(LoginRequired) as caught:
        client.download(f"{fake.api_url}/api/download/models/909001", MemorySink(), what="paper")
    assert "CIVITAI_API_TOKEN" in caught.value.message


def test_error_bodies_never_echo_the_token(fake: FakeCivitai, token_client: CivitaiClient) -> None:
    body = json.dumps({"error": f"key {TOKEN} is blocked"}).encode()
    fake.inject(r"^/api/download/models/", 403, body=body, content_type="application/json", times=None)
    with pytest.raises(CivitaiError) as caught:
        token_client.download(f"{fake.api_url}/api/download/models/909001", MemorySink(), what="paper")
    assert TOKEN not in caught.value.message and TOKEN not in str(caught.value)
    fake.clear_injections()
    fake.inject(r"^/api/download/models/", 400, body=body, content_type="application/json", times=None)
    with pytest.raises(CivitaiError) as caught:
        token_client.download(f"{fake.api_url}/api/download/models/909001", MemorySink(), what="paper")
    assert TOKEN not in caught.value.message


def test_api_404_and_410_are_upstream_gone(fake: FakeCivitai, client: CivitaiClient) -> None:
    with pytest.raises(UpstreamGone) as caught:
        client.model(999999)
    assert caught.value.upstream == "removed"
    fake.get_model(424242).mode = "Archived"
    with pytest.raises(UpstreamGone) as caught:
        client.download(f"{fake.api_url}/api/download/models/909001", MemorySink(), what="paper")
    assert caught.value.upstream == "archived"
    assert "archived" in caught.value.message


def test_html_instead_of_json_is_an_error_not_data(fake: FakeCivitai, client: CivitaiClient) -> None:
    fake.inject_html(r"^/api/v1/models/424242$", 200, times=None)
    with pytest.raises(CivitaiError) as caught:
        client.model(424242)
    assert "web page" in caught.value.message
    assert len(fake.requests_for("api", r"^/api/v1/models/424242$")) == client.retries + 1


def test_one_html_page_then_json_recovers(fake: FakeCivitai, client: CivitaiClient) -> None:
    """A maintenance page is transient: retried, then the real answer is used."""
    fake.inject_html(r"^/api/v1/models/424242$", 200, page="maintenance", times=1)
    assert client.model(424242)["name"] == "Paper Lantern Style"


def test_resume_sends_range_and_if_range_and_accepts_206(fake: FakeCivitai, client: CivitaiClient) -> None:
    file = fake.get_file(808003)[0]
    whole = file.read()
    sink = MemorySink(whole[:1000], validator=file.etag())
    client.download(f"{fake.api_url}/api/download/models/909002", sink, what="x")
    assert bytes(sink.data) == whole and sink.restarts == 0
    cdn = fake.requests_for("cdn", r"^/model/")[-1]
    assert cdn.header("range") == "bytes=1000-"
    assert cdn.header("if-range") == file.etag()


def test_a_206_that_starts_elsewhere_restarts_from_zero(fake: FakeCivitai, client: CivitaiClient) -> None:
    """Only a 206 whose Content-Range starts where the partial ends is appended."""
    whole = fake.get_file(808003)[0].read()
    wrong = {"Content-Range": f"bytes 0-9/{len(whole)}"}
    fake.inject(r"^/model/", 206, server="cdn", headers=wrong, body=whole[:10], content_type="application/octet-stream")
    sink = MemorySink(whole[:1000])
    client.download(f"{fake.api_url}/api/download/models/909002", sink, what="x")
    assert bytes(sink.data) == whole
    assert sink.restarts >= 1


def test_a_partial_longer_than_the_file_restarts(fake: FakeCivitai, client: CivitaiClient) -> None:
    """416 (nothing at that offset): the partial is wrong, the file comes again from 0."""
    whole = fake.get_file(808003)[0].read()
    sink = MemorySink(whole + b"junk")
    client.download(f"{fake.api_url}/api/download/models/909002", sink, what="x")
    assert bytes(sink.data) == whole
    assert sink.restarts == 1


def test_a_changed_file_restarts_from_zero(fake: FakeCivitai, client: CivitaiClient) -> None:
    """If-Range with a stale validator: the storage sends the whole new file (200), kept from 0."""
    whole = fake.get_file(808003)[0].read()
    sink = MemorySink(b"x" * 1000, validator='"stale-etag"')
    client.download(f"{fake.api_url}/api/download/models/909002", sink, what="x")
    assert bytes(sink.data) == whole
    assert sink.restarts == 1


def test_downloaded_bytes_hash_like_civitai_says(fake: FakeCivitai, client: CivitaiClient) -> None:
    sink = MemorySink()
    url = f"{fake.api_url}/api/download/models/909002?type=Model&format=SafeTensor&size=full&fp=fp32"
    client.download(url, sink, what="x")
    assert hashlib.sha256(sink.data).hexdigest() == fake.file_sha256(808004)


def test_previews_are_fetched_without_the_token(fake: FakeCivitai, token_client: CivitaiClient) -> None:
    image = fake.get_version(909002).images[0]
    assert token_client.get_bytes(image.url(fake.cdn_url), what="preview") == image.body()
    assert all(r.header("authorization") is None for r in fake.requests_for("cdn"))


class _ForwardingProxy(http.server.BaseHTTPRequestHandler):
    """A plain-HTTP forward proxy: GET http://host/path is fetched and relayed; each URL is recorded."""

    seen: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        target = urlsplit(self.path)
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")}
        upstream.request("GET", target.path + (f"?{target.query}" if target.query else ""), headers=headers)
        answer = upstream.getresponse()
        body = answer.read()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        upstream.close()

    def log_message(self, *args: object) -> None:
        pass


def test_downloads_go_through_a_proxy_named_in_the_environment(
    fake: FakeCivitai, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ForwardingProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    _ForwardingProxy.seen.clear()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    made = CivitaiClient(base=fake.api_url, token="", backoff=0.01)
    try:
        sink = MemorySink()
        made.download(f"{fake.api_url}/api/download/models/909001", sink, what="x")
    finally:
        made.close()
        proxy.shutdown()
        proxy.server_close()
    assert hashlib.sha256(sink.data).hexdigest() == fake.file_sha256(808001)
    assert any("/api/download/models/909001" in url for url in _ForwardingProxy.seen)
    assert any(urlsplit(url).path.startswith("/model/") for url in _ForwardingProxy.seen), "storage via the proxy"


def test_a_file_the_api_lists_without_a_name_is_named_by_the_storage(fake: FakeCivitai, client: CivitaiClient) -> None:
    """Civitai names files[].name and Content-Disposition with the same rule, so the header can stand in."""
    from synapse_civitai.source import CivitaiSource

    name = "lanterne_été_✨.safetensors"
    fake.add_model(700002, name="Été Lights", type="LORA")
    fake.add_version(700002, 710002, name="v1", files=[FakeFile(720002, name, size=100, primary=True)])
    model = client.model(700002)
    version = model["modelVersions"][0]
    nameless = {k: v for k, v in version["files"][0].items() if k != "name"}
    source = CivitaiSource(client)
    resource = source._resource("main", model, {**version, "files": [nameless]}, nameless, None)
    assert (resource.spec.expose, resource.target.file_name) == (name, name)

    fake.inject(r"^/model/", 503, server="cdn", times=None)  # no storage: the id stands in
    resource = source._resource("main", model, {**version, "files": [nameless]}, nameless, None)
    assert resource.spec.expose == "civitai_720002"


def test_an_unreachable_host_is_named_with_what_to_check(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("SYNAPSE_CIVITAI_URL", f"http://127.0.0.1:{port}")
    made = CivitaiClient(token="", retries=1, backoff=0.001)
    with pytest.raises(CivitaiError) as caught:
        made.model(4201)
    made.close()
    assert f"cannot reach 127.0.0.1:{port}" in caught.value.message
    assert "check the network connection and SYNAPSE_CIVITAI_URL" in caught.value.message
