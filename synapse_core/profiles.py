"""Profiles, the per-UI runtime stack, and keeping the views of stacked profiles current."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from synapse_core.blobs import BlobStore
from synapse_core.errors import Conflict, InvalidInput, unknown_name
from synapse_core.layout import read_model
from synapse_core.models import Pack, PackLock, Profile, Runtime, UIRuntime
from synapse_core.plugins import PluginRegistry
from synapse_core.state import GLOBAL_PROFILE, WORK_PREFIX, StateFiles, work_profile_name
from synapse_core.views import BuildOutcome, PackState, ViewBuilder, fingerprint, plan_view


class ProfileService:
    """Profiles (global and work__<Pack>), the runtime stacks, and their views."""

    def __init__(
        self, files: StateFiles, blobs: BlobStore, views: ViewBuilder, registry: Callable[[], PluginRegistry]
    ) -> None:
        self.files = files
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
        """Re-derive every existing work profile from global (after imports and removals)."""
        for name in self.files.profile_names():
            if name.startswith(WORK_PREFIX):
                updated = self.work_profile(name[len(WORK_PREFIX) :])
                if updated != self.files.profile(name):
                    self.files.save_profile(updated)

    # -- views -------------------------------------------------------------------

    def _pack_states(self, names: Sequence[str]) -> list[PackState]:
        states = []
        for name in names:
            layout = self.files.layout
            raw_pack = layout.pack_file(name).read_bytes()
            lock_path = layout.lock_file_of(name)
            raw_lock = lock_path.read_bytes() if lock_path.is_file() else b""
            pack = read_model(layout.pack_file(name), Pack)
            lock = read_model(lock_path, PackLock) if raw_lock else PackLock()
            states.append(PackState(pack=pack, lock=lock, raw=raw_pack + b"\0" + raw_lock))
        return states

    def ensure_view(self, ui: str, profile_name: str, force: bool = False) -> BuildOutcome | None:
        """Build the view of ``profile_name`` for ``ui`` unless it is already current."""
        adapter = self.registry.ui(ui)
        profile = self.files.profile(profile_name)
        states = self._pack_states([p for p in profile.packs if self.files.has_pack(p)])
        digest = fingerprint(adapter, profile, states)
        if not force and self.views.is_current(ui, profile_name, digest):
            return None
        policy = self.registry.policy(profile.conflicts.policy)
        manifest = plan_view(adapter, profile, states, policy, self.blobs, digest)
        missing = sorted(
            {
                s.lock.resources[o.resource_id].sha256
                for s in states
                for o in manifest.left_out
                if o.pack == s.pack.name and o.reason == "missing_blob" and o.resource_id in s.lock.resources
            }
        )
        folders = sorted({f.folder for kind in adapter.layout if (f := adapter.folder(kind)) is not None})
        self.views.build(manifest, missing, folders)
        return BuildOutcome(manifest=manifest, rebuilt=True)

    def stacked_profiles(self, runtime: Runtime, ui: str) -> list[str]:
        """Profiles whose views must stay current for ``ui``: global and everything on its stack."""
        stack = runtime.ui.get(ui, UIRuntime()).stack
        return list(dict.fromkeys([GLOBAL_PROFILE, *stack]))

    def refresh_views(self, force: bool = False) -> None:
        """Bring every stacked view of every installed UI up to date; repoint ``active``."""
        runtime = self.files.runtime()
        for ui in self.installed_uis():
            runtime.ui.setdefault(ui, UIRuntime())
            for profile in self.stacked_profiles(runtime, ui):
                if self.files.has_profile(profile):
                    self.ensure_view(ui, profile, force=force)
            top = runtime.ui[ui].stack[-1]
            if self.views.active_target(ui) != f"profiles/{top}":
                self.views.point_active(ui, top)
        self.files.save_runtime(runtime)

    def installed_uis(self) -> list[str]:
        """UIs with an installed adapter (those in runtime.json without one are left alone)."""
        return sorted(self.registry.ui_adapters)

    # -- use / back --------------------------------------------------------------

    def select_uis(self, uis: Sequence[str], ui_set: str | None, known: Collection[str] | None = None) -> list[str]:
        """The UIs a command acts on: --ui names, else a UI set (default: config's default set).

        ``known`` defaults to the installed UI adapters.
        """
        if uis and ui_set:
            raise InvalidInput("give --ui or --ui-set, not both")
        known = self.registry.ui_adapters if known is None else known
        if uis:
            for ui in uis:
                if ui not in known:
                    raise unknown_name("UI", ui, known)
            return list(dict.fromkeys(uis))
        sets = self.files.ui_sets().sets
        name = ui_set or self.files.config().default_ui_set
        if name not in sets:
            raise unknown_name("UI set", name, sets)
        chosen = [ui for ui in sets[name] if ui in known]
        if not chosen:
            raise InvalidInput(f"UI set '{name}' names no installed UI; install a UI plugin or edit state/ui_sets.json")
        return chosen

    def use(self, pack: str, uis: Sequence[str]) -> Runtime:
        """Create/refresh work__<pack>, build its view for each UI, switch ``active``, push it."""
        self.files.pack(pack)  # NotFound with close names
        profile = self.work_profile(pack)
        self.files.save_profile(profile)
        runtime = self.files.runtime()
        for ui in uis:
            self.ensure_view(ui, profile.name)
        for ui in uis:
            stack = runtime.ui.setdefault(ui, UIRuntime()).stack
            if stack[-1] != profile.name:
                stack.append(profile.name)
            self.views.point_active(ui, profile.name)
        self.files.save_runtime(runtime)
        return runtime

    def back(self, uis: Sequence[str]) -> Runtime:
        """Pop each UI's stack and switch ``active`` to the new top."""
        runtime = self.files.runtime()
        for ui in uis:
            stack = runtime.ui.get(ui, UIRuntime()).stack
            if len(stack) <= 1:
                raise Conflict(
                    f"{ui} is on '{stack[-1] if stack else GLOBAL_PROFILE}' already; there is nothing to go back to"
                )
        for ui in uis:
            stack = runtime.ui[ui].stack
            stack.pop()
            if not self.views.exists(ui, stack[-1]):
                self.ensure_view(ui, stack[-1])
            self.views.point_active(ui, stack[-1])
        self.files.save_runtime(runtime)
        return runtime
