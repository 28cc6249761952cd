"""What the Store's methods return: the same models back the CLI's --json and the API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from synapse_core.kinds import AssetKind
from synapse_core.models import Pack, PackLock


class Result(BaseModel):
    """Base of the Store's answers; validators are built on first use (fast start-up)."""

    model_config = ConfigDict(defer_build=True)


class InitResult(Result):
    """The outcome of `store init`."""

    root: str
    created: bool
    history: bool
    uis: list[str]
    link_mode: str = "symlink"
    link_mode_reason: str = ""
    """Why: the user chose it, or what ``auto`` found the file system can do."""


class ResourceStatus(Result):
    """One resource of a pack and whether its blob is present."""

    id: str
    kind: AssetKind
    expose: str
    sha256: str | None
    size: int | None
    installed: bool


class PackSummary(Result):
    """A line of `synapse list`."""

    name: str
    provider: str
    kinds: list[AssetKind]
    resources: int
    size: int
    installed: bool
    policy: str
    upstream: str


class PackDetails(Result):
    """`synapse show`: the pack, its lock and what is installed."""

    pack: Pack
    lock: PackLock
    resources: list[ResourceStatus]
    previews: list[str]


class ImportResult(Result):
    """The outcome of an import."""

    pack: str
    source: str
    resources: list[ResourceStatus]
    bytes_written: int
    previews: int
    warnings: list[str] = Field(default_factory=list)


class BatchImportResult(Result):
    """The outcome of ``import FOLDER --each``: one pack per model file."""

    packs: list[ImportResult]
    warnings: list[str] = Field(default_factory=list)


class InstallResult(Result):
    """The outcome of `install`: blobs fetched and blobs already present."""

    pack: str
    fetched: list[str]
    present: list[str]
    bytes_written: int
    from_remotes: list[str] = Field(default_factory=list)
    """Of ``fetched``: the resources a remote had."""
    warnings: list[str] = Field(default_factory=list)


class RemoveResult(Result):
    """The outcome of `remove`."""

    pack: str
    profiles_changed: list[str]
    switched_back: dict[str, list[str]] = Field(default_factory=dict)
    """UIs that were using the removed pack's work profile, with their stacks now."""


class GcResult(Result):
    """The outcome of `gc`."""

    dry_run: bool
    blobs: int
    bytes: int
    removed: list[str]
    kept_blobs: int = 0
    """Unreferenced blobs kept because they became so within the grace period (``--now`` takes them)."""
    kept_bytes: int = 0
    grace_hours: float = 0.0


class PackUsage(Result):
    """Disk use of one pack."""

    pack: str
    bytes: int
    shared_bytes: int
    """Bytes of blobs that another pack also uses."""


class DuReport(Result):
    """`synapse du`: bytes per pack and what dedup saved."""

    packs: list[PackUsage]
    store_bytes: int
    referenced_bytes: int
    unreferenced_bytes: int = 0
    """Blobs no pack references any more: what 'synapse gc' removes once their grace period is over."""
    saved_by_dedup: int
    temps: int = 0
    """Temp files in data/tmp that killed commands left (gc removes them past its grace period)."""
    temp_bytes: int = 0


class Problem(Result):
    """One thing `doctor` found."""

    check: str
    message: str
    fixed: bool = False


class Notice(Result):
    """Something `doctor` found that is how the store may be, not wrong (a pack whose files are
    not downloaded yet): shown, but the store is healthy."""

    check: str
    message: str


class DoctorReport(Result):
    """`synapse doctor`: invariants checked, problems found and repairs made."""

    checks: list[str]
    problems: list[Problem]
    notices: list[Notice] = Field(default_factory=list)
    """What is worth knowing but needs no repair (a pack not downloaded yet)."""
    history: bool
    plugin_failures: list[str]
    kept: list[str] = Field(default_factory=list)
    """``<ui>: <path>`` of each file a UI wrote into its views, kept and shown in every profile."""
    notes: list[str] = Field(default_factory=list)
    """What a repair did on the side (files UIs wrote that it kept or took in)."""

    @property
    def healthy(self) -> bool:
        """True when every problem was fixed or none was found."""
        return all(p.fixed for p in self.problems)


