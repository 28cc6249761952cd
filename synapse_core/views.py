"""Views: per UI and profile, a tree of relative symlinks laid out like that UI's root.

A view is built in a staging folder beside its final place and swapped in with one
rename (an atomic exchange where the kernel offers it), so a UI never sees a half-
built view. A view never contains a dangling link: a resource whose blob is missing
is left out and reported. ``.synapse-view.json`` inside the view records every entry.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from synapse_core.activation import FINGERPRINT, Fingerprint, link_error
from synapse_core.blobs import BlobStore
from synapse_core.conflicts import ConflictPolicy, Contender
from synapse_core.layout import StoreLayout, read_model
from synapse_core.models import LeftOutReason, Pack, PackLock, Profile, ViewManifest
from synapse_core.ui import UIAdapter

MANIFEST = ".synapse-view.json"
_RENAME_EXCHANGE = 2


@attrs.frozen
class PackState:
    """A pack with its lock and the raw bytes of both (for fingerprints)."""

    pack: Pack
    lock: PackLock
    raw: bytes


@attrs.define
class ViewPlan:
    """Every entry of a view and every resource left out, as plain records.

    The records have the fields of :class:`~synapse_core.models.ViewEntry` and
    :class:`~synapse_core.models.LeftOut`; the file they are written to validates as a
    :class:`~synapse_core.models.ViewManifest`. Plain records keep a 20,000-file view cheap.
    """

    ui: str
    profile: str
    policy: str
    fingerprint: str
    entries: list[dict[str, Any]]
    left_out: list[dict[str, str]]

    def to_json(self) -> bytes:
        """The manifest file: one entry per line, so it stays readable and diffable."""
        head = {"schema_version": 1, "ui": self.ui, "profile": self.profile, "policy": self.policy}
        head["fingerprint"] = self.fingerprint
        lines = [json.dumps(head)[:-1] + ', "entries": [']
        lines.append(",\n".join(json.dumps(e, ensure_ascii=False) for e in self.entries))
        lines.append('], "left_out": [')
        lines.append(",\n".join(json.dumps(o, ensure_ascii=False) for o in self.left_out))
        lines.append("]}")
        return ("\n".join(lines) + "\n").encode()

    def missing_blobs(self, packs: Sequence[PackState]) -> list[str]:
        """sha256s of the resources left out because their blob is missing."""
        locks = {s.pack.name: s.lock for s in packs}
        return sorted(
            {
                locks[o["pack"]].resources[o["resource_id"]].sha256
                for o in self.left_out
                if o["reason"] == "missing_blob" and o["resource_id"] in locks[o["pack"]].resources
            }
        )


def _left(pack: str, resource_id: str, reason: LeftOutReason, detail: str) -> dict[str, str]:
    return {"pack": pack, "resource_id": resource_id, "reason": reason, "detail": detail}


def plan_view(
    adapter: UIAdapter,
    profile: Profile,
    packs: Sequence[PackState],
    policy: ConflictPolicy,
    blobs: BlobStore,
    fingerprint_value: str,
) -> ViewPlan:
    """Decide every entry of a view: folders from the adapter, conflicts by the UI's key."""
    left_out: list[dict[str, str]] = []
    groups: dict[tuple[str, str], list[tuple[Contender, dict[str, Any]]]] = {}
    folders = {kind: adapter.folder(kind) for kind in adapter.layout}
    for state in packs:
        for spec in state.pack.resources:
            locked = state.lock.resources.get(spec.id)
            folder = folders.get(spec.kind)
            name = state.pack.name
            if folder is None:
                detail = f"{adapter.display_name} has no folder for {spec.kind.value}"
                left_out.append(_left(name, spec.id, "unsupported_kind", detail))
            elif not adapter.accepts(spec.kind, spec.expose):
                detail = f"{adapter.display_name} does not list {spec.expose}"
                left_out.append(_left(name, spec.id, "extension_not_listed", detail))
            elif not folder.recursive and "/" in spec.expose:
                detail = f"{adapter.display_name} lists only the top of {folder.folder}"
                left_out.append(_left(name, spec.id, "subfolder_not_listed", detail))
            elif locked is None or not blobs.has(locked.sha256):
                detail = f"{spec.expose} is not installed; run 'synapse install {name}'"
                left_out.append(_left(name, spec.id, "missing_blob", detail))
            else:
                path = f"{folder.folder}/{spec.expose}"
                key = (folder.name_scope or folder.folder, adapter.conflict_key(spec.kind, spec.expose))
                contender = Contender(pack=name, resource_id=spec.id, path=path, sha256=locked.sha256)
                entry: dict[str, Any] = {"path": path, "pack": name, "resource_id": spec.id, "kind": spec.kind.value}
                entry.update(sha256=locked.sha256, shadows=[])
                groups.setdefault(key, []).append((contender, entry))
    entries = []
    taken: set[str] = set()
    for (scope, ui_name), group in groups.items():
        winner_index = policy.choose(ui_name, [c for c, _ in group]) if len(group) > 1 else 0
        winner = group[winner_index][1]
        for index, (contender, _) in enumerate(group):
            if index != winner_index:
                winner["shadows"].append(contender.pack)
                same = " (the same bytes)" if contender.sha256 == winner["sha256"] else ""
                shadow = f"{contender.pack}'s {contender.path} is shadowed by {winner['pack']}"
                detail = f"{shadow} ({scope}: '{ui_name}'){same}"
                left_out.append(_left(contender.pack, contender.resource_id, "shadowed", detail))
        if winner["path"] not in taken:
            taken.add(winner["path"])
            entries.append(winner)
    entries.sort(key=lambda e: e["path"])
    return ViewPlan(adapter.name, profile.name, policy.name, fingerprint_value, entries, left_out)


