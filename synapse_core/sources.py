"""The contract of an asset source: turn a reference into a pack, and fetch bytes.

A source plugin returns :class:`Source` instances from the ``synapse_sources``
hook. Sources never write into the store: they describe packs, and they stream
bytes into a :class:`DownloadSink` that the core gives them, which hashes,
resumes and publishes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol

import attrs

from synapse_core.errors import SourceError
from synapse_core.kinds import AssetKind

if TYPE_CHECKING:
    from synapse_core.models import LockedResource, NsfwLevel, Pack, ResourceSpec


@attrs.frozen
class ImportRequest:
    """What the user asked to import: a reference and generic options."""

    ref: str
    name: str | None = None
    """The pack name the user chose (``--name``), if any."""
    kind: AssetKind | None = None
    """The kind the user gave (``--kind``), if any: for files whose kind their header does not show."""
    force_kind: bool = False
    """``kind`` stands even where a file's header shows another kind (``--force-kind``)."""
    kind_fallback: AssetKind | None = None
    """The kind to use when it cannot be told (set by ``--identify``, which corrects it later)."""
    policy: str | None = None
    """``follow_latest`` or ``pinned`` when the user forced one (``--follow``/``--pin``)."""
    file_ids: tuple[str, ...] = ()
    """Specific files to take (``--file``), in the source's own ids."""
    all_files: bool = False
    prefer: Mapping[str, str] = attrs.field(factory=dict)
    """Preferences such as ``format=SafeTensor``, ``fp=fp16`` (``--prefer``)."""
    video_previews: bool = False
    """Keep video previews too (``--video-previews``); by default only images are kept."""


@attrs.frozen
class FetchTarget:
    """The file a resource is: where to get it and what it must hash to."""

    file_name: str
    url: str | None = None
    sha256: str | None = None
    """Lower-case hex; None when the source does not know it yet."""
    size: int | None = None
    version_id: str | None = None
    """The source's opaque id of the file's version (a Civitai version number, a commit sha...)."""
    file_id: str | None = None
    """The source's opaque id of the file (a Civitai file number, a path in a repository...)."""
    hashes: Mapping[str, str] = attrs.field(factory=dict)

    @classmethod
    def from_locked(cls, locked: LockedResource) -> FetchTarget:
        """The target that re-fetches a locked resource."""
        return cls(
            file_name=locked.file_name,
            url=locked.url,
            sha256=locked.sha256,
            size=locked.size,
            version_id=locked.version_id,
            file_id=locked.file_id,
            hashes=dict(locked.hashes),
        )


@attrs.frozen
class ResolvedResource:
    """One resource of a resolved pack and the file it resolves to."""

    spec: ResourceSpec
    target: FetchTarget


MAX_PREVIEW_BYTES = 16 * 1024 * 1024
"""A preview larger than this is skipped (with a warning): previews are committed under state/."""
MAX_DESCRIPTION_CHARS = 64 * 1024
"""A pack description longer than this is cut (with a warning): it is stored in pack.json."""


@attrs.frozen
class PreviewImage:
    """A preview the core stores under ``resources/previews/``; failures never fail an import.

    Sources read at most :data:`MAX_PREVIEW_BYTES` of it; the core skips a larger one."""

    file_name: str
    url: str
    nsfw: NsfwLevel | None = None
    """How explicit the image is, if the source rates it."""
    width: int | None = None
    height: int | None = None


@attrs.frozen
class ResolvedPack:
    """A pack draft: the pack.json to write and the files its resources are."""

    pack: Pack
    resources: tuple[ResolvedResource, ...]
    previews: tuple[PreviewImage, ...] = ()
    notes: tuple[str, ...] = ()
    """What the user should hear about the draft, such as files of a folder that were left out."""


@attrs.frozen
class SearchHit:
    """One result of a remote search."""

    source: str
    ref: str
    """A reference that ``synapse import`` accepts."""
    name: str
    kind: AssetKind
    base_model: str | None = None
    creator: str | None = None
    tags: tuple[str, ...] = ()


@attrs.frozen
class SearchQuery:
    """A remote search: free text and optional filters."""

    text: str
    kind: AssetKind | None = None
    base_model: str | None = None
    limit: int = 20


@attrs.frozen
class VersionFile:
    """One file of a source's newer version: a candidate to replace a resource."""

    target: FetchTarget
    kind: AssetKind
    metadata: Mapping[str, str] = attrs.field(factory=dict)
    """Comparable properties, e.g. ``{"format": "SafeTensor", "fp": "fp16", "size": "pruned"}``."""
    primary: bool = False