class InstallStatus(Result):
    """One attached install of a UI in `synapse status`: what it is and what it lists."""

    path: str
    variant: str
    version: str | None = None
    follows: str = "restart"
    """How a running instance follows use/back: live, refresh or restart."""
    follows_detail: str = ""
    not_listed: list[str] = []
    """Entries of the active view this install does not list, with why."""
    problem: str | None = None


class UIStatus(Result):
    """One UI in `synapse status`."""

    ui: str
    stack: list[str]
    active: str
    view: str
    entries: int
    shadowed: list[str]
    missing: list[str]
    unsupported: list[str]
    installs: list[InstallStatus] = []
    kept: list[str] = Field(default_factory=list)
    """Files and folders the UI wrote into its views: kept, and shown in every profile."""


class StatusReport(Result):
    """`synapse status`: each UI's stack and view, and store totals."""

    root: str
    uis: list[UIStatus]
    packs: int
    blobs: int
    bytes: int


class SwitchResult(Result):
    """The outcome of `use` or `back`: each UI's new stack."""

    uis: dict[str, list[str]]
    installed: list[str] = Field(default_factory=list)


class ProfileInfo(Result):
    """A profile and where it is in use."""

    name: str
    policy: str
    packs: list[str]
    active_in: list[str]
    stacked_in: list[str]


class AttachResult(Result):
    """The outcome of attach/detach: what was (or would be) changed."""

    ui: str
    install: str
    view: str
    instructions: str
    changed: list[str]
    printed_only: bool


class RemoteHit(Result):
    """A pack a source offers."""

    source: str
    ref: str
    name: str
    kind: AssetKind
    base_model: str | None = None
    creator: str | None = None
    tags: list[str] = Field(default_factory=list)


class SearchResult(Result):
    """`synapse search`: matching local packs and, if asked, what sources offer."""

    local: list[PackSummary]
    remote: list[RemoteHit]
    errors: list[str] = Field(default_factory=list)


class Identified(Result):
    """One local file looked up by its sha256."""

    path: str
    sha256: str
    size: int
    source: str | None = None
    name: str | None = None
    ref: str | None = None
    version_id: str | None = None
    in_packs: list[str] = Field(default_factory=list)


class FileChoice(Result):
    """A file of a newer version that could replace a resource."""

    file_id: str | None
    file_name: str
    size: int | None
    kind: AssetKind
    metadata: dict[str, str] = Field(default_factory=dict)
    primary: bool = False


class ResourceUpdate(Result):
    """How one resource changes: the old file, the new one, or the candidates to choose from."""

    resource: str
    old_file: str
    old_version_id: str | None
    new: FileChoice | None = None
    candidates: list[FileChoice] = Field(default_factory=list)
    ambiguous: bool = False


class BaseChange(Result):
    """A newer version made for another base model or of another kind than the pack: its file would
    replace the old one under the same name, and workflows would load another architecture."""

    old_base_model: str | None
    new_base_model: str | None
    old_kinds: list[AssetKind]
    new_kinds: list[AssetKind]


class PackUpdate(Result):
    """One pack with a newer version."""

    pack: str
    source: str
    current_version_id: str | None
    latest_version_id: str | None
    latest_version_name: str | None
    resources: list[ResourceUpdate]
    base_change: BaseChange | None = None
    """Set when the new version changes the base model or the kind: ``update`` holds it back
    unless asked with ``--allow-base-change``."""

    @property
    def ambiguous(self) -> bool:
        """Whether a resource needs the user's choice."""
        return any(r.ambiguous for r in self.resources)


class PackNote(Result):
    """A pack that is not updatable now, and why."""

    pack: str
    message: str


class UpdatePlan(Result):
    """What updating would change; computed with no side effects."""

    updates: list[PackUpdate] = Field(default_factory=list)
    current: list[str] = Field(default_factory=list)
    unavailable: list[PackNote] = Field(default_factory=list)
    """Packs whose newer version cannot be downloaded yet."""
    removed: list[PackNote] = Field(default_factory=list)
    failed: list[PackNote] = Field(default_factory=list)
    pinned: list[str] = Field(default_factory=list)
    skipped_recent: list[str] = Field(default_factory=list)


class UpdateResult(Result):
    """The outcome of `update`: the plan and what was applied."""

    plan: UpdatePlan
    applied: list[str]
    dry_run: bool
    installed: list[str] = Field(default_factory=list)
    held_back: list[str] = Field(default_factory=list)
    """Packs whose new version changes the base model or kind (not applied without ``allow_base_change``)."""


