"""Finding the ``synapse`` entry points fast.

Scanning every installed distribution costs tens of milliseconds on each command,
so the result is cached per interpreter in the user's cache folder and reused while
no folder on ``sys.path`` has changed (installing or removing a distribution
changes its site-packages folder).
"""

from __future__ import annotations

import json
import os
import sys
import zlib
from importlib import import_module
from pathlib import Path
from typing import NamedTuple

ENTRY_POINT_GROUP = "synapse"


class FoundEntryPoint(NamedTuple):
    """An entry point of the ``synapse`` group and the distribution that declares it."""

    name: str
    value: str
    distribution: str | None
    version: str | None

    def load(self) -> object:
        """Import the object the entry point names (``module`` or ``module:attr``)."""
        module_name, _, attr = self.value.partition(":")
        obj: object = import_module(module_name.strip())
        for part in filter(None, attr.strip().split(".")):
            obj = getattr(obj, part)
        return obj


def _cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    key = "".join(c if c.isalnum() else "_" for c in sys.executable).strip("_")[-80:]
    paths = zlib.crc32("\0".join(sys.path).encode())  # `python -c` and the console script see different paths
    return Path(base) / "synapse" / f"entry-points-{key}-{paths:08x}.json"


def _path_stamp() -> list[list[object]]:
    stamp: list[list[object]] = []
    for entry in sys.path:
        try:
            stamp.append([entry, os.stat(entry or ".").st_mtime_ns])
        except OSError:
            stamp.append([entry, None])
    return stamp


def _scan() -> list[FoundEntryPoint]:
    from importlib import metadata

    found = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        name = dist.metadata["Name"] if dist else None
        found.append(FoundEntryPoint(ep.name, ep.value, name, dist.version if dist else None))
    return sorted(found, key=lambda f: f.name)


def discover_entry_points(use_cache: bool = True) -> list[FoundEntryPoint]:
    """Every ``synapse`` entry point, sorted by name (cached while sys.path is unchanged)."""
    if not use_cache or os.environ.get("SYNAPSE_NO_CACHE") == "1":
        return _scan()
    cache, stamp = _cache_file(), _path_stamp()
    try:
        data = json.loads(cache.read_text())
        if data["stamp"] == stamp:
            return [FoundEntryPoint(**item) for item in data["entry_points"]]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    found = _scan()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        temp = cache.with_suffix(f".{os.getpid()}.tmp")
        temp.write_text(json.dumps({"stamp": stamp, "entry_points": [f._asdict() for f in found]}))
        os.replace(temp, cache)
    except OSError:
        pass  # a read-only home only costs the scan
    return found