class ViewBuilder:
    """Builds, swaps in and checks views under data/views/."""

    def __init__(self, layout: StoreLayout, blobs: BlobStore) -> None:
        self.layout = layout
        self.blobs = blobs

    def manifest(self, ui: str, profile: str) -> ViewManifest | None:
        """The manifest of a view, or None if the view does not exist."""
        path = self.layout.profile_view(ui, profile) / MANIFEST
        return read_model(path, ViewManifest) if path.is_file() else None

    def build(self, plan: ViewPlan, fingerprint: Fingerprint, folders: Sequence[str] = ()) -> None:
        """Create the view in staging and swap it in; the old one is removed afterwards.

        ``folders`` are created even when empty, so a UI never creates them inside the
        view's place itself (some UIs make their model folders at start-up).
        """
        final = self.layout.profile_view(plan.ui, plan.profile)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = final.parent / f".staging-{plan.profile}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            self._populate(staging, final, plan.entries)
            for folder in folders:
                os.makedirs(staging / folder, exist_ok=True)
            (staging / MANIFEST).write_bytes(plan.to_json())
            (staging / FINGERPRINT).write_text(fingerprint.text())
            swap_in(staging, final)
        except OSError as exc:
            raise link_error(exc, final) from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _populate(self, staging: Path, final: Path, entries: Sequence[dict[str, Any]]) -> None:
        staging.mkdir()
        depth_to_data = len(final.relative_to(self.layout.data).parts)
        root = str(staging)
        folders: dict[str, int] = {}  # an open fd per folder: the kernel then resolves only the link's name
        try:
            for entry in entries:  # plain strings: this loop runs once per file of the view
                parent, _, name = entry["path"].rpartition("/")
                fd = folders.get(parent)
                if fd is None:
                    os.makedirs(f"{root}/{parent}", exist_ok=True)
                    fd = folders[parent] = os.open(f"{root}/{parent}", os.O_RDONLY | os.O_DIRECTORY)
                up = "../" * (depth_to_data + parent.count("/") + 1)
                sha = entry["sha256"]
                os.symlink(f"{up}blobs/sha256/{sha[:2]}/{sha}", name, dir_fd=fd)
        finally:
            for fd in folders.values():
                os.close(fd)

    def dangling_links(self, ui: str, profile: str) -> list[str]:
        """Links in a view whose target does not exist."""
        root = self.layout.profile_view(ui, profile)
        dangling = []
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                path = os.path.join(dirpath, name)
                if os.path.islink(path) and not os.path.exists(path):
                    dangling.append(os.path.relpath(path, root))
        return dangling


def swap_in(staging: Path, final: Path) -> None:
    """Put ``staging`` at ``final``: an atomic exchange on Linux, else two renames."""
    if not final.exists():
        os.rename(staging, final)
        return
    if _rename_exchange(staging, final):
        shutil.rmtree(staging, ignore_errors=True)  # now holds the old view
        return
    old = final.parent / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
    os.rename(final, old)
    os.rename(staging, final)
    shutil.rmtree(old, ignore_errors=True)


def _rename_exchange(a: Path, b: Path) -> bool:
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd = -100
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    return bool(result == 0)
