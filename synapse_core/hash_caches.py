"""Writing known sha256s into a UI's own hash cache, for UI adapters.

Several UIs cache a file's sha256 by a title (``lora/<name>``) with the file's mtime and
trust it while the file on disk is not newer. Behind a stable name, ``use``/``back`` swap
the bytes (blobs keep their import time), so such a cache keeps naming the previous file.
Synapse knows every sha256: an adapter gives :class:`CachedHash` records and one of the
two storage formats below writes them, also dropping entries that described the old bytes
(a hash of another kind, cached header metadata) so that the UI computes them again.

Two formats, both generic: a JSON object of sections (``{"hashes": {title: {"mtime",
"sha256"}}}``) and a folder of ``diskcache`` caches, one per section (the library the UI
itself uses; imported only here, only when such a cache is written).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from synapse_core.kinds import AssetKind
from synapse_core.layout import write_bytes_atomic
from synapse_core.ui import UIAdapter, ViewHash


@attrs.frozen
class CachedHash:
    """One entry to write: ``section[title] = {"mtime": mtime, "sha256": sha256}``."""

    title: str
    sha256: str
    mtime: float
    """The mtime the UI reads for the file (through the view's link: the bytes' own)."""
    stale: tuple[str, ...] = ()
    """Other sections whose entry under ``title`` describes the file's bytes (an addnet hash,
    safetensors metadata): removed when the sha256 changes, so the UI recomputes them."""


def _value(entry: CachedHash) -> dict[str, Any]:
    return {"mtime": entry.mtime, "sha256": entry.sha256}


def _current(old: object, entry: CachedHash) -> bool:
    return isinstance(old, Mapping) and old.get("sha256") == entry.sha256 and old.get("mtime") == entry.mtime


def _same_bytes(old: object, entry: CachedHash) -> bool:
    return isinstance(old, Mapping) and old.get("sha256") == entry.sha256


def update_json_sections(path: Path, section: str, entries: Sequence[CachedHash]) -> int:
    """Set the entries in the JSON cache file at ``path`` (created if missing), atomically;
    return how many changed. A file that is not a JSON object is left alone (0): the UI
    itself replaces such a file."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        data = {}
    except (OSError, ValueError):
        return 0
    if not isinstance(data, dict):
        return 0
    hashes = data.setdefault(section, {})
    if not isinstance(hashes, dict):
        return 0
    changed = 0
    for entry in entries:
        old = hashes.get(entry.title)
        if _current(old, entry):
            continue
        if not _same_bytes(old, entry):
            for other in entry.stale:
                found = data.get(other)
                if isinstance(found, dict):
                    found.pop(entry.title, None)
        hashes[entry.title] = _value(entry)
        changed += 1
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, json.dumps(data, indent=4, ensure_ascii=False).encode())
    return changed


def titles_with_new_bytes(path: Path, section: str, entries: Sequence[CachedHash]) -> set[str]:
    """The sha256s of entries whose title a JSON cache names with other bytes (or not at all)."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        data = {}
    hashes = data.get(section) if isinstance(data, dict) else None
    hashes = hashes if isinstance(hashes, dict) else {}
    return {e.sha256 for e in entries if not _same_bytes(hashes.get(e.title), e)}


def drop_json_keys(path: Path, keys: Sequence[str]) -> int:
    """Remove top-level ``keys`` from a JSON object file (a cache keyed by path), atomically."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return 0
    if not isinstance(data, dict):
        return 0
    dropped = [key for key in keys if data.pop(key, None) is not None]
    if dropped:
        write_bytes_atomic(path, json.dumps(data, indent=4, ensure_ascii=False).encode())
    return len(dropped)


def update_diskcache(folder: Path, section: str, entries: Sequence[CachedHash], settings: Mapping[str, int]) -> int:
    """Set the entries in ``folder/<section>`` (a diskcache Cache opened with the UI's own
    ``settings``); return how many changed. diskcache is safe with the UI running: it reads
    the SQLite database on every lookup, so a running UI sees the new entries at once."""
    import diskcache  # type: ignore[import-untyped]  # only installs with such a cache need it

    changed = 0
    with diskcache.Cache(str(folder / section), **settings) as cache:
        others = {name: diskcache.Cache(str(folder / name), **settings) for e in entries for name in e.stale}
        try:
            for entry in entries:
                old = cache.get(entry.title)
                if _current(old, entry):
                    continue
                if not _same_bytes(old, entry):
                    for name in entry.stale:
                        others[name].delete(entry.title)
                cache[entry.title] = _value(entry)
                changed += 1
        finally:
            for other in others.values():
                other.close()
    return changed


Title = Callable[[str], str]
"""How a UI names a file in its cache, from its path relative to the kind's folder."""


def cached_hashes(
    adapter: UIAdapter,
    view: Path,
    entries: Sequence[ViewHash],
    titles: Mapping[AssetKind, Title],
    stale: Mapping[AssetKind, tuple[str, ...]] = {},
) -> list[CachedHash]:
    """The records for the entries of the kinds in ``titles``, with the mtime the UI will read
    for each (``os.path.getmtime`` through the view, as the UIs call it); entries whose file is
    not there are left out."""
    found = []
    for entry in entries:
        title = titles.get(entry.kind)
        folder = adapter.folder(entry.kind)
        if title is None or folder is None:
            continue
        try:
            mtime = os.path.getmtime(view / folder.folder / entry.expose)
        except OSError:
            continue
        found.append(CachedHash(title(entry.expose), entry.sha256, mtime, stale.get(entry.kind, ())))
    return found
