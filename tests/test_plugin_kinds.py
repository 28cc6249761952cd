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
