"""Files UIs write into their views: found before any change, kept, and never deleted.

After ``attach``, a UI's model folders are a view, and UIs write there (metadata json,
previews, merged checkpoints, whole caches). Before any command changes a UI's views,
:meth:`Keeper.sweep` looks for what Synapse did not place:

* a model file the UI would list (a merged checkpoint, a downloaded LoRA) is *taken in*: the
  caller hard-links it into the library and adds it to the pack ``saved-<ui>``, exposed at the
  same path; the file itself never moves (it is the blob's inode now);
* anything else (json, images, folders, caches, links) is *kept*: moved (one rename) into
  ``data/views/<ui>/profiles/.kept/`` at the same relative path, and linked from every profile
  tree of that UI, so the UI sees it in every profile.

A kept unit is recorded in ``data/views/<ui>/kept.json`` before it is moved, so a kill at any
moment leaves it either still in its tree or in the kept area, and the next sweep finishes.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from synapse_core.errors import SynapseError
from synapse_core.inspect_kind import MODEL_EXTENSIONS
from synapse_core.kinds import AssetKind
from synapse_core.viewmarks import read_fingerprint
from synapse_core.views import ViewService
from synapse_core.viewtree import Placement

if TYPE_CHECKING:
    from synapse_core.blobs import BlobStore
    from synapse_core.state import StateFiles
    from synapse_core.ui import KindFolder, UIAdapter

SAVED_PREFIX = "saved-"


def saved_pack_name(ui: str) -> str:
    """The pack that holds the model files a UI wrote into its views."""
    return f"{SAVED_PREFIX}{ui}"


@attrs.frozen
class Capture:
    """A model file a UI wrote into a view: to be taken into the library where it stands."""

    ui: str
    path: Path
    kind: AssetKind
    expose: str
    """Its path inside the kind's folder: the name the UI lists it by."""


@attrs.define
class SweepReport:
    """What a sweep found."""

    kept: list[str] = attrs.Factory(list)
    """``<ui>: <path>`` of each file or folder moved into the kept area."""
    captures: list[Capture] = attrs.Factory(list)
    problems: list[str] = attrs.Factory(list)
    """Files that could not be kept outside their tree (they stay where they are)."""

    @property
    def changed_uis(self) -> set[str]:
        """UIs whose trees need their kept links placed."""
        return {line.split(":", 1)[0] for line in self.kept} | {c.ui for c in self.captures}


def _kind_folder(adapter: UIAdapter, rel: str) -> tuple[AssetKind, KindFolder] | None:
    """The kind whose folder holds ``rel`` (the longest folder wins)."""
    best: tuple[AssetKind, KindFolder] | None = None
    for kind in adapter.layout:
        folder = adapter.folder(kind)
        inside = folder is not None and rel.startswith(folder.folder + "/")
        if inside and folder is not None and (best is None or len(folder.folder) > len(best[1].folder)):
            best = (kind, folder)
    return best


class Keeper:
    """Finds and keeps what UIs wrote into their views."""

    def __init__(self, views: ViewService) -> None:
        self.views = views

    def sweep(self, uis: Iterable[str], *, full: bool = False) -> SweepReport:
        """Look in every tree of each UI (``full``: every folder, else only folders whose mtime
        changed since Synapse wrote them) and keep or report what Synapse did not place."""
        report = SweepReport()
        for ui in uis:
            self._sweep_ui(ui, full, report)
        return report

    def _sweep_ui(self, ui: str, full: bool, report: SweepReport) -> None:
        adapter = self.views.registry.ui(ui)
        units = set(self.views.kept_units(ui))
        active = self.views.layout.active_link(ui)
        active_tree = os.path.realpath(active) if os.path.islink(active) else None
        # the tree the UI sees goes last: its version of a file wins
        trees = sorted(self.views.trees(ui), key=lambda t: str(t) == active_tree)
        for root in trees + self.views.leftovers(ui):
            fingerprint = read_fingerprint(root)
            if not full and fingerprint is not None and _unchanged(root, fingerprint.dirs):
                continue  # no folder Synapse wrote has changed since: nothing new in this tree
            record = self.views.record(ui, root)
            placements = record.placements if record is not None else {}
            folders = record.folders if record is not None else []
            changed_only = None if (full or fingerprint is None or record is None) else fingerprint.dirs
            tree = self.views.tree(ui, root)
            for rel in tree.foreign(placements, folders, changed_only):
                if rel not in units or not self.views.stable(ui):
                    self._handle(ui, adapter, root, rel, units, report)
        home = self.views.layout.active_link(ui) if self.views.stable(ui) else self.views.kept_dir(ui)
        live = {u for u in units if os.path.lexists(home / u)}
        if live != set(self.views.kept_units(ui)):
            self.views.save_kept_units(ui, live)

    def _handle(self, ui: str, adapter: UIAdapter, root: Path, rel: str, units: set[str], report: SweepReport) -> None:
        path = root / rel
        found = _kind_folder(adapter, rel)
        if found is not None and path.is_dir() and not path.is_symlink() and self._holds_models(adapter, found, path):
            for child in sorted(os.listdir(path)):  # a folder of models: take them in one by one
                self._handle(ui, adapter, root, f"{rel}/{child}", units, report)
            return
        capture = self._capture_of(ui, adapter, found, path, rel)
        if capture is not None:
            report.captures.append(capture)
            return
        self._keep(ui, root, rel, units, report)

    def _holds_models(self, adapter: UIAdapter, found: tuple[AssetKind, KindFolder], folder: Path) -> bool:
        kind, _ = found
        for _dirpath, _dirs, files in os.walk(folder):
            if any(os.path.splitext(f)[1].lower() in MODEL_EXTENSIONS and adapter.accepts(kind, f) for f in files):
                return True
        return False

    def _capture_of(
        self, ui: str, adapter: UIAdapter, found: tuple[AssetKind, KindFolder] | None, path: Path, rel: str
    ) -> Capture | None:
        if found is None or path.is_symlink() or not path.is_file():
            return None
        kind, folder = found
        expose = rel[len(folder.folder) + 1 :]
        if os.path.splitext(rel)[1].lower() not in MODEL_EXTENSIONS or not adapter.accepts(kind, expose):
            return None
        if not folder.recursive and "/" in expose:
            return None
        try:
            if path.stat().st_size == 0:
                return None
        except OSError:
            return None
        return Capture(ui=ui, path=path, kind=kind, expose=expose)

    def _keep(self, ui: str, root: Path, rel: str, units: set[str], report: SweepReport) -> None:
        """Move ``rel`` into the kept area (recorded first) and link it back in its tree; in a
        stable folder (the UI's only tree) it stays where it is, recorded."""
        kept = self.views.kept_dir(ui)
        target = kept / rel
        if not units >= {rel}:
            units.add(rel)
            self.views.save_kept_units(ui, units)
        if self.views.stable(ui):
            report.kept.append(f"{ui}: {rel}")
            return
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if os.path.lexists(target):  # an older version kept earlier: set it aside, never delete it
                aside = kept / ".replaced" / f"{rel}.{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
                aside.parent.mkdir(parents=True, exist_ok=True)
                os.rename(target, aside)
            os.rename(root / rel, target)
        except OSError as exc:
            report.problems.append(f"{ui}: {rel} in {root.name} stays only there ({exc.strerror})")
            with contextlib.suppress(OSError):
                if not os.path.lexists(target):
                    units.discard(rel)
                    self.views.save_kept_units(ui, units)
            return
        report.kept.append(f"{ui}: {rel}")
        tree = self.views.tree(ui, root)
        with contextlib.suppress(OSError):  # the next sync places it anyway; this keeps the gap short
            tree.apply({}, {rel: Placement("kept", target=rel)})

    def kept(self, uis: Sequence[str]) -> list[str]:
        """``<ui>: <path>`` of every kept file and folder (doctor lists them)."""
        return [f"{ui}: {unit}" for ui in uis for unit in self.views.kept_units(ui)]


