"""Profiles, the per-UI runtime stacks, and keeping the views of stacked profiles current."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Collection, Sequence

import attrs

from synapse_core import activation
from synapse_core.activation import GLOBAL_PROFILE, WORK_PREFIX, Stacks, work_profile_name
from synapse_core.blobs import BlobStore
from synapse_core.errors import Conflict, unknown_name
from synapse_core.layout import read_model
from synapse_core.models import Pack, PackLock, Profile
from synapse_core.plugins import PluginRegistry
from synapse_core.state import StateFiles
from synapse_core.ui import UIAdapter
from synapse_core.views import PackState, ViewBuilder, ViewPlan, plan_view


def _sorted_sets(_instance: object, _field: object, value: object) -> object:
    """Sets as sorted lists: a frozenset's repr depends on PYTHONHASHSEED, a fingerprint must not."""
    return sorted(value) if isinstance(value, set | frozenset) else value


def fingerprint(adapter: UIAdapter, policy: str, packs: Sequence[tuple[str, bytes]]) -> str:
    """A digest of everything a view depends on except blob presence: the adapter's
    layout, the policy, and each pack's name with its pack.json and lock.json bytes."""
    digest = hashlib.sha256()
    layout = sorted((k.value, repr(attrs.asdict(v, value_serializer=_sorted_sets))) for k, v in adapter.layout.items())
    digest.update(repr((type(adapter).__qualname__, layout, policy)).encode())
    for name, raw in packs:
        digest.update(b"\0" + name.encode() + b"\0" + raw)
    return digest.hexdigest()


