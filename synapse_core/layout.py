"""Every path of the store in one place, atomic JSON files, and the store lock.

Correctness never depends on the lock (it can silently do nothing on NFS/SMB):
temp names are unique per process and everything is published by a rename or link.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from synapse_core.errors import Interrupted, NotInitialised, StateFileInvalid, SynapseError, disk_error

if TYPE_CHECKING:
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")
DEFAULT_ROOT = Path("~/.synapse")


def resolve_root(root: Path | str | None = None, env: dict[str, str] | None = None) -> Path:
    """The store root: the argument, else SYNAPSE_ROOT, else ~/.synapse."""
    env = dict(os.environ) if env is None else env
    chosen = root if root is not None else env.get("SYNAPSE_ROOT") or DEFAULT_ROOT
    return Path(chosen).expanduser().absolute()


class StoreLayout:
    """Names every file and folder of a store root (see docs/architecture.md)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / "state"
        self.data = root / "data"
        self.config_file = self.state / "config.json"
        self.ui_sets_file = self.state / "ui_sets.json"
        self.packs_dir = self.state / "packs"
        self.profiles_dir = self.state / "profiles"
        self.blobs_dir = self.data / "blobs" / "sha256"
        self.views_dir = self.data / "views"
        self.tmp_dir = self.data / "tmp"
        self.quarantine_dir = self.data / "quarantine"
        self.runtime_file = self.data / "runtime.json"
        self.update_checks_file = self.data / "update-checks.json"
        self.hash_cache_file = self.data / "hash-cache.json"
        self.lock_file = self.data / ".lock"
        self.mutation_marker = self.data / ".mutation"
        """Present while a command changes state: finding it later means that command was killed."""
        self.durable = True
        """Whether each file is fsynced as it is written; a batch turns it off and calls
        :meth:`sync` once before its state commit (the same guarantee, one flush)."""

    def sync(self) -> None:
        """Flush the file systems of data/ and state/ (syncfs where the kernel has it)."""
        done: set[int] = set()
        for folder in (self.data, self.state):
            try:
                device = os.stat(folder).st_dev
            except OSError:
                continue
            if device not in done:
                done.add(device)
                _syncfs(folder)

    def pack_dir(self, name: str) -> Path:
        """state/packs/<name>/"""
        return self.packs_dir / name

    def pack_file(self, name: str) -> Path:
        """state/packs/<name>/pack.json"""
        return self.pack_dir(name) / "pack.json"

    def lock_file_of(self, name: str) -> Path:
        """state/packs/<name>/lock.json"""
        return self.pack_dir(name) / "lock.json"

    def previews_dir(self, name: str) -> Path:
        """state/packs/<name>/resources/previews/"""
        return self.pack_dir(name) / "resources" / "previews"

    def previews_index(self, name: str) -> Path:
        """state/packs/<name>/resources/previews.json"""
        return self.pack_dir(name) / "resources" / "previews.json"

    def profile_file(self, name: str) -> Path:
        """state/profiles/<name>/profile.json"""
        return self.profiles_dir / name / "profile.json"

    def blob_path(self, sha256: str) -> Path:
        """data/blobs/sha256/<first 2 hex>/<sha256>"""
        return self.blobs_dir / sha256[:2] / sha256

    def profile_view(self, ui: str, profile: str) -> Path:
        """data/views/<ui>/profiles/<profile>/"""
        return self.views_dir / ui / "profiles" / profile

    def active_link(self, ui: str) -> Path:
        """data/views/<ui>/active (a symlink to profiles/<top of stack>)"""
        return self.views_dir / ui / "active"

    def holds(self, path: Path) -> bool:
        """Whether ``path``, or what its links lead to, is inside the store root."""
        root = os.path.realpath(self.root)
        return any(
            candidate == root or candidate.startswith(root + os.sep)
            for candidate in (os.path.realpath(path), os.path.abspath(path))
        )

    def is_initialised(self) -> bool:
        """Whether `store init` has run here."""
        return self.config_file.is_file()

    def require_initialised(self) -> None:
        """Raise a clear error if there is no store at the root."""
        if not self.is_initialised():
            raise NotInitialised(f"no store at {self.root}; run 'synapse store init' (or pass --root)")

    def leftovers(self) -> list[Path]:
        """Temps, staging trees and probes that a killed process of ours left behind: each name
        carries its writer's pid, and only those of processes that are gone are listed."""
        patterns = [
            (self.data, ".*.tmp"),
            (self.data, "adopt/.*.tmp"),
            (self.state, ".*.tmp"),
            (self.state, "*/*/.*.tmp"),
            (self.views_dir, ".symlink-probe-*"),
            (self.views_dir, "*/.symlink-probe-*"),
            (self.views_dir, "*/.active-*"),
            (self.views_dir, "*/profiles/.staging-*"),
            (self.views_dir, "*/profiles/.old-*"),
            (self.views_dir, "*/profiles/*/.*.tmp"),
        ]
        found = []
        for folder, pattern in patterns:
            for path in sorted(folder.glob(pattern)) if folder.is_dir() else ():
                if is_inside(self.root, path) and not writer_alive(path.name):
                    found.append(path)
        return found

    def linked_folders(self, folders: Sequence[Path] = ()) -> list[Path]:
        """The store folders Synapse writes (and ``folders`` besides) that exist but are reached
        through a symbolic link: writing or deleting in them would act where the link points."""
        own = [self.packs_dir, self.profiles_dir, self.blobs_dir, self.tmp_dir, self.views_dir]
        return [f for f in [*own, *folders] if os.path.lexists(f) and not is_inside(self.root, f / "x")]

    def temp_path(self, directory: Path, prefix: str) -> Path:
        """A temp name unique to this process and call, inside ``directory``."""
        return directory / f".{prefix}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"


