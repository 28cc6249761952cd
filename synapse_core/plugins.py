"""Loading plugins safely, and the registry of what they contribute.

A :class:`PluginRegistry` is an object you construct and pass around; nothing
is loaded at import time. Entry points are loaded one at a time: a plugin that
fails to import, registers an unknown hook, returns the wrong thing or claims
a name another plugin has is recorded as *failed* and never breaks the others.

Environment:

* ``SYNAPSE_LOAD_PLUGINS``: comma-separated allow-list of entry-point names
  (set but empty: no entry-point plugins at all).
* ``SYNAPSE_DISABLE_PLUGINS``: comma-separated block-list.
* ``SYNAPSE_STRICT_PLUGINS=1``: re-raise load errors (for plugin authors and CI).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import attrs
import pluggy

from synapse_core import hookspecs
from synapse_core.conflicts import ConflictPolicy
from synapse_core.entry_points import discover_entry_points
from synapse_core.errors import InvalidInput, PluginError, unknown_name
from synapse_core.kinds import AssetKind
from synapse_core.remotes import RemoteKind
from synapse_core.sources import Source
from synapse_core.ui import KindFolder, UIAdapter, Unsupported
from synapse_core.workflows.nodes import GraphVocabulary, WorkflowNodes, merge

if TYPE_CHECKING:
    import click

BUILTIN_PLUGINS: tuple[str, ...] = (
    "synapse_core.builtin.conflict_policies",
    "synapse_core.builtin.local_source",
    "synapse_core.builtin.file_remote",
)
Category = Literal["ui", "source", "policy", "command", "nodes", "remote"]
T = TypeVar("T")


@attrs.define
class PluginRecord:
    """One plugin as ``synapse plugins`` shows it."""

    name: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    status: Literal["loaded", "failed", "disabled"] = "loaded"
    reason: str | None = None
    hooks: list[str] = attrs.Factory(list)
    contributes: dict[str, list[str]] = attrs.Factory(dict)
    variants: dict[str, list[str]] = attrs.Factory(dict)
    """Per UI adapter, the other UIs (forks) it recognises and attaches, e.g. forge: reForge."""


class PluginLoadError(Exception):
    """Why one plugin could not be used (recorded, not raised, unless strict)."""


def _env_list(env: Mapping[str, str], key: str) -> set[str] | None:
    value = env.get(key)
    if value is None:
        return None
    return {item.strip() for item in value.split(",") if item.strip()}


class PluginRegistry:
    """The loaded plugins and the adapters, sources and policies they contribute."""

    def __init__(self, *, strict: bool = False, warn: Callable[[str], None] | None = None) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)
        self.strict = strict
        self._warn = warn
        self._records: list[PluginRecord] = []
        self._ui_adapters: dict[str, UIAdapter] = {}
        self._sources: dict[str, Source] = {}
        self._policies: dict[str, ConflictPolicy] = {}
        self._workflow_nodes: list[WorkflowNodes] = []
        self._remote_kinds: dict[str, RemoteKind] = {}
        self._providers: dict[tuple[str, str], str] = {}
        self._pending: list[tuple[PluginRecord, object]] = []

    # Contributions are collected (and validated) on first use: `synapse --help` and the
    # command registrations need the plugins' hooks, not their adapters and sources.

    @property
    def records(self) -> list[PluginRecord]:
        """Every plugin, with its status once its contributions were checked."""
        self._collect_pending()
        return self._records

    @property
    def ui_adapters(self) -> dict[str, UIAdapter]:
        """UI adapters by name."""
        self._collect_pending()
        return self._ui_adapters

    @property
    def sources(self) -> dict[str, Source]:
        """Sources by name."""
        self._collect_pending()
        return self._sources

    @property
    def policies(self) -> dict[str, ConflictPolicy]:
        """Conflict policies by name."""
        self._collect_pending()
        return self._policies

    @property
    def remote_kinds(self) -> dict[str, RemoteKind]:
        """Kinds of remote by URL scheme."""
        self._collect_pending()
        return self._remote_kinds

    @property
    def graph_vocabularies(self) -> dict[str, GraphVocabulary]:
        """What every plugin knows about the node graphs of each UI, by UI name."""
        self._collect_pending()
        return merge(self._workflow_nodes)

    def _collect_pending(self) -> None:
        pending, self._pending = self._pending, []
        for record, plugin in pending:
            try:
                self._collect(record, plugin)
            except Exception as exc:  # a plugin's failure must never break the others
                self.manager.unregister(plugin)
                self._fail(record, exc, "failed to load")

    @classmethod
    def load(
        cls,
        *,
        entry_points: bool = True,
        builtins: bool = True,
        plugins: Iterable[tuple[str, object]] = (),
        env: Mapping[str, str] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> PluginRegistry:
        """Build a registry: built-ins, then extra ``(name, plugin)`` pairs, then entry points."""
        env = os.environ if env is None else env
        registry = cls(strict=env.get("SYNAPSE_STRICT_PLUGINS", "") == "1", warn=warn)
        if builtins:
            for module_name in BUILTIN_PLUGINS:
                loader = partial(importlib.import_module, module_name)
                registry.add(module_name.rsplit(".", 1)[1], loader, builtin=True)
        for name, plugin in plugins:
            registry.add(name, partial(_identity, plugin))
        if entry_points:
            registry.load_entry_points(env)
        if registry.strict:
            registry._collect_pending()  # plugin authors want every error now, raised
        return registry

    def load_entry_points(self, env: Mapping[str, str]) -> None:
        """Load every entry point of the ``synapse`` group, one at a time."""
        allow = _env_list(env, "SYNAPSE_LOAD_PLUGINS")
        block = _env_list(env, "SYNAPSE_DISABLE_PLUGINS") or set()
        for found in discover_entry_points():
            record = PluginRecord(name=found.name, distribution=found.distribution, version=found.version)
            if (allow is not None and found.name not in allow) or found.name in block:
                record.status, record.reason = "disabled", "disabled by SYNAPSE_LOAD_PLUGINS/SYNAPSE_DISABLE_PLUGINS"
                self._records.append(record)
                continue
            self._add_record(record, found.load)

    def add(self, name: str, loader: Callable[[], object], *, builtin: bool = False) -> PluginRecord:
        """Register one plugin object produced by ``loader`` (a module or any object)."""
        return self._add_record(PluginRecord(name=name, builtin=builtin), loader)

    def _add_record(self, record: PluginRecord, loader: Callable[[], object]) -> PluginRecord:
        self._records.append(record)
        try:
            plugin = loader()
            self._register(record, plugin)
        except Exception as exc:  # a plugin's failure must never break the others
            self._fail(record, exc, "failed to load")
        return record

    def _fail(self, record: PluginRecord, exc: Exception, what: str) -> None:
        record.status, record.reason = "failed", _reason(exc)
        if self.strict:
            raise exc
        self.warn(f"plugin '{record.name}' {what}: {record.reason}")

    def warn(self, message: str) -> None:
        """Pass a warning to whoever asked for them (the CLI prints them on stderr)."""
        if self._warn is not None:
            self._warn(message)

    def _register(self, record: PluginRecord, plugin: object) -> None:
        if self.manager.is_registered(plugin):
            raise PluginLoadError("the same plugin object is already registered under another name")
        self.manager.register(plugin, name=record.name)
        try:
            callers = self.manager.get_hookcallers(plugin) or []
            unknown = [c.name for c in callers if c.spec is None]
            if unknown:
                raise PluginLoadError(
                    f"unknown hook {', '.join(unknown)} (hooks are listed in synapse_core/hookspecs.py)"
                )
            record.hooks = sorted(c.name for c in callers)
            self._pending.append((record, plugin))
        except Exception:
            self.manager.unregister(plugin)
            raise

    def _collect(self, record: PluginRecord, plugin: object) -> None:
        """Call the plugin's contribution hooks and validate what they return."""
        adapters: list[UIAdapter] = self._call(plugin, "synapse_ui_adapters", UIAdapter)  # type: ignore[type-abstract]
        sources: list[Source] = self._call(plugin, "synapse_sources", Source)  # type: ignore[type-abstract]
        policies: list[ConflictPolicy] = self._call(
            plugin,
            "synapse_conflict_policies",
            ConflictPolicy,  # type: ignore[type-abstract]
        )
        workflow_nodes: list[WorkflowNodes] = self._call(plugin, "synapse_workflow_nodes", WorkflowNodes)
        remote_kinds: list[RemoteKind] = self._call(plugin, "synapse_remotes", RemoteKind)  # type: ignore[type-abstract]
        schemes = {}
        for kind in remote_kinds:
            found = getattr(kind, "schemes", None)
            if not isinstance(found, tuple) or not found or not all(isinstance(s, str) and s for s in found):
                raise PluginLoadError(f"remote kind {getattr(kind, 'name', '?')!r} names no URL schemes")
            schemes.update(dict.fromkeys(found, kind))
        for adapter in adapters:
            _check_layout(adapter)
        try:
            merge([*self._workflow_nodes, *workflow_nodes])
        except ValueError as exc:
            raise PluginLoadError(str(exc)) from exc
        self._claim(record, "ui", [getattr(a, "name", None) for a in adapters])
        self._claim(record, "source", [getattr(s, "name", None) for s in sources])
        self._claim(record, "policy", [getattr(p, "name", None) for p in policies])
        self._claim(record, "remote", [s for k in remote_kinds for s in k.schemes])
        self._accept(record, "ui", {a.name: a for a in adapters}, self._ui_adapters)
        record.variants = {a.name: list(a.variants) for a in adapters if a.variants}
        self._accept(record, "source", {s.name: s for s in sources}, self._sources)
        self._accept(record, "policy", {p.name: p for p in policies}, self._policies)
        self._accept(record, "remote", schemes, self._remote_kinds)
        self._workflow_nodes += workflow_nodes
        if workflow_nodes:
            record.contributes["nodes"] = sorted({n.ui for n in workflow_nodes})

    def _accept(self, record: PluginRecord, category: str, items: dict[str, T], target: dict[str, T]) -> None:
        target.update(items)
        for name in items:
            self._providers[(category, name)] = record.name
        if items:
            record.contributes[category] = sorted(items)

    def _call(self, plugin: object, hook_name: str, expected: type[T]) -> list[T]:
        """Call ``plugin``'s implementations of a hook (under its own name or pluggy's ``specname=``)."""
        caller = getattr(self.manager.hook, hook_name)
        results: list[T] = []
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin:
                results += self._checked(impl.function(), hook_name, expected)
        return results

    @staticmethod
    def _checked(result: object, hook_name: str, expected: type[T]) -> list[T]:
        if not isinstance(result, list | tuple):
            raise PluginLoadError(f"{hook_name}() returned {type(result).__name__}, expected a list")
        for item in result:
            if not isinstance(item, expected):
                raise PluginLoadError(f"{hook_name}() returned {type(item).__name__}, expected {expected.__name__}")
        return list(result)

    def _claim(self, record: PluginRecord, category: str, names: list[Any]) -> None:
        for name in names:
            if not isinstance(name, str) or not name:
                raise PluginLoadError(f"a {category} without a name")
            other = self._providers.get((category, name))
            if other is not None or names.count(name) > 1:
                raise PluginLoadError(
                    f"{category} name '{name}' is already provided by plugin '{other or record.name}'"
                )

    def register_commands(self, cli: click.Group, reserved: Iterable[str] = ()) -> None:
        """Let each loaded plugin add CLI commands; a failing plugin is recorded, not raised.

        ``reserved`` (and ``cli.builtin_names``, when the group has them) are built-in
        commands that are not in ``cli.commands`` yet because they load lazily.
        """
        by_name = {record.name: record for record in self._records}
        taken = set(reserved) | set(getattr(cli, "builtin_names", ()))
        for impl in self.manager.hook.synapse_register_commands.get_hookimpls():
            record = by_name[impl.plugin_name]
            before = dict(cli.commands)
            try:
                impl.function(cli=cli)
                added = [name for name in cli.commands if name not in before]
                replaced = [name for name, cmd in before.items() if cli.commands.get(name) is not cmd]
                replaced += [name for name in added if name in taken]
                if replaced:
                    cli.commands.update(before)
                    raise PluginLoadError(f"command name '{replaced[0]}' is already taken")
                if added:
                    record.contributes["command"] = sorted(added)
            except Exception as exc:
                for name in [n for n in cli.commands if n not in before]:
                    del cli.commands[name]
                self._fail(record, exc, "failed to add commands")

    def ui(self, name: str) -> UIAdapter:
        """The UI adapter called ``name``."""
        return _pick("UI", name, self.ui_adapters)

    def source(self, name: str) -> Source:
        """The source called ``name``."""
        return _pick("source", name, self.sources)

    def policy(self, name: str) -> ConflictPolicy:
        """The conflict policy called ``name``."""
        return _pick("conflict policy", name, self.policies)

    def remote_kind(self, url: str) -> RemoteKind:
        """The kind of remote that opens ``url`` (by its scheme)."""
        scheme = url.split("://", 1)[0] if "://" in url else ""
        kind = self.remote_kinds.get(scheme)
        if kind is None:
            known = ", ".join(f"{s}://" for s in sorted(self.remote_kinds)) or "none"
            raise InvalidInput(f"no plugin opens {url!r} as a remote (remote URLs: {known})")
        return kind

    def source_for(self, ref: str) -> Source:
        """The source that understands ``ref``; plugin sources are asked before built-ins."""
        builtin = {r.name for r in self.records if r.builtin}
        ordered = sorted(self.sources.values(), key=lambda s: (self._providers[("source", s.name)] in builtin, s.name))
        for source in ordered:
            try:
                if source.can_handle(ref):
                    return source
            except Exception as exc:
                raise PluginError(f"source '{source.name}' failed on {ref!r}: {_reason(exc)}") from exc
        names = ", ".join(s.name for s in ordered) or "none"
        raise InvalidInput(
            f"no source understands {ref!r} (sources: {names}); give a file, a folder, or a URL a source knows"
        )

    def provider_of(self, category: Category, name: str) -> str | None:
        """The plugin that contributed ``name`` in ``category``."""
        self._collect_pending()
        return self._providers.get((category, name))


def _identity(plugin: object) -> object:
    return plugin


def _pick(what: str, name: str, items: Mapping[str, T]) -> T:
    if name not in items:
        raise unknown_name(what, name, items)
    return items[name]


def _check_layout(adapter: UIAdapter) -> None:
    """A layout maps kinds to KindFolder or Unsupported. A kind it does not list (one added to
    the core after the plugin was written) is unsupported, with that reason (``UIAdapter.entry``)."""
    layout = getattr(adapter, "layout", None)
    if not isinstance(layout, Mapping):
        raise PluginLoadError(f"UI adapter '{adapter.name}' has no layout mapping")
    if not any(kind in layout for kind in AssetKind):
        raise PluginLoadError(f"UI adapter '{adapter.name}': its layout names no asset kind")
    for kind, entry in layout.items():
        if not isinstance(entry, KindFolder | Unsupported):
            raise PluginLoadError(f"UI adapter '{adapter.name}': layout[{kind}] is not a KindFolder or Unsupported")


def _reason(exc: BaseException) -> str:
    """One line: the exception type and its message (multi-line messages joined)."""
    text = "; ".join(line.strip() for line in str(exc).strip().splitlines() if line.strip())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
