"""The one reader and writer of the store's state files, in a light and a full form.

The light form reads runtime.json, ui_sets.json, config.json's default UI set and profiles
with the standard library and checks them for the shape their models define, so switching
(``use``/``back``) never imports pydantic; a file of any other shape is handed to its model,
whose error names the file and the field. The full form returns the pydantic models.

While a command changes state, :class:`StateFiles` records what it wrote (:attr:`touched`),
so the state commit stages only those paths and the views update only the packs that changed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from synapse_core.errors import unknown_name
from synapse_core.layout import StoreLayout, read_model, write_bytes_atomic, write_json
from synapse_core.names import problem_with_name

if TYPE_CHECKING:
    from synapse_core.models import Config, Pack, PackLock, Profile, Runtime, UISets

GLOBAL_PROFILE = "global"
WORK_PREFIX = "work__"
RUNTIME_SCHEMA = 2
Stacks = dict[str, list[str]]


def work_profile_name(pack: str) -> str:
    """The work profile of a pack: global with that pack moved to the end."""
    return f"{WORK_PREFIX}{pack}"


class ProfileData(NamedTuple):
    """A profile in its light form: enough to order its packs and plan its views."""

    name: str
    packs: tuple[str, ...]
    """Explicit packs (global, or a hand-made profile)."""
    base: str | None
    """A derived profile: the packs of ``base``, then :attr:`top` moved to the end."""
    top: tuple[str, ...]
    """Packs moved to the end, in this order (in global: files UIs wrote, which always win)."""
    policy: str
    aliases: tuple[Mapping[str, str], ...]
    """Extra names for resources (models.Alias records)."""


def effective_order(profile: ProfileData, base: ProfileData | None) -> list[str]:
    """A profile's packs in the order conflicts are decided (a later pack wins under last_wins).

    A derived profile takes its base's order with its own ``top`` packs moved to the end; the
    base's ``top`` (packs that always win) stays last. Only packs of the base are kept.
    """
    if profile.base is None or base is None:
        top = [p for p in profile.top if p in profile.packs]
        return [p for p in profile.packs if p not in top] + top
    base_order = effective_order(base, None)
    always = [p for p in base.top if p in base_order]
    moved = [p for p in profile.top if p in base_order and p not in always]
    return [p for p in base_order if p not in moved and p not in always] + moved + always


# -- light form: shapes -------------------------------------------------------------------------


def _is_str_list(value: Any, non_empty: bool = False) -> bool:
    return isinstance(value, list) and (bool(value) or not non_empty) and all(isinstance(v, str) for v in value)


def _runtime_ok(data: Any) -> bool:
    if (
        not isinstance(data, dict)
        or set(data) - {"schema_version", "ui"}
        or data.get("schema_version") != RUNTIME_SCHEMA
    ):
        return False
    uis = data.get("ui")
    return isinstance(uis, dict) and all(
        isinstance(entry, dict)
        and set(entry) == {"stack"}
        and _is_str_list(entry["stack"], non_empty=True)
        and all(problem_with_name(p) is None for p in entry["stack"])
        for entry in uis.values()
    )


def _profile_ok(data: Any) -> bool:
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return False
    if not _is_str_list(data.get("packs", [])) or not _is_str_list(data.get("top", [])):
        return False
    if not isinstance(data.get("base"), str | None) or not isinstance(data.get("aliases", []), list):
        return False
    if not all(isinstance(a, dict) and all(isinstance(v, str) for v in a.values()) for a in data.get("aliases", [])):
        return False
    conflicts = data.get("conflicts", {"policy": "last_wins"})
    return isinstance(conflicts, dict) and isinstance(conflicts.get("policy", "last_wins"), str)


def _sets_ok(data: Any) -> bool:
    sets = data.get("sets") if isinstance(data, dict) else None
    return isinstance(sets, dict) and all(_is_str_list(v) for v in sets.values())


def _config_ok(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("default_ui_set", "default"), str)


def _load(path: Path, shape_ok: Callable[[Any], bool], model_name: str) -> Any:
    """JSON of the expected shape, or the model's precise error (StateFileInvalid)."""
    try:
        data = json.loads(path.read_bytes())
    except ValueError:
        data = None
    if shape_ok(data):
        return data
    from synapse_core import models

    return read_model(path, getattr(models, model_name)).model_dump(mode="json")


