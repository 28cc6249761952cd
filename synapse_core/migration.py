"""Bring a store written by older code to the current schema, once.

The store's schema is the ``schema_version`` of state/config.json. Schema 2 (this code) made
source ids opaque strings and gave each source its own ``metadata`` block in pack.json:

* pack.json ``source``: ``provider``, ``url``, ``version_id`` (a string), ``version_name`` and
  ``metadata`` (every other key a source wrote, such as Civitai's ``model_id`` or a local path);
* lock.json: ``version_id`` and ``file_id`` of each resource are strings;
* data/update-checks.json: ``latest_version_id`` is a string;
* every other state and data file only gets ``schema_version: 2``.

:func:`migrate_files` rewrites each file atomically and skips files already at the current
schema, and writes config.json last, so a migration killed half-way is finished by the next
command (the caller holds the store lock, writes the mutation marker and commits state once).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synapse_core.errors import StateFileInvalid
from synapse_core.layout import StoreLayout, write_json

STORE_SCHEMA = 2
_SOURCE_KEYS = ("provider", "url", "version_id", "version_name", "metadata")

Upgrade = Callable[[dict[str, Any]], None]


def store_schema(layout: StoreLayout) -> int | None:
    """The schema the store was written with (None when there is no readable config.json)."""
    try:
        data = json.loads(layout.config_file.read_bytes())
    except (OSError, ValueError):
        return None
    version = data.get("schema_version") if isinstance(data, dict) else None
    return version if isinstance(version, int) else None


def needs_migration(layout: StoreLayout) -> bool:
    """Whether the store was written by older code; a newer store is an error."""
    version = store_schema(layout)
    if version is not None and version > STORE_SCHEMA:
        raise StateFileInvalid(
            f"the store at {layout.root} was written by a newer Synapse (schema {version}, this one reads "
            f"{STORE_SCHEMA}); upgrade Synapse"
        )
    return version is not None and version < STORE_SCHEMA


def _id(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _pack(data: dict[str, Any]) -> None:
    source = data.get("source")
    if isinstance(source, dict):
        metadata = dict(source.get("metadata") or {})
        metadata.update({k: v for k, v in source.items() if k not in _SOURCE_KEYS})
        data["source"] = {k: source[k] for k in _SOURCE_KEYS[:4] if k in source}
        data["source"]["version_id"] = _id(source.get("version_id"))
        data["source"]["metadata"] = metadata


def _lock(data: dict[str, Any]) -> None:
    for entry in (data.get("resources") or {}).values():
        if isinstance(entry, dict):
            for key in ("version_id", "file_id"):
                if key in entry:
                    entry[key] = _id(entry[key])


def _update_checks(data: dict[str, Any]) -> None:
    for entry in (data.get("packs") or {}).values():
        if isinstance(entry, dict) and "latest_version_id" in entry:
            entry["latest_version_id"] = _id(entry["latest_version_id"])


def _nothing(data: dict[str, Any]) -> None:
    return None


def _files(layout: StoreLayout) -> list[tuple[Path, Upgrade]]:
    """Every JSON file with a schema, config.json last."""
    packs = sorted(layout.packs_dir.glob("*/pack.json")) if layout.packs_dir.is_dir() else []
    files: list[tuple[Path, Upgrade]] = []
    for pack in packs:
        files += [
            (pack, _pack),
            (pack.parent / "lock.json", _lock),
            (pack.parent / "resources" / "previews.json", _nothing),
        ]
    profiles = sorted(layout.profiles_dir.glob("*/profile.json")) if layout.profiles_dir.is_dir() else []
    files += [(p, _nothing) for p in profiles]
    files += [
        (layout.ui_sets_file, _nothing),
        (layout.runtime_file, _nothing),
        (layout.update_checks_file, _update_checks),
        (layout.hash_cache_file, _nothing),
        (layout.data / "derived-hashes.json", _nothing),
        (layout.config_file, _nothing),
    ]
    return files


def migrate_files(layout: StoreLayout) -> set[Path]:
    """Rewrite every file still below :data:`STORE_SCHEMA`; returns the state paths written."""
    written: set[Path] = set()
    for path, upgrade in _files(layout):
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            raise StateFileInvalid(f"{path} cannot be read to migrate it ({exc}); fix or restore it") from exc
        if not isinstance(data, dict) or data.get("schema_version", 1) >= STORE_SCHEMA:
            continue
        upgrade(data)
        data["schema_version"] = STORE_SCHEMA
        write_json(path, data)
        if layout.state in path.parents:
            written.add(path)
    return written
