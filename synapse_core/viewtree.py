"""One view tree on disk: placing, replacing and removing its entries, and telling ours from foreign.

A tree is a folder laid out like a UI's root. Synapse places three things in it: *entries*
(a model file: a link to its blob, made the way the link mode says), *sidecars* (small real
files beside an entry: previews, metadata; hard links to the UI's sidecar store) and *kept
links* (links to files the UI wrote, kept outside the trees). Everything else in a tree is
*foreign*: the UI (or the user) put it there, and Synapse never deletes or overwrites it.

Every change of an entry is atomic: a new link is made under a temp name in the same folder
and renamed over the old one; a removal unlinks only what is still ours.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Literal

import attrs

from synapse_core.viewmarks import FINGERPRINT, MANIFEST

LinkMode = Literal["symlink", "hardlink", "reflink", "copy"]
LINK_MODES: tuple[LinkMode, ...] = ("symlink", "hardlink", "reflink", "copy")
FICLONE = 0x40049409
CONTROL_FILES = frozenset({MANIFEST, FINGERPRINT})
Stat = tuple[int, int, int]
"""(inode, size, mtime_ns) of a file Synapse placed by copy or reflink: how it recognises it later."""


def file_stat(path: str | Path) -> Stat | None:
    """The identity of a regular file (not followed through a link), or None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _temp_name(name: str) -> str:
    return f".{name[:40]}.{os.getpid()}.{uuid.uuid4().hex[:8]}.syn"


@attrs.define
class Materializer:
    """How a blob becomes a file of a tree in one link mode."""

    mode: LinkMode
    blobs_dir: Path
    """data/blobs/sha256"""

    def blob(self, sha256: str) -> str:
        """The blob's path."""
        return f"{self.blobs_dir}/{sha256[:2]}/{sha256}"

    def symlink_target(self, tree_depth: int, rel_path: str, sha256: str) -> str:
        """A relative symlink target from ``rel_path`` (in a tree ``tree_depth`` folders below
        data/) to the blob: the store can be moved or mounted elsewhere."""
        up = "../" * (tree_depth + rel_path.count("/"))
        return f"{up}blobs/sha256/{sha256[:2]}/{sha256}"

    def make(self, dir_fd: int, name: str, sha256: str, tree_depth: int, rel_path: str) -> Stat | None:
        """Create ``name`` in the folder ``dir_fd`` (which must not hold it yet); returns the
        stat Synapse records for copies and reflinks."""
        if self.mode == "symlink":
            os.symlink(self.symlink_target(tree_depth, rel_path, sha256), name, dir_fd=dir_fd)
            return None
        if self.mode == "hardlink":
            os.link(self.blob(sha256), name, dst_dir_fd=dir_fd)
            return None
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        dst = os.open(name, flags, 0o444, dir_fd=dir_fd)
        try:
            with open(self.blob(sha256), "rb") as src:
                if self.mode == "reflink":
                    fcntl.ioctl(dst, FICLONE, src.fileno())
                else:
                    _copy(src.fileno(), dst)
            st = os.fstat(dst)
        except BaseException:
            os.close(dst)
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=dir_fd)
            raise
        os.close(dst)
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def is_ours(self, path: str, sha256: str, recorded: Stat | None) -> bool:
        """Whether ``path`` still holds what Synapse placed there for ``sha256``."""
        try:
            st = os.lstat(path)
        except OSError:
            return False
        if os.path.islink(path):
            target = os.readlink(path)
            return target.endswith(f"blobs/sha256/{sha256[:2]}/{sha256}") and target.startswith("../")
        if recorded is not None and (st.st_ino, st.st_size, st.st_mtime_ns) == recorded:
            return True
        try:
            return os.stat(self.blob(sha256)).st_ino == st.st_ino  # a hard link to the blob
        except OSError:
            return False


def _copy(src: int, dst: int) -> None:
    size = os.fstat(src).st_size
    copied = 0
    with contextlib.suppress(OSError):
        while copied < size and (n := os.copy_file_range(src, dst, size - copied)):
            copied += n
    os.lseek(src, copied, os.SEEK_SET)
    while chunk := os.read(src, 1 << 20):
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view) :]


