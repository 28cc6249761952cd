"""Typed models of every JSON file in the store (state/ and data/).

Each file carries a ``schema_version`` (:data:`SCHEMA_VERSION`; :mod:`synapse_core.migration`
brings a store written by older code to it once). Unknown keys are errors; a plugin keeps its own
keys in its own block (``source.metadata`` of a pack, ``plugins.<name>`` of the config).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from synapse_core.kinds import AssetKind

SCHEMA_VERSION = 2
UpdatePolicy = Literal["follow_latest", "pinned"]
LinkModeSetting = Literal["auto", "symlink", "hardlink", "reflink", "copy"]
Upstream = Literal["ok", "removed", "archived"]
NsfwLevel = Literal["none", "soft", "mature", "explicit"]
"""How explicit a preview is, as its source rated it (a page blurs what is above the user's level)."""


def utc_now() -> datetime:
    """The current time in UTC, to the second."""
    return datetime.now(UTC).replace(microsecond=0)


class StrictModel(BaseModel):
    """Base of the state models: unknown keys are errors, so typos are caught."""

    model_config = ConfigDict(extra="forbid", defer_build=True)


FetchStep = Literal["remotes", "source"]
"""Where ``install`` looks for a missing file: the configured remotes, or the pack's own source."""


def _default_fetch_order() -> list[FetchStep]:
    return ["remotes", "source"]


class RemoteConfig(StrictModel):
    """One remote (``synapse remote add``): where it is, never how to log in."""

    url: str
    """``s3://BUCKET/PREFIX``, ``file:///mnt/nas/synapse``, or a scheme a plugin opens."""
    endpoint_url: str | None = None
    options: dict[str, str] = Field(default_factory=dict)


class Config(StrictModel):
    """state/config.json: user settings. Never holds a secret."""

    schema_version: int = SCHEMA_VERSION
    default_ui_set: str = "default"
    link_mode: LinkModeSetting = "symlink"
    """How views are made: symlinks, hard links, reflinks or copies, or 'auto' (probed once)."""
    ui_link_modes: dict[str, LinkModeSetting] = Field(default_factory=dict)
    """A UI's own link mode (``attach --link-mode``), over ``link_mode``."""
    parallel_downloads: int = Field(default=3, ge=1, le=16)
    ui_installs: dict[str, list[str]] = Field(default_factory=dict)
    allowed_origins: list[str] = Field(default_factory=list)
    allowed_hosts: list[str] = Field(default_factory=list)
    """Host names `synapse serve` answers to besides its bind address (and the machine's own when bound to all)."""
    plugins: dict[str, dict[str, Any]] = Field(default_factory=dict)
    remotes: dict[str, RemoteConfig] = Field(default_factory=dict)
    default_remote: str | None = None
    """The remote push and pull use when none is named (the first one added, unless changed)."""
    fetch_order: list[FetchStep] = Field(default_factory=_default_fetch_order, min_length=1)


class UISets(StrictModel):
    """state/ui_sets.json: named groups of UIs that `use` and `back` act on."""

    schema_version: int = SCHEMA_VERSION
    sets: dict[str, list[str]] = Field(default_factory=dict)


class SourceInfo(StrictModel):
    """Where a pack came from. Source-specific facts live in :attr:`metadata`, the source's own block."""

    provider: str
    url: str | None = None
    version_id: str | None = None
    """The source's id of the version the pack is (opaque: a number, a commit sha...), if it has versions."""
    version_name: str | None = None
    """That version's name as the source shows it."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """What only this source understands (JSON values), e.g. Civitai's model id, a local path."""


class ResourceSpec(StrictModel):
    """One file a pack exposes: what it is and the name the UIs see."""

    id: str
    kind: AssetKind
    expose: str
    prefer: dict[str, str] = Field(default_factory=dict)

    @field_validator("expose")
    @classmethod
    def _relative_inside_the_view(cls, expose: str) -> str:
        from synapse_core.names import problem_with_relative_path

        problem = problem_with_relative_path(expose)
        if problem is not None:
            raise ValueError(f"{expose!r} cannot be a file name in a view: {problem}")
        return expose


class Pack(StrictModel):
    """state/packs/<Pack>/pack.json: what the user asked for."""

    schema_version: int = SCHEMA_VERSION
    name: str
    source: SourceInfo
    policy: UpdatePolicy = "pinned"
    base_model: str | None = None
    trigger_words: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    creator: str | None = None
    description: str | None = None
    preferred_weight: float | None = None
    """The weight to use the model at (a LoRA's strength), where the user or a UI recorded one."""
    notes: str | None = None
    """The user's own notes about the model (taken from a UI's metadata by ``synapse adopt``)."""
    upstream: Upstream = "ok"
    resources: list[ResourceSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_resources(self) -> Pack:
        ids = [r.id for r in self.resources]
        if len(ids) != len(set(ids)):
            raise ValueError(f"resource ids must be unique: {sorted({i for i in ids if ids.count(i) > 1})}")
        return self

    def resource(self, resource_id: str) -> ResourceSpec | None:
        """The resource with that id, if any."""
        return next((r for r in self.resources if r.id == resource_id), None)


class PreviewInfo(StrictModel):
    """One preview file of a pack and what its source said about it."""

    file: str
    nsfw: NsfwLevel | None = None
    """None: the source did not rate it."""
    width: int | None = None
    height: int | None = None


class PreviewIndex(StrictModel):
    """state/packs/<Pack>/resources/previews.json: the pack's previews, in the source's order."""

    schema_version: int = SCHEMA_VERSION
    previews: list[PreviewInfo] = Field(default_factory=list)


Sha256 = Annotated[str, StringConstraints(to_lower=True, pattern=r"^[0-9a-fA-F]{64}$")]


class LockedResource(StrictModel):
    """What one resource resolved to, exactly."""

    sha256: Sha256
    size: int = Field(ge=0)
    file_name: str
    url: str | None = None
    version_id: str | None = None
    """The source's opaque id of the version the file belongs to."""
    file_id: str | None = None
    """The source's opaque id of the file (a number, a path in a repository...)."""
    hashes: dict[str, str] = Field(default_factory=dict)


class PackLock(StrictModel):
    """state/packs/<Pack>/lock.json: the exact bytes each resource is."""

    schema_version: int = SCHEMA_VERSION
    resolved_at: datetime = Field(default_factory=utc_now)
    resources: dict[str, LockedResource] = Field(default_factory=dict)


class ConflictSettings(StrictModel):
    """How a profile resolves entries the UI would see under the same name."""

    policy: str = "last_wins"


class Alias(StrictModel):
    """One more name for a resource in one UI's view of a profile (``use --for FILE``): the UI
    finds the resource's bytes under exactly the path a workflow or image spells, even when the
    pack exposes the file under another name."""

    ui: str
    kind: AssetKind
    expose: str
    """Path inside the kind's folder, posix, exactly as the workflow spells it."""
    pack: str
    resource_id: str


class Profile(StrictModel):
    """state/profiles/<name>/profile.json: which packs a UI sees, in order.

    ``global`` lists its packs. A derived profile (``work__<Pack>``) names a ``base`` and the
    packs it moves to the end (``top``), so it follows its base without a copy of its list.
    """

    schema_version: int = SCHEMA_VERSION
    name: str
    conflicts: ConflictSettings = Field(default_factory=ConflictSettings)
    packs: list[str] = Field(default_factory=list)
    base: str | None = None
    top: list[str] = Field(default_factory=list)
    """Packs moved to the end, in this order (in global: packs that always win)."""
    aliases: list[Alias] = Field(default_factory=list)


def _profile_names(stack: list[str]) -> list[str]:
    from synapse_core.names import problem_with_name

    for name in stack:
        problem = problem_with_name(name)
        if problem is not None:
            raise ValueError(f"{name!r} cannot be a profile name: {problem}")
    return stack


class UIRuntime(StrictModel):
    """The profile stack of one UI; the last element is active."""

    stack: Annotated[list[str], AfterValidator(_profile_names)] = Field(
        default_factory=lambda: ["global"], min_length=1
    )


class Runtime(StrictModel):
    """data/runtime.json: one profile stack per UI."""

    schema_version: int = SCHEMA_VERSION
    ui: dict[str, UIRuntime] = Field(default_factory=dict)


class ViewEntry(BaseModel):
    """One file of a view: where it is, which blob and where it came from."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    path: str
    pack: str
    resource_id: str
    kind: str
    sha256: str
    shadows: list[str] = Field(default_factory=list)
    """Packs whose entry under the same UI name this one hides."""


LeftOutReason = Literal["shadowed", "missing_blob", "unsupported_kind", "extension_not_listed", "subfolder_not_listed"]


class LeftOut(StrictModel):
    """A resource a view does not show, and why."""

    pack: str
    resource_id: str
    reason: LeftOutReason
    detail: str


class ViewManifest(BaseModel):
    """data/views/<ui>/profiles/<profile>/.synapse-view.json: what Synapse placed in a view.

    Written and read by :mod:`synapse_core.views` with the standard library (a view may hold
    20,000 entries); this model documents and validates the shape.
    """

    model_config = ConfigDict(extra="forbid", defer_build=True)

    schema_version: Literal[2] = 2
    ui: str
    profile: str
    policy: str
    fingerprint: str
    """Digest of the inputs (layout, policy, packs in order, aliases)."""
    layout: str
    link_mode: str
    order: list[str]
    digests: dict[str, str]
    missing: dict[str, list[str]] = Field(default_factory=dict)
    folders: list[str]
    sidecars: dict[str, dict[str, Any]] = Field(default_factory=dict)
    kept: dict[str, str] = Field(default_factory=dict)
    blocked: dict[str, str] = Field(default_factory=dict)
    entries: list[ViewEntry] = Field(default_factory=list)
    losers: list[ViewEntry] = Field(default_factory=list)
    left_out: list[LeftOut] = Field(default_factory=list)


class HashCacheEntry(StrictModel):
    """A file's sha256, valid while its size and mtime are unchanged."""

    size: int
    mtime_ns: int
    sha256: str


class HashCache(StrictModel):
    """data/hash-cache.json: sha256 of local files by "<device>:<inode>"."""

    schema_version: int = SCHEMA_VERSION
    files: dict[str, HashCacheEntry] = Field(default_factory=dict)


class UpdateCheck(StrictModel):
    """The last update check of one pack."""

    last_checked: datetime
    status: str
    latest_version_id: str | None = None


class UpdateChecks(StrictModel):
    """data/update-checks.json: when each pack was last checked (a cache of remote state)."""

    schema_version: int = SCHEMA_VERSION
    packs: dict[str, UpdateCheck] = Field(default_factory=dict)


class DerivedHashes(StrictModel):
    """Hashes other programs compute from one blob's bytes (lower-case hex)."""

    autov1: str | None = None
    """SHA-256 of the 64 KiB at 1 MiB, first 8 hex (A1111's legacy model hash)."""
    autov3: str | None = None
    """SHA-256 of a safetensors file after its header, first 12 hex (A1111 LoRA hash, Civitai AutoV3)."""


class DerivedHashCache(StrictModel):
    """data/derived-hashes.json: :class:`DerivedHashes` by blob sha256 (a cache: blobs never change)."""

    schema_version: int = SCHEMA_VERSION
    blobs: dict[str, DerivedHashes] = Field(default_factory=dict)
