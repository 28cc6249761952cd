"""The contract of a UI adapter: where a UI looks for each asset kind.

A UI plugin returns :class:`UIAdapter` instances from the
``synapse_ui_adapters`` hook. An adapter is plain data plus two pure planning
methods; the core builds views and writes files, the adapter never does.
"""

from __future__ import annotations

import posixpath
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import attrs

from synapse_core.kinds import AssetKind


class KeyStyle(StrEnum):
    """The name a UI keys a model file by, which decides what counts as a conflict."""

    RELATIVE_PATH = "relative_path"
    """The path relative to the kind's folder, e.g. ``sub/x.safetensors`` (ComfyUI)."""
    STEM = "stem"
    """The bare file name without extension, e.g. ``x`` (A1111 LoRAs, embeddings)."""
    BASENAME = "basename"
    """The bare file name with extension, e.g. ``x.safetensors`` (A1111 VAEs)."""


@attrs.frozen
class KindFolder:
    """Where a UI finds one asset kind, and how it lists and names those files."""

    folder: str
    """Posix path inside the UI's root, e.g. ``models/Lora``."""
    extensions: frozenset[str]
    """Lower-case file extensions the UI lists there, with the dot."""
    key_style: KeyStyle
    """The name the UI keys files by (see :class:`KeyStyle`)."""
    source: str
    """Where in the UI's own code this fact comes from, e.g. ``folder_paths.py``."""
    attach_key: str | None = None
    """What points the UI at an outside folder for this kind: a ComfyUI
    folder_paths key, or an A1111-family command-line flag; None if nothing can."""
    recursive: bool = True
    """Whether the UI lists files in sub-folders; if not, nested entries are left out."""
    name_scope: str | None = None
    """Kinds with the same scope are listed together by the UI (Forge: VAEs and text
    encoders), so their names conflict across folders; None: names conflict within
    :attr:`folder` only. Used as the scope's label in conflict reports."""
    folders: bool = False
    """Entries of this kind are folders of files (a diffusers model), each listed by the UI
    as one model; :attr:`extensions` is then empty. A file is never such an entry."""
    marker: str | None = None
    """For folder entries: the file a folder must hold at its top to be listed (``model_index.json``)."""


@attrs.frozen
class Unsupported:
    """A kind the UI cannot use; declared so that nothing is dropped silently."""

    reason: str


@attrs.frozen
class FileChange:
    """A file an attach or detach would write, with its full new content."""

    path: Path
    content: str
    summary: str


@attrs.frozen
class SidecarRequest:
    """One entry of a view and what Synapse knows about it, for :meth:`UIAdapter.sidecars`."""

    kind: AssetKind
    expose: str
    """The entry's path relative to its kind's folder, e.g. ``styles/ink.safetensors``."""
    sha256: str
    size: int | None
    pack: str
    trigger_words: tuple[str, ...] = ()
    base_model: str | None = None
    description: str | None = None
    creator: str | None = None
    tags: tuple[str, ...] = ()
    previews: tuple[Path, ...] = ()
    """Preview images stored with the pack (state/packs/<pack>/resources/previews/), best first."""
    preferred_weight: float | None = None
    notes: str | None = None

    @classmethod
    def from_pack(
        cls, pack: Any, resource_id: str, sha256: str, size: int | None, previews: tuple[Path, ...]
    ) -> SidecarRequest:
        """The request for one resource of a pack (a models.Pack)."""
        spec = pack.resource(resource_id)
        return cls(
            kind=spec.kind,
            expose=spec.expose,
            sha256=sha256,
            size=size,
            pack=pack.name,
            trigger_words=tuple(pack.trigger_words),
            base_model=pack.base_model,
            description=pack.description,
            creator=pack.creator,
            tags=tuple(pack.tags),
            previews=previews,
            preferred_weight=pack.preferred_weight,
            notes=pack.notes,
        )


@attrs.frozen
class Sidecar:
    """A small file a UI reads beside a model (a preview, a metadata json).

    Give ``content`` (bytes Synapse writes) or ``source`` (a file it copies). The core
    places it as a real file beside the entry; a sidecar the user edits in the UI is kept.
    """

    name: str
    """The file name beside the model, e.g. ``ink.preview.png`` or ``ink.json``."""
    content: bytes | None = None
    source: Path | None = None


