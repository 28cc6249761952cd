"""What a file system can do (symlinks, hard links, reflinks), probed once, and errors that say so."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import uuid
from pathlib import Path

import attrs

from synapse_core.errors import SynapseError

FICLONE = 0x40049409


@attrs.frozen
class Capabilities:
    """What a folder's file system supports, as found by :func:`probe`."""

    filesystem: str
    symlink: bool
    hardlink: bool
    reflink: bool

    def best_mode(self) -> str:
        """The link mode ``auto`` picks: symlinks, else hard links, else reflinks, else copies."""
        for mode, ok in (("symlink", self.symlink), ("hardlink", self.hardlink), ("reflink", self.reflink)):
            if ok:
                return mode
        return "copy"


def _made_folders(folder: Path) -> list[Path]:
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    return made


def probe(folder: Path, source_dir: Path | None = None) -> Capabilities:
    """Try a symlink, a hard link and a reflink in ``folder`` (of a file in ``source_dir``, where
    blobs live, default ``folder``); leaves nothing behind, not even folders it had to create."""
    made = _made_folders(folder)
    source_dir = source_dir or folder
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    probe_file = source_dir / f".probe-src-{tag}"
    results = {"symlink": False, "hardlink": False, "reflink": False}
    try:
        source_dir.mkdir(parents=True, exist_ok=True)
        probe_file.write_bytes(b"synapse probe")
        for kind in results:
            target = folder / f".probe-{kind}-{tag}"
            try:
                if kind == "symlink":
                    os.symlink("target", target)
                elif kind == "hardlink":
                    os.link(probe_file, target)
                else:
                    with open(probe_file, "rb") as src, open(target, "wb") as dst:
                        fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
                results[kind] = True
            except OSError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    target.unlink()
    finally:
        with contextlib.suppress(OSError):
            probe_file.unlink()
        for path in made:
            with contextlib.suppress(OSError):
                path.rmdir()
    return Capabilities(filesystem_type(folder), **results)


def check_symlinks(folder: Path) -> None:
    """Raise a clear error if ``folder`` (created if needed) cannot hold symlinks; leave nothing behind."""
    made = _made_folders(folder)
    probe_link = folder / f".symlink-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        os.symlink("target", probe_link)
        probe_link.unlink()
    except OSError as exc:
        error = link_error(exc, probe_link)
        for path in made:  # innermost first: only the folders this call created
            with contextlib.suppress(OSError):
                path.rmdir()
        raise error from exc


def link_error(exc: OSError, where: Path) -> SynapseError:
    """A one-line error for a failed link operation."""
    if exc.errno in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
        return SynapseError(
            f"cannot create links (symlinks or hard links) under {where.parent} "
            f"(filesystem {filesystem_type(where.parent)}); "
            "choose another link mode ('synapse store init --link-mode auto') or put the store on a "
            "filesystem with links (ext4, btrfs, xfs, apfs, NTFS with developer mode)"
        )
    if exc.errno == errno.ENOSPC:
        return SynapseError(f"the disk is full while building {where}; free some space and run 'synapse doctor --fix'")
    if exc.errno in (errno.EACCES, errno.EROFS):
        return SynapseError(f"cannot write {where}: {exc.strerror}; check the folder's permissions")
    return SynapseError(f"cannot build {where}: {exc.strerror or exc}")


def filesystem_type(path: Path) -> str:
    """The type of the filesystem holding ``path`` (from /proc/mounts), or 'unknown'."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return "unknown"
    best, kind = "", "unknown"
    target = str(path.resolve())
    for line in mounts:
        fields = line.split()
        inside = len(fields) >= 3 and (target == fields[1] or target.startswith(fields[1].rstrip("/") + "/"))
        if inside and len(fields[1]) >= len(best):
            best, kind = fields[1], fields[2]
    return kind
