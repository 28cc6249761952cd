"""Profiles: global (every pack, in import order) and the profiles derived from it.

A work profile ``work__<Pack>`` is derived: global's packs with that pack moved to the end,
so it wins every conflict under ``last_wins``. Its file names its base and its top pack, not
a copy of global's list, so importing a pack changes one profile file, not one per work
profile. Packs in global's own ``top`` (the files UIs wrote, ``saved-<ui>``) always come last.
"""

from __future__ import annotations

from synapse_core.errors import SynapseError
from synapse_core.models import Profile
from synapse_core.results import ProfileInfo
from synapse_core.state import GLOBAL_PROFILE, WORK_PREFIX, Stacks, StateFiles, work_profile_name


class ProfileService:
    """Changes to global and to the derived profiles when packs come and go."""

    def __init__(self, files: StateFiles) -> None:
        self.files = files

    def global_profile(self) -> Profile:
        """state/profiles/global/profile.json"""
        if not self.files.has_profile(GLOBAL_PROFILE):
            raise SynapseError("the global profile is missing; run 'synapse doctor --fix'")
        return self.files.profile(GLOBAL_PROFILE)

    def add(self, names: list[str], *, always_last: bool = False) -> None:
        """Append packs to global (``always_last``: they also win every conflict in every profile)."""
        profile = self.global_profile()
        before = profile.model_copy(deep=True)
        profile.packs += [n for n in names if n not in profile.packs]
        if always_last:
            profile.top += [n for n in names if n not in profile.top]
        if profile != before:
            self.files.save_profile(profile)

    def remove_pack(self, name: str) -> list[str]:
        """Take a removed pack out of every profile and delete its work profile; returns the
        profiles that changed."""
        changed = []
        for profile_name in self.files.profile_names():
            if profile_name == work_profile_name(name):
                self.files.delete_profile(profile_name)
                changed.append(profile_name)
                continue
            profile = self.files.profile(profile_name)
            if name in profile.packs or name in profile.top or any(a.pack == name for a in profile.aliases):
                profile.packs = [p for p in profile.packs if p != name]
                profile.top = [p for p in profile.top if p != name]
                profile.aliases = [a for a in profile.aliases if a.pack != name]
                self.files.save_profile(profile)
                changed.append(profile_name)
        return changed

    def prune_work_profiles(self, stacks: Stacks) -> list[str]:
        """Delete work profiles whose pack is gone and that no UI stacks."""
        stacked = {p for stack in stacks.values() for p in stack}
        removed = []
        for name in self.files.profile_names():
            if name.startswith(WORK_PREFIX) and name not in stacked:
                found = self.files.profile_data(name)
                if found is not None and not any(self.files.has_pack(p) for p in found.top):
                    self.files.delete_profile(name)
                    removed.append(name)
        return removed

    def info(self, name: str, stacks: Stacks) -> ProfileInfo:
        """A profile, its packs in order and where it is in use."""
        found = self.files.profile_order(name)
        if found is None:
            self.files.profile(name)  # raises NotFound with close names
            raise AssertionError("unreachable")
        profile, order = found
        return ProfileInfo(
            name=name,
            policy=profile.policy,
            packs=order,
            active_in=sorted(ui for ui, stack in stacks.items() if stack[-1] == name),
            stacked_in=sorted(ui for ui, stack in stacks.items() if name in stack),
        )
