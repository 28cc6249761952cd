"""Finding the model files of UI installs and model folders, for ``synapse adopt``.

A path is a UI install (an adapter recognises it and names its model folders, extra ones
included) or any folder of models: then a file's kind comes from the nearest folder whose name
is a UI's folder for a kind (``loras``, ``Stable-diffusion``), else from its header. Each file
keeps its path inside its kind's folder as the name views show it by. Symbolic links to folders
are followed (a loop, or a folder reached twice, is walked once); nothing is read but names,
``stat`` and headers.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

from synapse_core.errors import InvalidInput
from synapse_core.inspect_kind import MODEL_EXTENSIONS, guess_kind
from synapse_core.kinds import AssetKind
from synapse_core.layout import is_inside
from synapse_core.names import problem_with_name
from synapse_core.results import AdoptInstall, AdoptSkip
from synapse_core.ui import ModelFolder, UIAdapter


@attrs.frozen
class Found:
    """One model file found."""

    path: Path
    """Where the walk found it (through linked folders, as the UI sees it)."""
    name: Path
    """The name itself, its folders resolved: what take-over removes and undo puts back."""
    link: str | None
    """The text of the symbolic link ``name`` is, if it is one (its target is the file)."""
    info: os.stat_result
    """The file's own status (the target's for a link)."""
    kind: AssetKind
    why: str
    expose: str
    ui: str | None
    adapter: UIAdapter | None

    @property
    def identity(self) -> tuple[int, int]:
        """Device and inode of the bytes."""
        return self.info.st_dev, self.info.st_ino

    @property
    def bytes_path(self) -> Path:
        """Where the bytes are read from."""
        return Path(os.path.realpath(self.name)) if self.link is not None else self.name


@attrs.define
class Scan:
    """Everything found under the adopted paths."""

    found: list[Found] = attrs.Factory(list)
    skipped: list[AdoptSkip] = attrs.Factory(list)
    installs: list[AdoptInstall] = attrs.Factory(list)
    warnings: list[str] = attrs.Factory(list)
    adapters: dict[str, UIAdapter] = attrs.Factory(dict)
    """The adapter of each install, by path."""


def known_folder_names(adapters: Iterable[UIAdapter]) -> dict[str, tuple[AssetKind, str]]:
    """Folder name (lower-case) -> the kind some UI keeps there and a reason saying so."""
    names: dict[str, tuple[AssetKind, str]] = {}
    for adapter in adapters:
        for kind in adapter.layout:
            entry = adapter.folder(kind)
            if entry is not None and not entry.folders:
                name = entry.folder.rsplit("/", 1)[-1]
                names.setdefault(
                    name.lower(), (kind, f"in a folder named {name} ({adapter.display_name}'s {kind.value} folder)")
                )
    return names


class Scanner:
    """Walks the adopted paths."""

    def __init__(self, adapters: Mapping[str, UIAdapter], store_root: Path, attached: Mapping[str, list[str]]) -> None:
        self.adapters = adapters
        self.store_root = store_root
        self.attached = attached
        self.names = known_folder_names(adapters.values())
        self.scan = Scan()
        self._seen_files: set[str] = set()
        self._seen_dirs: dict[tuple[int, int], str] = {}
        self._top = Path("/")
        self._store_prefix = os.path.realpath(store_root) + os.sep

    def run(self, paths: Iterable[Path]) -> Scan:
        """Scan every path (a bad path is an error before anything is read further)."""
        roots = [self._check(Path(os.path.abspath(os.path.expanduser(p)))) for p in paths]
        for root in roots:
            adapter = next((a for a in self.adapters.values() if a.looks_like_install(root)), None)
            if adapter is None:
                self._walk(root, None, None, None)
                continue
            self._refuse_attached(adapter, root)
            self.scan.installs.append(AdoptInstall(ui=adapter.name, path=str(root)))
            self.scan.adapters[str(root)] = adapter
            for folder in adapter.model_folders(root):
                self._walk_folder(folder, adapter)
        return self.scan

    def _check(self, path: Path) -> Path:
        if not os.path.lexists(path):
            raise InvalidInput(f"{path}: no such folder; pass a UI install or a folder of models")
        if not path.is_dir():
            raise InvalidInput(f"{path} is not a folder; adopt takes UI installs and folders of models")
        if not os.access(path, os.R_OK | os.X_OK):
            raise InvalidInput(f"cannot read {path}: permission denied; nothing was changed")
        if is_inside(self.store_root, path) or is_inside(path, self.store_root / "x"):
            raise InvalidInput(f"{path} holds or is inside the store ({self.store_root}); adopt folders outside it")
        return path

    def _refuse_attached(self, adapter: UIAdapter, root: Path) -> None:
        if str(root) in self.attached.get(adapter.name, []):
            raise InvalidInput(
                f"{root} ({adapter.display_name}) is already attached to this store; its models were adopted "
                f"('synapse adopt --undo {root}' gives them back); adopt a new file's folder instead"
            )

    def _walk_folder(self, folder: ModelFolder, adapter: UIAdapter) -> None:
        if is_inside(self.store_root, folder.path):
            return  # a Synapse view (the attach of another store, or this one's): not the user's files
        self._walk(folder.path, folder, adapter, folder.path)

    def _walk(self, top: Path, folder: ModelFolder | None, adapter: UIAdapter | None, base: Path | None) -> None:
        """Depth-first, following linked folders; ``base``: the kind's folder (None: decide per file)."""
        self._top = top
        stack = [top]
        ancestors: dict[str, set[tuple[int, int]]] = {str(top): set()}
        while stack:
            current = stack.pop()
            try:
                info = os.stat(current)
            except OSError as exc:
                self._skip(current, _why_unreadable(exc))
                continue
            key = (info.st_dev, info.st_ino)
            above = ancestors.pop(str(current), set())
            if key in above:
                self._skip(current, "a symbolic link loop (a folder that contains itself); skipped")
                continue
            earlier = self._seen_dirs.get(key)
            if earlier is not None:
                if earlier != str(current):
                    self.scan.warnings.append(
                        f"{current} is the same folder as {earlier} (a symbolic link): adopted once"
                    )
                continue
            self._seen_dirs[key] = str(current)
            try:
                entries = sorted(os.scandir(current), key=lambda e: e.name)
            except OSError as exc:
                self._skip(current, _why_unreadable(exc))
                continue
            real_dir = os.path.realpath(current)
            for entry in reversed(entries):
                path = Path(entry.path)
                if entry.name.startswith("."):
                    continue  # hidden files and folders (caches, .git) are not models
                if not _utf8(entry.name):
                    self._skip(path, "its name is not valid UTF-8; rename it to adopt it")
                    continue
                try:
                    is_dir = entry.is_dir(follow_symlinks=True)
                except OSError:
                    is_dir = False
                if is_dir:
                    ancestors[entry.path] = above | {key}
                    stack.append(path)
                    continue
                self._file(path, real_dir, entry, folder, adapter, base)

    def _file(
        self,
        path: Path,
        real_dir: str,
        entry: os.DirEntry[str],
        folder: ModelFolder | None,
        adapter: UIAdapter | None,
        base: Path | None,
    ) -> None:
        suffix = os.path.splitext(entry.name)[1].lower()
        if suffix not in MODEL_EXTENSIONS:
            return  # sidecars, configs, workflows, images: never touched (the sidecars are read with their model)
        link = None
        try:
            if entry.is_symlink():
                link = os.readlink(path)
            info = os.stat(path)
        except OSError as exc:
            reason = (
                "a symbolic link loop"
                if exc.errno == errno.ELOOP
                else ("a broken symbolic link" if link is not None else _why_unreadable(exc))
            )
            self._skip(path, reason + "; skipped")
            return
        if not stat.S_ISREG(info.st_mode):
            self._skip(path, "not a regular file; skipped")
            return
        if info.st_size == 0:
            self._skip(path, "empty (0 bytes): no model in it; skipped")
            return
        if not os.access(path, os.R_OK):
            self._skip(path, "unreadable (permission denied); skipped")
            return
        name = Path(real_dir) / path.name
        if str(name) in self._seen_files:
            return
        real = os.path.realpath(path) if link is not None else str(name)
        if real.startswith(self._store_prefix):
            self._skip(path, "a file of this store (a view's entry); skipped")
            return
        placed = self._kind_of(path, folder, adapter, base)
        if placed is None:
            return
        kind, why, expose = placed
        self._seen_files.add(str(name))
        self.scan.found.append(
            Found(path, name, link, info, kind, why, expose, adapter.name if adapter else None, adapter)
        )

    def _kind_of(
        self, path: Path, folder: ModelFolder | None, adapter: UIAdapter | None, base: Path | None
    ) -> tuple[AssetKind, str, str] | None:
        if folder is not None and base is not None and adapter is not None:
            expose = path.relative_to(base).as_posix()
            if not adapter.accepts(folder.kind, expose):
                self._skip(path, f"{adapter.display_name} does not list {path.suffix} files there; skipped")
                return None
            kind_folder = adapter.folder(folder.kind)
            if kind_folder is not None and not kind_folder.recursive and "/" in expose:
                self._skip(path, f"{adapter.display_name} does not list sub-folders there; skipped")
                return None
            return self._named(path, folder.kind, f"in {folder.reason}", expose)
        for parent in [path.parent, *path.parent.parents]:
            known = self.names.get(parent.name.lower())
            if known is not None:
                return self._named(path, known[0], known[1], path.relative_to(parent).as_posix())
            if parent == self._top:
                break
        kind = guess_kind(path)
        if kind is None:
            self._skip(
                path,
                "its kind is unknown (not in a UI's model folder, and its header does not tell); "
                "import it with 'synapse import FILE --kind KIND'",
            )
            return None
        return self._named(path, kind, f"its header says {kind.value}", path.relative_to(self._top).as_posix())

    def _named(self, path: Path, kind: AssetKind, why: str, expose: str) -> tuple[AssetKind, str, str] | None:
        for part in expose.split("/"):
            problem = problem_with_name(part)
            if problem is not None:
                self._skip(path, f"its name cannot be shown in a view ({problem}); rename it to adopt it")
                return None
        return kind, why, expose

    def _skip(self, path: Path, reason: str) -> None:
        self.scan.skipped.append(AdoptSkip(path=os.fsdecode(path).encode("utf-8", "replace").decode(), reason=reason))


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _why_unreadable(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a symbolic link loop"
    if exc.errno == errno.EACCES:
        return "unreadable (permission denied)"
    return f"unreadable ({exc.strerror})"
