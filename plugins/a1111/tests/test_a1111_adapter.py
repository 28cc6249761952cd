"""The AUTOMATIC1111 adapter: its layout (each fact with the A1111 file it comes from),
the command-line flags, and the synapse block in webui-user.sh / webui-user.bat.

Facts: AUTOMATIC1111/stable-diffusion-webui c8a5322d; ControlNet from the
Mikubill/sd-webui-controlnet extension. The generic text-region helpers of
synapse_core.attach_flags are exercised here too.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from uiviews.installs import NEW_KINDS, add_extension, webui_install

from synapse_a1111.adapter import A1111Adapter
from synapse_core.attach_flags import argparse_flags, bat_call_pattern, insert_region, lines_of, remove_region
from synapse_core.errors import InvalidInput
from synapse_core.kinds import AssetKind
from synapse_core.ui import AttachPlan, KeyStyle, KindFolder, Liveness, Unsupported

ADAPTER = A1111Adapter()

REL, STEM, BASENAME = KeyStyle.RELATIVE_PATH, KeyStyle.STEM, KeyStyle.BASENAME
# kind, folder, flag, key style, the A1111 (or extension) file the fact comes from
LAYOUT_FACTS = [
    ("checkpoint", "models/Stable-diffusion", "--ckpt-dir", REL, "modules/sd_models.py"),
    ("lora", "models/Lora", "--lora-dir", STEM, "extensions-builtin/Lora/preload.py"),
    ("embedding", "embeddings", "--embeddings-dir", STEM, "modules/textual_inversion/textual_inversion.py"),
    ("vae", "models/VAE", "--vae-dir", BASENAME, "modules/sd_vae.py"),
    ("controlnet", "models/ControlNet", "--controlnet-dir", STEM, "sd-webui-controlnet scripts/global_state.py"),
    ("upscaler", "models/ESRGAN", "--esrgan-models-path", STEM, "modules/esrgan_model.py"),
    ("hypernetwork", "models/hypernetworks", "--hypernetwork-dir", STEM, "modules/hypernetworks/hypernetwork.py"),
    ("ipadapter", "models/ControlNet", "--controlnet-dir", STEM, "sd-webui-controlnet scripts/global_state.py"),
]
UNSUPPORTED = ["text_encoder", "diffusion_model", "clip_vision", "motion_module", "other", "motion_lora"]
UNSUPPORTED += ["detection", "diffusers", *NEW_KINDS]


@pytest.mark.parametrize(
    ("kind", "folder", "flag", "style", "source"), LAYOUT_FACTS, ids=[f"{r[0]}-{r[4]}" for r in LAYOUT_FACTS]
)
def test_kind_maps_to_folder_and_flag(kind: str, folder: str, flag: str, style: KeyStyle, source: str) -> None:
    entry = ADAPTER.layout[AssetKind(kind)]
    assert isinstance(entry, KindFolder)
    assert (entry.folder, entry.attach_key, entry.key_style) == (folder, flag, style)
    assert source in entry.source


@pytest.mark.parametrize("kind", UNSUPPORTED)
def test_unsupported_kinds_say_why(kind: str) -> None:
    entry = ADAPTER.layout[AssetKind(kind)]
    assert isinstance(entry, Unsupported) and len(entry.reason) > 20


def test_every_kind_is_declared() -> None:
    assert {r[0] for r in LAYOUT_FACTS} | set(UNSUPPORTED) == {kind.value for kind in AssetKind}
    assert set(ADAPTER.layout) == set(AssetKind)


def test_embeddings_live_at_the_root_modules_cmd_args_py() -> None:
    assert ADAPTER.folder(AssetKind.EMBEDDING).folder == "embeddings"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("kind", "name", "listed"),
    [
        ("checkpoint", "x.safetensors", True),  # modules/sd_models.py list_models: .ckpt .safetensors
        ("checkpoint", "x.ckpt", True),
        ("checkpoint", "x.gguf", False),  # only Forge lists .gguf
        ("lora", "x.pt", True),  # extensions-builtin/Lora/networks.py: .pt .ckpt .safetensors
        ("lora", "x.bin", False),
        ("hypernetwork", "x.pt", True),  # hypernetwork.py list_hypernetworks: **/*.pt only
        ("hypernetwork", "x.safetensors", False),
        ("embedding", "x.png", True),  # textual_inversion.py load_from_file: images can carry embeddings
        ("upscaler", "x.pth", True),  # modules/esrgan_model.py load_model: find_models(ext_filter=[".pt", ".pth"])
        ("upscaler", "x.safetensors", False),
        ("text_encoder", "x.safetensors", False),
    ],
)
def test_extension_acceptance(kind: str, name: str, listed: bool) -> None:
    assert ADAPTER.accepts(AssetKind(kind), name) is listed


def test_same_lora_name_in_two_folders_collides_networks_py() -> None:
    # extensions-builtin/Lora/networks.py keys available_networks by the bare stem
    assert ADAPTER.conflict_key(AssetKind.LORA, "a/x.safetensors") == ADAPTER.conflict_key(
        AssetKind.LORA, "b/x.safetensors"
    )
    assert ADAPTER.conflict_key(AssetKind.LORA, "a/x.safetensors") == ADAPTER.conflict_key(AssetKind.LORA, "b/x.pt")


def test_other_key_styles() -> None:
    # modules/sd_vae.py get_filename: the basename WITH extension
    vae = ADAPTER.conflict_key(AssetKind.VAE, "a/v.safetensors")
    assert vae == ADAPTER.conflict_key(AssetKind.VAE, "b/v.safetensors") == "v.safetensors"
    assert vae != ADAPTER.conflict_key(AssetKind.VAE, "a/v.pt")
    # modules/sd_models.py: checkpoints are named by their path relative to the folder
    assert ADAPTER.conflict_key(AssetKind.CHECKPOINT, "a/m.safetensors") != ADAPTER.conflict_key(
        AssetKind.CHECKPOINT, "b/m.safetensors"
    )


def test_looks_like_install(tmp_path: Path) -> None:
    assert not ADAPTER.looks_like_install(tmp_path)
    (tmp_path / "launch.py").write_text("")
    assert not ADAPTER.looks_like_install(tmp_path)  # no modules/
    (tmp_path / "modules").mkdir()
    assert ADAPTER.looks_like_install(tmp_path)
    (tmp_path / "modules_forge").mkdir()
    assert not ADAPTER.looks_like_install(tmp_path)  # that is Forge
    (tmp_path / "modules_forge").rmdir()
    (tmp_path / "installer.py").write_text("")
    assert not ADAPTER.looks_like_install(tmp_path)  # that is SD.Next


# --------------------------------------------------------------------------- attach

WEBUI_USER_SH = """\
#!/bin/bash
# Commandline arguments for webui.py
export COMMANDLINE_ARGS="--medvram"

