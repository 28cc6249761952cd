"""data/adopt/<id>.json: every step of an adopt, so that it can be finished after a kill and undone.

The journal is written before the import starts and holds each original name with the file's
device, inode, size, mtime and mode and its sha256. Its phase says how far the adopt got:

* ``planned``: the import runs (or was killed). If its packs are not in state, it was rolled
  back by the store's recovery (the originals got their mode back): the journal goes.
* ``taking_over``: the import is committed; each original is removed once its blob is the same
  inode or a verified copy (every step can be repeated); then the installs are attached.
* ``done``: kept for ``synapse adopt --undo``.
* ``undoing``: the installs are detached, every original is put back (a hard link of its own
  inode, or a copy of the blob with its mode and mtime), the packs are removed, the blobs that were
  the originals' own inodes leave the library. Every step can be repeated after a kill.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from synapse_core.errors import disk_error
from synapse_core.layout import StoreLayout, fsync_dir, write_json

SCHEMA = 1


def journal_dir(layout: StoreLayout) -> Path:
    """data/adopt/."""
    return layout.data / "adopt"


def journals(layout: StoreLayout) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every journal, oldest first; an unreadable one is skipped (it is not ours to fix)."""
    folder = journal_dir(layout)
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text())
            if isinstance(data, dict) and data.get("schema_version") == SCHEMA:
                yield path, data


def new_journal(layout: StoreLayout, data: dict[str, Any]) -> Path:
    """Write a new journal (durably: a kill right after must find it)."""
    folder = journal_dir(layout)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.json"
    save(path, {"schema_version": SCHEMA, **data})
    return path


def save(path: Path, data: dict[str, Any]) -> None:
    """Replace a journal atomically and durably."""
    write_json(path, data)


def set_phase(path: Path, data: dict[str, Any], phase: str) -> None:
    """Move a journal to its next phase."""
    data["phase"] = phase
    save(path, data)


def record(name: Path, found: Path, link: str | None, info: os.stat_result, sha256: str) -> dict[str, Any]:
    """The journal entry of one original name."""
    return {
        "name": str(name),
        "found": str(found),
        "link": link,
        "dev": info.st_dev,
        "ino": info.st_ino,
        "size": info.st_size,
        "mtime_ns": info.st_mtime_ns,
        "mode": stat.S_IMODE(info.st_mode),
        "sha256": sha256,
    }


class TakeOver:
    """Removes original names whose bytes the library holds (same inode, or a verified copy)."""

    def __init__(self, blob_path: Any, verify: Any, entries: Sequence[dict[str, Any]]) -> None:
        self.blob_path = blob_path
        self.verify = verify
        self.entries = entries
        self._verified: dict[str, bool] = {}

    def _blob_ok(self, sha256: str, blob: os.stat_result) -> bool:
        """The blob holds the bytes: it is the inode of a hashed original that has not changed
        since (its size and mtime), or it hashes to its name now."""
        if sha256 not in self._verified:
            ours = any(
                e["sha256"] == sha256
                and (e["dev"], e["ino"]) == (blob.st_dev, blob.st_ino)
                and (e["size"], e["mtime_ns"]) == (blob.st_size, blob.st_mtime_ns)
                for e in self.entries
            )
            self._verified[sha256] = ours or self.verify(sha256)
        return self._verified[sha256]

    def remove(self, entry: dict[str, Any]) -> str | None:
        """Remove one original name; returns why it was kept, or None (removed, or gone already)."""
        name = Path(entry["name"])
        try:
            now = os.lstat(name)
        except FileNotFoundError:
            return None
        try:
            blob = os.stat(self.blob_path(entry["sha256"]))
        except FileNotFoundError:
            return f"{name} was kept: its blob is missing"
        if entry["link"] is not None:
            if not stat.S_ISLNK(now.st_mode) or os.readlink(name) != entry["link"]:
                return f"{name} was kept: it changed since it was hashed"
            target = os.stat(name)
            if (target.st_dev, target.st_ino) != (blob.st_dev, blob.st_ino) and not self._blob_ok(
                entry["sha256"], blob
            ):
                return f"{name} was kept: its copy in the library could not be verified"
            _unlink(name)
            return None
        identity = (now.st_dev, now.st_ino, now.st_size, now.st_mtime_ns)
        if not stat.S_ISREG(now.st_mode) or identity != (entry["dev"], entry["ino"], entry["size"], entry["mtime_ns"]):
            return f"{name} was kept: it changed since it was hashed"
        same = (now.st_dev, now.st_ino) == (blob.st_dev, blob.st_ino)
        if not same and not self._blob_ok(entry["sha256"], blob):
            return f"{name} was kept: its copy in the library could not be verified"
        _unlink(name)
        return None


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise disk_error(exc, f"removing {path}") from exc


def sync_folders(entries: Sequence[dict[str, Any]]) -> None:
    """fsync each folder that held an original once (after all the removals or restorations)."""
    for folder in sorted({str(Path(e["name"]).parent) for e in entries}):
        with contextlib.suppress(OSError):
            fsync_dir(Path(folder))


def restore(entry: dict[str, Any], blob: Path, link_back: bool) -> bool:
    """Put one original name back (True if it was missing). ``link_back``: the blob is the
    original's own inode and leaves the library: link it back (its mode is set once the blob's
    name is gone); else a copy of the blob with the original's mode and mtime."""
    name = Path(entry["name"])
    if os.path.lexists(name):
        return False
    name.parent.mkdir(parents=True, exist_ok=True)
    if entry["link"] is not None:
        os.symlink(entry["link"], name)
        return True
    if link_back:
        os.link(blob, name)
        return True
    temp = name.with_name(f".{name.name[:40]}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    temp.unlink(missing_ok=True)
    try:
        with open(blob, "rb") as src, open(temp, "xb") as dst:
            size = os.fstat(src.fileno()).st_size
            copied = 0
            with contextlib.suppress(OSError):
                while copied < size:
                    n = os.copy_file_range(src.fileno(), dst.fileno(), size - copied)
                    if n == 0:
                        break
                    copied += n
            if copied < size:
                src.seek(copied)
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            os.fsync(dst.fileno())
        os.chmod(temp, entry["mode"])
        os.utime(temp, ns=(entry["mtime_ns"], entry["mtime_ns"]))
        os.rename(temp, name)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise disk_error(exc, f"putting {name} back") from exc
    return True


def restore_mode(entry: dict[str, Any]) -> None:
    """Give an original (the bytes of a name, or a link's target) its mode back, if it is still
    the recorded inode and the library no longer names it."""
    name = Path(entry["name"])
    with contextlib.suppress(OSError):
        now = os.stat(name)
        if (now.st_dev, now.st_ino) == (entry["dev"], entry["ino"]) and stat.S_IMODE(now.st_mode) != entry["mode"]:
            os.chmod(name, entry["mode"])
