"""What ``synapse needs`` reports: each model a file names and where it stands (CLI ``--json`` and API)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from synapse_core.kinds import AssetKind

NeedStatus = Literal["present", "in_library", "findable", "unresolvable"]


class ReportModel(BaseModel):
    """Base: validators are built on first use."""

    model_config = ConfigDict(defer_build=True)


class LibraryMatch(ReportModel):
    """A file of the library that is the model."""

    pack: str
    resource_id: str
    kind: AssetKind
    expose: str
    """The name the pack exposes it under (inside the kind's folder)."""
    sha256: str
    size: int
    installed: bool
    matched_by: Literal["hash", "name", "source hash"]


class SourceOffer(ReportModel):
    """Where a source has the model: what ``install --for`` would download."""

    source: str
    ref: str
    """What was asked: a URL, a source reference, or ``hash:<value>``."""
    pack: str
    """The name of the pack the download would become."""
    file_name: str
    size: int | None = None
    sha256: str | None = None


class ModelNeed(ReportModel):
    """One model a file names, and its status."""

    name: str
    """Exactly as the file writes it."""
    folder: str | None
    """The UI's folder key (None when the file does not tell)."""
    kinds: list[AssetKind]
    used_by: list[str]
    """Each node and input (or infotext key) that names it."""
    hashes: dict[str, str] = Field(default_factory=dict)
    """What the file says the bytes hash to: ``{label: hex}``."""
    url: str | None = None
    status: NeedStatus
    detail: str
    """One line: where it is, or why it cannot be found."""
    library: LibraryMatch | None = None
    offer: SourceOffer | None = None


class NeedsReport(ReportModel):
    """Every model one file needs."""

    file: str
    container: str
    """``json``, ``text``, ``png``, ``webp`` or ``jpeg``."""
    format: str
    """``ui-0.4``, ``ui-1``, ``api`` (node graphs) or ``infotext``."""
    ui: str | None
    """The UI whose active view was checked (None: the library only)."""
    profile: str | None = None
    """That UI's active profile."""
    models: list[ModelNeed] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)
    """Each thing in the file that was wrong or could not be read, one line each."""

    def count(self, status: NeedStatus) -> int:
        """How many models have ``status``."""
        return sum(1 for m in self.models if m.status == status)


class InstallItem(ReportModel):
    """One download (or one pack install) ``install --for`` makes."""

    name: str
    action: Literal["download", "install"]
    pack: str
    source: str
    size: int | None = None


class InstallForResult(ReportModel):
    """The outcome of ``install --for FILE``."""

    file: str
    planned: list[InstallItem]
    done: list[InstallItem] = Field(default_factory=list)
    bytes_written: int = 0
    report: NeedsReport
    """The needs after the install."""