class FolderFds:
    """Open folder descriptors of a tree, made on demand (the kernel then resolves only names)."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self._fds: dict[str, int] = {}

    def get(self, folder: str) -> int:
        """The fd of ``folder`` (relative, '' for the root), creating it if needed."""
        fd = self._fds.get(folder)
        if fd is None:
            path = f"{self.root}/{folder}" if folder else self.root
            os.makedirs(path, exist_ok=True)
            fd = self._fds[folder] = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        return fd

    def close(self) -> None:
        """Close every descriptor."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def __enter__(self) -> FolderFds:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@attrs.define
class Placement:
    """What Synapse wants at one path of a tree."""

    kind: Literal["entry", "sidecar", "kept"]
    sha256: str = ""
    """entry: the blob; sidecar: the content digest of the sidecar-store file."""
    target: str = ""
    """kept: the kept unit's path (relative to the kept area)."""
    stat: Stat | None = attrs.field(default=None, eq=False)
    """For a copy or reflink Synapse made: its identity then (how it is recognised later)."""


class Tree:
    """One view tree: ``root`` is its folder, ``depth`` the number of folders between data/ and it."""

    def __init__(self, root: Path, depth: int, materializer: Materializer, sidecar_dir: Path, kept_dir: Path) -> None:
        self.root = root
        self.depth = depth
        self.materializer = materializer
        self.sidecar_dir = sidecar_dir
        self.kept_dir = kept_dir

    def path(self, rel: str) -> str:
        """The absolute path of ``rel``."""
        return f"{self.root}/{rel}"

    # -- recognising what is ours ----------------------------------------------------------

    def holds(self, rel: str, placement: Placement) -> bool:
        """Whether ``rel`` still holds this placement exactly."""
        path = self.path(rel)
        if placement.kind == "entry":
            return self.materializer.is_ours(path, placement.sha256, placement.stat)
        if placement.kind == "sidecar":
            try:
                return os.lstat(path).st_ino == os.stat(self.sidecar_dir / placement.sha256).st_ino
            except OSError:
                return placement.stat is not None and file_stat(path) == placement.stat
        return os.path.islink(path) and os.readlink(path) == self.kept_target(rel, placement.target)

    def kept_target(self, rel: str, unit: str) -> str:
        """The relative symlink from ``rel`` in this tree to a kept unit (the kept area sits
        beside the trees, so relative links inside a unit resolve as they did in the tree)."""
        up = "../" * (rel.count("/") + 1)
        return f"{up}{self.kept_dir.name}/{unit}"

    # -- making changes --------------------------------------------------------------------

    def _make(self, fds: FolderFds, rel: str, placement: Placement, name: str) -> Stat | None:
        folder = rel.rpartition("/")[0]
        fd = fds.get(folder)
        if placement.kind == "entry":
            return self.materializer.make(fd, name, placement.sha256, self.depth, rel)
        if placement.kind == "sidecar":
            source = self.sidecar_dir / placement.sha256
            try:
                os.link(source, name, dst_dir_fd=fd)
                return None
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                    raise
            return _copy_small(source, fd, name)
        os.symlink(self.kept_target(rel, placement.target), name, dir_fd=fd)
        return None

    def populate(self, placements: Mapping[str, Placement], folders: Iterable[str]) -> None:
        """Fill a new, empty tree (a staging folder): no temp names needed. Copies record
        their stat in their placement."""
        with FolderFds(self.root) as fds:
            fds.get("")
            for folder in folders:
                fds.get(folder)
            for rel, placement in placements.items():
                placement.stat = self._make(fds, rel, placement, rel.rpartition("/")[2])

    def apply(
        self,
        old: Mapping[str, Placement],
        new: Mapping[str, Placement],
        folders: Iterable[str] = (),
        *,
        remake: bool = False,
    ) -> dict[str, str]:
        """Change the tree from ``old`` to ``new`` placements, entry by entry, each atomically.

        A path that holds something Synapse did not place (or no longer holds what it placed)
        is never touched: it is returned (path -> why), for the caller to keep. Placements of
        ``new`` get the stat of the copies made for them. ``remake``: replace even unchanged
        entries (the link mode changed).
        """
        blocked: dict[str, str] = {}
        with FolderFds(self.root) as fds:
            for folder in folders:
                fds.get(folder)
            for rel, gone in old.items():
                if rel not in new and self.holds(rel, gone):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.path(rel))
                    self._prune_empty(rel)
            for rel, placement in new.items():
                before = old.get(rel)
                if before is not None and before == placement and not remake:
                    # unchanged: trusted (a UI replacing it changed its folder's mtime, and the
                    # sweep before this command kept what it wrote)
                    placement.stat = before.stat
                    continue
                if not remake and self.holds(rel, placement):  # already there: a file taken in, the blob's inode
                    continue
                if os.path.lexists(self.path(rel)) and not (before is not None and self.holds(rel, before)):
                    blocked[rel] = "a file Synapse did not place"
                    continue
                name = rel.rpartition("/")[2]
                temp = _temp_name(name)
                fd = fds.get(rel.rpartition("/")[0])
                placement.stat = self._make(fds, rel, placement, temp)
                os.rename(temp, name, src_dir_fd=fd, dst_dir_fd=fd)
        return blocked

    def _prune_empty(self, rel: str) -> None:
        """Remove folders an entry's removal left empty (never a folder with anything in it)."""
        folder = rel.rpartition("/")[0]
        while folder:
            try:
                os.rmdir(self.path(folder))
            except OSError:
                return
            folder = folder.rpartition("/")[0]

    # -- what is foreign -------------------------------------------------------------------

    def dir_times(self, folders: Iterable[str]) -> dict[str, int]:
        """The mtime of the tree's root and of each folder (a UI adding a file changes it)."""
        times = {}
        for folder in ("", *folders):
            with contextlib.suppress(OSError):
                times[folder] = os.stat(self.path(folder) if folder else self.root).st_mtime_ns
        return times

    def foreign(
        self, placements: Mapping[str, Placement], folders: Iterable[str], changed_only: Mapping[str, int] | None = None
    ) -> list[str]:
        """Paths in the tree that Synapse did not place (or that no longer hold what it placed),
        outermost first. ``changed_only`` (recorded folder times): look only in folders whose
        mtime changed since."""
        owned_dirs: set[str] = set()
        for rel in [*placements, *(f"{folder}/." for folder in folders)]:
            parent = rel.rpartition("/")[0]
            while parent and parent not in owned_dirs:
                owned_dirs.add(parent)
                parent = parent.rpartition("/")[0]
        found = []
        for folder in sorted({"", *owned_dirs}):
            path = self.path(folder) if folder else str(self.root)
            if changed_only is not None:
                try:
                    if os.stat(path).st_mtime_ns == changed_only.get(folder):
                        continue
                except OSError:
                    continue
            try:
                children = list(os.scandir(path))
            except OSError:
                continue
            for child in children:
                rel = f"{folder}/{child.name}" if folder else child.name
                if not folder and child.name in CONTROL_FILES:
                    continue
                if rel in owned_dirs and child.is_dir(follow_symlinks=False):
                    continue
                placement = placements.get(rel)
                if placement is not None and self.holds(rel, placement):
                    continue
                if placement is None and _only_ours(child.path):
                    continue  # an empty folder, or links into the library a lost manifest forgot
                if child.name.endswith(".syn") and child.name.startswith("."):
                    with contextlib.suppress(OSError):  # our own temp, left by a killed command
                        os.unlink(child.path)
                    continue
                found.append(rel)
        return found


def _is_blob_link(path: str) -> bool:
    try:
        target = os.readlink(path)
    except OSError:
        return False
    name = target.rpartition("/")[2]
    return target.startswith("../") and "/blobs/sha256/" in f"/{target}" and len(name) == 64


def _only_ours(path: str) -> bool:
    """Whether ``path`` is a link into the library, or a folder holding nothing else."""
    if os.path.islink(path):
        return _is_blob_link(path)
    if not os.path.isdir(path):
        return False
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            if not _is_blob_link(os.path.join(dirpath, name)):
                return False
    return True


def _copy_small(source: Path, dir_fd: int, name: str) -> Stat:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    dst = os.open(name, flags, 0o644, dir_fd=dir_fd)
    try:
        os.write(dst, source.read_bytes())
        st = os.fstat(dst)
    finally:
        os.close(dst)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def walk_files(root: Path) -> Iterator[str]:
    """Every non-directory below ``root`` (links not followed), as relative posix paths."""
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            yield prefix + name