# python3 executable
#python_cmd="python3"
"""
WEBUI_USER_BAT = "@echo off\r\n\r\nset PYTHON=\r\nset COMMANDLINE_ARGS=--xformers\r\n\r\ncall webui.bat\r\n"


def _apply(plan: AttachPlan) -> None:
    for change in plan.changes:
        with open(change.path, "w", encoding="utf-8", newline="") as handle:
            handle.write(change.content)


def _install(tmp_path: Path, *, controlnet: bool = False) -> Path:
    install = webui_install(tmp_path / "stable-diffusion-webui", "a1111")
    (install / "webui-user.sh").write_text(WEBUI_USER_SH)
    (install / "webui-user.bat").write_bytes(WEBUI_USER_BAT.encode())
    if controlnet:
        add_extension(install, "sd-webui-controlnet", ["--controlnet-dir"])
    return install


def _view(tmp_path: Path) -> Path:
    return tmp_path / "My Store" / "data" / "views" / "a1111" / "active"


def test_instructions_give_the_flags_and_what_they_do(tmp_path: Path) -> None:
    install, view = _install(tmp_path), _view(tmp_path)
    text = ADAPTER.plan_attach(install, view).instructions
    assert f"--lora-dir {shlex.quote(str(view / 'models/Lora'))}" in text
    assert f"--embeddings-dir {shlex.quote(str(view / 'embeddings'))}" in text
    lines = {line.split()[0]: line for line in text.splitlines() if line.startswith("  --")}
    assert "in addition" in lines["--ckpt-dir"]  # --ckpt-dir ADDS a folder
    assert "replaces" in lines["--lora-dir"]  # the other --*-dir flags REPLACE theirs
    assert "--text-encoder-dir" not in text  # A1111 would refuse a flag it does not know
    assert "--controlnet-dir" not in lines  # no ControlNet extension installed


def test_controlnet_flag_only_with_the_enabled_extension(tmp_path: Path) -> None:
    install, view = _install(tmp_path, controlnet=True), _view(tmp_path)
    assert "--controlnet-dir" in ADAPTER.plan_attach(install, view).changes[0].content
    (install / "config.json").write_text('{"disabled_extensions": ["sd-webui-controlnet"]}')
    assert "--controlnet-dir" not in ADAPTER.plan_attach(install, view).changes[0].content


def test_webui_user_sh_block_round_trip(tmp_path: Path) -> None:
    install, view = _install(tmp_path), _view(tmp_path)
    plan = ADAPTER.plan_attach(install, view)
    sh = next(c for c in plan.changes if c.path.name == "webui-user.sh")
    assert sh.content.startswith(WEBUI_USER_SH)
    assert sh.content.count("# >>> synapse >>>") == 1 and sh.content.endswith("# <<< synapse <<<\n")
    _apply(plan)
    assert ADAPTER.plan_attach(install, view).changes == ()  # attached already
    other = ADAPTER.plan_attach(install, tmp_path / "elsewhere")
    assert all(c.content.count("synapse >>>") + c.content.count("synapse begin") == 1 for c in other.changes)
    detach = ADAPTER.plan_detach(install, view)
    assert {c.path.name: c.content.encode() for c in detach.changes} == {
        "webui-user.sh": WEBUI_USER_SH.encode(),
        "webui-user.bat": WEBUI_USER_BAT.encode(),
    }


def test_webui_user_bat_block_comes_before_call_webui_bat(tmp_path: Path) -> None:
    install, view = _install(tmp_path), _view(tmp_path)
    bat = next(c for c in ADAPTER.plan_attach(install, view).changes if c.path.name == "webui-user.bat")
    lines = bat.content.split("\r\n")
    assert "\n" not in bat.content.replace("\r\n", "")  # CRLF kept, also inside the block
    assert lines.index("rem === synapse end ===") == lines.index("call webui.bat") - 1
    assert lines.index("set COMMANDLINE_ARGS=--xformers") < lines.index("rem === synapse begin ===")
    assert f'set COMMANDLINE_ARGS=%COMMANDLINE_ARGS% --lora-dir "{view}/models/Lora"' in lines


def test_without_launcher_scripts_nothing_is_written(tmp_path: Path) -> None:
    install, view = _install(tmp_path), _view(tmp_path)
    (install / "webui-user.sh").unlink()
    (install / "webui-user.bat").unlink()
    plan = ADAPTER.plan_attach(install, view)
    assert plan.changes == ()
    assert "changes no file" in plan.instructions and "--lora-dir" in plan.instructions


def test_a_broken_block_is_refused(tmp_path: Path) -> None:
    install, view = _install(tmp_path), _view(tmp_path)
    (install / "webui-user.sh").write_text(WEBUI_USER_SH + "# >>> synapse >>>\nexport X=1\n")
    with pytest.raises(InvalidInput, match="fix or move it; nothing was changed"):
        ADAPTER.plan_attach(install, view)
    with pytest.raises(InvalidInput, match=r"webui-user\.sh"):
        ADAPTER.plan_detach(install, view)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_passes_awkward_paths_through_to_shlex_split(tmp_path: Path) -> None:
    """webui.sh sources webui-user.sh; modules/paths_internal.py shlex.splits COMMANDLINE_ARGS."""
    install = _install(tmp_path)
    view = tmp_path / 'it\'s a "store" with $HOME and `x`' / "active"
    _apply(ADAPTER.plan_attach(install, view))
    script = 'source ./webui-user.sh && printf %s "$COMMANDLINE_ARGS"'
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent"}
    out = subprocess.run(["bash", "-c", script], cwd=install, env=env, capture_output=True, text=True, check=True)
    args = shlex.split(out.stdout)
    assert args[0] == "--medvram"  # the user's own flags stay first
    pairs = dict(zip(args[1::2], args[2::2], strict=True))
    assert pairs["--lora-dir"] == str(view / "models/Lora")
    assert pairs["--ckpt-dir"] == str(view / "models/Stable-diffusion")


# --------------------------------------------------------------------------- text regions (synapse_core.attach_flags)

TEXTS = ["", "a", "a\n", "a\nb", "a\nb\n", "a\r\nb\r\n", "a\r\nb", "\n\n"]


@pytest.mark.parametrize("text", TEXTS)
def test_insert_then_remove_restores_the_text(text: str) -> None:
    newline = "\r\n" if "\r\n" in text else "\n"
    body = newline.join(["# >>> b", "x=1", "# <<< b"])
    for at in [None, *(line.start for line in lines_of(text))]:
        edited = insert_region(text, body, at, newline)
        [line] = [line for line in lines_of(edited) if line.text == "# >>> b"]
        [last] = [line for line in lines_of(edited) if line.text == "# <<< b"]
        assert remove_region(edited, line.start, last.end) == text


# --------------------------------------------------------------------------- parser flags (synapse_core.attach_flags)


def test_argparse_flags_reads_add_argument_calls_and_the_module_the_parser_comes_from(tmp_path: Path) -> None:
    (tmp_path / "backend").mkdir()
    (tmp_path / "backend" / "args.py").write_text(
        'import argparse\nparser = argparse.ArgumentParser()\nparser.add_argument("--cuda-malloc", action="store_true")\n'
    )
    (tmp_path / "modules").mkdir()
    cmd_args = tmp_path / "modules" / "cmd_args.py"
    cmd_args.write_text(
        'from backend.args import parser\nparser.add_argument(\n    "--lora-dir",\n    "--lyco-dir",\n    type=str,\n)\nparser.add_argument("-f")\nx = "--not-a-flag"\n'
    )
    assert argparse_flags(cmd_args, tmp_path) == {"--cuda-malloc", "--lora-dir", "--lyco-dir"}
    assert argparse_flags(cmd_args) == {"--lora-dir", "--lyco-dir"}
    cmd_args.write_text("def broken(:\n")
    with pytest.raises(InvalidInput, match=r"cmd_args\.py is not Python"):
        argparse_flags(cmd_args)


@pytest.mark.parametrize(
    ("line", "runs"),
    [
        ("call webui.bat", True),
        ("webui.bat %*", True),
        ('call "%~dp0\\webui.bat"', True),
        ("rem call webui.bat", False),
        (":: webui.bat", False),
        ("call webui.bat.old", False),
        ("call mywebui.bat", False),
    ],
)
def test_bat_call_pattern(line: str, runs: bool) -> None:
    assert bool(re.search(bat_call_pattern("webui.bat"), line, re.IGNORECASE)) is runs


def test_a1111_before_v1_8_needs_a_restart_to_follow_a_switch(tmp_path: Path) -> None:
    """c8a5322d's modules/paths_internal.py normalized_filepath resolve()s the flags' paths (PR #15035
    made it absolute() in v1.8.0): a running A1111 keeps the profile it started with."""
    old = ADAPTER.describe_install(webui_install(tmp_path / "c8a5322d", "a1111", resolves=True))
    new = ADAPTER.describe_install(webui_install(tmp_path / "45b8a499", "a1111"))
    assert old.follows is Liveness.RESTART and "resolve()" in old.follows_detail
    assert new.follows is Liveness.REFRESH
    lists = new.lists
    assert lists is not None and isinstance(lists[AssetKind.CONTROLNET], Unsupported)  # no extension: no flag
