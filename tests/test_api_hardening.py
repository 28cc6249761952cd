"""Issue 12, the HTTP API: bodies refused before they are read (9), GETs with side effects
guarded like POSTs (21), loopback judged by address (22)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from test_api import SYNAPSE, Serve, add_local_packs, assert_error, cli_env, free_port
from test_api import serve as serve
from test_api import store as store

from synapse_core.api import create_app
from synapse_core.api.security import MAX_BODY_BYTES, is_loopback
from synapse_core.store import Store


def _raw_post(url: str, headers: dict[str, str], first_bytes: bytes) -> bytes:
    """Send a request's head and the first bytes of its body only, then read what comes back."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall(f"POST /api/packs/import HTTP/1.1\r\nHost: {host}:{port}\r\n{head}\r\n".encode() + first_bytes)
        try:
            return sock.recv(4096)
        except TimeoutError:
            return b"(no answer: the server waits for the whole body)"


@pytest.fixture
def api_url(store: Store, serve: Serve, tmp_path: Path) -> str:
    add_local_packs(store, tmp_path / "files", "paper")
    api = serve(create_app(store))
    return str(api.base_url).rstrip("/").removesuffix("/api")


def test_9_a_cross_origin_post_is_refused_before_its_body_is_read(api_url: str) -> None:
    headers = {"Origin": "http://evil.example", "Content-Type": "application/json", "Content-Length": "900000000"}
    answer = _raw_post(api_url, headers, b"{" + b" " * 1024)
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]


def test_9_a_body_beyond_the_limit_is_413_without_reading_it(api_url: str) -> None:
    headers = {"Content-Type": "application/json", "Content-Length": str(MAX_BODY_BYTES * 100)}
    answer = _raw_post(api_url, headers, b"{" + b" " * 1024)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_9_a_chunked_body_beyond_the_limit_is_413(api_url: str) -> None:
    chunk = b" " * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(MAX_BODY_BYTES // len(chunk) + 4))
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    answer = _raw_post(api_url, headers, b"1\r\n{\r\n" + body)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_21_gets_that_ask_sources_and_write_are_guarded_like_posts(store: Store, serve: Serve, tmp_path: Path) -> None:
    add_local_packs(store, tmp_path / "files", "paper")
    api = serve(create_app(store))
    checks = store.layout.root / "data" / "update-checks.json"
    for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        assert_error(api.get("/updates/plan", headers=headers), 403, "refused")
        assert_error(api.get("/search", params={"q": "paper", "remote": "true"}, headers=headers), 403, "refused")
        assert api.get("/search", params={"q": "paper"}, headers=headers).status_code == 200  # local only: fine
    assert not checks.exists()
    assert api.get("/updates/plan").status_code == 200  # a non-browser client may


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.5.6.7", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("127.0.0.1.example.com", False),
        ("127.example", False),
        ("0.0.0.0", False),
        ("192.168.1.10", False),
    ],
)
def test_22_loopback_is_judged_by_address_not_by_the_name(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_22_serve_on_a_name_that_looks_loopback_needs_a_token(store: Store) -> None:
    argv = [str(SYNAPSE), "--root", str(store.layout.root), "serve", "--host", "127.0.0.1.example.com"]
    result = subprocess.run(
        [*argv, "--port", str(free_port())],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0 and "SYNAPSE_API_TOKEN" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
