"""Hashing local files once: a cache keyed by device, inode, size and mtime."""

from __future__ import annotations

import os
from pathlib import Path

from synapse_core.hashing import hash_file
from synapse_core.layout import StoreLayout, read_model, write_json
from synapse_core.models import HashCache, HashCacheEntry


class HashCacheFile:
    """data/hash-cache.json, read once and written back when it changed."""

    def __init__(self, layout: StoreLayout) -> None:
        self.path = layout.data / "hash-cache.json"
        self.cache = read_model(self.path, HashCache) if self.path.is_file() else HashCache()
        self.dirty = False

    def sha256(self, path: Path) -> tuple[str, int]:
        """The file's sha256 and size, hashing only when the file is new or changed."""
        st = os.stat(path)
        key = f"{st.st_dev}:{st.st_ino}"
        known = self.cache.files.get(key)
        if known and known.size == st.st_size and known.mtime_ns == st.st_mtime_ns:
            return known.sha256, known.size
        sha256, size = hash_file(path)
        self.cache.files[key] = HashCacheEntry(size=size, mtime_ns=st.st_mtime_ns, sha256=sha256)
        self.dirty = True
        return sha256, size

    def known(self, st: os.stat_result) -> str | None:
        """The cached sha256 of the file whose status is ``st``, if it is unchanged since."""
        entry = self.cache.files.get(f"{st.st_dev}:{st.st_ino}")
        if entry and entry.size == st.st_size and entry.mtime_ns == st.st_mtime_ns:
            return entry.sha256
        return None

    def remember(self, st: os.stat_result, sha256: str) -> None:
        """Record the sha256 of the file whose status (when its hashing began) was ``st``."""
        self.cache.files[f"{st.st_dev}:{st.st_ino}"] = HashCacheEntry(
            size=st.st_size, mtime_ns=st.st_mtime_ns, sha256=sha256
        )
        self.dirty = True

    def save(self) -> None:
        """Write the cache if it changed."""
        if self.dirty:
            write_json(self.path, self.cache)
            self.dirty = False
