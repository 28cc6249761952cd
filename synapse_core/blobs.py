"""The content-addressed library: data/blobs/sha256/<2 hex>/<sha256>.

A blob's name is the sha256 of its bytes, and nothing partial is ever visible
under blobs/: bytes are written to a unique temp under data/tmp/, hashed in the
same pass, fsynced, then published with a link (or rename). Blobs are 0444.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import attrs

from synapse_core.errors import IntegrityError, InvalidInput, SynapseError, disk_error
from synapse_core.hashing import HashAhead, file_identity, hash_file
from synapse_core.layout import StoreLayout, fsync_dir, is_inside, writer_alive

CHUNK = 4 * 1024 * 1024
KERNEL_COPY_PIECE = 64 * 1024 * 1024
TEMP_GRACE_SECONDS = 24 * 3600
PARTIAL_GRACE_SECONDS = 7 * 24 * 3600
FICLONE = 0x40049409
IngestMode = Literal["copy", "link", "move"]
Progress = Callable[[int], None]


@attrs.frozen
class Ingested:
    """A blob now present in the store."""

    sha256: str
    size: int
    created: bool
    """False when the blob already existed and no bytes were written."""
    linked_from: tuple[Path, int] | None = None
    """A hard-linked original and its mode before the blob (the same inode) was made read-only."""


class NewBlobs:
    """data/.mutation-blobs.<pid>: the blobs this process's mutation publishes, and the user files
    whose inode one shares (``--link``, ``--move``) with their mode *before* publishing made it
    read-only.

    A mutation that fails, or is killed (found by the next command), removes its blobs that no
    pack kept and gives those user files their mode back. One file per process: without a
    working lock another command's rollback never touches this one's blobs. Records only while
    a mutation has it open; no fsync (only a killed process must find it).
    """

    def __init__(self, data: Path) -> None:
        self.data = data
        self.path = data / f".mutation-blobs.{os.getpid()}"
        self.open = False

    def record(self, sha256: str, original: Path | None = None, mode: int = 0, ingest: IngestMode = "copy") -> None:
        """Append one entry, before the blob (or the user's inode) changes."""
        if not self.open:
            return
        entry: dict[str, object] = {"sha256": sha256}
        if original is not None:
            entry.update(original=str(original), mode=stat.S_IMODE(mode), ingest=ingest)
        try:
            with open(self.path, "a") as handle:
                handle.write(json.dumps(entry) + "\n")
        except OSError as exc:
            raise disk_error(exc, f"recording the blob {sha256[:12]}…") from exc

    def journals(self, of_dead: bool) -> list[Path]:
        """This process's journal, and with ``of_dead`` those of processes that are gone."""
        found = [self.path] if self.path.exists() else []
        if of_dead:
            for path in self.data.glob(".mutation-blobs.*"):
                pid = path.name.rsplit(".", 1)[1]
                if path != self.path and pid.isdigit() and not _alive(int(pid)):
                    found.append(path)
        return found

    @staticmethod
    def entries(journal: Path) -> list[dict[str, object]]:
        """The entries of a journal, skipping a line cut short by a kill."""
        try:
            lines = journal.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
        found = []
        for line in lines:
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and isinstance(entry.get("sha256"), str):
                    found.append(entry)
        return found

    def clear(self) -> None:
        """Forget this process's entries (its mutation is over)."""
        self.path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _disk_error(exc: OSError, what: str) -> SynapseError:
    return disk_error(exc, f"storing {what}")


def _kernel_copy(src: int, dst: int, size: int) -> int:
    """Copy with copy_file_range (no trip through user space); returns the bytes copied,
    fewer than ``size`` where the kernel or filesystem cannot (the caller copies the rest)."""
    copied = 0
    try:
        while copied < size:  # in pieces: Ctrl-C is handled between two calls, within a fraction of a second
            n = os.copy_file_range(src, dst, min(size - copied, KERNEL_COPY_PIECE))
            if n == 0:
                break
            copied += n
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    return copied


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _check_unchanged(source: Path, before: os.stat_result, size_read: int) -> None:
    """Refuse a file that changed while it was read: the blob must hold the bytes that were hashed."""
    if file_identity(source.stat()) != file_identity(before) or size_read != before.st_size:
        raise InvalidInput(f"{source} changed while it was being read; try again when nothing writes to it")


class BlobStore:
    """Adds, checks and removes blobs. Safe against concurrent writers and kill -9."""

    def __init__(self, layout: StoreLayout, ahead: HashAhead | None = None) -> None:
        self.layout = layout
        self.ahead = ahead
        self._root = str(layout.blobs_dir)
        self.new = NewBlobs(layout.data)
        self.known: dict[tuple[int, int, int, int], str] = {}
        """sha256s of local files hashed just before (``synapse adopt``), by :func:`file_identity`:
        used while the file still has that identity, and checked again after use as always."""

    def path(self, sha256: str) -> Path:
        """Where the blob with this hash lives (whether or not it exists)."""
        return self.layout.blob_path(sha256)

    def has(self, sha256: str) -> bool:
        """Whether the blob is present (string paths: this runs once per resource of every view)."""
        return os.path.isfile(f"{self._root}/{sha256[:2]}/{sha256}")

    def _publish(self, temp: Path, sha256: str, shared: bool = False) -> bool:
        """Move a finished temp into place; False if the blob already existed. A blob is always
        a regular file of its own (``shared``: the inode of a ``--link``/``--move`` original)."""
        final = self.path(sha256)
        info = os.lstat(temp)
        if not stat.S_ISREG(info.st_mode) or (info.st_nlink > 1 and not shared):
            temp.unlink()
            raise IntegrityError(
                f"{temp} is not a file of the store's own (a link was planted there); nothing was stored"
            )
        if not is_inside(self.layout.root, final):
            raise SynapseError(f"{final.parent} is reached through a symbolic link; 'synapse doctor' names it")
        final.parent.mkdir(parents=True, exist_ok=True)
        self.new.record(sha256)
        os.chmod(temp, 0o444)
        try:
            os.link(temp, final, follow_symlinks=False)
        except FileExistsError:
            temp.unlink()
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV):
                temp.unlink(missing_ok=True)
                raise disk_error(exc, f"publishing a blob into {final.parent}") from exc
            try:
                os.replace(temp, final)  # filesystems without hard links
            except OSError as again:
                temp.unlink(missing_ok=True)
                if again.errno == errno.EXDEV:
                    raise SynapseError(
                        f"{self.layout.tmp_dir} and {self.layout.blobs_dir} are on different file systems; "
                        "keep the store's data/ folder on one file system (nothing was stored)"
                    ) from again
                raise disk_error(again, f"publishing a blob into {final.parent}") from again
        else:
            temp.unlink()
        if self.layout.durable:
            fsync_dir(final.parent)
        return True

    def ingest_file(
        self,
        source: Path,
        mode: IngestMode = "copy",
        progress: Progress | None = None,
        expected_sha256: str | None = None,
    ) -> Ingested:
        """Add a local file: copied (default), or linked without copying.

        A copy hashes and writes in one pass, unless a blob of the same size exists:
        then the file is hashed first, so a duplicate writes no data at all. ``move`` is a
        hard link (a copy across file systems) here: the caller deletes the original once
        the import is committed, so a failed import never loses it.
        """
        if not source.is_file():
            raise InvalidInput(f"{source} is not a file")
        before = source.stat()
        if mode == "copy" and not self._has_size(before.st_size):
            return self._ingest_copy(source, progress, expected_sha256)
        sha256, size = self.hash_source(source, before, progress)
        _check_unchanged(source, before, size)
        if expected_sha256 and sha256 != expected_sha256:
            raise IntegrityError(f"{source}: sha256 {sha256[:12]}… is not the expected {expected_sha256[:12]}…")
        if self.has(sha256):
            return Ingested(sha256, size, created=False)
        if mode == "copy":
            return self._ingest_copy(source, None, sha256)
        if mode == "move" and source.is_symlink():
            raise InvalidInput(f"{source} is a symbolic link: --move takes the file itself (or use --link)")
        temp = self.layout.temp_path(self.tmp_dir(), "ingest")
        try:
            if mode == "link":
                self._link_or_clone(source, temp)
            else:
                os.link(source, temp)  # the same inode: the original is deleted after the commit
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise _disk_error(exc, str(source)) from exc
            return self._ingest_copy(source, None, sha256)
        shared = os.path.samestat(os.stat(temp), source.stat())
        if shared:
            self.new.record(sha256, Path(os.path.realpath(source)), before.st_mode, mode)
        created = self._publish(temp, sha256, shared)
        return Ingested(sha256, size, created, (source, before.st_mode) if shared and created else None)

    def hash_source(
        self, source: Path, before: os.stat_result, progress: Progress | None, stop: threading.Event | None = None
    ) -> tuple[str, int]:
        """The sha256 and size of a local file: hashed ahead if it was (and is unchanged), else now
        (``stop``: see :func:`hash_file`)."""
        known = self.known.get(file_identity(before))
        if known is not None:
            if progress:
                progress(before.st_size)
            return known, before.st_size
        ahead = self.ahead.take(source, before, progress, stop) if self.ahead else None
        return ahead or hash_file(source, progress, stop)

    def _link_or_clone(self, source: Path, temp: Path) -> None:
        """A reflink (copy-on-write clone) where the filesystem has them, else a hard link."""
        try:
            with open(source, "rb") as src, open(temp, "wb") as dst:
                fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
            return
        except OSError:
            temp.unlink(missing_ok=True)
        os.link(os.path.realpath(source), temp)  # link() would link a symbolic link itself

    def _has_size(self, size: int) -> bool:
        """Whether some blob has exactly this size (then a new file may be a duplicate)."""
        if not self.layout.blobs_dir.is_dir():
            return False
        for bucket in os.scandir(self.layout.blobs_dir):
            if bucket.is_dir() and any(e.stat().st_size == size for e in os.scandir(bucket.path)):
                return True
        return False

    def _ingest_copy(self, source: Path, progress: Progress | None, expected_sha256: str | None = None) -> Ingested:
        with self.writer(str(source), expected_sha256) as writer:
            writer.copy_file(source, progress)
            return writer.publish()

    def writer(self, what: str, expected_sha256: str | None = None, expected_size: int | None = None) -> BlobWriter:
        """A writer that hashes while it writes, then publishes (or discards) the blob."""
        temp = self.layout.temp_path(self.tmp_dir(), "ingest")
        return BlobWriter(self, temp, what, expected_sha256, expected_size)

    def verify(self, sha256: str) -> bool:
        """Re-hash a blob: True if its bytes still match its name."""
        return hash_file(self.path(sha256))[0] == sha256

    def iter_blobs(self) -> Iterator[tuple[str, int]]:
        """Every blob as (sha256, size)."""
        if not self.layout.blobs_dir.is_dir():
            return
        for bucket in sorted(self.layout.blobs_dir.iterdir()):
            for entry in sorted(os.scandir(bucket), key=lambda e: e.name):
                if entry.is_file() and len(entry.name) == 64:
                    yield entry.name, entry.stat().st_size

    def discard(self, ingested: Ingested) -> None:
        """Undo an ingest whose import failed: the blob goes, a linked original gets its mode back."""
        self.remove(ingested.sha256)
        if ingested.linked_from:
            path, mode = ingested.linked_from
            with contextlib.suppress(OSError):
                os.chmod(path, stat.S_IMODE(mode))

    def roll_back_new(self, referenced: set[str], *, of_dead: bool = False) -> None:
        """After a failed mutation (``of_dead``: also those of killed processes): the new blobs
        that no pack kept go, and the user files they shared get their mode back. A kept blob
        stays, and so does its original (a committed ``--move`` killed before it deleted it keeps
        the original: nothing is lost). Then the journals are deleted."""
        for journal in self.new.journals(of_dead):
            for entry in self.new.entries(journal):
                sha256, original = str(entry["sha256"]), entry.get("original")
                if sha256 in referenced:
                    continue
                with contextlib.suppress(OSError):
                    self.path(sha256).unlink(missing_ok=True)
                    if original is not None and stat.S_ISREG(os.lstat(str(original)).st_mode):
                        os.chmod(str(original), int(str(entry["mode"])))
            journal.unlink(missing_ok=True)

    def remove(self, sha256: str) -> None:
        """Delete a blob (gc)."""
        path = self.path(sha256)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def quarantine(self, sha256: str) -> Path:
        """Move a corrupt blob out of the library, keeping it for inspection."""
        self.layout.quarantine_dir.mkdir(parents=True, exist_ok=True)
        target = self.layout.quarantine_dir / f"{sha256}.{int(time.time())}"
        os.replace(self.path(sha256), target)
        return target

    def tmp_dir(self) -> Path:
        """data/tmp/, created if needed; refused when a symlink leads it out of the store."""
        tmp = self.layout.tmp_dir
        if tmp.is_symlink() or not is_inside(self.layout.root, tmp / "probe"):
            raise SynapseError(f"{tmp} is a symbolic link; remove it (Synapse recreates the folder)")
        tmp.mkdir(parents=True, exist_ok=True)
        return tmp

    def stale_temps(self) -> list[tuple[Path, int, float]]:
        """The temps in data/tmp whose writer no longer runs here (a command that was killed), with
        size and mtime; resumable partial downloads are not among them."""
        tmp = self.layout.tmp_dir
        if not tmp.is_dir() or tmp.is_symlink() or not is_inside(self.layout.root, tmp / "probe"):
            return []  # never look through a link that leads out of the store
        found = []
        for entry in os.scandir(tmp):
            if ".part" in entry.name or not entry.is_file(follow_symlinks=False) or writer_alive(entry.name):
                continue
            with contextlib.suppress(OSError):
                info = entry.stat(follow_symlinks=False)
                found.append((Path(entry.path), info.st_size, info.st_mtime))
        return found

    def clean_temps(self, grace: float = TEMP_GRACE_SECONDS, now: float | None = None) -> int:
        """Remove the temps of killed commands older than ``grace`` seconds (a younger one may be
        another host's, whose pid means nothing here) and partial downloads older than theirs."""
        now = time.time() if now is None else now
        removed = 0
        for path, _size, mtime in self.stale_temps():
            if now - mtime >= grace:
                path.unlink(missing_ok=True)
                removed += 1
        tmp = self.layout.tmp_dir
        if not tmp.is_dir() or tmp.is_symlink() or not is_inside(self.layout.root, tmp / "probe"):
            return removed
        for entry in os.scandir(tmp):
            partial = ".part" in entry.name and entry.is_file(follow_symlinks=False)
            if partial and now - entry.stat(follow_symlinks=False).st_mtime > PARTIAL_GRACE_SECONDS:
                Path(entry.path).unlink(missing_ok=True)
                removed += 1
        return removed


