"""Forge, reForge and Forge Classic: each install is recognised by name and gets only the flags
its own parser defines, so it still starts (issue 16, item 3).

The installs have the real shapes of each UI's parser (tests/uiviews/installs.py: Forge
dfdcbab6 backend/args.py + modules/cmd_args.py; reForge 3b56b268 and Forge Classic 1f95d717
ldm_patched/modules/args_parser.py + modules/cmd_args.py; extensions-builtin preloads) and
are launch-parsed the way modules/shared_cmd_options.py does it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from uiviews.installs import launch_parse, parsed, webui_install

from synapse_core.attach_flags import Dialect, FlagAttach, targets_from_layout
from synapse_core.kinds import AssetKind
from synapse_core.ui import AttachPlan, KindFolder, Liveness, Unsupported
from synapse_forge.adapter import ADDING_FLAGS, SCRIPTS, ForgeAdapter
from synapse_forge.layout import LAYOUT
from synapse_forge.variants import detect_variant

ADAPTER = ForgeAdapter()
needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="webui.sh is a bash script")

# variant: (name, flags its parser defines among Forge's, flags it lacks)
VARIANTS = {
    "forge": ("Forge", {"--text-encoder-dir", "--hypernetwork-dir", "--controlnet-dir"}, set()),
    "reforge": ("reForge", {"--hypernetwork-dir", "--controlnet-dir"}, {"--text-encoder-dir"}),
    "forge_classic": ("Forge Classic", {"--controlnet-dir"}, {"--text-encoder-dir", "--hypernetwork-dir"}),
}
ALWAYS = {"--ckpt-dir", "--lora-dir", "--embeddings-dir", "--vae-dir", "--esrgan-models-path"}


def _apply(plan: AttachPlan) -> None:
    for change in plan.changes:
        with open(change.path, "w", encoding="utf-8", newline="") as handle:
            handle.write(change.content)


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_is_recognised_by_name(tmp_path: Path, variant: str) -> None:
    install = webui_install(tmp_path / variant, variant)
    name = VARIANTS[variant][0]
    assert ADAPTER.looks_like_install(install)
    assert detect_variant(install).name == name
    info = ADAPTER.describe_install(install)
    assert info.variant == name and info.version and info.follows is Liveness.REFRESH
    assert ADAPTER.plan_attach(install, tmp_path / "view").instructions.count(name) >= 1


def test_the_git_remote_names_the_variant_before_any_mark(tmp_path: Path) -> None:
    install = webui_install(tmp_path / "renamed", "forge")  # Forge's marks ...
    (install / ".git").mkdir()
    (install / ".git" / "config").write_text(
        '[remote "origin"]\n\turl = https://github.com/Haoming02/sd-webui-forge-classic.git\n'
    )
    assert detect_variant(install).name == "Forge Classic"  # ... but a Forge Classic checkout


@needs_bash
@pytest.mark.parametrize("variant", VARIANTS)
def test_attach_launch_parse_detach(tmp_path: Path, variant: str) -> None:
    _, has, lacks = VARIANTS[variant]
    install = webui_install(tmp_path / variant, variant)
    original = {s: (install / s).read_bytes() for s in ("webui-user.sh", "webui-user.bat")}
    view = tmp_path / "store dir" / "data" / "views" / "forge" / "active"
    plan = ADAPTER.plan_attach(install, view)
    _apply(plan)
    options = parsed(install)  # the real parse of this install's parser accepts every flag written
    assert options["lora_dir"] == str(view / "models/Lora")
    assert options["ckpt_dir"] == str(view / "models/Stable-diffusion")
    assert options["embeddings_dir"] == str(view / "embeddings")
    written = {flag for flag in ALWAYS | has | lacks if f"{flag} " in (install / "webui-user.sh").read_text()}
    assert written == ALWAYS | has
    for flag in lacks:
        assert "Not attached: " in plan.instructions and flag in plan.instructions
    bat = (install / "webui-user.bat").read_text()
    assert all(f"{flag} " in bat for flag in ALWAYS | has) and not any(f"{flag} " in bat for flag in lacks)
    _apply(ADAPTER.plan_detach(install, view))
    assert {s: (install / s).read_bytes() for s in original} == original
    assert "lora_dir" in parsed(install)


@needs_bash
@pytest.mark.parametrize("variant", ["reforge", "forge_classic"])
def test_the_old_attach_stops_these_launches_with_unrecognized_arguments(tmp_path: Path, variant: str) -> None:
    """What every Forge flag did to reForge and Forge Classic (the reproduction can fail)."""
    install = webui_install(tmp_path / variant, variant)
    every = FlagAttach(
        "forge", "Forge", "COMMANDLINE_ARGS", targets_from_layout(LAYOUT.values(), ADDING_FLAGS), SCRIPTS
    )
    _apply(every.plan_attach(install, tmp_path / "view"))
    result = launch_parse(install)
    [error] = [line for line in result.stderr.splitlines() if "error:" in line]
    assert result.returncode == 2 and "unrecognized arguments: " in error and "--text-encoder-dir" in error
    assert ("--hypernetwork-dir" in error.partition("unrecognized arguments")[2]) is (variant == "forge_classic")


@pytest.mark.parametrize("variant", VARIANTS)
def test_status_layout_of_each_variant(tmp_path: Path, variant: str) -> None:
    lists = ADAPTER.describe_install(webui_install(tmp_path / variant, variant)).lists
    assert lists is not None
    checkpoint, text_encoder, hypernetwork = (
        lists[k] for k in (AssetKind.CHECKPOINT, AssetKind.TEXT_ENCODER, AssetKind.HYPERNETWORK)
    )
    assert isinstance(checkpoint, KindFolder)
    if variant == "forge":
        assert ".gguf" in checkpoint.extensions and isinstance(text_encoder, KindFolder)
        return
    # reForge / Forge Classic modules/sd_models.py list_models: ext_filter=[".ckpt", ".safetensors"]
    assert checkpoint.extensions == frozenset({".ckpt", ".safetensors"})
    assert isinstance(text_encoder, Unsupported) and "--text-encoder-dir" in text_encoder.reason
    assert isinstance(hypernetwork, Unsupported) is (variant == "forge_classic")


def test_forge_classic_keeps_its_own_embeddings_in_models_embeddings(tmp_path: Path) -> None:
    """Forge Classic's --embeddings-dir default is models/embeddings: those are what attach would hide."""
    install = webui_install(tmp_path / "classic", "forge_classic")
    (install / "models" / "embeddings").mkdir(parents=True)
    (install / "models" / "embeddings" / "easyneg.safetensors").write_bytes(b"x")
    (install / "embeddings").mkdir()
    (install / "embeddings" / "not-read-by-classic.pt").write_bytes(b"x")
    [conflict] = ADAPTER.attach_conflicts(install, tmp_path / "view")
    assert conflict == f"1 model file in {install / 'models/embeddings'} (which --embeddings-dir replaces)"


