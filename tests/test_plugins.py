"""Issue 2: the plugin registry can never be broken by a bad plugin.

Plugins here are real: module objects with ``hookimpl`` functions registered through
``synapse_core.testing.make_registry``, and, for entry points, real installed distributions
(a ``*.dist-info`` folder with METADATA and entry_points.txt) found on PYTHONPATH / sys.path.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import sys
import textwrap
import types
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest

from synapse_core import hookimpl, hookspecs
from synapse_core.builtin.conflict_policies import LastWins
from synapse_core.cli.main import SynapseGroup
from synapse_core.conflicts import ConflictPolicy, Contender
from synapse_core.kinds import AssetKind
from synapse_core.plugins import PluginLoadError, PluginRegistry
from synapse_core.testing import make_registry
from synapse_core.ui import AttachPlan, KeyStyle, KindFolder, UIAdapter

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "plugins.md"
HOOK_NAMES = sorted(name for name, fn in vars(hookspecs).items() if hasattr(fn, "synapse_spec"))

# The source of a complete, tiny UI plugin; used as an in-process module and as an installed distribution.
TINY_UI_SOURCE = """
from synapse_core import hookimpl
from synapse_core.kinds import AssetKind
from synapse_core.ui import AttachPlan, KeyStyle, KindFolder, UIAdapter


class TinyUI(UIAdapter):
    name = {ui_name!r}
    display_name = "Tiny UI"
    layout = {{
        kind: KindFolder(
            folder="models/" + kind.value,
            extensions=frozenset({{".safetensors"}}),
            key_style=KeyStyle.RELATIVE_PATH,
            source="tiny_ui/folders.py",
        )
        for kind in AssetKind
    }}

    def looks_like_install(self, path):
        return (path / "tiny_ui.py").is_file()

    def plan_attach(self, install, view):
        return AttachPlan(ui=self.name, install=install, view=view, instructions="point models/ at " + str(view))

    def plan_detach(self, install, view):
        return AttachPlan(ui=self.name, install=install, view=view, instructions="nothing to undo")


@hookimpl
def synapse_ui_adapters():
    return [TinyUI()]