@attrs.frozen
class ViewHash:
    """One entry of an active view with its true sha256, for :meth:`UIAdapter.record_hashes`."""

    kind: AssetKind
    expose: str
    """The entry's path relative to its kind's folder."""
    sha256: str


@attrs.frozen
class AttachPlan:
    """What attaching (or detaching) an install means: files to write and text to show."""

    ui: str
    install: Path
    view: Path
    instructions: str
    """What to print: the yaml section, the command-line flags, and how to use them."""
    changes: tuple[FileChange, ...] = ()
    """Files the core writes atomically when the user did not ask for --print."""


class Liveness(StrEnum):
    """How a running UI follows a switch of its ``active`` view (``use``/``back``)."""

    LIVE = "live"
    """Its model lists follow by themselves."""
    REFRESH = "refresh"
    """Its model lists follow after the UI's own Refresh (a button, or a key)."""
    RESTART = "restart"
    """Only a restart shows the switched files."""


@attrs.frozen
class InstallInfo:
    """What one install of a UI is, as its files tell: shown by ``status``."""

    variant: str
    """The UI's name for this install, e.g. ``reForge`` for an install the Forge adapter serves."""
    version: str | None = None
    follows: Liveness = Liveness.RESTART
    """How a running instance follows a switch."""
    follows_detail: str = ""
    """Why, and what stays stale (weights already loaded, cached hashes), citing the UI's code."""
    lists: Mapping[AssetKind, KindFolder | Unsupported] | None = None
    """What this install lists through its attach, where it differs from the adapter's layout
    (a variant, an older version, a flag its parser lacks); None: the adapter's layout."""


@attrs.frozen
class ModelFolder:
    """A folder of an install where the UI finds models of one kind, for ``synapse adopt``."""

    kind: AssetKind
    path: Path
    reason: str
    """Why this folder holds that kind, e.g. ``ComfyUI's models/loras (folder_paths.py)``."""


@attrs.frozen
class FoundMetadata:
    """What the files beside a model say about it (previews, metadata json), for ``synapse adopt``."""

    files: tuple[Path, ...] = ()
    """Every sidecar file read (they become pack data; the originals are never touched)."""
    previews: tuple[Path, ...] = ()
    trigger_words: tuple[str, ...] = ()
    base_model: str | None = None
    description: str | None = None
    preferred_weight: float | None = None
    notes: str | None = None
    configs: tuple[Path, ...] = ()
    """Configuration files the UI reads beside the model (``<stem>.yaml`` beside a checkpoint)."""


