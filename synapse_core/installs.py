"""The UI installs attached to a store (config.json ``ui_installs``): are they still attached
as their adapter would attach them today, and what does each of them list?

An attach written once can go stale without Synapse doing anything: an extension that
defined a flag is disabled, the install is updated to a version whose parser lacks a
flag, the install is deleted. ``doctor`` finds these (``--fix`` rewrites the owned part,
or forgets an install that is gone) and shows each adapter's own warnings.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from synapse_core.errors import InvalidInput, SynapseError
from synapse_core.kinds import AssetKind
from synapse_core.layout import StoreLayout, write_all_or_nothing
from synapse_core.models import Config
from synapse_core.plugins import PluginRegistry
from synapse_core.results import InstallStatus, Problem
from synapse_core.ui import KindFolder, UIAdapter, Unsupported

CHECK = "attached installs"
log = logging.getLogger("synapse")


def attached(config: Config, registry: PluginRegistry) -> Iterator[tuple[UIAdapter, Path]]:
    """Each attached install whose UI adapter is installed, in config order."""
    for ui, paths in config.ui_installs.items():
        adapter = registry.ui_adapters.get(ui)
        if adapter is not None:
            for path in paths:
                yield adapter, Path(path)


def not_an_install(adapter: UIAdapter, install: Path, registry: PluginRegistry) -> str:
    """The error for a folder ``adapter`` does not recognise, naming the UI that does, if any."""
    message = f"{install} does not look like a {adapter.display_name} install; pass its top folder"
    if install.is_dir():
        for other in registry.ui_adapters.values():
            if other is not adapter and other.looks_like_install(install):
                hint = f"run 'synapse attach {other.name} {install}'"
                return f"{install} is a {other.display_name} install, not {adapter.display_name}: {hint}"
    return message


def refuse_conflicts(adapter: UIAdapter, install: Path, view: Path) -> None:
    """Stop an attach that would hide models from the UI, saying what and what to do."""
    conflicts = adapter.attach_conflicts(install, view)
    if conflicts:
        raise InvalidInput(
            f"attaching {adapter.display_name} at {install} would hide models from it: {'; '.join(conflicts)};"
            f" take them into the library first ('synapse adopt {install}'), or attach anyway with --force"
        )


def install_problems(config: Config, registry: PluginRegistry, layout: StoreLayout, fix: bool) -> list[Problem]:
    """Stale or broken attaches; with ``fix``, rewritten (or forgotten when the install is gone).
    ``config`` is changed in place when an install is forgotten: the caller saves it."""
    problems = []
    for adapter, install in list(attached(config, registry)):
        where = f"{adapter.display_name} at {install}"
        if not install.is_dir() or not adapter.looks_like_install(install):
            problem = Problem(check=CHECK, message=f"{where} is gone; 'synapse doctor --fix' forgets it")
            if fix:
                config.ui_installs[adapter.name].remove(str(install))
                problem.fixed = True
            problems.append(problem)
            continue
        view = layout.active_link(adapter.name)
        try:
            plan = adapter.plan_attach(install, view)
            warnings = adapter.check_install(install, view)
        except SynapseError as exc:
            problems.append(Problem(check=CHECK, message=f"{where}: {exc.message}"))
            continue
        for change in plan.changes:
            message = f"{where}: {change.path.name} is out of date ({change.summary})"
            problems.append(Problem(check=CHECK, message=message + "; 'synapse doctor --fix' rewrites it"))
        if fix and plan.changes:
            write_all_or_nothing([(c.path.resolve(), c.content.encode()) for c in plan.changes])
            for problem in problems[len(problems) - len(plan.changes) :]:
                problem.fixed = True
        problems += [Problem(check=CHECK, message=warning) for warning in warnings]
    return problems


def install_statuses(
    ui: str, config: Config, registry: PluginRegistry, entries: Iterable[Mapping[str, Any]]
) -> list[InstallStatus]:
    """What each attached install of ``ui`` is, how it follows a switch, and which entries of
    the active view it does not list (its variant, version or flags differ)."""
    statuses = []
    for adapter, install in attached(config, registry):
        if adapter.name != ui:
            continue
        try:
            info = adapter.describe_install(install)
        except SynapseError as exc:
            statuses.append(InstallStatus(path=str(install), variant=adapter.display_name, problem=exc.message))
            continue
        unlisted = []
        if info.lists is not None:
            for entry in entries:
                kind = AssetKind(entry["kind"])
                reason = _not_listed(info.lists.get(kind), entry["path"], adapter.folder(kind))
                if reason:
                    unlisted.append(f"{entry['path']}: {reason}")
        statuses.append(
            InstallStatus(
                path=str(install),
                variant=info.variant,
                version=info.version,
                follows=info.follows.value,
                follows_detail=info.follows_detail,
                not_listed=unlisted,
            )
        )
    return statuses


def _not_listed(entry: KindFolder | Unsupported | None, path: str, view_folder: KindFolder | None) -> str | None:
    """Why an install whose layout says ``entry`` for a kind does not list a view entry at ``path``."""
    if not isinstance(entry, KindFolder):
        return entry.reason if entry is not None else "not listed"
    name = path.rpartition("/")[2]
    suffix = name[name.rfind(".") :].lower() if "." in name else ""
    if entry.extensions and suffix not in entry.extensions:
        return f"this install lists only {', '.join(sorted(entry.extensions))} there"
    nested = view_folder is not None and "/" in path[len(view_folder.folder) + 1 :]
    if nested and not entry.recursive:
        return "this install lists only the top of that folder"
    return None


def record_ui_hashes(config: Config, registry: PluginRegistry, layout: StoreLayout, uis: Iterable[str]) -> int:
    """After a switch: each attached install of ``uis`` gets the true sha256 of its active view's
    entries in its own hash cache (``UIAdapter.record_hashes``). A UI cache that cannot be written
    never fails the switch: it is logged. Returns how many cache entries changed."""
    from synapse_core.ui import ViewHash
    from synapse_core.views import read_record

    chosen = set(uis)
    total = 0
    for adapter, install in attached(config, registry):
        if adapter.name not in chosen or not install.is_dir():
            continue
        view = layout.active_link(adapter.name)
        record = read_record(view)
        if record is None:
            continue
        entries = []
        for path, entry in record.plan.entries.items():
            kind = AssetKind(entry["kind"])
            folder = adapter.folder(kind)
            if folder is not None and path.startswith(folder.folder + "/"):
                entries.append(ViewHash(kind, path[len(folder.folder) + 1 :], entry["sha256"]))
        try:
            total += adapter.record_hashes(install, view, entries)
        except Exception as exc:  # a UI's cache is the UI's business: never fail a switch over it
            log.warning("could not write %s's hash cache in %s: %s", adapter.display_name, install, exc)
    return total
