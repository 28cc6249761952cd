"""Issue 11 (plugins): a kind the core adds later never fails an older UI plugin, and hook
implementations registered under another name with pluggy's ``specname=`` contribute."""

from __future__ import annotations

import types
from pathlib import Path

from synapse_core import hookimpl
from synapse_core.kinds import AssetKind
from synapse_core.store import Store
from synapse_core.testing import lora_file, make_registry, make_store, write_safetensors
from synapse_core.ui import AttachPlan, KeyStyle, KindFolder, UIAdapter, Unsupported


class LoraOnlyUI(UIAdapter):
    """An adapter written when the core knew fewer kinds: it lists two, one by one."""

    name = "loraonly"
    display_name = "Lora Only"
    layout = {
        AssetKind.LORA: KindFolder("models/loras", frozenset({".safetensors"}), KeyStyle.RELATIVE_PATH, "x.py"),
        AssetKind.VAE: Unsupported("no VAE folder"),
    }

    def looks_like_install(self, path: Path) -> bool:
        return False

    def plan_attach(self, install: Path, view: Path) -> AttachPlan:
        return AttachPlan(ui=self.name, install=install, view=view, instructions="")

    def plan_detach(self, install: Path, view: Path) -> AttachPlan:
        return AttachPlan(ui=self.name, install=install, view=view, instructions="")


def lora_only_module() -> types.ModuleType:
    @hookimpl(specname="synapse_ui_adapters")
    def my_adapters() -> list[UIAdapter]:
        return [LoraOnlyUI()]

    mod = types.ModuleType("lora_only")
    mod.my_adapters = my_adapters  # type: ignore[attr-defined]
    return mod


def test_a_hookimpl_with_specname_contributes() -> None:
    registry = make_registry([("loraonly", lora_only_module())])
    record = next(r for r in registry.records if r.name == "loraonly")
    assert record.status == "loaded", record.reason
    assert record.hooks == ["synapse_ui_adapters"] and record.contributes == {"ui": ["loraonly"]}
    assert registry.ui("loraonly").display_name == "Lora Only"


def test_kinds_a_layout_does_not_list_are_unsupported_with_a_reason() -> None:
    adapter = make_registry([("loraonly", lora_only_module())]).ui("loraonly")
    unlisted = adapter.entry(AssetKind.CHECKPOINT)
    assert isinstance(unlisted, Unsupported) and "does not know the kind 'checkpoint'" in unlisted.reason
    assert adapter.folder(AssetKind.CHECKPOINT) is None and not adapter.accepts(AssetKind.CHECKPOINT, "x.safetensors")
    assert adapter.entry(AssetKind.VAE) == Unsupported("no VAE folder")
    assert adapter.folder(AssetKind.LORA) is not None


def test_a_store_with_the_older_plugin_builds_views_and_leaves_the_unknown_kind_out(tmp_path: Path) -> None:
    store: Store = make_store(tmp_path / "store", [("loraonly", lora_only_module())], entry_points=False)
    store.import_pack(str(lora_file(tmp_path / "style.safetensors")), name="Style")
    checkpoint = {"model.diffusion_model.x.weight": (2, 2), "first_stage_model.y.weight": (2, 2)}
    store.import_pack(str(write_safetensors(tmp_path / "model.safetensors", checkpoint)), name="Model")
    view = store.layout.active_link("loraonly")
    assert (view / "models/loras/style.safetensors").is_file()
    [ui] = [u for u in store.status().uis if u.ui == "loraonly"]
    assert ui.entries == 1 and len(ui.unsupported) == 1 and "checkpoint" in ui.unsupported[0]


LORA_ONLY_SOURCE = """
from pathlib import Path

import click

from synapse_core import hookimpl
from synapse_core.kinds import AssetKind
from synapse_core.ui import AttachPlan, KeyStyle, KindFolder, UIAdapter, Unsupported


class LoraOnlyUI(UIAdapter):
    name = "loraonly"
    display_name = "Lora Only"
    layout = {
        AssetKind.LORA: KindFolder("models/loras", frozenset({".safetensors"}), KeyStyle.RELATIVE_PATH, "x.py"),
        AssetKind.VAE: Unsupported("no VAE folder"),
    }

    def looks_like_install(self, path: Path) -> bool:
        return False

    def plan_attach(self, install: Path, view: Path) -> AttachPlan:
        return AttachPlan(ui=self.name, install=install, view=view, instructions="")

    def plan_detach(self, install: Path, view: Path) -> AttachPlan:
        return AttachPlan(ui=self.name, install=install, view=view, instructions="")


@hookimpl(specname="synapse_ui_adapters")
def my_adapters():
    return [LoraOnlyUI()]


@hookimpl(specname="synapse_register_commands")
def my_commands(cli):
    @cli.command("lora-only-hello")
    def hello():
        click.echo("hello from a specname= command")
"""


def test_an_installed_plugin_with_specname_hooks_and_few_kinds_works_from_the_cli(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    site = tmp_path / "site"
    info = site / "synapse_loraonly-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: synapse-loraonly\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[synapse]\nloraonly = synapse_loraonly_cli\n")
    (site / "synapse_loraonly_cli.py").write_text(LORA_ONLY_SOURCE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNAPSE_")}
    env.update(PYTHONPATH=str(site), XDG_CACHE_HOME=str(tmp_path / "cache"), SYNAPSE_ROOT=str(tmp_path / "store"))
    synapse = Path(sys.executable).parent / "synapse"

    def run(*args: str | Path, strict: bool = False) -> subprocess.CompletedProcess[str]:
        extra = {"SYNAPSE_STRICT_PLUGINS": "1"} if strict else {}
        done = subprocess.run([synapse, *map(str, args)], env={**env, **extra}, capture_output=True, text=True)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        return done

    records = {r["name"]: r for r in json.loads(run("plugins", "--json", strict=True).stdout)}
    assert records["loraonly"]["status"] == "loaded", records["loraonly"]
    assert records["loraonly"]["contributes"]["ui"] == ["loraonly"]
    assert "hello from a specname= command" in run("lora-only-hello").stdout
    run("store", "init", strict=True)
    run("import", lora_file(tmp_path / "in" / "style.safetensors"), "--name", "Style")
    checkpoint = {"model.diffusion_model.x.weight": (2, 2), "first_stage_model.y.weight": (2, 2)}
    run("import", write_safetensors(tmp_path / "in" / "model.safetensors", checkpoint), "--name", "Model", strict=True)
    [ui] = [u for u in json.loads(run("status", "--json").stdout)["uis"] if u["ui"] == "loraonly"]
    assert ui["entries"] == 1 and ui["unsupported"] == ["Lora Only has no folder for checkpoint"], ui
    assert (tmp_path / "store/data/views/loraonly/active/models/loras/style.safetensors").is_file()
    run("use", "Model", "--ui", "loraonly", strict=True)
    run("back", "--ui", "loraonly")
    assert "healthy" in run("doctor").stdout
