"""Fixtures for the S3 remote's tests: moto in server mode on loopback, a fault-injecting proxy
in front of it, and the real ``synapse`` CLI as a subprocess with test credentials."""

from __future__ import annotations

import http.client
import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from synapse_s3.testing import TEST_CREDENTIALS, LoopbackS3

SYNAPSE = Path(sys.executable).parent / "synapse"
_SCRUBBED = ("SYNAPSE_ROOT", "SYNAPSE_STRICT_PLUGINS", "SYNAPSE_DISABLE_PLUGINS", "SYNAPSE_DEBUG", "AWS_PROFILE")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[LoopbackS3]:
    with LoopbackS3() as server:
        yield server


@pytest.fixture
def bucket(s3_server: LoopbackS3, request: pytest.FixtureRequest) -> str:
    """A fresh bucket for this test."""
    name = "t-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:50].strip("-")
    s3_server.client().create_bucket(Bucket=name)
    return name


class FaultProxy:
    """A real HTTP server on 127.0.0.1 that forwards to moto, and can answer 500 to chosen part
    uploads; it counts the part uploads it forwards."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.fail_parts: dict[int, int] = {}
        """part number -> how many more times to answer 500 (-1: always)."""
        self.parts_sent: list[int] = []
        self.failed: list[int] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length) if length else b""
                part = _part_number(self.path) if self.command == "PUT" else None
                if part is not None and proxy._should_fail(part):
                    payload = b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
                    self.send_response(500)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                if part is not None and answer.status == 200:
                    with proxy.lock:
                        proxy.parts_sent.append(part)
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                length = answer.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _should_fail(self, part: int) -> bool:
        with self.lock:
            left = self.fail_parts.get(part, 0)
            if left == 0:
                return False
            if left > 0:
                self.fail_parts[part] = left - 1
            self.failed.append(part)
            return True

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _part_number(path: str) -> int | None:
    from urllib.parse import parse_qs, urlsplit

    query = parse_qs(urlsplit(path).query)
    value = query.get("partNumber", [None])[0]
    return int(value) if value and value.isdigit() else None


@pytest.fixture
def fault_proxy(s3_server: LoopbackS3) -> Iterator[FaultProxy]:
    proxy = FaultProxy(s3_server.port)
    yield proxy
    proxy.close()


def s3_env(extra: Mapping[str, str] | None = None, *, credentials: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED and not k.startswith("AWS_")}
    env["SYNAPSE_LOAD_PLUGINS"] = "s3"
    env.update(TEST_CREDENTIALS)
    if not credentials:
        del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    env.update(extra or {})
    return env


@pytest.fixture
def run(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run("push", "--all", root=r, credentials=False)``: the real CLI with the s3 plugin."""

    def call(*args: str | Path, root: Path, credentials: bool = True, timeout: float = 120):
        argv = [str(SYNAPSE), "--root", str(root), *[str(a) for a in args]]
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=s3_env(credentials=credentials),
            cwd=tmp_path,
            timeout=timeout,
            check=False,
        )

    return call


@pytest.fixture
def popen(tmp_path: Path) -> Callable[..., subprocess.Popen[str]]:
    def start(*args: str | Path, root: Path) -> subprocess.Popen[str]:
        argv = [str(SYNAPSE), "--root", str(root), *[str(a) for a in args]]
        return subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=s3_env(), cwd=tmp_path
        )

    return start