"""


# -- building plugins ----------------------------------------------------------------------------------------


def module(name: str, **hooks: Callable[..., object]) -> types.ModuleType:
    """A plugin module object whose attributes are the given (hookimpl-decorated) functions."""
    mod = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(mod, hook_name, fn)
    return mod


def ui_module(ui_name: str) -> types.ModuleType:
    """A working UI plugin, executed from TINY_UI_SOURCE."""
    mod = types.ModuleType(f"tiny_{ui_name}")
    exec(compile(TINY_UI_SOURCE.format(ui_name=ui_name), mod.__name__, "exec"), mod.__dict__)
    return mod


class PartialUI(UIAdapter):
    """An adapter that forgot most kinds."""

    name = "partialui"
    display_name = "Partial UI"
    layout = {
        AssetKind.LORA: KindFolder(
            folder="models/loras", extensions=frozenset({".safetensors"}), key_style=KeyStyle.STEM, source="x.py"
        )
    }

    def looks_like_install(self, path: Path) -> bool:
        return False

    def plan_attach(self, install: Path, view: Path) -> AttachPlan:
        return AttachPlan(ui=self.name, install=install, view=view, instructions="")

    def plan_detach(self, install: Path, view: Path) -> AttachPlan:
        return AttachPlan(ui=self.name, install=install, view=view, instructions="")


class AnotherLastWins(ConflictPolicy):
    name = "last_wins"
    description = "a copy that tries to take the built-in's name"

    def choose(self, key: str, contenders: object) -> int:
        return 0


class Alphabetical(ConflictPolicy):
    name = "alphabetical"
    description = "the pack whose name sorts first wins"

    def choose(self, key: str, contenders: list[Contender]) -> int:  # type: ignore[override]
        return min(range(len(contenders)), key=lambda i: contenders[i].pack)


def misspelled_module() -> types.ModuleType:
    @hookimpl
    def synapse_ui_adaptors() -> list[object]:
        return []

    return module("misspelled", synapse_ui_adaptors=synapse_ui_adaptors)


def wrong_args_module() -> types.ModuleType:
    @hookimpl
    def synapse_ui_adapters(settings):  # type: ignore[no-untyped-def]
        return []

    return module("wrong_args", synapse_ui_adapters=synapse_ui_adapters)


def non_list_module() -> types.ModuleType:
    @hookimpl
    def synapse_conflict_policies():  # type: ignore[no-untyped-def]
        return {"alphabetical": Alphabetical()}

    return module("non_list", synapse_conflict_policies=synapse_conflict_policies)


def wrong_item_module() -> types.ModuleType:
    @hookimpl
    def synapse_sources():  # type: ignore[no-untyped-def]
        return ["civitai"]

    return module("wrong_item", synapse_sources=synapse_sources)


def partial_ui_module() -> types.ModuleType:
    @hookimpl
    def synapse_ui_adapters():  # type: ignore[no-untyped-def]
        return [PartialUI()]

    return module("partial_ui", synapse_ui_adapters=synapse_ui_adapters)


def ui_with_layout(name: str, layout: object) -> types.ModuleType:
    adapter = type(name, (PartialUI,), {"name": name, "layout": layout})()

    @hookimpl
    def synapse_ui_adapters():  # type: ignore[no-untyped-def]
        return [adapter]

    return module(name, synapse_ui_adapters=synapse_ui_adapters)


def duplicate_policy_module() -> types.ModuleType:
    @hookimpl
    def synapse_conflict_policies():  # type: ignore[no-untyped-def]
        return [AnotherLastWins()]

    return module("dup_policy", synapse_conflict_policies=synapse_conflict_policies)


def raising_hook_module() -> types.ModuleType:
    @hookimpl
    def synapse_sources():  # type: ignore[no-untyped-def]
        raise ValueError("cannot reach the catalogue")

    return module("raising_hook", synapse_sources=synapse_sources)


def good_policy_module() -> types.ModuleType:
    @hookimpl
    def synapse_conflict_policies():  # type: ignore[no-untyped-def]
        return [Alphabetical()]

    return module("good_policy", synapse_conflict_policies=synapse_conflict_policies)


def records(registry: PluginRegistry) -> dict[str, object]:
    return {r.name: r for r in registry.records}


def load(plugins: list[tuple[str, object]], env: dict[str, str] | None = None) -> tuple[PluginRegistry, list[str]]:
    """A registry with the built-ins and ``plugins``; returns it and the warnings it gave."""
    warnings: list[str] = []
    registry = PluginRegistry.load(entry_points=False, plugins=plugins, env=env or {}, warn=warnings.append)
    return registry, warnings


# -- the built-ins -------------------------------------------------------------------------------------------


def test_builtins_provide_the_three_conflict_policies_and_the_local_source() -> None:
    registry = make_registry()
    assert sorted(registry.policies) == ["error", "first_wins", "last_wins"]
    assert sorted(registry.sources) == ["local"]
    builtin = [r for r in registry.records if r.builtin]
    assert all(r.status == "loaded" for r in builtin)
    assert {name for r in builtin for name in r.contributes.get("policy", [])} == {"error", "first_wins", "last_wins"}
    # provenance: each name knows the plugin that contributed it
    assert registry.provider_of("policy", "last_wins") == "conflict_policies"
    assert registry.provider_of("source", "local") == "local_source"


def test_builtin_policies_choose_as_documented() -> None:
    registry = make_registry()
    a = Contender(pack="A", resource_id="main", path="models/Lora/x.safetensors", sha256="a" * 64)
    b = Contender(pack="B", resource_id="main", path="models/Lora/x.safetensors", sha256="b" * 64)
    assert registry.policy("last_wins").choose("x", [a, b]) == 1
    assert registry.policy("first_wins").choose("x", [a, b]) == 0
    with pytest.raises(Exception, match="A, B"):
        registry.policy("error").choose("x", [a, b])
    same = Contender(pack="C", resource_id="main", path=a.path, sha256=a.sha256)
    assert registry.policy("error").choose("x", [a, same]) in (0, 1)


def test_unknown_policy_name_lists_the_known_ones() -> None:
    registry = make_registry()
    with pytest.raises(Exception, match="last_wins"):
        registry.policy("last_win")


# -- bad plugins are recorded, never raised ------------------------------------------------------------------

BAD_PLUGINS: list[tuple[str, Callable[[], types.ModuleType], list[str]]] = [
    ("misspelled", misspelled_module, ["synapse_ui_adaptors", "unknown hook"]),
    ("non_list", non_list_module, ["synapse_conflict_policies", "dict", "list"]),
    ("wrong_item", wrong_item_module, ["synapse_sources", "str", "Source"]),
    ("layoutless_ui", lambda: ui_with_layout("layoutless", ["not", "a", "mapping"]), ["layoutless", "no layout"]),
    ("kindless_ui", lambda: ui_with_layout("kindless", {"checkpoints": None}), ["kindless", "names no asset kind"]),
    ("dup_policy", duplicate_policy_module, ["last_wins", "conflict_policies"]),
    ("raising_hook", raising_hook_module, ["ValueError", "cannot reach the catalogue"]),
]


@pytest.mark.parametrize(("name", "factory", "words"), BAD_PLUGINS, ids=[p[0] for p in BAD_PLUGINS])
def test_bad_plugin_is_recorded_failed_with_a_one_line_reason(
    name: str, factory: Callable[[], types.ModuleType], words: list[str]
) -> None:
    registry, warnings = load(
        [(name, factory()), ("tinyui", ui_module("tinyui")), ("good_policy", good_policy_module())]
    )
    record = records(registry)[name]
    assert record.status == "failed"
    assert record.reason and "\n" not in record.reason
    for word in words:
        assert word in record.reason
    # exactly one warning line, naming the plugin
    mine = [w for w in warnings if f"'{name}'" in w]
    assert len(mine) == 1 and "\n" not in mine[0]
    # the others still load and contribute
    assert records(registry)["tinyui"].status == "loaded"
    assert registry.ui("tinyui").name == "tinyui"
    assert registry.policy("alphabetical").name == "alphabetical"
    assert sorted(registry.policies) == ["alphabetical", "error", "first_wins", "last_wins"]
    assert isinstance(registry.policy("last_wins"), LastWins)
    # a failed plugin is taken out of the plugin manager
    assert registry.manager.get_plugin(name) is None


def test_hook_with_wrong_arguments_names_the_argument() -> None:
    registry, _ = load([("wrong_args", wrong_args_module())])
    record = records(registry)["wrong_args"]
    assert record.status == "failed"
    assert "synapse_ui_adapters" in record.reason
    assert "settings" in record.reason and "\n" not in record.reason


def test_hook_with_wrong_arguments_is_recorded_failed() -> None:
    registry, warnings = load([("wrong_args", wrong_args_module()), ("tinyui", ui_module("tinyui"))])
    record = records(registry)["wrong_args"]
    assert record.status == "failed" and "synapse_ui_adapters" in record.reason
    assert records(registry)["tinyui"].status == "loaded"
    assert len([w for w in warnings if "wrong_args" in w]) == 1


def test_loader_raising_at_import_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mod_name = f"synapse_raises_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{mod_name}.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry, warnings = load([("tinyui", ui_module("tinyui"))])
    record = registry.add("raises", lambda: importlib.import_module(mod_name))
    assert record.status == "failed"
    assert record.reason == "RuntimeError: boom at import"
    assert warnings == ["plugin 'raises' failed to load: RuntimeError: boom at import"]
    assert records(registry)["tinyui"].status == "loaded"


def test_duplicate_names_between_two_plugins_name_both() -> None:
    first, second = ui_module("twinui"), ui_module("twinui")
    registry, warnings = load([("first_ui", first), ("second_ui", second)])
    assert records(registry)["first_ui"].status == "loaded"
    record = records(registry)["second_ui"]
    assert record.status == "failed"
    assert "twinui" in record.reason and "first_ui" in record.reason
    (warning,) = warnings
    assert "second_ui" in warning and "first_ui" in warning
    assert registry.provider_of("ui", "twinui") == "first_ui"


def test_a_failed_plugin_contributes_nothing_at_all() -> None:
    """A plugin whose second contribution is bad must not leave its first one behind."""

    @hookimpl
    def synapse_ui_adapters():  # type: ignore[no-untyped-def]
        return [ui_module("halfui").TinyUI()]

    @hookimpl
    def synapse_conflict_policies():  # type: ignore[no-untyped-def]
        return [AnotherLastWins()]

    @hookimpl
    def synapse_register_commands(cli):  # type: ignore[no-untyped-def]
        cli.add_command(click.Command("half-cmd", callback=lambda: None))

    half = module(
        "half",
        synapse_ui_adapters=synapse_ui_adapters,
        synapse_conflict_policies=synapse_conflict_policies,
        synapse_register_commands=synapse_register_commands,
    )
    registry, _ = load([("half", half)])
    assert records(registry)["half"].status == "failed"
    assert "halfui" not in registry.ui_adapters
    assert isinstance(registry.policy("last_wins"), LastWins)
    group = SynapseGroup(name="synapse")
    registry.register_commands(group)
    assert "half-cmd" not in group.commands


def nodes_module(node_type: str, folder: str = "loras") -> types.ModuleType:
    """A plugin that describes one loader node type of a 'tinyui' graph."""
    from synapse_core.kinds import AssetKind
    from synapse_core.workflows.nodes import ModelInput, NodeType, WorkflowNodes

    @hookimpl
    def synapse_workflow_nodes():  # type: ignore[no-untyped-def]
        node = NodeType(node_type, models=(ModelInput("lora_name", 0, folder),))
        return [WorkflowNodes(ui="tinyui", nodes=(node,), folders={folder: AssetKind.LORA})]

    return module(f"nodes_{node_type}", synapse_workflow_nodes=synapse_workflow_nodes)


def test_workflow_node_types_merge_per_ui_and_a_second_description_fails() -> None:
    registry, warnings = load(
        [
            ("core_nodes", nodes_module("TinyLora")),
            ("extra_nodes", nodes_module("TinyLoraExtra")),
            ("clash", nodes_module("TinyLora")),
            ("other_kind", nodes_module("TinyOther", folder="loras_x")),
        ]
    )
    vocabulary = registry.graph_vocabularies["tinyui"]
    assert sorted(vocabulary.nodes) == ["TinyLora", "TinyLoraExtra", "TinyOther"]
    assert records(registry)["core_nodes"].contributes == {"nodes": ["tinyui"]}
    clash = records(registry)["clash"]
    assert clash.status == "failed" and "node type 'TinyLora' of tinyui is already described" in clash.reason
    assert len(warnings) == 1


def remote_module(name: str, scheme: str) -> types.ModuleType:
    """A plugin that opens one URL scheme as a remote."""
    from synapse_core.builtin.file_remote import FileRemote
    from synapse_core.remotes import RemoteKind, RemoteSettings

    class Kind(RemoteKind):
        schemes = (scheme,)

        def open(self, settings: RemoteSettings) -> FileRemote:
            return FileRemote(settings)

    Kind.name = name

    @hookimpl
    def synapse_remotes():  # type: ignore[no-untyped-def]
        return [Kind()]

    return module(name, synapse_remotes=synapse_remotes)


def test_a_third_party_remote_kind_and_one_that_takes_a_scheme_already_opened() -> None:
    registry, warnings = load(
        [("hfbucket", remote_module("hfbucket", "hf")), ("clash", remote_module("clash", "file"))]
    )
    assert records(registry)["hfbucket"].contributes == {"remote": ["hf"]}
    assert registry.remote_kind("hf://org/bucket").name == "hfbucket"
    assert registry.remote_kind("file:///mnt/nas").name == "file"  # the built-in keeps it
    clash = records(registry)["clash"]
    assert clash.status == "failed" and "remote name 'file' is already provided" in clash.reason
    assert len(warnings) == 1


def test_strict_mode_reraises() -> None:
    with pytest.raises(PluginLoadError, match="last_wins"):
        load([("dup_policy", duplicate_policy_module())], env={"SYNAPSE_STRICT_PLUGINS": "1"})
    registry = PluginRegistry.load(entry_points=False, env={"SYNAPSE_STRICT_PLUGINS": "1"})
    with pytest.raises(RuntimeError, match="boom"):
        registry.add("raises", lambda: (_ for _ in ()).throw(RuntimeError("boom")))


# -- commands from plugins -----------------------------------------------------------------------------------


def command_module(name: str, command_name: str, *, fail: bool = False) -> types.ModuleType:
    @hookimpl
    def synapse_register_commands(cli):  # type: ignore[no-untyped-def]
        if fail:
            raise KeyError("no such config")
        cli.add_command(click.Command(command_name, callback=lambda: click.echo(f"{name} says hello")))

    return module(name, synapse_register_commands=synapse_register_commands)


def test_plugin_commands_are_added_and_a_raising_one_is_recorded() -> None:
    registry, warnings = load(
        [("hello", command_module("hello", "hello")), ("crash", command_module("crash", "x", fail=True))]
    )
    group = SynapseGroup(name="synapse")
    registry.register_commands(group)
    assert "hello" in group.commands
    assert records(registry)["hello"].contributes == {"command": ["hello"]}
    crash = records(registry)["crash"]
    assert crash.status == "failed" and crash.reason == "KeyError: 'no such config'"
    assert "x" not in group.commands
    assert len([w for w in warnings if "'crash'" in w]) == 1


def test_plugin_command_taking_a_name_another_plugin_added_is_refused() -> None:
    registry, _ = load([("one", command_module("one", "hello")), ("two", command_module("two", "hello"))])
    group = SynapseGroup(name="synapse")
    registry.register_commands(group)
    statuses = sorted(r.status for r in registry.records if r.name in ("one", "two"))
    assert statuses == ["failed", "loaded"]
    failed = next(r for r in registry.records if r.status == "failed")
    assert "hello" in failed.reason


def test_plugin_command_named_like_a_builtin_is_refused() -> None:
    registry, _ = load([("hijack", command_module("hijack", "list"))])
    group = SynapseGroup(name="synapse")
    registry.register_commands(group)
    record = records(registry)["hijack"]
    assert record.status == "failed"
    assert "list" in record.reason


# -- entry points: real installed distributions --------------------------------------------------------------


def make_distribution(
    site: Path,
    dist: str,
    version: str,
    entry_points: dict[str, str],
    modules: dict[str, str] | None = None,
    info_name: str | None = None,
) -> Path:
    """An installed distribution in ``site``: ``<dist>-<version>.dist-info`` plus module files."""
    info = site / (info_name or f"{dist.replace('-', '_')}-{version}.dist-info")
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = ["[synapse]", *(f"{name} = {target}" for name, target in entry_points.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for mod_name, source in (modules or {}).items():
        (site / f"{mod_name}.py").write_text(textwrap.dedent(source))
    return info


@pytest.fixture
def plugin_site(tmp_path: Path) -> Iterator[Path]:
    """A site folder with a missing-module plugin, one raising at import, one with a syntax error, and a good UI.

    Module names are unique per test so in-process imports never reuse another test's module.
    """
    site = tmp_path / "site"
    site.mkdir()
    tag = uuid.uuid4().hex[:8]
    make_distribution(
        site, "synapse-broken", "1.0", {"broken": "synapse_broken_missing"}, info_name="broken_plugin-1.0.dist-info"
    )
    make_distribution(
        site,
        "synapse-raising",
        "2.0",
        {"raising": f"synapse_raising_{tag}"},
        {f"synapse_raising_{tag}": "raise RuntimeError('boom at import')\n"},
    )
    make_distribution(
        site,
        "synapse-syntax",
        "0.3",
        {"syntaxerr": f"synapse_syntax_{tag}"},
        {f"synapse_syntax_{tag}": "def broken(:\n"},
    )
    make_distribution(
        site,
        "synapse-tinyui",
        "1.0",
        {"tinyui": f"synapse_tinyui_{tag}"},
        {f"synapse_tinyui_{tag}": TINY_UI_SOURCE.format(ui_name="tinyui")},
    )
    before = set(sys.modules)
    yield site
    for name in set(sys.modules) - before:
        if tag in name:
            del sys.modules[name]


OURS = "broken,raising,syntaxerr,tinyui"


def test_entry_points_load_one_at_a_time(plugin_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(plugin_site))
    warnings: list[str] = []
    registry = PluginRegistry.load(env={"SYNAPSE_LOAD_PLUGINS": OURS}, warn=warnings.append)
    recs = records(registry)
    assert recs["broken"].status == "failed"
    assert recs["broken"].reason == "ModuleNotFoundError: No module named 'synapse_broken_missing'"
    assert (recs["broken"].distribution, recs["broken"].version) == ("synapse-broken", "1.0")
    assert recs["raising"].status == "failed" and recs["raising"].reason == "RuntimeError: boom at import"
    assert recs["syntaxerr"].status == "failed" and recs["syntaxerr"].reason.startswith("SyntaxError")
    assert recs["tinyui"].status == "loaded" and recs["tinyui"].contributes == {"ui": ["tinyui"]}
    assert (recs["tinyui"].distribution, recs["tinyui"].version) == ("synapse-tinyui", "1.0")
    assert registry.provider_of("ui", "tinyui") == "tinyui"
    assert len(warnings) == 3


def test_load_plugins_allow_list(plugin_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(plugin_site))
    registry = PluginRegistry.load(env={"SYNAPSE_LOAD_PLUGINS": "tinyui"})
    recs = records(registry)
    assert recs["tinyui"].status == "loaded"
    for name in ("broken", "raising", "syntaxerr"):
        assert recs[name].status == "disabled"
    # empty allow-list: no entry-point plugin at all, built-ins still there
    registry = PluginRegistry.load(env={"SYNAPSE_LOAD_PLUGINS": ""})
    third_party = [r for r in registry.records if not r.builtin]
    assert {"broken", "raising", "syntaxerr", "tinyui"} <= {r.name for r in third_party}
    assert all(r.status == "disabled" for r in third_party)
    assert registry.ui_adapters == {}
    assert sorted(registry.policies) == ["error", "first_wins", "last_wins"]


def test_disable_plugins_block_list(plugin_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(plugin_site))
    registry = PluginRegistry.load(env={"SYNAPSE_LOAD_PLUGINS": OURS, "SYNAPSE_DISABLE_PLUGINS": "tinyui, raising"})
    recs = records(registry)
    assert recs["tinyui"].status == "disabled" and recs["raising"].status == "disabled"
    assert recs["broken"].status == "failed"
    assert "tinyui" not in registry.ui_adapters


def test_cli_survives_broken_distributions(plugin_site: Path, synapse_cli, tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(plugin_site), "SYNAPSE_LOAD_PLUGINS": OURS}
    help_run = synapse_cli("--help", env=env)
    assert help_run.returncode == 0, help_run.stderr
    assert "import" in help_run.stdout and "plugins" in help_run.stdout
    version = synapse_cli("--version", env=env)
    assert version.returncode == 0 and re.fullmatch(r"synapse \d+\.\d+\.\d+\S*\n", version.stdout)

    listed = synapse_cli("plugins", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    recs = {r["name"]: r for r in json.loads(listed.stdout)}
    assert recs["broken"]["status"] == "failed"
    assert recs["broken"]["distribution"] == "synapse-broken" and recs["broken"]["version"] == "1.0"
    assert "synapse_broken_missing" in recs["broken"]["reason"]
    assert recs["raising"]["status"] == "failed" and recs["raising"]["reason"] == "RuntimeError: boom at import"
    assert recs["syntaxerr"]["status"] == "failed" and "SyntaxError" in recs["syntaxerr"]["reason"]
    # one warning line per failed plugin, and nothing else that looks like a crash
    lines = listed.stderr.splitlines()
    assert sorted(line.split("'")[1] for line in lines) == ["broken", "raising", "syntaxerr"]
    assert all(line.startswith("warning: plugin '") for line in lines)

    human = synapse_cli("plugins", env=env)
    assert human.returncode == 0 and "boom at import" in human.stdout

    root = tmp_path / "store"
    init = synapse_cli("store", "init", root=root, env=env)
    assert init.returncode == 0, init.stderr
    assert "Traceback" not in init.stderr
    assert (root / "state" / "config.json").is_file()
    doctor = synapse_cli("doctor", "--json", root=root, env=env)
    assert "Traceback" not in doctor.stderr
    failures = json.loads(doctor.stdout)["plugin_failures"]
    assert sorted(f.split(":")[0] for f in failures) == ["broken", "raising", "syntaxerr"]
    assert "raising: RuntimeError: boom at import" in failures


def test_strict_plugins_makes_the_cli_fail_loudly(plugin_site: Path, synapse_cli) -> None:
    env = {"PYTHONPATH": str(plugin_site), "SYNAPSE_LOAD_PLUGINS": "raising", "SYNAPSE_STRICT_PLUGINS": "1"}
    result = synapse_cli("plugins", "--json", env=env)
    assert result.returncode != 0
    assert "boom at import" in result.stderr


def test_third_party_ui_plugin_shows_up_loaded(plugin_site: Path, synapse_cli, tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(plugin_site), "SYNAPSE_LOAD_PLUGINS": "tinyui"}
    listed = synapse_cli("plugins", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr == ""
    (rec,) = [r for r in json.loads(listed.stdout) if r["name"] == "tinyui"]
    assert rec["status"] == "loaded" and rec["reason"] is None
    assert rec["contributes"] == {"ui": ["tinyui"]}
    assert rec["hooks"] == ["synapse_ui_adapters"]
    assert (rec["distribution"], rec["version"]) == ("synapse-tinyui", "1.0")
    # the new UI is known to the store without any change to the core
    root = tmp_path / "store"
    init = synapse_cli("store", "init", "--json", root=root, env=env)
    assert init.returncode == 0, init.stderr
    assert json.loads(init.stdout)["uis"] == ["tinyui"]
    sets = json.loads((root / "state" / "ui_sets.json").read_text())["sets"]
    assert sets["all"] == ["tinyui"] and sets["default"] == ["tinyui"]


def test_plugins_all_lists_builtins_too(synapse_cli) -> None:
    listed = synapse_cli("plugins", "--json", "--all")
    assert listed.returncode == 0, listed.stderr
    builtins = {r["name"]: r for r in json.loads(listed.stdout) if r["builtin"]}
    assert builtins["conflict_policies"]["contributes"] == {"policy": ["error", "first_wins", "last_wins"]}
    assert builtins["local_source"]["contributes"] == {"source": ["local"]}
    plain = synapse_cli("plugins", "--json")
    assert not [r for r in json.loads(plain.stdout) if r["builtin"]]


# -- the hookspecs are the plugin author's manual (datasette-style meta-tests) -------------------------------


def test_hookspecs_exist() -> None:
    assert {"synapse_ui_adapters", "synapse_sources", "synapse_conflict_policies", "synapse_register_commands"} <= set(
        HOOK_NAMES
    )


@pytest.mark.parametrize("hook", HOOK_NAMES)
def test_every_hookspec_is_documented_and_annotated(hook: str) -> None:
    fn = getattr(hookspecs, hook)
    doc = inspect.getdoc(fn)
    assert doc and len(doc.splitlines()) >= 3, f"{hook} needs a docstring saying when it runs and what to return"
    assert hook.startswith("synapse_")
    assert "return" in inspect.get_annotations(fn)


@pytest.mark.xfail(not DOCS.exists(), reason="docs/plugins.md is not written yet", strict=False)
@pytest.mark.parametrize("hook", HOOK_NAMES)
def test_every_hookspec_is_in_the_plugin_docs(hook: str) -> None:
    assert hook in DOCS.read_text()


@pytest.mark.parametrize("hook", HOOK_NAMES)
def test_every_hookspec_is_exercised_by_this_file(hook: str) -> None:
    source = Path(__file__).read_text()
    assert source.count(f"def {hook}(") >= 1, f"no test plugin implements {hook}"