class StateFiles:
    """Typed access to config, UI sets, packs, locks, profiles and the runtime stacks."""

    def __init__(self, layout: StoreLayout) -> None:
        self.layout = layout
        self.touched: set[Path] | None = None
        """While a command changes state: the state paths it wrote or deleted (packs and
        profiles as their folders)."""

    def _touch(self, path: Path) -> None:
        if self.touched is not None:
            self.touched.add(path)

    def touched_packs(self) -> set[str]:
        """Names of the packs written or deleted since tracking began."""
        if not self.touched:
            return set()
        return {p.name for p in self.touched if p.parent == self.layout.packs_dir}

    # -- the light form (no pydantic) -------------------------------------------------------

    def stacks(self) -> Stacks:
        """Each UI's profile stack from data/runtime.json (empty when there is none)."""
        if not self.layout.runtime_file.is_file():
            return {}
        data = _load(self.layout.runtime_file, _runtime_ok, "Runtime")
        return {ui: list(entry["stack"]) for ui, entry in data["ui"].items()}

    def save_stacks(self, stacks: Mapping[str, Sequence[str]]) -> None:
        """Replace data/runtime.json (the shape of models.Runtime)."""
        data = {"schema_version": RUNTIME_SCHEMA, "ui": {ui: {"stack": list(s)} for ui, s in sorted(stacks.items())}}
        write_bytes_atomic(self.layout.runtime_file, (json.dumps(data, indent=2) + "\n").encode())

    def profile_data(self, name: str) -> ProfileData | None:
        """A profile in its light form, or None if it does not exist."""
        if problem_with_name(name) is not None:
            return None
        path = self.layout.profile_file(name)
        if not path.is_file():
            return None
        data = _load(path, _profile_ok, "Profile")
        return ProfileData(
            name=name,
            packs=tuple(data.get("packs", [])),
            base=data.get("base"),
            top=tuple(data.get("top", [])),
            policy=str(data.get("conflicts", {}).get("policy", "last_wins")),
            aliases=tuple(data.get("aliases", [])),
        )

    def profile_order(self, name: str) -> tuple[ProfileData, list[str]] | None:
        """A profile and its packs in the order conflicts are decided, or None."""
        profile = self.profile_data(name)
        if profile is None:
            return None
        base = self.profile_data(profile.base) if profile.base else None
        return profile, effective_order(profile, base)

    def ui_set_names(self) -> dict[str, list[str]]:
        """state/ui_sets.json's sets."""
        sets: dict[str, list[str]] = _load(self.layout.ui_sets_file, _sets_ok, "UISets")["sets"]
        return sets

    def default_ui_set(self) -> str:
        """The UI set commands act on when none is given."""
        return str(_load(self.layout.config_file, _config_ok, "Config").get("default_ui_set", "default"))

    # -- the full form ----------------------------------------------------------------------

    def config(self) -> Config:
        """state/config.json"""
        from synapse_core.models import Config

        return read_model(self.layout.config_file, Config)

    def save_config(self, config: Config) -> None:
        """Write state/config.json."""
        write_json(self.layout.config_file, config)
        self._touch(self.layout.config_file)

    def ui_sets(self) -> UISets:
        """state/ui_sets.json"""
        from synapse_core.models import UISets

        return read_model(self.layout.ui_sets_file, UISets)

    def save_ui_sets(self, sets: UISets) -> None:
        """Write state/ui_sets.json."""
        write_json(self.layout.ui_sets_file, sets)
        self._touch(self.layout.ui_sets_file)

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
        from synapse_core.models import Pack

        if not self.has_pack(name):
            raise unknown_name("pack", name, self.pack_names())
        return read_model(self.layout.pack_file(name), Pack)

    def lock(self, name: str) -> PackLock:
        """state/packs/<name>/lock.json (empty if absent)."""
        from synapse_core.models import PackLock

        path = self.layout.lock_file_of(name)
        return read_model(path, PackLock) if path.is_file() else PackLock()

    def save_pack(self, pack: Pack, lock: PackLock | None = None) -> None:
        """Write pack.json (and lock.json when given)."""
        write_json(self.layout.pack_file(pack.name), pack, sync=self.layout.durable)
        if lock is not None:
            write_json(self.layout.lock_file_of(pack.name), lock, sync=self.layout.durable)
        self._touch(self.layout.pack_dir(pack.name))

    def touch_pack(self, name: str) -> None:
        """Record that something else under a pack's folder changed (its previews)."""
        self._touch(self.layout.pack_dir(name))

    def delete_pack(self, name: str) -> None:
        """Remove a pack's folder from state/ (a symlink in its place: the link only)."""
        folder = self.layout.pack_dir(name)
        if folder.is_symlink():
            folder.unlink()
        else:
            shutil.rmtree(folder)
        self._touch(folder)

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
        from synapse_core.models import Profile

        if not self.has_profile(name):
            raise unknown_name("profile", name, self.profile_names())
        return read_model(self.layout.profile_file(name), Profile)

    def save_profile(self, profile: Profile) -> None:
        """Write a profile."""
        write_json(self.layout.profile_file(profile.name), profile, sync=self.layout.durable)
        self._touch(self.layout.profile_file(profile.name).parent)

    def delete_profile(self, name: str) -> None:
        """Remove a profile's folder."""
        shutil.rmtree(self.layout.profile_file(name).parent, ignore_errors=True)
        self._touch(self.layout.profile_file(name).parent)

    def runtime(self) -> Runtime:
        """data/runtime.json (empty if absent)."""
        from synapse_core.models import Runtime

        path = self.layout.runtime_file
        return read_model(path, Runtime) if path.is_file() else Runtime()
