"""The download transport: httpx semantics on top, the body read straight into the caller's buffers."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from synapse_civitai.fake_server import FakeCivitai, FakeFile
from synapse_core.http_transport import READINTO, DownloadTransport


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(transport=DownloadTransport(timeout=10.0)) as made:
        yield made


@pytest.fixture
def file(fake: FakeCivitai) -> FakeFile:
    big = FakeFile(770001, "body.safetensors", size=3 * 1024 * 1024 + 5)
    fake.add_model(77001, name="Body", type="Checkpoint")
    fake.add_version(77001, 78001, name="v1", files=[big])
    return big


def read_all(response: httpx.Response, size: int = 100_000) -> bytes:
    readinto = response.extensions[READINTO]
    buffer = bytearray(size)
    out = bytearray()
    while n := readinto(memoryview(buffer)):
        out += buffer[:n]
    return bytes(out)


def test_a_redirected_download_is_read_with_readinto(client: httpx.Client, fake: FakeCivitai, file: FakeFile) -> None:
    first = client.get(f"{fake.api_url}/api/download/models/78001")
    assert first.status_code in (301, 302, 307)
    with client.stream("GET", first.headers["location"], headers={"Accept-Encoding": "identity"}) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(file.byte_size)
        assert read_all(response) == file.read()


def test_ranges_and_error_bodies_behave_as_with_httpx(client: httpx.Client, fake: FakeCivitai, file: FakeFile) -> None:
    location = client.get(f"{fake.api_url}/api/download/models/78001").headers["location"]
    with client.stream("GET", location, headers={"Range": "bytes=10-"}) as response:
        assert response.status_code == 206
        assert response.headers["content-range"].startswith("bytes 10-")
        assert read_all(response) == file.read(10)
    missing = client.get(f"{fake.api_url}/api/v1/models/99999999")
    assert missing.status_code == 404
    assert missing.json()  # the JSON error body reads through httpx as usual


def test_a_body_cut_short_ends_early_for_the_caller_to_notice(
    client: httpx.Client, fake: FakeCivitai, file: FakeFile
) -> None:
    location = client.get(f"{fake.api_url}/api/download/models/78001").headers["location"]
    fake.inject(r"^/model/", server="cdn", truncate_after=1024 * 1024)
    with client.stream("GET", location) as response:
        assert len(read_all(response)) == 1024 * 1024  # < Content-Length: the client retries with Range


def test_a_refused_connection_is_an_httpx_connect_error(client: httpx.Client) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(httpx.ConnectError):
        client.get(f"http://127.0.0.1:{port}/file")
