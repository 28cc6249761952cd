"""The Forge adapter: its layout (each fact with the Forge file it comes from), the
command-line flags, and the synapse block in webui-user.sh / webui-user.bat.

Facts: lllyasviel/stable-diffusion-webui-forge dfdcbab6.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from uiviews.installs import NEW_KINDS, webui_install

from synapse_core.kinds import AssetKind
from synapse_core.ui import AttachPlan, KeyStyle, KindFolder, Unsupported
from synapse_forge.adapter import ForgeAdapter

ADAPTER = ForgeAdapter()

REL, STEM, BASENAME = KeyStyle.RELATIVE_PATH, KeyStyle.STEM, KeyStyle.BASENAME
# kind, folder, flag, key style, the Forge file the fact comes from
LAYOUT_FACTS = [
    ("checkpoint", "models/Stable-diffusion", "--ckpt-dir", REL, "modules/sd_models.py"),
    ("lora", "models/Lora", "--lora-dir", STEM, "extensions-builtin/sd_forge_lora/networks.py"),
    ("embedding", "embeddings", "--embeddings-dir", STEM, "modules/textual_inversion/textual_inversion.py"),
    ("vae", "models/VAE", "--vae-dir", BASENAME, "modules_forge/main_entry.py"),
    ("controlnet", "models/ControlNet", "--controlnet-dir", REL, "lib_controlnet/global_state.py"),
    ("upscaler", "models/ESRGAN", "--esrgan-models-path", STEM, "modules/esrgan_model.py"),
    ("hypernetwork", "models/hypernetworks", "--hypernetwork-dir", STEM, "modules/hypernetworks/hypernetwork.py"),
    ("text_encoder", "models/text_encoder", "--text-encoder-dir", BASENAME, "modules_forge/main_entry.py"),
    ("diffusion_model", "models/Stable-diffusion", "--ckpt-dir", REL, "modules/sd_models.py"),
    ("ipadapter", "models/ControlNet", "--controlnet-dir", REL, "sd_forge_ipadapter/scripts/forge_ipadapter.py"),
]
UNSUPPORTED = {
    "clip_vision": "modules_forge/supported_preprocessor.py",
    "motion_module": "AnimateDiff",
    "other": "catch-all",
    "motion_lora": "AnimateDiff",
    "diffusers": "HF_HOME",  # modules_forge/initialization.py: models/diffusers is the Hugging Face cache
    "photomaker": "forge_space_photo_maker_v2",
    **{kind: "no folder or flag in modules/cmd_args.py" for kind in NEW_KINDS if kind != "photomaker"},
    "detection": "no folder or flag",
}


@pytest.mark.parametrize(
    ("kind", "folder", "flag", "style", "source"), LAYOUT_FACTS, ids=[f"{r[0]}-{r[4]}" for r in LAYOUT_FACTS]
)
def test_kind_maps_to_folder_and_flag(kind: str, folder: str, flag: str, style: KeyStyle, source: str) -> None:
    entry = ADAPTER.layout[AssetKind(kind)]
    assert isinstance(entry, KindFolder)
    assert (entry.folder, entry.attach_key, entry.key_style) == (folder, flag, style)
    assert source in entry.source


@pytest.mark.parametrize(("kind", "why"), UNSUPPORTED.items(), ids=[f"{k}-{v}" for k, v in UNSUPPORTED.items()])
def test_unsupported_kinds_say_why(kind: str, why: str) -> None:
    entry = ADAPTER.layout[AssetKind(kind)]
    assert isinstance(entry, Unsupported) and why in entry.reason


def test_every_kind_is_declared() -> None:
    assert {r[0] for r in LAYOUT_FACTS} | set(UNSUPPORTED) == {kind.value for kind in AssetKind}


@pytest.mark.parametrize(
    ("kind", "name", "listed"),
    [
        ("checkpoint", "flux.gguf", True),  # modules/sd_models.py list_models adds .gguf
        ("diffusion_model", "flux-unet.gguf", True),
        ("checkpoint", "x.ckpt", True),
        ("lora", "x.ckpt", True),  # sd_forge_lora/networks.py: .pt .ckpt .safetensors
        ("text_encoder", "t5.gguf", True),  # main_entry.py: ckpt pt bin safetensors gguf
        ("vae", "ae.bin", True),
        ("controlnet", "x.patch", True),  # lib_controlnet/global_state.py CN_MODEL_EXTS
        ("clip_vision", "x.safetensors", False),
    ],
)
def test_extension_acceptance(kind: str, name: str, listed: bool) -> None:
    assert ADAPTER.accepts(AssetKind(kind), name) is listed


def test_same_lora_name_in_two_folders_collides_networks_py() -> None:
    # sd_forge_lora/networks.py process_network_files: available_networks[stem]
    a = ADAPTER.conflict_key(AssetKind.LORA, "a/x.safetensors")
    assert a == ADAPTER.conflict_key(AssetKind.LORA, "b/x.safetensors") == "x"


def test_controlnets_do_not_collide_by_name_global_state_py() -> None:
    # lib_controlnet/global_state.py keys "<stem> [<content hash>]": different files stay apart
    a = ADAPTER.conflict_key(AssetKind.CONTROLNET, "a/canny.safetensors")
    assert a != ADAPTER.conflict_key(AssetKind.CONTROLNET, "b/canny.safetensors")


def test_text_encoders_keyed_by_file_name_main_entry_py() -> None:
    a = ADAPTER.conflict_key(AssetKind.TEXT_ENCODER, "a/t5xxl.safetensors")
    assert a == ADAPTER.conflict_key(AssetKind.TEXT_ENCODER, "b/t5xxl.safetensors") == "t5xxl.safetensors"


def test_looks_like_install(tmp_path: Path) -> None:
    (tmp_path / "launch.py").write_text("")
    (tmp_path / "modules").mkdir()
    assert not ADAPTER.looks_like_install(tmp_path)  # plain A1111
    (tmp_path / "modules_forge").mkdir()
    assert ADAPTER.looks_like_install(tmp_path)


# --------------------------------------------------------------------------- attach

WEBUI_USER_BAT = (
    "@echo off\r\n\r\nset PYTHON=\r\nset COMMANDLINE_ARGS=\r\n\r\n"
    "@REM set A1111_HOME=Your A1111 checkout dir\r\n\r\ncall webui.bat\r\n"
)
WEBUI_USER_SH = '#!/bin/bash\n#export COMMANDLINE_ARGS=""\n#venv_dir="venv"'  # no final line break


def _apply(plan: AttachPlan) -> None:
    for change in plan.changes:
        with open(change.path, "w", encoding="utf-8", newline="") as handle:
            handle.write(change.content)


def _install(tmp_path: Path) -> Path:
    install = webui_install(tmp_path / "forge", "forge")
    (install / "webui-user.sh").write_bytes(WEBUI_USER_SH.encode())
    (install / "webui-user.bat").write_bytes(WEBUI_USER_BAT.encode())
    return install


def test_flags_cover_forge_only_folders(tmp_path: Path) -> None:
    install, view = _install(tmp_path), tmp_path / "views" / "forge" / "active"
    plan = ADAPTER.plan_attach(install, view)
    lines = {line.split()[0]: line for line in plan.instructions.splitlines() if line.startswith("  --")}
    assert set(lines) == {
        "--ckpt-dir",
        "--lora-dir",
        "--embeddings-dir",
        "--vae-dir",
        "--controlnet-dir",
        "--esrgan-models-path",
        "--hypernetwork-dir",
        "--text-encoder-dir",
    }
    assert f"--text-encoder-dir {shlex.quote(str(view / 'models/text_encoder'))}" in lines["--text-encoder-dir"]
    assert "in addition" in lines["--ckpt-dir"] and "in addition" in lines["--text-encoder-dir"]
    assert "replaces" in lines["--lora-dir"] and "replaces" in lines["--controlnet-dir"]
    assert "--controlnet-preprocessor-models-dir" not in plan.instructions  # would send downloads into the view
    assert "LyCORIS" in plan.instructions


def test_blocks_round_trip_byte_for_byte(tmp_path: Path) -> None:
    install, view = _install(tmp_path), tmp_path / "views" / "forge" / "active"
    plan = ADAPTER.plan_attach(install, view)
    contents = {c.path.name: c.content for c in plan.changes}
    assert contents["webui-user.sh"].startswith(WEBUI_USER_SH + "\n# >>> synapse >>>\n")
    assert contents["webui-user.bat"].endswith("rem === synapse end ===\r\ncall webui.bat\r\n")
    _apply(plan)
    _apply(ADAPTER.plan_attach(install, tmp_path / "moved"))  # re-attach replaces, never duplicates
    assert (install / "webui-user.bat").read_bytes().count(b"rem === synapse begin ===") == 1
    _apply(ADAPTER.plan_detach(install, view))
    assert (install / "webui-user.sh").read_bytes() == WEBUI_USER_SH.encode()
    assert (install / "webui-user.bat").read_bytes() == WEBUI_USER_BAT.encode()
    assert ADAPTER.plan_detach(install, view).changes == ()
