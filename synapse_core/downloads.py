"""Getting a resource's bytes into the library: from a local path or a source's stream.

A stream goes into a resumable partial file under data/tmp/ (kept across a kill -9),
hashed as it is written; only a complete file with the promised size and sha256 is
published as a blob.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import io
import json
import os
import queue
import stat
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from synapse_core.blobs import CHUNK, BlobStore, Ingested, IngestMode
from synapse_core.errors import IntegrityError, InvalidInput, PluginError, SourceError, SynapseError, disk_error
from synapse_core.layout import is_inside, write_bytes_atomic
from synapse_core.models import Pack
from synapse_core.names import is_sha256, problem_with_name
from synapse_core.progress import NoProgress, Progress
from synapse_core.sources import FetchTarget, Source

WRITEBACK_EVERY = 64 * 1024 * 1024
HASH_BATCH = 1024 * 1024
RECEIVE_BUFFERS = 8
RECEIVE_BUFFER_SIZE = 1024 * 1024  # a reader may wait to fill it: keep it small for slow links
MAX_QUEUED = RECEIVE_BUFFERS


def _write_all(handle: Any, data: bytes | memoryview) -> None:
    """An unbuffered file may take fewer bytes than offered."""
    view = memoryview(data)
    while view:
        view = view[handle.write(view) :]


def target_problem(target: FetchTarget) -> str | None:
    """Why a file a source describes cannot be fetched, or None: every value a source (a
    network) hands over is checked before it becomes part of a path, a name or a number."""
    name = target.file_name
    if not isinstance(name, str) or problem_with_name(name) is not None:
        return f"the file name {str(name)[:80]!r} cannot be a file name ({problem_with_name(str(name))})"
    if target.sha256 is not None and not is_sha256(target.sha256):
        return f"{name}: the sha256 {str(target.sha256)[:80]!r} is not 64 lower-case hex digits"
    if target.size is not None and (type(target.size) is not int or target.size < 0):
        return f"{name}: the size {str(target.size)[:40]!r} is not a byte count"
    return None


class _BackgroundHash:
    """A sha256 fed in order on its own thread, so hashing runs beside the network and the disk.

    Each item is hashed with the GIL released; ``release`` runs once an item's bytes are no
    longer needed (a buffer goes back to its pool)."""

    def __init__(self, digest: Any) -> None:
        self.digest = digest
        self._items: queue.SimpleQueue[tuple[list[Any], Callable[[], None] | None] | None] = queue.SimpleQueue()
        self._pending = 0
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="synapse-hash", daemon=True)
        self._thread.start()

    def add(self, pieces: list[Any], release: Callable[[], None] | None = None) -> None:
        """Hash ``pieces`` after everything added before; waits while too much is queued."""
        with self._idle:
            self._idle.wait_for(lambda: self._pending < MAX_QUEUED)
            self._pending += 1
        self._items.put((pieces, release))

    def _run(self) -> None:
        while (item := self._items.get()) is not None:
            pieces, release = item
            for piece in pieces:
                self.digest.update(piece)
            if release:
                release()
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def wait(self) -> None:
        """Return once every byte handed over is hashed."""
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0)

    def stop(self) -> None:
        self._items.put(None)


class PartialDownload:
    """A :class:`~synapse_core.sources.DownloadSink` backed by ``data/tmp/<key>.part``."""

    def __init__(self, blobs: BlobStore, target: FetchTarget, progress: Progress) -> None:
        self.blobs = blobs
        self.target = target
        self.progress = progress
        problem = target_problem(target)
        if problem is not None:
            raise SourceError(f"cannot download {problem}; nothing was stored")
        key = target.sha256 or hashlib.sha256((target.url or target.file_name).encode()).hexdigest()[:32]
        tmp = blobs.tmp_dir()
        self.part = tmp / f"{key}.part"
        self.meta = tmp / f"{key}.part.json"
        self._hash = _BackgroundHash(hashlib.sha256())
        self._unhashed: list[bytes] = []
        self._unhashed_size = 0
        self._announced = False
        self._validator = self._read_validator()
        self._handle = self._open_part()
        self._offset = self._flushed = os.fstat(self._handle.fileno()).st_size
        if self._offset:
            self._hash_existing()

    def _open_part(self) -> io.FileIO:
        """The partial file, never through a link: a symlink or a hard-linked file planted at
        its name is removed (the name only) and a fresh file created."""
        if not is_inside(self.blobs.layout.root, self.part):
            raise SynapseError(f"{self.part.parent} is reached through a symbolic link; remove it and try again")
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        for _ in range(3):
            try:
                fd = os.open(self.part, flags, 0o644)
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    raise disk_error(exc, f"downloading {self.target.file_name}") from exc
            else:
                info = os.fstat(fd)
                if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
                    return io.FileIO(fd, "a+")
                os.close(fd)
            os.unlink(self.part)  # the name only: a link's target is not touched
            self.meta.unlink(missing_ok=True)
            flags |= os.O_EXCL
        raise SynapseError(f"{self.part} keeps being replaced; is another program writing into {self.part.parent}?")

    def _read_validator(self) -> str | None:
        try:
            value = json.loads(self.meta.read_text()).get("validator")
            return value if isinstance(value, str) else None
        except (OSError, ValueError, AttributeError):
            return None

    def _hash_existing(self) -> None:
        fd, offset = self._handle.fileno(), 0
        while chunk := os.pread(fd, CHUNK, offset):
            self._hash.digest.update(chunk)
            offset += len(chunk)

    @property
    def offset(self) -> int:
        """Bytes kept from an earlier attempt."""
        return self._offset

    @property
    def validator(self) -> str | None:
        """ETag/Last-Modified recorded with the partial bytes."""
        return self._validator

    def begin(self, total: int | None, validator: str | None = None) -> None:
        """Record the response's validator so a later run can resume with If-Range."""
        if not self._announced:
            self._announced = True
            self.progress.add_total(self.target.file_name, total)
            if self._offset:
                self.progress.advance(self._offset)
        if validator and validator != self._validator:
            self._validator = validator
            write_bytes_atomic(self.meta, json.dumps({"validator": validator, "url": self.target.url}).encode())

    def write(self, chunk: bytes) -> None:
        """Append bytes; they are hashed a megabyte at a time on another core."""
        self._append(chunk)
        self._unhashed.append(chunk)
        self._unhashed_size += len(chunk)
        if self._unhashed_size >= HASH_BATCH:
            self._hash_unhashed()

    def receive(self, readinto: Callable[[memoryview], int]) -> None:
        """Append everything ``readinto`` delivers (it fills a buffer and returns the count, 0 at
        the end). Bytes go from the socket into a few reused buffers, to the file and to the
        hashing thread without a copy in Python and mostly without the GIL: the fast path for
        large bodies."""
        self._hash_unhashed()
        free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        for _ in range(RECEIVE_BUFFERS):
            free.put(bytearray(RECEIVE_BUFFER_SIZE))
        while True:
            buf = free.get()
            n = readinto(memoryview(buf))
            if not n:
                break
            view = memoryview(buf)[:n]
            self._append(view)
            self._hash.add([view], functools.partial(free.put, buf))
        self._hash.wait()

    def _append(self, data: bytes | memoryview) -> None:
        try:
            _write_all(self._handle, data)
        except OSError as exc:
            raise SynapseError(f"cannot write {self.target.file_name}: {exc.strerror}") from exc
        self._offset += len(data)
        if self._offset - self._flushed >= WRITEBACK_EVERY:
            self._start_writeback()
        self.progress.advance(len(data))

    def _start_writeback(self) -> None:
        """Ask the kernel to write what came so far, so the final fsync has little left to do."""
        with contextlib.suppress(OSError, AttributeError):
            os.posix_fadvise(self._handle.fileno(), self._flushed, self._offset - self._flushed, os.POSIX_FADV_DONTNEED)
        self._flushed = self._offset

    def _hash_unhashed(self) -> None:
        if self._unhashed:
            batch, self._unhashed, self._unhashed_size = self._unhashed, [], 0
            self._hash.add(batch)

    def restart(self) -> None:
        """Throw the partial bytes away: the server sends the file from the start."""
        self._hash_unhashed()
        self._hash.wait()
        self._handle.seek(0)
        self._handle.truncate()
        self._hash.digest = hashlib.sha256()
        self._offset = self._flushed = 0

    def finish(self) -> Ingested:
        """Check size and hash, then publish the blob; a mismatch deletes the partial."""
        self._hash_unhashed()  # the last batch hashes while the file is synced
        os.fsync(self._handle.fileno())
        ours = os.fstat(self._handle.fileno())
        self._handle.close()
        self._hash.wait()
        sha256, size = self._hash.digest.hexdigest(), self._offset
        expected = self.target
        problem = None
        if expected.sha256 and sha256 != expected.sha256:
            problem = f"sha256 {sha256[:12]}… does not match the source's {expected.sha256[:12]}…"
        elif not expected.sha256 and expected.size is not None and size != expected.size:
            problem = f"got {size} bytes, expected {expected.size}"
        if problem:
            self.discard()
            raise IntegrityError(f"{expected.file_name}: {problem}; nothing was stored, try 'install' again")
        try:
            replaced = not os.path.samestat(ours, os.lstat(self.part))
        except FileNotFoundError:
            replaced = True
        if replaced:
            raise SynapseError(f"{self.part} was replaced during the download; nothing was stored, try again")
        created = self.blobs._publish(self.part, sha256)
        self.meta.unlink(missing_ok=True)
        return Ingested(sha256, size, created)

    def close(self) -> None:
        """Close the file, keeping the partial bytes for a later resume."""
        if not self._handle.closed:
            self._handle.close()
        self._hash.stop()

    def discard(self) -> None:
        """Remove the partial bytes and metadata."""
        self.close()
        self.part.unlink(missing_ok=True)
        self.meta.unlink(missing_ok=True)


