"""A view's fingerprint and its ``active`` link: what the light switching path reads.

Standard library only (plus the store's small modules): ``back`` and ``use`` of a view already
built import nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

from synapse_core.errors import SynapseError
from synapse_core.layout import StoreLayout
from synapse_core.state import GLOBAL_PROFILE

MANIFEST = ".synapse-view.json"
FINGERPRINT = ".synapse-fingerprint"


class Fingerprint(NamedTuple):
    """What ``.synapse-fingerprint`` records about a view (read on the fast switching path)."""

    digest: str
    """:func:`view_digest` of the inputs the view was planned from."""
    base: str | None
    """For a derived view (a work profile): the global view's digest it was planned from."""
    plugin: str
    """``<plugin>==<version>`` of the UI plugin that laid the view out."""
    profile: str
    """A digest of the profile.json it was planned from."""
    missing: tuple[str, ...]
    """sha256s left out because their blob was missing (the view changes when one arrives)."""
    dirs: Mapping[str, int]
    """Folder mtimes when Synapse last wrote the tree (a UI adding a file changes one)."""

    def to_json(self) -> bytes:
        """The file's content."""
        data = {"digest": self.digest, "base": self.base, "plugin": self.plugin, "profile": self.profile}
        return (json.dumps({**data, "missing": list(self.missing), "dirs": dict(self.dirs)}) + "\n").encode()


def read_fingerprint(path: Path) -> Fingerprint | None:
    """A tree's fingerprint (``path`` is the tree), or None when it was never completed."""
    try:
        data = json.loads((path / FINGERPRINT).read_bytes())
        return Fingerprint(
            digest=str(data["digest"]),
            base=data.get("base"),
            plugin=str(data["plugin"]),
            profile=str(data["profile"]),
            missing=tuple(data.get("missing", ())),
            dirs={str(k): int(v) for k, v in data.get("dirs", {}).items()},
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def profile_stamp(layout: StoreLayout, profile: str) -> str:
    """A digest of a profile's file (a derived view records the profile it was planned from)."""
    try:
        return hashlib.blake2b(layout.profile_file(profile).read_bytes(), digest_size=8).hexdigest()
    except OSError:
        return "-"


def view_is_current(layout: StoreLayout, ui: str, profile: str, plugin: str, has_blob: Callable[[str], bool]) -> bool:
    """Whether the view of ``profile`` for ``ui`` is current, from fingerprints alone (no
    pydantic, no plugin, no pack read): laid out by ``plugin`` (``name==version``), no missing
    blob arrived, and, for a derived view, planned from the global view as it is now and from
    the profile file as it is now."""
    fingerprint = read_fingerprint(layout.profile_view(ui, profile))
    if fingerprint is None or fingerprint.plugin != plugin or any(has_blob(s) for s in fingerprint.missing):
        return False
    if profile_stamp(layout, profile) != fingerprint.profile:
        return False
    if profile == GLOBAL_PROFILE:
        return True
    base = read_fingerprint(layout.profile_view(ui, GLOBAL_PROFILE))
    return base is not None and fingerprint.base == base.digest and not any(has_blob(s) for s in base.missing)


def point_active(layout: StoreLayout, ui: str, profile: str) -> None:
    """Atomically repoint data/views/<ui>/active at profiles/<profile> (a new link renamed over)."""
    link = layout.active_link(ui)
    if active_target(layout, ui) == f"profiles/{profile}":
        return
    if link.is_dir() and not link.is_symlink():
        return  # a stable folder: its entries were swapped to show the profile
    link.parent.mkdir(parents=True, exist_ok=True)
    temp = link.parent / f".active-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        os.symlink(f"profiles/{profile}", temp)
        os.replace(temp, link)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise _link_error(exc, link) from exc


def active_target(layout: StoreLayout, ui: str) -> str | None:
    """What data/views/<ui>/active points at, e.g. 'profiles/global', or None."""
    try:
        return os.readlink(layout.active_link(ui))
    except OSError:
        return None


def _link_error(exc: OSError, where: Path) -> SynapseError:
    from synapse_core.fscaps import link_error

    return link_error(exc, where)
