"""What the Store's methods return: the same models back the CLI's --json and the API."""

from __future__ import annotations

from pydantic import BaseModel, Field

from synapse_core.kinds import AssetKind
from synapse_core.models import Pack, PackLock


class InitResult(BaseModel):
    """The outcome of `store init`."""

    root: str
    created: bool
    history: bool
    uis: list[str]


class ResourceStatus(BaseModel):
    """One resource of a pack and whether its blob is present."""

    id: str
    kind: AssetKind
    expose: str
    sha256: str | None
    size: int | None
    installed: bool


class PackSummary(BaseModel):
    """A line of `synapse list`."""

    name: str
    provider: str
    kinds: list[AssetKind]
    resources: int
    size: int
    installed: bool
    policy: str
    upstream: str


class PackDetails(BaseModel):
    """`synapse show`: the pack, its lock and what is installed."""

    pack: Pack
    lock: PackLock
    resources: list[ResourceStatus]
    previews: list[str]


class ImportResult(BaseModel):
    """The outcome of an import."""

    pack: str
    source: str
    resources: list[ResourceStatus]
    bytes_written: int
    previews: int
    warnings: list[str] = Field(default_factory=list)


class InstallResult(BaseModel):
    """The outcome of `install`: blobs fetched and blobs already present."""

    pack: str
    fetched: list[str]
    present: list[str]
    bytes_written: int


class RemoveResult(BaseModel):
    """The outcome of `remove`."""

    pack: str
    profiles_changed: list[str]


class GcResult(BaseModel):
    """The outcome of `gc`."""

    dry_run: bool
    blobs: int
    bytes: int
    removed: list[str]


class PackUsage(BaseModel):
    """Disk use of one pack."""

    pack: str
    bytes: int
    shared_bytes: int
    """Bytes of blobs that another pack also uses."""


class DuReport(BaseModel):
    """`synapse du`: bytes per pack and what dedup saved."""

    packs: list[PackUsage]
    store_bytes: int
    referenced_bytes: int
    saved_by_dedup: int


class Problem(BaseModel):
    """One thing `doctor` found."""

    check: str
    message: str
    fixed: bool = False


class DoctorReport(BaseModel):
    """`synapse doctor`: invariants checked, problems found and repairs made."""

    checks: list[str]
    problems: list[Problem]
    history: bool
    plugin_failures: list[str]

    @property
    def healthy(self) -> bool:
        """True when every problem was fixed or none was found."""
        return all(p.fixed for p in self.problems)

