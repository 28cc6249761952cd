"""Hashes that images name but a sha256-keyed store does not have: computed from blobs, cached.

* AutoV1 (A1111 ``sd_models.model_hash``, images before late 2022): SHA-256 of the 0x10000
  bytes at offset 0x100000, first 8 hex.
* AutoV3 (A1111 ``hashes.addnet_hash_safetensors``, Civitai's AutoV3): SHA-256 of a safetensors
  file after its 8-byte length and JSON header, first 12 hex.

Blobs never change, so each value is computed once and kept in ``data/derived-hashes.json``.
A damaged cache is rebuilt, never an error.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

from synapse_core.blobs import BlobStore
from synapse_core.errors import SynapseError
from synapse_core.layout import read_model, write_json
from synapse_core.models import DerivedHashCache, DerivedHashes

AUTOV1_OFFSET, AUTOV1_LENGTH = 0x100000, 0x10000
CACHE_NAME = "derived-hashes.json"


def autov1(path: Path) -> str | None:
    """The legacy 8-hex hash, None for a file too short to have one."""
    with open(path, "rb") as handle:
        handle.seek(AUTOV1_OFFSET)
        window = handle.read(AUTOV1_LENGTH)
    return hashlib.sha256(window).hexdigest()[:8] if window else None


def autov3(path: Path) -> str | None:
    """The header-less 12-hex hash of a safetensors file, None when it is not one."""
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            return None
        (header_length,) = struct.unpack("<Q", head)
        size = path.stat().st_size
        if header_length > size - 8 or header_length > 100 * 1024 * 1024:
            return None
        handle.seek(8 + header_length)
        digest = hashlib.sha256()
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:12]


class DerivedHashIndex:
    """Derived hashes of blobs, computed on first request."""

    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs
        self.path = blobs.layout.data / CACHE_NAME
        self._cache: DerivedHashCache | None = None
        self._dirty = False

    def _load(self) -> DerivedHashCache:
        if self._cache is None:
            try:
                self._cache = read_model(self.path, DerivedHashCache) if self.path.is_file() else DerivedHashCache()
            except SynapseError:
                self._cache = DerivedHashCache()
        return self._cache

    def get(self, sha256: str, which: str) -> str | None:
        """``autov1`` or ``autov3`` of a present blob (None when it has none or is missing)."""
        cache = self._load()
        entry = cache.blobs.get(sha256)
        if entry is not None and getattr(entry, which) is not None:
            return str(getattr(entry, which))
        if not self.blobs.has(sha256):
            return None
        compute = autov1 if which == "autov1" else autov3
        try:
            value = compute(self.blobs.path(sha256))
        except OSError:
            return None
        if value is not None:
            entry = cache.blobs.setdefault(sha256, DerivedHashes())
            setattr(entry, which, value)
            self._dirty = True
        return value

    def save(self) -> None:
        """Keep what was computed (atomic; a concurrent writer may win, which loses only cache)."""
        if self._dirty and self._cache is not None and self.path.parent.is_dir():
            write_json(self.path, self._cache)
            self._dirty = False