class Fetcher:
    """Brings resources into the library, several at a time."""

    def __init__(self, blobs: BlobStore, progress: Progress | None = None, parallel: int = 3) -> None:
        self.blobs = blobs
        self.progress = progress or NoProgress()
        self.parallel = parallel

    def fetch(self, source: Source, pack: Pack, target: FetchTarget, mode: IngestMode = "copy") -> Ingested:
        """One resource's bytes, from the source's local path or its stream."""
        if target.sha256 and self.blobs.has(target.sha256):
            return Ingested(target.sha256, self.blobs.path(target.sha256).stat().st_size, created=False)
        local = source.local_path(pack, target)
        if local is not None:
            return self._ingest_local(local, target, mode)
        sink = PartialDownload(self.blobs, target, self.progress)
        try:
            source.fetch(pack, target, sink)
            return sink.finish()
        except SynapseError:
            if sink.offset == 0:
                sink.discard()  # nothing worth resuming: leave no empty partial behind
            raise
        except Exception as exc:
            raise PluginError(f"source '{source.name}' failed to download {target.file_name}: {exc}") from exc
        finally:
            sink.close()
            self.progress.finish(target.file_name)

    def _ingest_local(self, path: Path, target: FetchTarget, mode: IngestMode) -> Ingested:
        try:
            self.progress.add_total(target.file_name, path.stat().st_size)
            return self.blobs.ingest_file(path, mode, self.progress.advance, expected_sha256=target.sha256)
        except IntegrityError:
            raise IntegrityError(f"{path} no longer has the bytes recorded in the lock; import it again") from None
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from exc
        finally:
            self.progress.finish(target.file_name)

    def fetch_many(
        self, jobs: list[tuple[Source, Pack, FetchTarget]], mode: IngestMode = "copy"
    ) -> list[Ingested | SynapseError]:
        """Fetch several resources in parallel; each result is a blob or the error it met."""

        def one(job: tuple[Source, Pack, FetchTarget]) -> Ingested | SynapseError:
            try:
                return self.fetch(*job, mode=mode)
            except SynapseError as exc:
                return exc

        # the same bytes are fetched once (two downloads would share one partial file)
        keys = [job[2].sha256 or f"#{index}" for index, job in enumerate(jobs)]
        unique = {key: job for key, job in zip(keys, jobs, strict=True)}
        if len(unique) <= 1:
            done = {key: one(job) for key, job in unique.items()}
        else:
            with ThreadPoolExecutor(max_workers=self.parallel) as pool:
                done = dict(zip(unique, pool.map(one, unique.values()), strict=True))
        return [done[key] for key in keys]
