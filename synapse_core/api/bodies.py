"""Request bodies and API-only response models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from synapse_core.kinds import AssetKind


class Body(BaseModel):
    """Base of request bodies: unknown fields are errors (422)."""

    model_config = ConfigDict(extra="forbid")


class ImportBody(Body):
    """POST /packs/import"""

    ref: str = Field(min_length=1)
    name: str | None = None
    kind: AssetKind | None = None
    policy: str | None = Field(default=None, pattern="^(follow_latest|pinned)$")
    file_ids: list[str] = Field(default_factory=list)
    all_files: bool = False
    prefer: dict[str, str] = Field(default_factory=dict)
    sync: bool = False
    identify: bool = False
    video_previews: bool = False


class DoctorBody(Body):
    """POST /store/doctor"""

    verify_blobs: bool = False
    fix: bool = False
    rebuild_views: bool = False


class UseBody(Body):
    """POST /profiles/use"""

    pack: str = Field(min_length=1)
    uis: list[str] = Field(default_factory=list)
    ui_set: str | None = None
    sync: bool = False


class BackBody(Body):
    """POST /profiles/back"""

    uis: list[str] = Field(default_factory=list)
    ui_set: str | None = None


class ApplyBody(Body):
    """POST /updates/apply"""

    packs: list[str] = Field(default_factory=list)
    all: bool = False
    dry_run: bool = False
    choose: list[str] = Field(default_factory=list)
    sync: bool = False
    allow_base_change: bool = False


class JobAccepted(BaseModel):
    """202: a background job was started; poll GET /jobs/{id}."""

    job_id: str
    kind: str
    location: str


class PluginInfo(BaseModel):
    """A plugin as GET /plugins shows it."""

    name: str
    distribution: str | None
    version: str | None
    builtin: bool
    status: str
    reason: str | None
    hooks: list[str]
    contributes: dict[str, list[str]]


class ErrorDetail(BaseModel):
    """The error's code and one-line message."""

    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error answer."""

    error: ErrorDetail
    plan: dict[str, object] | None = None
