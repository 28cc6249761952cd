"""Views: per UI and profile, a tree of relative symlinks laid out like that UI's root.

A view is built in a staging folder beside its final place and swapped in with one
rename (an atomic exchange where the kernel offers it), so a UI never sees a half-
built view. A view never contains a dangling link: a resource whose blob is missing
is left out and reported. ``.synapse-view.json`` inside the view records every entry.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

import attrs

from synapse_core.activation import FINGERPRINT, Fingerprint, link_error
from synapse_core.blobs import BlobStore
from synapse_core.conflicts import ConflictPolicy, Contender
from synapse_core.layout import StoreLayout, read_model, write_json
from synapse_core.models import LeftOut, LeftOutReason, Pack, PackLock, Profile, ViewEntry, ViewManifest
from synapse_core.ui import UIAdapter

MANIFEST = ".synapse-view.json"
_RENAME_EXCHANGE = 2


@attrs.frozen
class PackState:
    """A pack with its lock and the raw bytes of both (for fingerprints)."""

    pack: Pack
    lock: PackLock
    raw: bytes


@attrs.frozen
class BuildOutcome:
    """What a build did."""

    manifest: ViewManifest
    rebuilt: bool


def plan_view(
    adapter: UIAdapter,
    profile: Profile,
    packs: Sequence[PackState],
    policy: ConflictPolicy,
    blobs: BlobStore,
    fingerprint_value: str,
) -> ViewManifest:
    """Decide every entry of a view: folders from the adapter, conflicts by the UI's key."""
    left_out: list[LeftOut] = []
    groups: dict[tuple[str, str], list[tuple[Contender, ViewEntry]]] = {}
    folders = {kind: adapter.folder(kind) for kind in adapter.layout}
    for state in packs:
        for spec in state.pack.resources:
            locked = state.lock.resources.get(spec.id)
            folder = folders.get(spec.kind)
            reason: tuple[LeftOutReason, str] | None = None
            if folder is None:
                reason = ("unsupported_kind", f"{adapter.display_name} has no folder for {spec.kind.value}")
            elif not adapter.accepts(spec.kind, spec.expose):
                reason = ("extension_not_listed", f"{adapter.display_name} does not list {spec.expose}")
            elif not folder.recursive and "/" in spec.expose:
                reason = ("subfolder_not_listed", f"{adapter.display_name} lists only the top of {folder.folder}")
            elif locked is None or not blobs.has(locked.sha256):
                reason = ("missing_blob", f"{spec.expose} is not installed; run 'synapse install {state.pack.name}'")
            if reason is not None or folder is None or locked is None:
                assert reason is not None
                left_out.append(
                    LeftOut.model_construct(
                        pack=state.pack.name, resource_id=spec.id, reason=reason[0], detail=reason[1]
                    )
                )
                continue
            path = f"{folder.folder}/{spec.expose}"
            key = (folder.folder, adapter.conflict_key(spec.kind, spec.expose))
            contender = Contender(pack=state.pack.name, resource_id=spec.id, path=path, sha256=locked.sha256)
            # model_construct: these values come from validated models, and views can hold 20,000 entries
            entry = ViewEntry.model_construct(
                path=path, pack=state.pack.name, resource_id=spec.id, kind=spec.kind, sha256=locked.sha256, shadows=[]
            )
            groups.setdefault(key, []).append((contender, entry))
    entries = []
    taken: set[str] = set()
    for (folder_name, name), group in groups.items():
        winner_index = policy.choose(name, [c for c, _ in group]) if len(group) > 1 else 0
        winner = group[winner_index][1]
        for index, (contender, _) in enumerate(group):
            if index != winner_index:
                winner.shadows.append(contender.pack)
                detail = f"{contender.pack}'s {contender.path} is shadowed by {winner.pack} ({folder_name}: '{name}')"
                left_out.append(
                    LeftOut.model_construct(
                        pack=contender.pack, resource_id=contender.resource_id, reason="shadowed", detail=detail
                    )
                )
        if winner.path not in taken:
            taken.add(winner.path)
            entries.append(winner)
    entries.sort(key=lambda e: e.path)
    return ViewManifest.model_construct(
        schema_version=1,
        ui=adapter.name,
        profile=profile.name,
        policy=policy.name,
        fingerprint=fingerprint_value,
        entries=entries,
        left_out=left_out,
    )


class ViewBuilder:
    """Builds, swaps in and checks views under data/views/."""

    def __init__(self, layout: StoreLayout, blobs: BlobStore) -> None:
        self.layout = layout
        self.blobs = blobs

    def manifest(self, ui: str, profile: str) -> ViewManifest | None:
        """The manifest of a view, or None if the view does not exist."""
        path = self.layout.profile_view(ui, profile) / MANIFEST
        return read_model(path, ViewManifest) if path.is_file() else None

    def build(self, manifest: ViewManifest, fingerprint: Fingerprint, folders: Sequence[str] = ()) -> None:
        """Create the view in staging and swap it in; the old one is removed afterwards.

        ``folders`` are created even when empty, so a UI never creates them inside the
        view's place itself (some UIs make their model folders at start-up).
        """
        final = self.layout.profile_view(manifest.ui, manifest.profile)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = final.parent / f".staging-{manifest.profile}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            self._populate(staging, final, manifest)
            for folder in folders:
                os.makedirs(staging / folder, exist_ok=True)
            write_json(staging / MANIFEST, manifest)
            (staging / FINGERPRINT).write_text(fingerprint.text())
            swap_in(staging, final)
        except OSError as exc:
            raise link_error(exc, final) from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _populate(self, staging: Path, final: Path, manifest: ViewManifest) -> None:
        staging.mkdir()
        depth_to_data = len(final.relative_to(self.layout.data).parts)
        root = str(staging)
        made: set[str] = set()
        for entry in manifest.entries:  # plain strings: this loop runs once per file of the view
            parent, _, _ = entry.path.rpartition("/")
            if parent not in made:
                os.makedirs(f"{root}/{parent}", exist_ok=True)
                made.add(parent)
            up = "../" * (depth_to_data + parent.count("/") + 1)
            os.symlink(f"{up}blobs/sha256/{entry.sha256[:2]}/{entry.sha256}", f"{root}/{entry.path}")

    def remove(self, ui: str, profile: str) -> None:
        """Delete a view."""
        shutil.rmtree(self.layout.profile_view(ui, profile), ignore_errors=True)

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