BAT_FORMS = [
    "call webui.bat",
    "webui.bat",
    "call .\\webui.bat",
    'call "%~dp0webui.bat"',
    "CALL webui.bat --xformers",
    "@call webui.bat",
    '"%~dp0webui.bat"',
]


@pytest.mark.parametrize("launch", BAT_FORMS)
def test_the_bat_block_goes_before_the_launch_line_in_all_its_forms(tmp_path: Path, launch: str) -> None:
    install = webui_install(tmp_path / "forge", "forge")
    before = f"@echo off\r\nrem webui.bat is called below\r\nset COMMANDLINE_ARGS=--api\r\n{launch}\r\n"
    (install / "webui-user.bat").write_bytes(before.encode())
    plan = ADAPTER.plan_attach(install, tmp_path / "view")
    [bat] = [c for c in plan.changes if c.path.name == "webui-user.bat"]
    lines = bat.content.split("\r\n")
    assert lines.index("rem === synapse end ===") + 1 == lines.index(launch)
    assert lines.index("set COMMANDLINE_ARGS=--api") < lines.index("rem === synapse begin ===")


def test_user_flags_are_found_outside_comments_and_the_block(tmp_path: Path) -> None:
    install = webui_install(tmp_path / "forge", "forge")
    (install / "webui-user.bat").write_bytes(
        b"@echo off\r\n@REM  --lora-dir %A1111_HOME%/models/Lora\r\n"
        b"set COMMANDLINE_ARGS=%COMMANDLINE_ARGS% ^\r\n --ckpt-dir D:/mine\r\ncall webui.bat\r\n"
    )
    flags = ADAPTER.flag_attach(install)
    assert flags.user_flags(install, ["--lora-dir", "--ckpt-dir"]) == {"--ckpt-dir": ["webui-user.bat"]}
    _apply(ADAPTER.plan_attach(install, tmp_path / "view"))  # the block itself does not count
    assert flags.user_flags(install, ["--lora-dir"]) == {}
    assert Dialect.BAT in {s.dialect for s in SCRIPTS}