class UIAdapter(ABC):
    """How one UI (ComfyUI, Forge, ...) lays out model folders and is pointed at a view.

    Subclasses set :attr:`name` (stable, lower-case; selects the adapter),
    :attr:`display_name`, and :attr:`layout` with an entry for every
    :class:`AssetKind` it knows: a :class:`KindFolder` or an :class:`Unsupported`.
    A kind the layout does not list is unsupported (:meth:`entry` says why), so a
    kind added to the core later never breaks an older plugin.
    """

    name: ClassVar[str]
    display_name: ClassVar[str]
    layout: ClassVar[Mapping[AssetKind, KindFolder | Unsupported]]
    variants: ClassVar[tuple[str, ...]] = ()
    """Other UIs (forks) this adapter recognises and attaches, by name, for ``synapse plugins``."""

    def entry(self, kind: AssetKind) -> KindFolder | Unsupported:
        """The layout's entry for ``kind``; a kind the layout does not list (added to the core
        after the plugin was written) is unsupported, saying so."""
        found = self.layout.get(kind)
        if found is None:
            return Unsupported(f"{self.display_name}'s plugin does not know the kind '{kind.value}' (it predates it)")
        return found

    def folder(self, kind: AssetKind) -> KindFolder | None:
        """The folder for ``kind``, or None when the UI does not support it."""
        entry = self.entry(kind)
        return entry if isinstance(entry, KindFolder) else None

    def accepts(self, kind: AssetKind, file_name: str) -> bool:
        """Whether the UI would list a file of this kind and name."""
        folder = self.folder(kind)
        if folder is None or folder.folders:
            return False
        suffix = posixpath.splitext(file_name)[1].lower()
        return not folder.extensions or suffix in folder.extensions

    def accepts_folder(self, kind: AssetKind, names: Collection[str]) -> bool:
        """Whether the UI would list a folder of this kind holding files named ``names`` (its
        top level) as one model: the kind's entries are folders, and its marker is there."""
        folder = self.folder(kind)
        return folder is not None and folder.folders and (folder.marker is None or folder.marker in names)

    def conflict_key(self, kind: AssetKind, relative_path: str) -> str:
        """The name under which the UI would see ``relative_path`` (inside the kind's
        folder); two entries with the same key in the same folder conflict."""
        folder = self.folder(kind)
        style = folder.key_style if folder else KeyStyle.RELATIVE_PATH
        base = posixpath.basename(relative_path)
        if style is KeyStyle.STEM:
            return posixpath.splitext(base)[0]
        if style is KeyStyle.BASENAME:
            return base
        return relative_path

    def sidecars(self, request: SidecarRequest) -> list[Sidecar]:
        """The sidecar files the UI reads beside this entry (previews, metadata); none by default."""
        return []

    def model_folders(self, install: Path) -> list[ModelFolder]:
        """Where this install keeps models of each kind, for ``synapse adopt``: its own folders and
        the extra folders it is configured with (never a Synapse view). Pure: reads, writes nothing.
        Default: the layout's folders inside ``install`` that exist."""
        found = []
        for kind, entry in self.layout.items():
            if isinstance(entry, KindFolder) and not entry.folders and (install / entry.folder).is_dir():
                reason = f"{self.display_name}'s {entry.folder} folder ({entry.source})"
                found.append(ModelFolder(kind, install / entry.folder, reason))
        return found

    def read_metadata(self, model: Path, siblings: Collection[str]) -> FoundMetadata:
        """What the files this UI (and its extensions) keep beside ``model`` say about it, for
        ``synapse adopt`` (``siblings``: the names in its folder). Default: ``<stem>.preview.<image>``
        previews."""
        from synapse_core.sidecar_files import found_previews

        previews = found_previews(model, siblings, ("png", "jpg", "jpeg", "webp", "gif"))
        return FoundMetadata(files=previews, previews=previews)

    def record_hashes(self, install: Path, view: Path, entries: Sequence[ViewHash]) -> int:
        """Write the true sha256 of the active view's entries into ``install``'s own hash cache
        (if the UI has one), so that after a switch the UI shows, and never recomputes, the hash
        of the bytes it loads. Called after each switch for each attached install; returns how
        many cache entries changed. Default: the UI keeps no such cache."""
        return 0

    @abstractmethod
    def looks_like_install(self, path: Path) -> bool:
        """Whether ``path`` is an install of this UI (checked before attach writes)."""

    @abstractmethod
    def plan_attach(self, install: Path, view: Path) -> AttachPlan:
        """How to point the install at ``view`` (the UI's stable ``active`` path).

        Pure: reads files, writes nothing. Raise :class:`synapse_core.errors.InvalidInput`
        when an existing file cannot be changed safely (for example invalid YAML).
        """

    @abstractmethod
    def plan_detach(self, install: Path, view: Path) -> AttachPlan:
        """How to undo :meth:`plan_attach`, touching only what attach owns."""

    def attach_conflicts(self, install: Path, view: Path) -> list[str]:
        """What attaching would hide from the UI, one phrase each with counts: model files in
        folders the attach replaces, folders the user set themselves. Attach stops on any
        (unless forced). Pure, like :meth:`plan_attach`. Default: nothing."""
        return []

    def describe_install(self, install: Path) -> InstallInfo:
        """Which variant and version ``install`` is and how it follows a switch (for ``status``).
        Default: this adapter's UI, restart to be safe."""
        return InstallInfo(variant=self.display_name)

    def check_install(self, install: Path, view: Path) -> list[str]:
        """Warnings for ``doctor`` about an attached install that attach cannot fix (a UI setting
        that hides the view, for example). Default: none."""
        return []
