"""Switching what a UI sees, fast: runtime stacks, ``active`` links and view fingerprints.

``back``, and ``use`` of a work profile whose views are already current, run through
:class:`Switcher` without loading the pydantic models: they read runtime.json,
ui_sets.json and the profiles with the standard library and check the shape the
models define. A file of any other shape is handed to its model, whose error names
the file and the field. So switching costs little more than starting Python.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from synapse_core.errors import Conflict, InvalidInput, SynapseError, unknown_name
from synapse_core.layout import StoreLayout, StoreLock, read_model, write_bytes_atomic

GLOBAL_PROFILE = "global"
WORK_PREFIX = "work__"
FINGERPRINT = ".synapse-fingerprint"
Stacks = dict[str, list[str]]


def work_profile_name(pack: str) -> str:
    """The work profile of a pack: global with that pack moved to the end."""
    return f"{WORK_PREFIX}{pack}"


# -- reading files without the models -------------------------------------------------


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


def _is_str_list(value: Any, non_empty: bool = False) -> bool:
    return isinstance(value, list) and (bool(value) or not non_empty) and all(isinstance(v, str) for v in value)


def _runtime_ok(data: Any) -> bool:
    if not isinstance(data, dict) or set(data) - {"schema_version", "ui"} or data.get("schema_version") != 1:
        return False
    uis = data.get("ui")
    return isinstance(uis, dict) and all(
        isinstance(entry, dict) and set(entry) == {"stack"} and _is_str_list(entry["stack"], non_empty=True)
        for entry in uis.values()
    )


def read_stacks(layout: StoreLayout) -> Stacks:
    """Each UI's profile stack from data/runtime.json (empty when there is none)."""
    if not layout.runtime_file.is_file():
        return {}
    data = _load(layout.runtime_file, _runtime_ok, "Runtime")
    return {ui: list(entry["stack"]) for ui, entry in data["ui"].items()}


def write_stacks(layout: StoreLayout, stacks: Mapping[str, Sequence[str]]) -> None:
    """Replace data/runtime.json (the shape of models.Runtime)."""
    data = {"schema_version": 1, "ui": {ui: {"stack": list(stack)} for ui, stack in sorted(stacks.items())}}
    write_bytes_atomic(layout.runtime_file, (json.dumps(data, indent=2) + "\n").encode())


def _profile_ok(data: Any) -> bool:
    if not isinstance(data, dict) or not _is_str_list(data.get("packs")) or not isinstance(data.get("name"), str):
        return False
    conflicts = data.get("conflicts", {"policy": "last_wins"})
    return isinstance(conflicts, dict) and isinstance(conflicts.get("policy", "last_wins"), str)


def read_profile(layout: StoreLayout, name: str) -> tuple[list[str], str] | None:
    """A profile's packs and conflict policy, or None if it does not exist."""
    path = layout.profile_file(name)
    if not path.is_file():
        return None
    data = _load(path, _profile_ok, "Profile")
    return list(data["packs"]), str(data.get("conflicts", {}).get("policy", "last_wins"))


def _sets_ok(data: Any) -> bool:
    sets = data.get("sets") if isinstance(data, dict) else None
    return isinstance(sets, dict) and all(_is_str_list(v) for v in sets.values())


def _config_ok(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("default_ui_set", "default"), str)


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


def select_uis(layout: StoreLayout, uis: Sequence[str], ui_set: str | None, known: Collection[str]) -> list[str]:
    """:func:`choose_uis` with the sets and default from state/."""
    sets = _load(layout.ui_sets_file, _sets_ok, "UISets")["sets"]
    default = _load(layout.config_file, _config_ok, "Config").get("default_ui_set", "default")
    return choose_uis(uis, ui_set, known, sets, default)


# -- active links and fingerprints ---------------------------------------------------------


def point_active(layout: StoreLayout, ui: str, profile: str) -> None:
    """Atomically repoint data/views/<ui>/active at profiles/<profile> (a new link renamed over)."""
    link = layout.active_link(ui)
    temp = link.parent / f".active-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        os.symlink(f"profiles/{profile}", temp)
        os.replace(temp, link)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise link_error(exc, link) from exc


def active_target(layout: StoreLayout, ui: str) -> str | None:
    """What data/views/<ui>/active points at, e.g. 'profiles/global', or None."""
    try:
        return os.readlink(layout.active_link(ui))
    except OSError:
        return None


def quick_key(layout: StoreLayout, policy: str, packs: Sequence[str], plugin: str, version: str | None) -> str:
    """What the fast path compares, with no file read and no plugin imported: the policy,
    each pack's pack.json and lock.json identity (inode, mtime, size: every write is a
    rename, so each write changes it), and the plugin and version that laid the view out."""
    parts = [policy]
    for name in packs:
        for path in (layout.pack_file(name), layout.lock_file_of(name)):
            try:
                st = os.stat(path)
                parts.append(f"{name}:{st.st_ino}:{st.st_mtime_ns}:{st.st_size}")
            except OSError:
                parts.append(f"{name}:-")
    digest = hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()
    return f"{digest} {plugin}=={version or '?'}"


def plugin_versions() -> dict[str, str | None]:
    """Installed plugin versions by entry-point name, from the entry-point cache (no imports)."""
    from synapse_core import __version__
    from synapse_core.entry_points import discover_entry_points

    versions: dict[str, str | None] = {found.name: found.version for found in discover_entry_points()}
    versions.setdefault("<builtin>", __version__)
    return versions