def _syncfs(folder: Path) -> None:
    import ctypes
    import ctypes.util

    fd = os.open(folder, os.O_RDONLY)
    try:
        libc_name = ctypes.util.find_library("c")
        syncfs = getattr(ctypes.CDLL(libc_name, use_errno=True), "syncfs", None) if libc_name else None
        if syncfs is None or syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


_WRITER_PID = re.compile(r"[.-](\d+)[.-][0-9a-f]{8,12}(?:\.tmp)?$")


def writer_alive(name: str) -> bool:
    """Whether the process whose pid a temp's name carries still runs (a name without one: no)."""
    match = _WRITER_PID.search(name)
    if match is None or int(match[1]) == os.getpid():
        return False
    try:
        os.kill(int(match[1]), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, as another user
    return True


def remove_dead_temps(folder: Path, names: Collection[str]) -> None:
    """Remove the temps a killed writer of ours left beside the files ``names`` of ``folder``
    (``.<name>.<pid>.<hex>.tmp``, as :func:`write_bytes_atomic` names them); nothing else."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            match = _TEMP_OF.match(entry.name)
            ours = match and match[1] in names and entry.is_file(follow_symlinks=False)
            if ours and not writer_alive(entry.name):
                os.unlink(entry.path)


_TEMP_OF = re.compile(r"^\.(.+)\.\d+\.[0-9a-f]{8,12}\.tmp$")


def is_inside(root: Path, path: Path) -> bool:
    """Whether ``path``'s folder is under ``root`` through real folders only: no symlink on the
    way, so deleting or writing ``path`` cannot reach outside the store."""
    try:
        relative = path.parent.relative_to(root)
    except ValueError:
        return False
    return os.path.realpath(path.parent) == os.path.normpath(os.path.join(os.path.realpath(root), relative))


def remove_leftover(root: Path, path: Path) -> None:
    """Delete a file, link or folder tree inside the store, never following a symlink."""
    if not is_inside(root, path):
        return
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes, *, sync: bool = True) -> None:
    """Replace ``path`` with ``data``: temp in the same folder, fsync, rename, fsync the folder
    (``sync=False`` for files rebuildable from state: atomic, not durable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "xb") as handle:  # a fresh file: never through a link planted at the name
            handle.write(data)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SynapseError(f"cannot write {path}: {exc.strerror or exc}") from exc
    if sync:
        fsync_dir(path.parent)


def write_json(path: Path, value: BaseModel | dict[str, Any], *, sync: bool = True) -> None:
    """Write a model (or plain data) as indented JSON, atomically (``sync``: and durably)."""
    if isinstance(value, dict):
        text = json.dumps(value, indent=2, ensure_ascii=False)
    else:
        text = value.model_dump_json(indent=2)
    write_bytes_atomic(path, (text + "\n").encode(), sync=sync)


def read_model(path: Path, model: type[M]) -> M:
    """Read and validate a JSON file; a bad file is an error naming the file and field."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StateFileInvalid(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return model.model_validate_json(raw)
    except ValueError as exc:  # pydantic's ValidationError; importing it would load pydantic for every command
        errors = getattr(exc, "errors", None)
        if errors is None:
            raise
        err = errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        in_history = any((parent / ".git").is_dir() for parent in path.parents)
        remedy = (
            f"fix the file or restore it with 'git -C {path.parent} checkout {path.name}'"
            if in_history
            else "fix the file or run 'synapse doctor --fix'"
        )
        raise StateFileInvalid(f"{path} is invalid at '{field}': {err['msg']}; {remedy}") from exc


def write_all_or_nothing(files: Sequence[tuple[Path, bytes]]) -> None:
    """Replace several files atomically, one by one; if one cannot be written, those already
    written get their old bytes back (or are removed if they did not exist)."""
    written: list[tuple[Path, bytes | None]] = []
    try:
        for path, data in files:
            before = path.read_bytes() if path.is_file() else None
            write_bytes_atomic(path, data)
            written.append((path, before))
    except (OSError, SynapseError):
        for path, before in reversed(written):
            with contextlib.suppress(OSError, SynapseError):
                if before is None:
                    path.unlink()
                else:
                    write_bytes_atomic(path, before)
        raise


NO_LOCK_SWITCH = "SYNAPSE_TEST_NO_LOCK"
"""Set to 1, the store lock does nothing, as on a file system where locks silently fail (tests only)."""


WAIT_NOTICE_SECONDS = 1.0
"""How long a command waits for the store lock before it says so."""


class StoreLock:
    """An inter-process lock around mutations; re-entrant within a process.

    The holder writes into the lock file what it runs (``pid N: <activity>``) so that a command
    that has to wait can say for whom (through :attr:`on_wait`, which the CLI sets)."""

    activity: ClassVar[str] = "a synapse command"
    """What this process runs, as other commands waiting for the lock are told (set by the CLI)."""
    on_wait: ClassVar[Callable[[str], None] | None] = None
    """Called once, after :data:`WAIT_NOTICE_SECONDS` of waiting, with what the holder runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the lock for the duration of the block."""
        with self._local:
            if self._depth == 0 and os.environ.get(NO_LOCK_SWITCH) != "1":
                self.path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
                except OSError as exc:
                    what = {errno.EISDIR: "is a folder", errno.ELOOP: "is a symbolic link"}.get(exc.errno or 0)
                    if what is None:
                        raise disk_error(exc, "locking the store") from exc
                    raise SynapseError(
                        f"cannot lock the store: {self.path} {what}; remove it (Synapse recreates it)"
                    ) from exc
                try:
                    self._acquire(self._fd)
                except OSError as exc:  # e.g. a filesystem without locks: correctness does not rely on it
                    if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP):
                        os.close(self._fd)
                        self._fd = None
                        raise
                except BaseException:
                    os.close(self._fd)
                    self._fd = None
                    raise
                self._record(self._fd)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    os.close(self._fd)
                    self._fd = None

    def _acquire(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        notice = threading.Timer(WAIT_NOTICE_SECONDS, self._announce, (fd,)) if StoreLock.on_wait else None
        if notice is not None:
            notice.daemon = True
            notice.start()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted while waiting for another synapse command ({self.holder(fd)}); nothing was changed"
            ) from None
        finally:
            if notice is not None:
                notice.cancel()

    def _announce(self, fd: int) -> None:
        if StoreLock.on_wait is not None:  # read on the class: a function stored there is not a method
            StoreLock.on_wait(self.holder(fd))

    @staticmethod
    def holder(fd: int) -> str:
        """What the command holding the lock recorded: ``<activity>, pid N``."""
        try:
            line = os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
        except OSError:
            line = ""
        pid, _, doing = line.partition(": ")
        return f"{doing}, pid {pid}" if pid.isdigit() and doing else "its pid is not known"

    def _record(self, fd: int) -> None:
        """Say in the lock file what this process runs (best effort: a waiter only reads it)."""
        with contextlib.suppress(OSError):
            data = f"{os.getpid()}: {StoreLock.activity}\n".encode()
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