@attrs.frozen
class UpdateInfo:
    """What a source knows about the newest version of one pack."""

    status: Literal["current", "update", "unavailable", "removed", "archived", "failed"]
    """``unavailable``: a newer version exists that cannot be downloaded yet (:attr:`message` says
    why, e.g. Civitai's early access); ``removed``: the source no longer serves the pack;
    ``archived``: it still describes the pack but serves no files."""
    latest_version_id: str | None = None
    latest_version_name: str | None = None
    files: tuple[VersionFile, ...] = ()
    base_model: str | None = None
    trigger_words: tuple[str, ...] = ()
    message: str | None = None


class DownloadSink(Protocol):
    """Where a source streams a file's bytes. The core hashes and publishes them."""

    @property
    def offset(self) -> int:
        """Bytes already kept from an earlier attempt: ask the server for the rest."""

    @property
    def validator(self) -> str | None:
        """The ETag or Last-Modified recorded with the partial bytes (for If-Range)."""

    def begin(self, total: int | None, validator: str | None = None) -> None:
        """Announce the full size (if known) and the response's validator."""

    def write(self, chunk: bytes) -> None:
        """Append bytes after :attr:`offset`."""

    def receive(self, readinto: Callable[[memoryview], int]) -> None:
        """Append all that ``readinto`` delivers until it returns 0 (it fills the buffer it is
        given and returns the byte count, like ``io.RawIOBase.readinto``). The fast way to hand
        over a large body: no bytes objects are made, and the sink reuses its buffers."""

    def restart(self) -> None:
        """Drop the partial bytes: the server did not resume, the data starts again at 0."""


ProgressCallback = Callable[[int], None]


class Source(ABC):
    """Where packs come from (Civitai, local files, ...).

    Subclasses set a stable :attr:`name` (recorded as ``source.provider`` in
    pack.json) and implement :meth:`can_handle`, :meth:`resolve` and one of
    :meth:`local_path` / :meth:`fetch`. Optional abilities (search, identify,
    updates) raise :class:`NotSupported` by default. Errors a user can act on
    are :class:`synapse_core.errors.SynapseError` with a one-line message that
    never contains a secret.
    """

    name: ClassVar[str]
    display_name: ClassVar[str]

    @abstractmethod
    def can_handle(self, ref: str) -> bool:
        """Whether ``ref`` (a URL, an id, a path...) is something this source understands."""

    @abstractmethod
    def resolve(self, request: ImportRequest) -> ResolvedPack:
        """Turn a reference into a pack draft. No bytes of model files are fetched here."""

    def local_path(self, pack: Pack, target: FetchTarget) -> Path | None:
        """A local file holding ``target``'s bytes, if the source has one (ingested by link or copy)."""
        return None

    def fetch(self, pack: Pack, target: FetchTarget, sink: DownloadSink) -> None:
        """Stream ``target``'s bytes into ``sink``, resuming from ``sink.offset``."""
        raise NotSupported(f"source '{self.name}' cannot download files")

    def fetch_preview(self, preview: PreviewImage) -> bytes:
        """The bytes of a preview image (called only for previews this source listed)."""
        raise NotSupported(f"source '{self.name}' has no previews")

    def search(self, query: SearchQuery) -> Sequence[SearchHit]:
        """Find packs this source offers."""
        raise NotSupported(f"source '{self.name}' cannot search")

    def identify(self, sha256s: Sequence[str]) -> Mapping[str, ResolvedPack]:
        """Look files up by sha256; return a draft for each hash the source knows."""
        raise NotSupported(f"source '{self.name}' cannot identify files")

    def lookup_hash(self, value: str) -> ResolvedPack | None:
        """The pack draft of the one file whose hash is ``value`` (lower-case hex of any length and
        form the source indexes: a full SHA-256, or a short hash such as the first 10 hex of one),
        or None when the source knows no such file. Used for hashes that images name; the core
        checks that the draft's file really has that hash."""
        raise NotSupported(f"source '{self.name}' cannot look files up by hash")

    def check_updates(self, packs: Sequence[Pack]) -> Mapping[str, UpdateInfo]:
        """The newest version of each pack, by pack name, asking for many packs at once.

        A pack missing from the answer counts as failed; one pack's failure must not
        stop the others (return ``UpdateInfo(status="failed", message=...)`` for it).
        """
        raise NotSupported(f"source '{self.name}' cannot check for updates")


class NotSupported(SourceError):
    """The source does not offer this ability."""

    code = "not_supported"
