"""PartialDownload, the sink sources stream into: bytes or readinto, hashed on another thread."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from synapse_core.blobs import BlobStore
from synapse_core.downloads import PartialDownload
from synapse_core.errors import IntegrityError
from synapse_core.layout import StoreLayout
from synapse_core.progress import NoProgress
from synapse_core.sources import FetchTarget

DATA = os.urandom(5 * 1024 * 1024 + 123)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(StoreLayout(tmp_path / "store"))


def reader(data: bytes, piece: int) -> Callable[[memoryview], int]:
    """A readinto over ``data`` that never gives more than ``piece`` bytes at once."""
    position = 0

    def readinto(buffer: memoryview) -> int:
        nonlocal position
        n = min(len(buffer), piece, len(data) - position)
        buffer[:n] = data[position : position + n]
        position += n
        return n

    return readinto


@pytest.mark.parametrize("piece", [1, 4096, 3 * 1024 * 1024])
def test_received_bytes_are_stored_and_hashed_in_order(blobs: BlobStore, piece: int) -> None:
    data = DATA if piece > 1 else DATA[:50_000]
    sink = PartialDownload(blobs, FetchTarget("m.safetensors", sha256=hashlib.sha256(data).hexdigest()), NoProgress())
    try:
        sink.receive(reader(data, piece))
        done = sink.finish()
    finally:
        sink.close()
    assert done.sha256 == hashlib.sha256(data).hexdigest() and done.size == len(data)
    assert blobs.path(done.sha256).read_bytes() == data


def test_written_and_received_bytes_mix_in_order(blobs: BlobStore) -> None:
    sink = PartialDownload(blobs, FetchTarget("m.safetensors", sha256=SHA), NoProgress())
    try:
        for start in range(0, 2 * 1024 * 1024, 70_000):
            sink.write(DATA[start : min(start + 70_000, 2 * 1024 * 1024)])
        sink.receive(reader(DATA[2 * 1024 * 1024 :], 1024 * 1024))
        assert sink.finish().sha256 == SHA
    finally:
        sink.close()


def test_a_failing_reader_keeps_the_bytes_so_far_for_a_resume(blobs: BlobStore) -> None:
    target = FetchTarget("m.safetensors", url="https://example.invalid/m", sha256=SHA)
    inner = reader(DATA, 1024 * 1024)
    calls = 0

    def dropping(buffer: memoryview) -> int:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise ConnectionResetError("dropped")
        return inner(buffer)

    sink = PartialDownload(blobs, target, NoProgress())
    with pytest.raises(ConnectionResetError):
        sink.receive(dropping)
    sink.close()
    resumed = PartialDownload(blobs, target, NoProgress())
    try:
        assert resumed.offset == 2 * 1024 * 1024
        resumed.receive(reader(DATA[resumed.offset :], 1024 * 1024))
        assert resumed.finish().sha256 == SHA
    finally:
        resumed.close()


def test_received_bytes_that_do_not_match_publish_nothing(blobs: BlobStore) -> None:
    sink = PartialDownload(blobs, FetchTarget("m.safetensors", sha256="0" * 64), NoProgress())
    try:
        sink.receive(reader(DATA, 1024 * 1024))
        with pytest.raises(IntegrityError):
            sink.finish()
    finally:
        sink.close()
    assert not blobs.has(SHA)
    assert list(blobs.layout.tmp_dir.iterdir()) == []
