"""Hashing ahead: the CLI starts hashing a local file before the store has loaded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import sha256_of

from synapse_core.hashing import HashAhead, hash_file
from synapse_core.store import Store
from synapse_core.testing import make_registry


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_hash_file_matches_hashlib(tmp_path: Path) -> None:
    path = write(tmp_path / "f.bin", os.urandom(3 * 1024 * 1024 + 17))
    assert hash_file(path) == (sha256_of(path), path.stat().st_size)


def test_take_hands_over_the_hash_and_replays_progress(tmp_path: Path) -> None:
    # big enough that the reads switch from 8 MiB to 1 MiB pieces once take() waits
    path = write(tmp_path / "model.safetensors", os.urandom(48 * 1024 * 1024 + 5))
    ahead = HashAhead([path])
    seen: list[int] = []
    assert ahead.take(path, path.stat(), seen.append) == (sha256_of(path), path.stat().st_size)
    assert sum(seen) == path.stat().st_size
    assert ahead.take(path, path.stat()) is None  # handed over once


def test_a_file_changed_since_hashing_began_is_not_handed_over(tmp_path: Path) -> None:
    path = write(tmp_path / "model.safetensors", b"old bytes" * 1000)
    ahead = HashAhead([path])
    write(path, b"new bytes, more of them" * 1000)
    assert ahead.take(path, path.stat()) is None


def test_paths_that_cannot_be_hashed_are_left_to_the_caller(tmp_path: Path) -> None:
    ahead = HashAhead([tmp_path / "missing.safetensors", tmp_path])
    assert ahead.take(tmp_path / "missing.safetensors", tmp_path.stat()) is None
    assert ahead.take(tmp_path, tmp_path.stat()) is None  # a folder: the read fails, no hash


@pytest.mark.parametrize("mode", ["copy", "link", "move"])
def test_import_stores_the_files_current_bytes_even_if_it_changed_after_hashing_began(
    tmp_path: Path, mode: str
) -> None:
    path = write(tmp_path / "files" / "model.safetensors", b"first version" * 4096)
    ahead = HashAhead([path])
    write(path, b"second version!" * 4096)
    expected = sha256_of(path)
    store = Store(root=tmp_path / "store", registry=make_registry(entry_points=False), hash_ahead=ahead)
    store.init()
    store.import_pack(str(path), name="Model", kind="checkpoint", mode=mode)  # type: ignore[arg-type]
    lock = store.files.lock("Model")
    assert [r.sha256 for r in lock.resources.values()] == [expected]
    assert sha256_of(store.blobs.path(expected)) == expected


@pytest.mark.parametrize("mode", ["copy", "link"])
def test_import_with_a_hash_ahead_stores_the_right_blob(tmp_path: Path, mode: str) -> None:
    path = write(tmp_path / "files" / "model.safetensors", os.urandom(9 * 1024 * 1024))
    store = Store(root=tmp_path / "store", registry=make_registry(entry_points=False), hash_ahead=HashAhead([path]))
    store.init()
    store.import_pack(str(path), name="Model", kind="checkpoint", mode=mode)  # type: ignore[arg-type]
    sha = sha256_of(path)
    assert [r.sha256 for r in store.files.lock("Model").resources.values()] == [sha]
    assert sha256_of(store.blobs.path(sha)) == sha
