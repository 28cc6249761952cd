"""Getting a resource's bytes into the library: from a local path or a source's stream.

A stream goes into a resumable partial file under data/tmp/ (kept across a kill -9),
hashed as it is written; only a complete file with the promised size and sha256 is
published as a blob.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from synapse_core.blobs import CHUNK, BlobStore, Ingested, IngestMode
from synapse_core.errors import IntegrityError, PluginError, SynapseError
from synapse_core.layout import write_bytes_atomic
from synapse_core.models import Pack
from synapse_core.progress import NoProgress, Progress
from synapse_core.sources import FetchTarget, Source

WRITEBACK_EVERY = 64 * 1024 * 1024


def _update_all(digest: Any, chunks: list[bytes]) -> None:
    """Hash chunks in order (no join: that would copy every byte once more)."""
    for chunk in chunks:
        digest.update(chunk)


class PartialDownload:
    """A :class:`~synapse_core.sources.DownloadSink` backed by ``data/tmp/<key>.part``."""

    def __init__(self, blobs: BlobStore, target: FetchTarget, progress: Progress) -> None:
        self.blobs = blobs
        self.target = target
        self.progress = progress
        key = target.sha256 or hashlib.sha256((target.url or target.file_name).encode()).hexdigest()[:32]
        tmp = blobs.layout.tmp_dir
        tmp.mkdir(parents=True, exist_ok=True)
        self.part = tmp / f"{key}.part"
        self.meta = tmp / f"{key}.part.json"
        self.digest = hashlib.sha256()
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="synapse-hash")
        self._hashing: Future[None] | None = None
        self._unhashed: list[bytes] = []
        self._unhashed_size = 0
        self._announced = False
        self._validator = self._read_validator()
        self._handle = open(self.part, "ab")  # noqa: SIM115 - closed in finish()/abort()
        self._offset = self._flushed = self._handle.tell()
        if self._offset:
            self._hash_existing()

    def _read_validator(self) -> str | None:
        try:
            value = json.loads(self.meta.read_text()).get("validator")
            return value if isinstance(value, str) else None
        except (OSError, ValueError, AttributeError):
            return None

    def _hash_existing(self) -> None:
        with open(self.part, "rb") as handle:
            while chunk := handle.read(CHUNK):
                self.digest.update(chunk)

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
        try:
            self._handle.write(chunk)
        except OSError as exc:
            raise SynapseError(f"cannot write {self.target.file_name}: {exc.strerror}") from exc
        self._unhashed.append(chunk)
        self._unhashed_size += len(chunk)
        if self._unhashed_size >= CHUNK:
            self._hash_pending()
        self._offset += len(chunk)
        if self._offset - self._flushed >= WRITEBACK_EVERY:
            self._start_writeback()
        self.progress.advance(len(chunk))

    def _start_writeback(self) -> None:
        """Ask the kernel to write what came so far, so the final fsync has little left to do."""
        self._handle.flush()
        with contextlib.suppress(OSError, AttributeError):
            os.posix_fadvise(self._handle.fileno(), self._flushed, self._offset - self._flushed, os.POSIX_FADV_DONTNEED)
        self._flushed = self._offset

    def _hash_pending(self, wait: bool = False) -> None:
        """Hand the buffered bytes to the hashing thread (one batch in flight at a time)."""
        if self._hashing is not None:
            self._hashing.result()
            self._hashing = None
        if self._unhashed:
            batch, self._unhashed, self._unhashed_size = self._unhashed, [], 0
            self._hashing = self._hasher.submit(_update_all, self.digest, batch)
        if wait and self._hashing is not None:
            self._hashing.result()
            self._hashing = None

    def restart(self) -> None:
        """Throw the partial bytes away: the server sends the file from the start."""
        self._hash_pending(wait=True)
        self._handle.seek(0)
        self._handle.truncate()
        self.digest = hashlib.sha256()
        self._offset = self._flushed = 0

    def finish(self) -> Ingested:
        """Check size and hash, then publish the blob; a mismatch deletes the partial."""
        self._hash_pending()  # the last batch hashes while the file is synced
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        self._hash_pending(wait=True)
        sha256, size = self.digest.hexdigest(), self._offset
        expected = self.target
        problem = None
        if expected.sha256 and sha256 != expected.sha256:
            problem = f"sha256 {sha256[:12]}… does not match the source's {expected.sha256[:12]}…"
        elif not expected.sha256 and expected.size is not None and size != expected.size:
            problem = f"got {size} bytes, expected {expected.size}"
        if problem:
            self.discard()
            raise IntegrityError(f"{expected.file_name}: {problem}; nothing was stored, try 'install' again")
        created = self.blobs._publish(self.part, sha256)
        self.meta.unlink(missing_ok=True)
        return Ingested(sha256, size, created)

    def close(self) -> None:
        """Close the file, keeping the partial bytes for a later resume."""
        if not self._handle.closed:
            self._handle.close()
        self._hasher.shutdown(wait=True)

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
        self.progress.add_total(target.file_name, path.stat().st_size)
        try:
            return self.blobs.ingest_file(path, mode, self.progress.advance, expected_sha256=target.sha256)
        except IntegrityError:
            raise IntegrityError(f"{path} no longer has the bytes recorded in the lock; import it again") from None
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