class ProfileService:
    """Profiles (global and work__<Pack>), the runtime stacks, and their views."""

    def __init__(
        self, files: StateFiles, blobs: BlobStore, views: ViewBuilder, registry: Callable[[], PluginRegistry]
    ) -> None:
        self.files = files
        self.layout = files.layout
        self.blobs = blobs
        self.views = views
        self._registry = registry

    @property
    def registry(self) -> PluginRegistry:
        """The plugins (loaded on first use)."""
        return self._registry()

    # -- profiles ----------------------------------------------------------------

    def work_profile(self, pack: str) -> Profile:
        """global's packs with ``pack`` moved to the end (so it wins every conflict)."""
        base = self.files.profile(GLOBAL_PROFILE)
        name = work_profile_name(pack)
        existing = self.files.profile(name) if self.files.has_profile(name) else None
        conflicts = existing.conflicts if existing else base.conflicts
        packs = [p for p in base.packs if p != pack] + ([pack] if self.files.has_pack(pack) else [])
        return Profile(name=name, conflicts=conflicts, packs=packs)

    def refresh_work_profiles(self) -> None:
        """Re-derive every work profile from global; drop those of removed packs no UI stacks."""
        stacked = {p for stack in activation.read_stacks(self.layout).values() for p in stack}
        for name in self.files.profile_names():
            if not name.startswith(WORK_PREFIX):
                continue
            pack = name[len(WORK_PREFIX) :]
            if not self.files.has_pack(pack) and name not in stacked:
                self.files.delete_profile(name)
                continue
            updated = self.work_profile(pack)
            if updated != self.files.profile(name):
                self.files.save_profile(updated)

    # -- views -------------------------------------------------------------------

    def _pack_states(self, names: Sequence[str]) -> list[PackState]:
        states = []
        for name, raw in activation.pack_bytes(self.layout, names):
            lock_path = self.layout.lock_file_of(name)
            pack = read_model(self.layout.pack_file(name), Pack)
            lock = read_model(lock_path, PackLock) if lock_path.is_file() else PackLock()
            states.append(PackState(pack=pack, lock=lock, raw=raw))
        return states

    def view_digest(self, ui: str, profile_name: str) -> str:
        """The fingerprint the view of ``profile_name`` for ``ui`` should have now."""
        profile = self.files.profile(profile_name)
        raw = activation.pack_bytes(self.layout, profile.packs)
        return fingerprint(self.registry.ui(ui), profile.conflicts.policy, raw)

    def is_current(self, ui: str, profile_name: str) -> bool:
        """Whether the view exists, matches its inputs, and no missing blob has arrived since."""
        recorded = activation.read_fingerprint(self.layout, ui, profile_name)
        if recorded is None or recorded.digest != self.view_digest(ui, profile_name):
            return False
        return not any(self.blobs.has(sha) for sha in recorded.missing)

    def _plugin_of(self, ui: str) -> tuple[str, str | None]:
        """The plugin (entry-point name) that provides a UI's adapter, and its version."""
        name = self.registry.provider_of("ui", ui) or "<builtin>"
        record = next((r for r in self.registry.records if r.name == name), None)
        if record is None or record.builtin:
            return "<builtin>", activation.plugin_versions()["<builtin>"]
        return name, record.version

    def ensure_view(self, ui: str, profile_name: str, force: bool = False) -> ViewPlan | None:
        """Build the view of ``profile_name`` for ``ui`` unless it is already current."""
        if not force and self.is_current(ui, profile_name):
            return None
        adapter = self.registry.ui(ui)
        profile = self.files.profile(profile_name)
        states = self._pack_states(profile.packs)
        raw = [(s.pack.name, s.raw) for s in states]
        digest = fingerprint(adapter, profile.conflicts.policy, raw)
        policy = self.registry.policy(profile.conflicts.policy)
        plan = plan_view(adapter, profile, states, policy, self.blobs, digest)
        missing = plan.missing_blobs(states)
        folders = sorted({f.folder for kind in adapter.layout if (f := adapter.folder(kind)) is not None})
        quick = activation.quick_key(self.layout, profile.conflicts.policy, profile.packs, *self._plugin_of(ui))
        self.views.build(plan, activation.Fingerprint(digest, quick, tuple(missing)), folders)
        return plan

    @staticmethod
    def stacked_profiles(stacks: Stacks, ui: str) -> list[str]:
        """Profiles whose views must stay current for ``ui``: global and everything on its stack."""
        return list(dict.fromkeys([GLOBAL_PROFILE, *stacks.get(ui, [])]))

    def refresh_views(self, force: bool = False) -> None:
        """Bring every stacked view of every installed UI up to date; repoint ``active``."""
        stacks = activation.read_stacks(self.layout)
        before = {ui: list(stack) for ui, stack in stacks.items()}
        for ui in self.installed_uis():
            stack = stacks.setdefault(ui, [GLOBAL_PROFILE])
            for profile in self.stacked_profiles(stacks, ui):
                if self.files.has_profile(profile):
                    self.ensure_view(ui, profile, force=force)
            if activation.active_target(self.layout, ui) != f"profiles/{stack[-1]}":
                activation.point_active(self.layout, ui, stack[-1])
        if stacks != before or not self.layout.runtime_file.is_file():
            activation.write_stacks(self.layout, stacks)

    def prune_unstacked_views(self) -> list[str]:
        """Delete views of profiles no UI stacks (they are rebuilt on the next `use`)."""
        stacks = activation.read_stacks(self.layout)
        removed = []
        for ui_dir in sorted(self.layout.views_dir.glob("*/profiles")):
            ui = ui_dir.parent.name
            keep = set(self.stacked_profiles(stacks, ui))
            for view in sorted(ui_dir.iterdir()):
                if view.name not in keep and not view.name.startswith("."):
                    shutil.rmtree(view, ignore_errors=True)
                    removed.append(f"{ui}/{view.name}")
        return removed

    def installed_uis(self) -> list[str]:
        """UIs with an installed adapter (those in runtime.json without one are left alone)."""
        return sorted(self.registry.ui_adapters)

    # -- use / back --------------------------------------------------------------

    def select_uis(self, uis: Sequence[str], ui_set: str | None, known: Collection[str] | None = None) -> list[str]:
        """The UIs a command acts on (``known`` defaults to the installed UI adapters)."""
        return activation.select_uis(self.layout, uis, ui_set, self.registry.ui_adapters if known is None else known)

    def use(self, pack: str, uis: Sequence[str]) -> Stacks:
        """Create/refresh work__<pack>, build its view for each UI, switch ``active``, push it."""
        if not self.files.has_pack(pack):
            raise unknown_name("pack", pack, self.files.pack_names())
        profile = self.work_profile(pack)
        self.files.save_profile(profile)
        stacks = activation.read_stacks(self.layout)
        for ui in uis:
            self.ensure_view(ui, profile.name)
        for ui in uis:
            stack = stacks.setdefault(ui, [GLOBAL_PROFILE])
            if stack[-1] != profile.name:
                stack.append(profile.name)
            activation.point_active(self.layout, ui, profile.name)
        activation.write_stacks(self.layout, stacks)
        return stacks

    def back(self, uis: Sequence[str]) -> Stacks:
        """Pop each UI's stack and switch ``active`` to the new top (building a missing view)."""
        stacks = activation.read_stacks(self.layout)
        movable = [ui for ui in uis if len(stacks.get(ui, [])) > 1]
        if not movable:
            where = ", ".join(f"{ui} is on '{stacks.get(ui, [GLOBAL_PROFILE])[-1]}'" for ui in uis)
            raise Conflict(f"{where}: there is nothing to go back to")
        for ui in movable:
            stacks[ui].pop()
            if activation.read_fingerprint(self.layout, ui, stacks[ui][-1]) is None:
                self.ensure_view(ui, stacks[ui][-1])
            activation.point_active(self.layout, ui, stacks[ui][-1])
        activation.write_stacks(self.layout, stacks)
        return stacks
