"""Reading and writing the store's JSON files through their models."""

from __future__ import annotations

import shutil

from synapse_core.activation import GLOBAL_PROFILE, WORK_PREFIX, work_profile_name
from synapse_core.errors import unknown_name
from synapse_core.layout import StoreLayout, read_model, write_json
from synapse_core.models import Config, Pack, PackLock, Profile, Runtime, UISets
from synapse_core.names import problem_with_name

__all__ = ["GLOBAL_PROFILE", "WORK_PREFIX", "StateFiles", "work_profile_name"]


class StateFiles:
    """Typed access to config, UI sets, packs, locks, profiles and the runtime stack."""

    def __init__(self, layout: StoreLayout) -> None:
        self.layout = layout

    def config(self) -> Config:
        """state/config.json"""
        return read_model(self.layout.config_file, Config)

    def save_config(self, config: Config) -> None:
        """Write state/config.json."""
        write_json(self.layout.config_file, config)

    def ui_sets(self) -> UISets:
        """state/ui_sets.json"""
        return read_model(self.layout.ui_sets_file, UISets)

    def save_ui_sets(self, sets: UISets) -> None:
        """Write state/ui_sets.json."""
        write_json(self.layout.ui_sets_file, sets)

    def pack_names(self) -> list[str]:
        """Every pack, sorted by name."""
        if not self.layout.packs_dir.is_dir():
            return []
        return sorted(p.parent.name for p in self.layout.packs_dir.glob("*/pack.json"))

    def has_pack(self, name: str) -> bool:
        """Whether a pack of that name exists (a name that is a path never does)."""
        return problem_with_name(name) is None and self.layout.pack_file(name).is_file()

    def pack(self, name: str) -> Pack:
        """state/packs/<name>/pack.json, or a NotFound listing close names."""
        if not self.has_pack(name):
            raise unknown_name("pack", name, self.pack_names())
        return read_model(self.layout.pack_file(name), Pack)

    def lock(self, name: str) -> PackLock:
        """state/packs/<name>/lock.json (empty if absent)."""
        path = self.layout.lock_file_of(name)
        return read_model(path, PackLock) if path.is_file() else PackLock()

    def save_pack(self, pack: Pack, lock: PackLock | None = None) -> None:
        """Write pack.json (and lock.json when given)."""
        write_json(self.layout.pack_file(pack.name), pack)
        if lock is not None:
            write_json(self.layout.lock_file_of(pack.name), lock)

    def delete_pack(self, name: str) -> None:
        """Remove a pack's folder from state/."""
        shutil.rmtree(self.layout.pack_dir(name))

    def profile_names(self) -> list[str]:
        """Every profile, global first."""
        if not self.layout.profiles_dir.is_dir():
            return []
        names = sorted(p.parent.name for p in self.layout.profiles_dir.glob("*/profile.json"))
        return sorted(names, key=lambda n: n != GLOBAL_PROFILE)

    def has_profile(self, name: str) -> bool:
        """Whether a profile of that name exists (a name that is a path never does)."""
        return problem_with_name(name) is None and self.layout.profile_file(name).is_file()

    def profile(self, name: str) -> Profile:
        """state/profiles/<name>/profile.json"""
        if not self.has_profile(name):
            raise unknown_name("profile", name, self.profile_names())
        return read_model(self.layout.profile_file(name), Profile)

    def save_profile(self, profile: Profile) -> None:
        """Write a profile."""
        write_json(self.layout.profile_file(profile.name), profile)

    def delete_profile(self, name: str) -> None:
        """Remove a profile's folder."""
        shutil.rmtree(self.layout.profile_file(name).parent, ignore_errors=True)

    def runtime(self) -> Runtime:
        """data/runtime.json (empty if absent)."""
        path = self.layout.runtime_file
        return read_model(path, Runtime) if path.is_file() else Runtime()
