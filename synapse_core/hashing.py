"""SHA-256 of local files, and hashing started ahead of need.

This module imports only the standard library: the CLI starts :class:`HashAhead` before
the rest of Synapse has loaded, so a large file's hashing (the bulk of an import's time)
overlaps the start-up instead of following it.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

HASH_CHUNK = 1024 * 1024
AHEAD_CHUNK = 8 * 1024 * 1024
AHEAD_SWITCH_INTERVAL = 0.0005
Progress = Callable[[int], None]


class Stopped(Exception):
    """Hashing stopped because its ``stop`` event was set (the command is being interrupted)."""


def hash_file(
    path: Path | str, progress: Progress | None = None, stop: threading.Event | None = None
) -> tuple[str, int]:
    """sha256 and size of a file, read a megabyte at a time (a buffer that stays in the CPU
    cache: as fast as ``openssl dgst`` here, with a constant, small memory footprint).
    ``stop``, once set, ends it at the next read (for hashing on a thread the user interrupts)."""
    digest = hashlib.sha256()
    size = 0
    buf = bytearray(HASH_CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as handle:
        while n := handle.readinto(buf):
            if stop is not None and stop.is_set():
                raise Stopped(str(path))
            digest.update(view[:n])
            size += n
            if progress:
                progress(n)
    return digest.hexdigest(), size


def file_identity(stat: os.stat_result) -> tuple[int, int, int, int]:
    """What must stay equal for bytes read earlier to still be the file's bytes."""
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


class _Job:
    """One file hashed on a background thread; progress is replayed to a late watcher."""

    def __init__(self, path: str, identity: tuple[int, int, int, int]) -> None:
        self.path = path
        self.identity = identity
        self.done = threading.Event()
        self.result: tuple[str, int] | None = None
        self.awaited = False
        """Set once someone waits for the result: the main thread is then idle."""
        self._hashed = 0
        self._watcher: Progress | None = None
        self._lock = threading.Lock()

    def advance(self, n: int) -> None:
        with self._lock:
            self._hashed += n
            watcher = self._watcher
        if watcher:
            watcher(n)

    def wait(self, progress: Progress | None, stop: threading.Event | None = None) -> tuple[str, int] | None:
        """The hash once finished (None if the file could not be read); ``progress`` first
        hears of the bytes hashed so far, then of the rest as they come (``stop``: see hash_file)."""
        self.awaited = True
        if progress:
            with self._lock:
                self._watcher, so_far = progress, self._hashed
            if so_far:
                progress(so_far)
        while not self.done.wait(None if stop is None else 0.05):
            if stop is not None and stop.is_set():
                raise Stopped(self.path)
        return self.result

    def hash(self) -> tuple[str, int]:
        """Read in big pieces while the main thread is busy (it lets this thread have the GIL
        back only once per read), in cache-sized ones once it waits (about 5 % faster)."""
        digest = hashlib.sha256()
        size = 0
        buf = bytearray(AHEAD_CHUNK)
        big, small = memoryview(buf), memoryview(buf)[:HASH_CHUNK]
        with open(self.path, "rb", buffering=0) as handle:
            while True:
                view = small if self.awaited else big
                n = handle.readinto(view)
                if not n:
                    return digest.hexdigest(), size
                digest.update(view[:n])
                size += n
                self.advance(n)


class HashAhead:
    """Hashes files on a background thread from the moment it is created.

    :meth:`take` hands a file's hash to whoever ingests it, provided the file is still the
    one that was hashed (same device, inode, size and modification time); callers check it
    again after they have used the file, as they do with hashes they compute themselves.
    Meant for a program's start-up: until its hashing is done it lowers the interpreter's
    switch interval (process-wide), then restores it.
    """

    def __init__(self, paths: Sequence[Path | str]) -> None:
        self._jobs: dict[str, _Job] = {}
        for path in paths:
            try:
                job = _Job(os.path.abspath(path), file_identity(os.stat(path)))
            except OSError:
                continue  # whoever ingests the file will report the problem
            self._jobs[job.path] = job
        queue = list(self._jobs.values())  # take() removes jobs from the dict meanwhile
        threading.Thread(target=self._run, args=(queue,), name="synapse-hash-ahead", daemon=True).start()

    @staticmethod
    def _run(queue: list[_Job]) -> None:
        # While the main thread runs Python code (imports at start-up), this thread waits for
        # the GIL after each read for up to the switch interval (5 ms by default, longer than
        # hashing a read takes): a short interval until the hashing is done, and big reads.
        interval = sys.getswitchinterval()
        sys.setswitchinterval(AHEAD_SWITCH_INTERVAL)
        try:
            for job in queue:
                try:
                    job.result = job.hash()
                except OSError:
                    job.result = None
                finally:
                    job.done.set()
        finally:
            sys.setswitchinterval(interval)

    def take(
        self, path: Path, stat: os.stat_result, progress: Progress | None = None, stop: threading.Event | None = None
    ) -> tuple[str, int] | None:
        """The hash and size of ``path`` (waiting for it), or None if it was not hashed ahead,
        could not be read, or has changed since its hashing began (``stat`` is its state now)."""
        job = self._jobs.pop(os.path.abspath(path), None)
        if job is None or job.identity != file_identity(stat):
            return None
        return job.wait(progress, stop)
