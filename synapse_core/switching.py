"""``use`` and ``back``: the one place that decides them, in a light and a full form.

Both forms run the same steps: choose the UIs, decide each UI's new stack, make sure the view
to land on is current, repoint ``active``, save the stacks. The light form (no views given)
imports no pydantic and loads no plugin: it answers None as soon as a step needs more (a view
to build, a UI it does not know, a command to recover, files a UI wrote), and the caller runs
the full form, which can do everything. So ``back``, and ``use`` of a view already built, cost
about as much as starting Python.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from synapse_core.errors import Conflict, InvalidInput, unknown_name
from synapse_core.layout import StoreLayout, StoreLock, write_bytes_atomic
from synapse_core.migration import STORE_SCHEMA, store_schema
from synapse_core.state import GLOBAL_PROFILE, Stacks, StateFiles, work_profile_name
from synapse_core.viewmarks import active_target, point_active, read_fingerprint, view_is_current

if TYPE_CHECKING:
    from synapse_core.views import ViewService


def choose_uis(
    uis: Sequence[str], ui_set: str | None, known: Collection[str], sets: Mapping[str, Sequence[str]], default: str
) -> list[str]:
    """The UIs a command acts on: --ui names, else a UI set (``default`` when none is given)."""
    if uis and ui_set:
        raise InvalidInput("give --ui or --ui-set, not both")
    if uis:
        for ui in uis:
            if ui not in known:
                raise unknown_name("UI", ui, known)
        return list(dict.fromkeys(uis))
    name = ui_set or default
    if name not in sets:
        raise unknown_name("UI set", name, sets)
    chosen = [ui for ui in sets[name] if ui in known]
    if not chosen:
        raise InvalidInput(f"UI set '{name}' names no installed UI; install a UI plugin or edit state/ui_sets.json")
    return chosen


def plugins_file(layout: StoreLayout) -> str:
    """data/plugins.json: the plugins (entry-point name and version) the views were made with."""
    return str(layout.data / "plugins.json")


def installed_plugins() -> dict[str, str]:
    """Installed plugins by entry-point name, with their versions, from the entry-point cache (no imports)."""
    from synapse_core import __version__
    from synapse_core.entry_points import discover_entry_points

    allow = os.environ.get("SYNAPSE_LOAD_PLUGINS")
    allowed = None if allow is None else {n.strip() for n in allow.split(",") if n.strip()}
    blocked = {n.strip() for n in os.environ.get("SYNAPSE_DISABLE_PLUGINS", "").split(",") if n.strip()}
    found = {
        ep.name: ep.version or "?"
        for ep in discover_entry_points()
        if (allowed is None or ep.name in allowed) and ep.name not in blocked
    }
    found["<builtin>"] = __version__
    return found


def record_plugins(layout: StoreLayout, plugins: Mapping[str, str]) -> None:
    """Remember which plugins the views were made with (a new one sends switching the full way)."""
    data = (json.dumps(dict(sorted(plugins.items())), indent=2) + "\n").encode()
    with contextlib.suppress(OSError):
        if Path(plugins_file(layout)).read_bytes() == data:
            return
    write_bytes_atomic(Path(plugins_file(layout)), data, sync=False)


class Switcher:
    """Decides and makes ``use`` and ``back``; ``views`` is None for the light form."""

    def __init__(
        self,
        layout: StoreLayout,
        files: StateFiles,
        lock: StoreLock,
        views: ViewService | None = None,
        known_uis: Callable[[], Collection[str]] | None = None,
    ) -> None:
        self.layout = layout
        self.files = files
        self.lock = lock
        self.views = views
        self._known_uis = known_uis

    @property
    def light(self) -> bool:
        """Whether this is the light form (no plugins, no pydantic)."""
        return self.views is None

    # -- the steps ----------------------------------------------------------------------------

    def _ready(self) -> bool:
        """The light form handles nothing after a killed command or with new plugins installed."""
        if self.layout.mutation_marker.exists() or store_schema(self.layout) != STORE_SCHEMA:
            return False  # the full form recovers, or migrates a store written by older code
        try:
            recorded = json.loads(Path(plugins_file(self.layout)).read_bytes())
        except (OSError, ValueError):
            return False
        return bool(recorded == installed_plugins())

    def _choose(self, uis: Sequence[str], ui_set: str | None, stacks: Stacks) -> list[str] | None:
        known = set(self._known_uis()) if self._known_uis else set(stacks)
        if self.light and any(ui not in known for ui in uis):
            return None  # a UI whose plugin came after the last full run: the full form knows it
        return choose_uis(uis, ui_set, known, self.files.ui_set_names(), self.files.default_ui_set())

    def choose(self, uis: Sequence[str], ui_set: str | None) -> list[str]:
        """The UIs a command acts on (the full form: every installed UI is known)."""
        chosen = self._choose(uis, ui_set, self.files.stacks())
        assert chosen is not None
        return chosen

    def use_profile(self, pack: str) -> str:
        """Check the pack exists and write its work profile if needed (the full form, inside a
        mutation); returns the profile's name."""
        if not self.files.has_pack(pack):
            raise unknown_name("pack", pack, self.files.pack_names())
        name = work_profile_name(pack)
        self._work_profile_ready(pack, name)
        return name

    def _current(self, ui: str, profile: str) -> bool:
        """Whether the view to land on is current; the full form makes it so."""
        if self.views is not None:
            self.views.ensure(ui, profile)
            return True
        fingerprint = read_fingerprint(self.layout.profile_view(ui, profile))
        if fingerprint is None:
            return False
        name, _, version = fingerprint.plugin.rpartition("==")
        if installed_plugins().get(name) != version:
            return False
        return view_is_current(self.layout, ui, profile, fingerprint.plugin, self._has_blob)

    def _untouched(self, ui: str, profile: str) -> bool:
        """Whether nothing was written into the view being left since Synapse wrote it (else the
        full form keeps what the UI wrote before switching)."""
        if self.views is not None:
            return True
        root = self.layout.profile_view(ui, profile)
        fingerprint = read_fingerprint(root)
        if fingerprint is None:
            return False
        for folder, mtime in fingerprint.dirs.items():
            try:
                if os.stat(root / folder if folder else root).st_mtime_ns != mtime:
                    return False
            except OSError:
                return False
        return True

    def _has_blob(self, sha256: str) -> bool:
        return os.path.isfile(self.layout.blob_path(sha256))

    def _switch(self, stacks: Stacks, targets: Mapping[str, list[str]]) -> Stacks | None:
        """Check every UI can land, then repoint ``active`` and save the stacks."""
        for ui, stack in targets.items():
            if self.light and active_target(self.layout, ui) != f"profiles/{stacks[ui][-1]}":
                return None  # active does not show the top of the stack: the full form repairs it
            if not self._untouched(ui, stacks[ui][-1]) or not self._current(ui, stack[-1]):
                return None
        for ui, stack in targets.items():
            stacks[ui] = stack
            point_active(self.layout, ui, stack[-1])
        self.files.save_stacks(stacks)
        return {ui: stacks[ui] for ui in targets}

    # -- use and back -------------------------------------------------------------------------

    def use(self, pack: str, uis: Sequence[str] = (), ui_set: str | None = None) -> Stacks | None:
        """Switch the chosen UIs to work__<pack> (pushed once on each stack)."""
        name = work_profile_name(pack)

        def ready() -> bool:
            if not self.files.has_pack(pack):
                raise unknown_name("pack", pack, self.files.pack_names())
            return self._work_profile_ready(pack, name)

        return self._push(name, uis, ui_set, ready)

    def use_named(self, name: str, uis: Sequence[str] = (), ui_set: str | None = None) -> Stacks | None:
        """Switch the chosen UIs to an existing profile (a workflow's, written by ``use --for``)."""

        def ready() -> bool:
            if self.files.profile_data(name) is None:
                raise unknown_name("profile", name, self.files.profile_names())
            return True

        return self._push(name, uis, ui_set, ready)

    def _push(self, name: str, uis: Sequence[str], ui_set: str | None, ready: Callable[[], bool]) -> Stacks | None:
        """Push profile ``name`` once on each chosen UI's stack, once ``ready()`` says it can be."""
        self.layout.require_initialised()
        with self.lock.hold():
            if self.light and not self._ready():
                return None
            stacks = self.files.stacks()
            chosen = self._choose(uis, ui_set, stacks)
            if chosen is None or not ready():
                return None
            targets = {}
            for ui in chosen:
                stack = list(stacks.get(ui, [GLOBAL_PROFILE]))
                stacks.setdefault(ui, [GLOBAL_PROFILE])
                if stack[-1] != name:
                    stack.append(name)
                targets[ui] = stack
            return self._switch(stacks, targets)

    def _work_profile_ready(self, pack: str, name: str) -> bool:
        """The work profile of ``pack`` exists as global with ``pack`` on top; the full form
        writes it (a state change: the caller holds a mutation)."""
        profile = self.files.profile_data(name)
        if profile is not None and profile.base == GLOBAL_PROFILE and profile.top == (pack,) and not profile.packs:
            return True
        if self.light:
            return False
        from synapse_core.models import ConflictSettings, Profile

        policy = profile.policy if profile is not None else "last_wins"
        self.files.save_profile(
            Profile(name=name, base=GLOBAL_PROFILE, top=[pack], conflicts=ConflictSettings(policy=policy))
        )
        return True

    def back(self, uis: Sequence[str] = (), ui_set: str | None = None) -> Stacks | None:
        """Pop each chosen UI's stack and switch to the new top; UIs on global stay (it is an
        error only if no chosen UI can go back)."""
        self.layout.require_initialised()
        with self.lock.hold():
            if self.light and not self._ready():
                return None
            stacks = self.files.stacks()
            chosen = self._choose(uis, ui_set, stacks)
            if chosen is None:
                return None
            for ui in chosen:
                stacks.setdefault(ui, [GLOBAL_PROFILE])
            movable = [ui for ui in chosen if len(stacks[ui]) > 1]
            if not movable:
                where = ", ".join(f"{ui} is on '{stacks[ui][-1]}'" for ui in chosen)
                raise Conflict(f"{where}: there is nothing to go back to")
            result = self._switch(stacks, {ui: stacks[ui][:-1] for ui in movable})
            if result is None:
                return None
            return {ui: stacks[ui] for ui in chosen}