class AdoptFile(Result):
    """One model file ``synapse adopt`` found, and what becomes of it."""

    path: str
    ui: str | None = None
    """The UI whose install holds it (None: a folder of models)."""
    kind: AssetKind
    why: str
    """Why it is that kind (its folder, or its header)."""
    expose: str
    """The name every view shows it by (its path inside its kind's folder)."""
    size: int
    sha256: str
    pack: str
    action: str
    """``link`` (a hard link: no bytes written), ``copy`` (bytes written: another file system),
    ``present`` (the library has these bytes), ``duplicate`` (the same bytes as ``same_as``)."""
    same_as: str | None = None
    sidecars: list[str] = Field(default_factory=list)


class AdoptSkip(Result):
    """A file or folder ``synapse adopt`` leaves alone, and why."""

    path: str
    reason: str


class AdoptPackPlan(Result):
    """A pack an adopt writes (one per distinct model file)."""

    name: str
    new: bool
    """False: an existing pack holds these bytes under these names already."""
    kinds: list[AssetKind]
    exposes: list[str]
    identified: str | None = None
    """The source that knows these bytes (``--identify``), if any."""


class AdoptInstall(Result):
    """A UI install found among the adopted paths."""

    ui: str
    path: str


class AdoptPlan(Result):
    """What ``synapse adopt`` will do (printed by ``--dry-run`` and before any change)."""

    paths: list[str]
    installs: list[AdoptInstall] = Field(default_factory=list)
    files: list[AdoptFile] = Field(default_factory=list)
    skipped: list[AdoptSkip] = Field(default_factory=list)
    packs: list[AdoptPackPlan] = Field(default_factory=list)
    link_bytes: int = 0
    copy_bytes: int = 0
    present_bytes: int = 0
    hashed_files: int = 0
    """Files hashed now (the others came from the hash cache)."""
    hashed_bytes: int = 0
    keep_originals: bool = False
    needs_copy: bool = False
    """Some files are on another file system than the store: they need ``--copy``."""
    warnings: list[str] = Field(default_factory=list)


class AdoptResult(Result):
    """The outcome of ``synapse adopt``."""

    plan: AdoptPlan
    dry_run: bool
    packs: list[str] = Field(default_factory=list)
    """Packs written."""
    removed: int = 0
    """Original names removed from the UIs' folders (their bytes are blobs now)."""
    attached: list[AdoptInstall] = Field(default_factory=list)
    journal: str | None = None
    warnings: list[str] = Field(default_factory=list)


class AdoptUndoResult(Result):
    """The outcome of ``synapse adopt --undo``."""

    restored: int
    packs_removed: list[str] = Field(default_factory=list)
    detached: list[AdoptInstall] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class RemoteInfo(Result):
    """One line of ``remote list``."""

    name: str
    url: str
    endpoint_url: str | None = None
    default: bool = False


class PushResult(Result):
    """The outcome of ``push``."""

    remote: str
    packs: list[str]
    blobs: int
    """Blobs the packs have."""
    uploaded: int
    """Of those, blobs the remote lacked and now holds."""
    bytes_uploaded: int


class PullResult(Result):
    """The outcome of ``pull``."""

    remote: str
    packs: list[str]
    new_packs: list[str]
    downloaded: int
    bytes_downloaded: int


class RemoteUsage(Result):
    """``du --remote``: what one remote holds."""

    remote: str
    url: str
    blobs: int
    bytes: int
    packs: int
    missing_here: int
    """Blobs of this library's packs that the remote lacks."""


class RemotePruneResult(Result):
    """``remote prune``: unfinished uploads an interrupted push left on a remote."""

    remote: str
    uploads: list[str]
    """The blob key of each upload removed (or, with dry_run, that would be)."""
    bytes: int
    """What their parts held."""
    dry_run: bool


class SyncResult(Result):
    """The outcome of ``sync LOCKFILE``."""

    profile: str
    """The profile written (``lock-<exported profile>``) and switched to."""
    imported: list[str]
    """Packs that were not in this library."""
    fetched: list[str]
    """``pack:resource`` of every file that was fetched."""
    from_remotes: list[str]
    uis: dict[str, list[str]] = Field(default_factory=dict)
    """Each switched UI's stack."""
    warnings: list[str] = Field(default_factory=list)