class BlobWriter:
    """Streams bytes into a temp, hashing them; :meth:`publish` checks and publishes.

    Used as a context manager: leaving the block without publishing removes the temp.
    """

    def __init__(
        self, store: BlobStore, temp: Path, what: str, expected_sha256: str | None, expected_size: int | None
    ) -> None:
        self.store = store
        self.temp = temp
        self.what = what
        self.expected_sha256 = expected_sha256.lower() if expected_sha256 else None
        self.expected_size = expected_size
        self.digest = hashlib.sha256()
        self.size = 0
        self._known_sha256: str | None = None
        self._fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        self.temp.unlink(missing_ok=True)

    def close(self) -> None:
        """Close the temp file (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def write(self, chunk: bytes | memoryview) -> None:
        """Append bytes."""
        self.digest.update(chunk)
        try:
            _write_all(self._fd, memoryview(chunk))
        except OSError as exc:
            raise _disk_error(exc, self.what) from exc
        self.size += len(chunk)

    def copy_file(self, source: Path, progress: Progress | None = None) -> None:
        """Copy a local file: the kernel copies (copy_file_range) while this process hashes the
        source on the other core. A source that changes meanwhile is refused, so the blob's
        bytes are the bytes that were hashed."""
        before = source.stat()
        stop = threading.Event()
        hasher = ThreadPoolExecutor(max_workers=1)
        try:
            hashed = hasher.submit(self.store.hash_source, source, before, progress, stop)
            try:
                with open(source, "rb", buffering=0) as handle:
                    copied = _kernel_copy(handle.fileno(), self._fd, before.st_size)
                    if copied < before.st_size:
                        handle.seek(copied)
                        self._copy_rest(handle)
                # start writing back now, while the hash is still running: publish()'s fsync then waits little
                with contextlib.suppress(OSError, AttributeError):
                    os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_DONTNEED)
            except OSError as exc:
                hashed.result()
                raise _disk_error(exc, self.what) from exc
            sha256, size = hashed.result()
        except BaseException:  # Ctrl-C: the hash stops at its next read instead of reading the whole file
            stop.set()
            raise
        finally:
            hasher.shutdown(wait=True)
        _check_unchanged(source, before, size)
        self.size, self._known_sha256 = size, sha256

    def _copy_rest(self, handle: object) -> None:
        buf = bytearray(CHUNK)
        readinto = handle.readinto  # type: ignore[attr-defined]
        while n := readinto(buf):
            _write_all(self._fd, memoryview(buf)[:n])

    def publish(self) -> Ingested:
        """fsync, check the size and hash against what was promised, then publish."""
        try:
            if self.store.layout.durable:
                os.fsync(self._fd)
        except OSError as exc:
            raise _disk_error(exc, self.what) from exc
        self.close()
        sha256 = self._known_sha256 or self.digest.hexdigest()
        if self.expected_size is not None and self.size != self.expected_size:
            raise IntegrityError(
                f"{self.what}: got {self.size} bytes, expected {self.expected_size}; nothing was stored"
            )
        if self.expected_sha256 and sha256 != self.expected_sha256:
            raise IntegrityError(
                f"{self.what}: sha256 {sha256[:12]}… does not match the expected {self.expected_sha256[:12]}…; "
                "nothing was stored"
            )
        created = self.store._publish(self.temp, sha256)
        return Ingested(sha256, self.size, created)