def _unchanged(root: Path, dirs: dict[str, int] | Mapping[str, int]) -> bool:
    """Whether every folder of a tree has the mtime recorded when Synapse last wrote it."""
    for folder, mtime in dirs.items():
        try:
            if os.stat(root / folder if folder else root).st_mtime_ns != mtime:
                return False
        except OSError:
            return False
    return True


def take_in(captures: Sequence[Capture], blobs: BlobStore, files: StateFiles) -> tuple[list[str], list[str]]:
    """Hard-link captured model files into the library and add them to ``saved-<ui>`` packs
    (the files stay where they are: they are the blobs' inodes now). Returns the packs written
    and a line for each file that could only be kept, not taken in."""
    from synapse_core.models import LockedResource, Pack, PackLock, ResourceSpec, SourceInfo

    written: list[str] = []
    notes: list[str] = []
    for capture in captures:
        name = saved_pack_name(capture.ui)
        try:
            before = os.lstat(capture.path)
            ingested = blobs.ingest_file(capture.path, mode="move")  # a hard link: the same inode
            if not _same_file(capture.path, blobs.path(ingested.sha256), before):
                raise SynapseError("no hard link possible here")
        except (SynapseError, OSError) as exc:
            notes.append(f"{capture.ui}: {capture.path} was not taken in: {getattr(exc, 'message', exc)}")
            continue
        if files.has_pack(name):
            pack, lock = files.pack(name), files.lock(name)
        else:
            pack = Pack(
                name=name, source=SourceInfo(provider="local", metadata={"saved_by": capture.ui}), policy="pinned"
            )
            lock = PackLock()
        resource_id = _resource_id(capture.expose, {r.id for r in pack.resources if r.expose != capture.expose})
        pack.resources = [r for r in pack.resources if r.expose != capture.expose]
        pack.resources.append(ResourceSpec(id=resource_id, kind=capture.kind, expose=capture.expose))
        lock.resources[resource_id] = LockedResource(
            sha256=ingested.sha256, size=ingested.size, file_name=capture.path.name, url=capture.path.as_uri()
        )
        files.save_pack(pack, lock)
        if name not in written:
            written.append(name)
    return written, notes


def _resource_id(expose: str, taken: set[str]) -> str:
    base = expose.rsplit(".", 1)[0].replace("/", "__") or "file"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    return candidate


def _same_file(path: Path, blob: Path, before: os.stat_result) -> bool:
    """Make ``path`` the blob's inode: it already is (a new blob was linked from it), or the
    library had these bytes: then a hard link of the blob replaces it (the same bytes at the
    same path, one copy on disk), if the file did not change since it was hashed."""
    now = os.lstat(path)
    blob_ino = os.stat(blob).st_ino
    if now.st_ino == blob_ino:
        return True
    if (now.st_ino, now.st_size, now.st_mtime_ns) != (before.st_ino, before.st_size, before.st_mtime_ns):
        return False
    temp = path.with_name(f".{path.name[:40]}.{os.getpid()}.syn")
    try:
        os.link(blob, temp)
        os.replace(temp, path)
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink()
        return False
    return True
