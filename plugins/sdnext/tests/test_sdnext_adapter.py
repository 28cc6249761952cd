"""The SD.Next adapter: its layout (each fact with the SD.Next file it comes from)
and the --models-dir attach, which changes no file.

Facts: vladmandic/sdnext 058a7f0c.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from uiviews.installs import NEW_KINDS

from synapse_core.kinds import AssetKind
from synapse_core.ui import KeyStyle, KindFolder, Unsupported
from synapse_sdnext.adapter import SDNextAdapter

ADAPTER = SDNextAdapter()

REL, STEM, BASENAME = KeyStyle.RELATIVE_PATH, KeyStyle.STEM, KeyStyle.BASENAME
# kind, folder, key style, the SD.Next file the fact comes from
LAYOUT_FACTS = [
    ("checkpoint", "models/Stable-diffusion", REL, "modules/sd_checkpoint.py"),
    ("lora", "models/Lora", STEM, "modules/lora/lora_load.py"),
    ("embedding", "models/embeddings", STEM, "modules/ui_definitions.py"),
    ("vae", "models/VAE", BASENAME, "modules/sd_vae.py"),
    ("controlnet", "models/control/controlnet", STEM, "modules/control/units/controlnet.py"),
    ("upscaler", "models/ESRGAN", STEM, "modules/upscaler.py"),
    ("text_encoder", "models/Text-encoder", STEM, "modules/model_te.py"),
    ("diffusion_model", "models/UNET", STEM, "modules/sd_unet.py"),
    ("diffusers", "models/Diffusers", REL, "modules/modelloader.py load_diffusers_models"),
    ("detection", "models/yolo", STEM, "modules/detailer/helper.py"),
]
UNSUPPORTED = {
    "hypernetwork": "modules/cmd_args.py",
    "clip_vision": "modules/ipadapter.py",
    "ipadapter": "modules/ipadapter.py",
    "motion_module": "scripts/animatediff.py",
    "other": "catch-all",
    "motion_lora": "scripts/animatediff.py",
    **{kind: "modules/ui_definitions.py" for kind in NEW_KINDS},
}


@pytest.mark.parametrize(
    ("kind", "folder", "style", "source"), LAYOUT_FACTS, ids=[f"{r[0]}-{r[3]}" for r in LAYOUT_FACTS]
)
def test_kind_maps_to_folder(kind: str, folder: str, style: KeyStyle, source: str) -> None:
    entry = ADAPTER.layout[AssetKind(kind)]
    assert isinstance(entry, KindFolder)
    assert (entry.folder, entry.key_style, entry.attach_key) == (folder, style, "--models-dir")
    assert source in entry.source


@pytest.mark.parametrize(("kind", "source"), UNSUPPORTED.items(), ids=[f"{k}-{v}" for k, v in UNSUPPORTED.items()])
def test_unsupported_kinds_say_why(kind: str, source: str) -> None:
    entry = ADAPTER.layout[AssetKind(kind)]
    assert isinstance(entry, Unsupported) and source in entry.reason


def test_every_kind_is_declared() -> None:
    assert {r[0] for r in LAYOUT_FACTS} | set(UNSUPPORTED) == {kind.value for kind in AssetKind}


@pytest.mark.parametrize(
    ("kind", "name", "listed"),
    [
        ("checkpoint", "x.safetensors", True),
        ("checkpoint", "x.ckpt", False),  # modules/sd_checkpoint.py list_models: ext_filter [".safetensors"]
        ("lora", "x.ckpt", True),
        ("embedding", "x.bin", False),  # ui_extra_networks_textual_inversion.py: .pt .safetensors
        ("vae", "x.pt", False),  # modules/sd_vae.py: **/*.safetensors
        ("controlnet", "x.pth", False),  # controlnet.py find_models: .safetensors
        ("upscaler", "x.safetensors", False),  # modules/upscaler.py find_folder: .pth .pt
        ("diffusion_model", "flux.gguf", True),  # modules/sd_unet.py: .safetensors .gguf .pth
        ("text_encoder", "t5.gguf", True),  # modules/model_te.py: .safetensors .gguf
    ],
)
def test_extension_acceptance(kind: str, name: str, listed: bool) -> None:
    assert ADAPTER.accepts(AssetKind(kind), name) is listed


def test_same_lora_name_in_two_folders_collides_lora_load_py() -> None:
    a = ADAPTER.conflict_key(AssetKind.LORA, "a/x.safetensors")
    assert a == ADAPTER.conflict_key(AssetKind.LORA, "b/x.safetensors")


def test_looks_like_install(tmp_path: Path) -> None:
    (tmp_path / "launch.py").write_text("")
    (tmp_path / "webui.py").write_text("")
    (tmp_path / "modules").mkdir()
    assert not ADAPTER.looks_like_install(tmp_path)  # could be A1111 or Forge
    (tmp_path / "installer.py").write_text("")
    assert ADAPTER.looks_like_install(tmp_path)


def test_attach_prints_models_dir_and_changes_nothing(tmp_path: Path) -> None:
    install, view = tmp_path / "sdnext", tmp_path / "My Store" / "views" / "sdnext" / "active"
    install.mkdir()
    plan = ADAPTER.plan_attach(install, view)
    assert plan.changes == ()
    assert f"--models-dir {shlex.quote(str(view / 'models'))}" in plan.instructions
    assert "--vae-dir" in plan.instructions and "opts.vae_dir" in plan.instructions  # why not per-folder flags
    assert "SD_MODELSDIR" in plan.instructions
    detach = ADAPTER.plan_detach(install, view)
    assert detach.changes == () and "--models-dir" in detach.instructions
