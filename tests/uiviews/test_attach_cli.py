"""attach / detach through the real CLI: ComfyUI's extra_model_paths.yaml section and the
A1111 command-line flags; only what Synapse owns ever changes (issue 4)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from uiviews.installs import comfy_install, webui_install
from uiviews.kit import assert_clear_error, sha_of

from synapse_core.store import Store
from synapse_core.testing import lora_file

COMFY_EXTENSIONS = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}

USER_YAML = (
    "# my own model folders -- keep this comment\n"
    "a111:\n"
    "    base_path: /srv/webui/   # trailing comment\n"
    "\n"
    "    checkpoints: models/Stable-diffusion\n"
    "    loras: |\n"
    "        models/Lora\n"
    "        models/LyCORIS\n"
    "\n"
    "#other_ui:\n"
    "#    base_path: path/to/ui\n"
)


def a1111_install(where: Path) -> Path:
    """An A1111 install with its real parser shape (modules/cmd_args.py, extensions-builtin preloads)."""
    install = webui_install(where, "a1111")
    for script in ("webui-user.sh", "webui-user.bat"):
        (install / script).unlink()
    return install


def stat_of(path: Path) -> tuple[int, int, bytes]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns, path.read_bytes()


def comfy_lists(yaml_file: Path, key: str) -> dict[str, str]:
    """What ComfyUI's loader would list for ``key`` from this file: {name relative to the
    search root: real path}. The semantics of utils/extra_config.py load_extra_path_config
    (values are newline-separated strings joined to base_path) and folder_paths.get_filename_list
    (os.walk with followlinks, filtered by supported_pt_extensions)."""
    config = yaml.safe_load(yaml_file.read_text())
    found: dict[str, str] = {}
    for conf in config.values():
        if conf is None:
            continue
        conf = dict(conf)
        base = conf.pop("base_path", None)
        conf.pop("is_default", None)
        value = conf.get(key)
        if value is None:
            continue
        assert isinstance(value, str), f"{key}: {value!r} is not a string (ComfyUI calls .split on it)"
        for line in value.split("\n"):
            if not line:
                continue
            folder = os.path.join(os.path.expanduser(os.path.expandvars(base)), line) if base else line
            if not os.path.isabs(folder):
                folder = os.path.join(yaml_file.parent, folder)
            for dirpath, _dirs, files in os.walk(folder, followlinks=True):
                for name in files:
                    if os.path.splitext(name)[1].lower() in COMFY_EXTENSIONS:
                        full = os.path.join(dirpath, name)
                        found.setdefault(os.path.relpath(full, folder).replace(os.sep, "/"), os.path.realpath(full))
    return found


# -- ComfyUI ---------------------------------------------------------------------------------------------------------


def test_comfyui_attach_owns_one_section_and_detach_restores_the_file(store: Store, root: Path, cli, tmp_path: Path):
    earlier = lora_file(tmp_path / "src" / "e" / "style.safetensors", seed=1)
    later = lora_file(tmp_path / "src" / "l" / "style.safetensors", seed=2)
    store.import_pack(str(earlier), name="Earlier")
    store.import_pack(str(later), name="Later")
    install = comfy_install(tmp_path / "ComfyUI")
    config = install / "extra_model_paths.yaml"
    config.write_text(USER_YAML)
    original = config.read_bytes()
    store_config = root / "state" / "config.json"

    # --print: the section is shown, nothing is written
    before, store_before = stat_of(config), store_config.read_bytes()
    printed = cli("attach", "comfyui", install, "--print")
    assert "synapse:" in printed.stdout and str(root / "data" / "views" / "comfyui" / "active") in printed.stdout
    assert "--extra-model-paths-config" in printed.stdout
    assert stat_of(config) == before and store_config.read_bytes() == store_before

    attached = cli("attach", "comfyui", install)
    assert f"changed {config}" in attached.stdout
    text = config.read_bytes()
    assert text.startswith(original)  # every byte of the user's file kept, in place
    parsed = yaml.safe_load(text)
    assert parsed["a111"] == yaml.safe_load(original)["a111"]
    section = parsed["synapse"]
    assert section["base_path"] == str(root / "data" / "views" / "comfyui" / "active")
    assert section["loras"] == "models/loras" and section["checkpoints"] == "models/checkpoints"
    assert all(isinstance(v, str) for v in section.values()), section
    assert str(install) in json.loads(store_config.read_text())["ui_installs"]["comfyui"]

    # ComfyUI's loader sees the pack's LoRA, resolving to its blob; use/back need no re-attach
    blobs = root / "data" / "blobs" / "sha256"
    later_blob, earlier_blob = (str((blobs / sha_of(f)[:2] / sha_of(f)).resolve()) for f in (later, earlier))
    assert comfy_lists(config, "loras") == {"style.safetensors": later_blob}
    cli("use", "Earlier", "--ui", "comfyui")
    assert comfy_lists(config, "loras") == {"style.safetensors": earlier_blob}
    assert config.read_bytes() == text

    again = cli("attach", "comfyui", install)  # idempotent
    assert config.read_bytes() == text and "changed" not in again.stdout

    before = stat_of(config)
    cli("detach", "comfyui", install, "--print")
    assert stat_of(config) == before
    detached = cli("detach", "comfyui", install)
    assert f"changed {config}" in detached.stdout
    assert config.read_bytes() == original
    assert str(install) not in json.loads(store_config.read_text())["ui_installs"].get("comfyui", [])
    cli("detach", "comfyui", install)  # nothing left to remove
    assert config.read_bytes() == original


@pytest.mark.parametrize(
    "original",
    [
        b"mine:\r\n    base_path: C:/models\r\n    loras: loras\r\n",  # CRLF
        b"mine:\n    base_path: /models\n    loras: loras",  # no final line break
        b"# only comments\n#mine:\n#    base_path: /x\n",
    ],
    ids=["crlf", "no-final-newline", "comments-only"],
)
def test_comfyui_detach_gives_back_the_exact_bytes(cli, tmp_path: Path, original: bytes):
    install = comfy_install(tmp_path / "ComfyUI")
    config = install / "extra_model_paths.yaml"
    config.write_bytes(original)
    cli("attach", "comfyui", install)
    text = config.read_bytes()
    assert yaml.safe_load(text)["synapse"]["loras"] == "models/loras"
    if b"\r\n" in original:
        assert b"\n" not in text.replace(b"\r\n", b"")  # one line-break style in the file
    detached = cli("detach", "comfyui", install)
    if yaml.safe_load(original) is None:
        # ComfyUI's loader fails on a file that parses to nothing: detach leaves '{}' and says so
        assert config.read_bytes() == original + b"{}\n" and "'{}'" in detached.stdout
    else:
        assert config.read_bytes() == original


def test_comfyui_attach_writes_through_a_symlinked_config(cli, tmp_path: Path):
    install = comfy_install(tmp_path / "ComfyUI")
    real = tmp_path / "dotfiles" / "comfy-paths.yaml"
    real.parent.mkdir()
    real.write_text(USER_YAML)
    config = install / "extra_model_paths.yaml"
    config.symlink_to(real)
    cli("attach", "comfyui", install)
    assert config.is_symlink() and os.readlink(config) == str(real)
    assert "synapse" in yaml.safe_load(real.read_text())
    cli("detach", "comfyui", install)
    assert config.is_symlink() and real.read_text() == USER_YAML


def test_comfyui_attach_creates_the_file_and_print_does_not(root: Path, cli, tmp_path: Path):
    install = comfy_install(tmp_path / "ComfyUI")
    config = install / "extra_model_paths.yaml"
    cli("attach", "comfyui", install, "--print")
    assert not config.exists()
    cli("attach", "comfyui", install)
    assert yaml.safe_load(config.read_text())["synapse"]["base_path"] == str(root / "data/views/comfyui/active")
    cli("detach", "comfyui", install)
    assert yaml.safe_load(config.read_text()) in (None, {})  # still a file ComfyUI can load


def test_attach_to_a_folder_that_is_not_an_install_is_a_clear_error(cli, tmp_path: Path):
    folder = tmp_path / "not-comfy"
    folder.mkdir()
    (folder / "main.py").write_text("")  # no folder_paths.py, no comfy/
    assert_clear_error(cli("attach", "comfyui", folder, ok=False), str(folder), "ComfyUI")
    assert sorted(p.name for p in folder.iterdir()) == ["main.py"]
    assert_clear_error(cli("attach", "comfyui", tmp_path / "missing", ok=False), "missing")
    assert not (tmp_path / "missing").exists()
    # an A1111 attach refuses a Forge install (and the other way round is Forge's own business)
    forge = a1111_install(tmp_path / "forge")
    (forge / "modules_forge").mkdir()
    assert_clear_error(cli("attach", "a1111", forge, ok=False), str(forge))
    assert_clear_error(cli("attach", "nope", folder, ok=False), "nope")


@pytest.mark.parametrize(
    "content",
    [
        "a111:\n    base_path: /x\n  loras: [unclosed\n",  # not YAML
        "- just\n- a list\n",  # YAML, but not a mapping of sections
        "synapse:\n    base_path: /by/hand\nsynapse2: {}\n# written by hand, no notice\nmine: {a: b}\nsynapse: {}\n",
    ],
    ids=["invalid", "list", "hand-written-duplicate"],
)
def test_comfyui_attach_refuses_a_file_it_cannot_edit_safely(cli, tmp_path: Path, content: str):
    install = comfy_install(tmp_path / "ComfyUI")
    config = install / "extra_model_paths.yaml"
    config.write_text(content)
    before = stat_of(config)
    assert_clear_error(cli("attach", "comfyui", install, ok=False), "extra_model_paths.yaml", "nothing was changed")
    assert stat_of(config) == before
    expected = ["comfy", "extra_model_paths.yaml", "folder_paths.py", "main.py"]
    assert sorted(p.name for p in install.iterdir()) == expected


# -- A1111 -----------------------------------------------------------------------------------------------------------


def test_a1111_attach_prints_flags_and_owns_one_block(root: Path, cli, tmp_path: Path):
    install = a1111_install(tmp_path / "webui")
    script = install / "webui-user.sh"
    script.write_text('#!/bin/bash\n# my settings\nexport COMMANDLINE_ARGS="--xformers --medvram"\n')
    original = script.read_bytes()
    view = root / "data" / "views" / "a1111" / "active"

    before = stat_of(script)
    printed = cli("attach", "a1111", install, "--print").stdout
    assert stat_of(script) == before
    expected = {
        "--ckpt-dir": view / "models" / "Stable-diffusion",
        "--lora-dir": view / "models" / "Lora",
        "--vae-dir": view / "models" / "VAE",
        "--embeddings-dir": view / "embeddings",
    }
    for flag, path in expected.items():
        assert f"{flag} {shlex.quote(str(path))}" in printed, (flag, printed)
        assert path.is_dir(), path  # the folder exists in the (empty) active view
    # A1111 refuses flags it does not know: no ControlNet extension here, so no --controlnet-dir flag
    assert str(view / "models" / "ControlNet") not in printed

    cli("attach", "a1111", install)
    text = script.read_text()
    assert text.startswith(original.decode())
    # the block appends exactly the printed flags to COMMANDLINE_ARGS when the shell runs it
    shell = subprocess.run(
        ["bash", "-c", f'source {shlex.quote(str(script))}; printf "%s" "$COMMANDLINE_ARGS"'],
        capture_output=True,
        text=True,
        check=True,
    )
    args = shlex.split(shell.stdout)
    assert args[:2] == ["--xformers", "--medvram"]
    pairs = dict(zip(args[2::2], args[3::2], strict=True))
    assert {flag: pairs[flag] for flag in expected} == {flag: str(path) for flag, path in expected.items()}

    cli("detach", "a1111", install)
    assert script.read_bytes() == original


def test_a1111_attach_is_all_or_nothing_when_one_script_cannot_be_written(root: Path, cli, tmp_path: Path):
    install = a1111_install(tmp_path / "webui")
    sh, bat = install / "webui-user.sh", install / "webui-user.bat"
    sh.write_text('#!/bin/bash\nexport COMMANDLINE_ARGS=""\n')
    bat.write_text("@echo off\r\ncall webui.bat\r\n")
    original = sh.read_bytes()
    if subprocess.run(["chattr", "+i", str(bat)], capture_output=True, check=False).returncode != 0:
        pytest.skip("cannot make a file immutable here (needs chattr and root)")
    try:
        failed = cli("attach", "a1111", install, ok=False)
    finally:
        subprocess.run(["chattr", "-i", str(bat)], check=False)
    assert_clear_error(failed, "cannot write", "webui-user.bat")
    assert sh.read_bytes() == original, "the script already written is put back"
    assert json.loads((root / "state" / "config.json").read_text()).get("ui_installs", {}).get("a1111", []) == []


def test_a1111_attach_ignores_an_extension_preload_it_cannot_read(cli, tmp_path: Path):
    install = a1111_install(tmp_path / "webui")
    (install / "extensions" / "odd" / "preload.py").mkdir(parents=True)  # a folder where a file should be
    cli("attach", "a1111", install, "--print")