def pack_bytes(layout: StoreLayout, names: Sequence[str]) -> list[tuple[str, bytes]]:
    """Each existing pack's name with its pack.json and lock.json bytes (the fingerprint's input)."""
    out = []
    for name in names:
        try:
            raw = layout.pack_file(name).read_bytes()
        except FileNotFoundError:
            continue
        lock = layout.lock_file_of(name)
        out.append((name, raw + b"\0" + (lock.read_bytes() if lock.is_file() else b"")))
    return out


class Fingerprint(NamedTuple):
    """What .synapse-fingerprint records about a view."""

    digest: str
    """The full digest of the view's inputs (see ProfileService.view_digest) when it was built."""
    quick: str
    """:func:`quick_key` when the view was built."""
    missing: tuple[str, ...]
    """sha256s of resources left out because their blob was missing."""

    def text(self) -> str:
        """The file's content."""
        return "\n".join([self.digest, self.quick, *self.missing]) + "\n"


def read_fingerprint(layout: StoreLayout, ui: str, profile: str) -> Fingerprint | None:
    """A view's recorded fingerprint, or None when the view was never built."""
    try:
        lines = (layout.profile_view(ui, profile) / FINGERPRINT).read_text().splitlines()
    except OSError:
        return None
    return Fingerprint(lines[0], lines[1], tuple(lines[2:])) if len(lines) >= 2 else None


# -- the fast switches -------------------------------------------------------------------------


class Switcher:
    """``back``, and ``use`` of an already-current work profile, without the models."""

    def __init__(self, layout: StoreLayout, lock: StoreLock) -> None:
        self.layout = layout
        self.lock = lock

    def back(self, uis: Sequence[str], ui_set: str | None) -> Stacks | None:
        """Pop each chosen UI's stack and repoint ``active``; None when a view must be built first.

        UIs already on global are left alone; it is an error only if no chosen UI can go back.
        """
        self.layout.require_initialised()
        with self.lock.hold():
            stacks = read_stacks(self.layout)
            chosen = select_uis(self.layout, uis, ui_set, known=stacks)
            movable = [ui for ui in chosen if len(stacks[ui]) > 1]
            if not movable:
                where = ", ".join(f"{ui} is on '{stacks[ui][-1]}'" for ui in chosen)
                raise Conflict(f"{where}: there is nothing to go back to")
            if any(read_fingerprint(self.layout, ui, stacks[ui][-2]) is None for ui in movable):
                return None
            for ui in movable:
                stacks[ui].pop()
                point_active(self.layout, ui, stacks[ui][-1])
            write_stacks(self.layout, stacks)
            return {ui: stacks[ui] for ui in chosen}

    def use_if_current(self, pack: str, uis: Sequence[str], ui_set: str | None) -> Stacks | None:
        """The stacks, when every chosen UI already shows the current work__<pack>; else None.

        It trusts a view laid out by the same version of the same UI plugin, so no plugin is
        imported here; ``doctor`` compares the full fingerprints.
        """
        self.layout.require_initialised()
        with self.lock.hold():
            name = work_profile_name(pack)
            base, work = read_profile(self.layout, GLOBAL_PROFILE), read_profile(self.layout, name)
            if base is None or work is None or not self.layout.pack_file(pack).is_file():
                return None
            if work[0] != [p for p in base[0] if p != pack] + [pack]:
                return None
            stacks = read_stacks(self.layout)
            chosen = select_uis(self.layout, uis, ui_set, known=stacks)
            if any(stacks[ui][-1] != name for ui in chosen):
                return None
            versions = plugin_versions()
            for ui in chosen:
                recorded = read_fingerprint(self.layout, ui, name)
                if recorded is None or recorded.missing or " " not in recorded.quick:
                    return None
                plugin = recorded.quick.rsplit(" ", 1)[1].split("==", 1)[0]
                expected = quick_key(self.layout, work[1], work[0], plugin, versions.get(plugin))
                if plugin not in versions or recorded.quick != expected:
                    return None
                if active_target(self.layout, ui) != f"profiles/{name}":
                    return None
            return {ui: stacks[ui] for ui in chosen}


def check_symlinks(folder: Path) -> None:
    """Raise a clear error if ``folder`` (created if needed) cannot hold symlinks; leave nothing behind."""
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".symlink-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        os.symlink("target", probe)
        probe.unlink()
    except OSError as exc:
        error = link_error(exc, probe)
        for path in made:  # innermost first: only the folders this call created
            with contextlib.suppress(OSError):
                path.rmdir()
        raise error from exc


def link_error(exc: OSError, where: Path) -> SynapseError:
    """A one-line error for a failed symlink operation."""
    if exc.errno in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
        return SynapseError(
            f"cannot create symlinks under {where.parent} (filesystem {filesystem_type(where.parent)}); "
            "put the store root on a filesystem with symlinks (ext4, btrfs, xfs, apfs, NTFS with developer mode)"
        )
    if exc.errno == errno.ENOSPC:
        return SynapseError(f"the disk is full while building {where}; free some space and run 'synapse doctor --fix'")
    return SynapseError(f"cannot build {where}: {exc.strerror or exc}")


def filesystem_type(path: Path) -> str:
    """The type of the filesystem holding ``path`` (from /proc/mounts), or 'unknown'."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return "unknown"
    best, kind = "", "unknown"
    target = str(path.resolve())
    for line in mounts:
        fields = line.split()
        inside = len(fields) >= 3 and (target == fields[1] or target.startswith(fields[1].rstrip("/") + "/"))
        if inside and len(fields[1]) >= len(best):
            best, kind = fields[1], fields[2]
    return kind
