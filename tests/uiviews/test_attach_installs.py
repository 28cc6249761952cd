"""Attach never breaks a launch and never hides the user's models (issue 16, items 3 and 4),
through the real CLI on installs with the real shapes of each UI's parser
(tests/uiviews/installs.py), launch-parsed as the UI does it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from uiviews.installs import add_extension, comfy_install, launch_parse, parsed, sdnext_install, webui_install
from uiviews.kit import assert_clear_error

from synapse_core.store import Store
from synapse_core.testing import lora_file

needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="webui.sh is a bash script")


def installs_of(root: Path, ui: str) -> list[str]:
    return json.loads((root / "state" / "config.json").read_text()).get("ui_installs", {}).get(ui, [])


def test_attach_stops_when_it_would_hide_models_or_the_users_own_flag(root: Path, cli, tmp_path: Path):
    install = webui_install(tmp_path / "webui", "a1111")
    (install / "models" / "Lora" / "styles").mkdir(parents=True)
    lora_file(install / "models" / "Lora" / "mine.safetensors")
    lora_file(install / "models" / "Lora" / "styles" / "ink.safetensors", seed=1)
    (install / "models" / "Lora" / "mine.preview.png").write_bytes(b"png")  # not a model
    (install / "embeddings").mkdir()
    (install / "embeddings" / "easyneg.pt").write_bytes(b"pt")
    (install / "models" / "Stable-diffusion").mkdir(parents=True)
    (install / "models" / "Stable-diffusion" / "base.safetensors").write_bytes(b"x")  # --ckpt-dir adds: fine
    (install / "webui-user.sh").write_text('export COMMANDLINE_ARGS="--xformers --lora-dir /home/me/loras"\n')
    before = (install / "webui-user.sh").read_bytes()

    line = assert_clear_error(cli("attach", "a1111", install, ok=False), "synapse adopt", "--force")
    assert f"2 model files in {install / 'models/Lora'} (which --lora-dir replaces)" in line
    assert f"1 model file in {install / 'embeddings'} (which --embeddings-dir replaces)" in line
    assert "your own --lora-dir in webui-user.sh" in line and "Stable-diffusion" not in line
    assert (install / "webui-user.sh").read_bytes() == before and installs_of(root, "a1111") == []
    assert_clear_error(cli("attach", "a1111", install, "--print", ok=False), "--force")

    cli("attach", "a1111", install, "--force")
    assert installs_of(root, "a1111") == [str(install)]
    assert "# >>> synapse >>>" in (install / "webui-user.sh").read_text()
    cli("detach", "a1111", install)  # detach never asks
    assert (install / "webui-user.sh").read_bytes() == before


def test_attach_goes_ahead_when_nothing_would_be_hidden(root: Path, cli, tmp_path: Path):
    install = webui_install(tmp_path / "webui", "a1111")
    (install / "models" / "Lora").mkdir(parents=True)  # empty: nothing hidden
    (install / "models" / "Lora" / "notes.txt").write_text("not a model")
    cli("attach", "a1111", install)
    assert installs_of(root, "a1111") == [str(install)]


@needs_bash
def test_an_extension_flag_that_breaks_the_launch_later_is_found_and_fixed_by_doctor(root: Path, cli, tmp_path: Path):
    install = webui_install(tmp_path / "webui", "a1111")
    add_extension(install, "sd-webui-controlnet", ["--controlnet-dir"])
    view = root / "data" / "views" / "a1111" / "active"
    attached = cli("attach", "a1111", install).stdout
    assert "synapse doctor --fix" in attached  # the instructions say what happens if it is disabled
    assert parsed(install)["controlnet_dir"] == str(view / "models/ControlNet")
    cli("doctor")

    # the user disables the extension in A1111's settings: the real parse now refuses the flag
    (install / "config.json").write_text(json.dumps({"disabled_extensions": ["sd-webui-controlnet"]}))
    broken = launch_parse(install)
    assert broken.returncode == 2 and "unrecognized arguments: --controlnet-dir" in broken.stderr
    report = cli("doctor", "--json", ok=False)
    assert report.returncode == 1
    problems = [p for p in json.loads(report.stdout)["problems"] if p["check"] == "attached installs"]
    assert [p["message"].split(": ")[1].split(" is out of date")[0] for p in problems] == [
        "webui-user.sh",
        "webui-user.bat",
    ]
    for problem in problems:
        assert "drops --controlnet-dir" in problem["message"] and "'synapse doctor --fix'" in problem["message"]
        assert not problem["fixed"]

    fixed = cli("doctor", "--fix")
    assert "fixed: AUTOMATIC1111" in fixed.stdout
    options = parsed(install)
    assert "controlnet_dir" not in options and options["lora_dir"] == str(view / "models/Lora")
    cli("doctor")  # healthy again

    # enabled again: doctor puts the flag back
    (install / "config.json").write_text("{}")
    cli("doctor", "--fix")
    assert parsed(install)["controlnet_dir"] == str(view / "models/ControlNet")


@needs_bash
def test_disable_extra_extensions_in_the_users_args_means_no_extension_flag(root: Path, cli, tmp_path: Path):
    install = webui_install(tmp_path / "webui", "a1111")
    add_extension(install, "sd-webui-controlnet", ["--controlnet-dir"])
    (install / "webui-user.sh").write_text('export COMMANDLINE_ARGS="--disable-extra-extensions"\n')
    cli("attach", "a1111", install)
    assert "--controlnet-dir" not in (install / "webui-user.sh").read_text()
    assert "lora_dir" in parsed(install)


def test_doctor_forgets_an_install_that_is_gone(root: Path, cli, tmp_path: Path):
    install = comfy_install(tmp_path / "ComfyUI")
    cli("attach", "comfyui", install)
    shutil.rmtree(install)
    problem = cli("doctor", ok=False)
    assert f"problem: ComfyUI at {install} is gone; 'synapse doctor --fix' forgets it" in problem.stdout
    cli("doctor", "--fix")
    assert installs_of(root, "comfyui") == []
    cli("doctor")


def test_comfyui_attach_detach_attach(root: Path, cli, tmp_path: Path):
    install = comfy_install(tmp_path / "ComfyUI")
    config = install / "extra_model_paths.yaml"
    for _ in range(3):
        cli("attach", "comfyui", install)
        assert yaml.safe_load(config.read_text())["synapse"]["loras"] == "models/loras"
        cli("detach", "comfyui", install)
        assert config.read_text() == "{}\n"  # a file ComfyUI can still load, the same every time
    config.write_text("# mine\n{}\n")
    cli("attach", "comfyui", install, "--print")
    cli("attach", "comfyui", install)
    assert set(yaml.safe_load(config.read_text())) == {"synapse"}
    cli("detach", "comfyui", install)
    assert config.read_text() == "# mine\n{}\n"


def test_sdnext_attach_reads_config_json_folder_keys(store: Store, root: Path, cli, tmp_path: Path):
    store.import_pack(str(lora_file(tmp_path / "src" / "style.safetensors")), name="Style")
    loras = tmp_path / "sdnext-loras"
    loras.mkdir()
    lora_file(loras / "own.safetensors", seed=4)
    install = sdnext_install(tmp_path / "sdnext", {"lora_dir": str(loras), "ckpt_dir": "/data/ckpts"})
    (install / "models" / "Stable-diffusion").mkdir(parents=True)
    (install / "models" / "Stable-diffusion" / "base.safetensors").write_bytes(b"x")
    line = assert_clear_error(cli("attach", "sdnext", install, ok=False), "--force")
    assert f"1 model file in {install / 'models'} (which --models-dir replaces)" in line
    assert f"config.json sets lora_dir to {loras}, 1 model files there (SD.Next lists LoRAs from it" in line
    assert "ckpt_dir" not in line  # sd_checkpoint.list_models lists models/Stable-diffusion as well

    cli("attach", "sdnext", install, "--force")
    [ui] = [u for u in json.loads(cli("status", "--json").stdout)["uis"] if u["ui"] == "sdnext"]
    [attached] = ui["installs"]
    assert attached["variant"] == "SD.Next" and attached["follows"] == "refresh"
    assert attached["not_listed"] == [
        "models/Lora/style.safetensors: config.json sets lora_dir: SD.Next lists that folder, not the view's"
    ]
    assert "not listed there: models/Lora/style.safetensors" in cli("status").stdout


def test_an_explicit_sdnext_folder_pointing_at_the_view_is_fine(root: Path, cli, tmp_path: Path):
    view = root / "data" / "views" / "sdnext" / "active"
    install = sdnext_install(tmp_path / "sdnext", {"lora_dir": str(view / "models" / "Lora")})
    cli("attach", "sdnext", install)


def test_status_and_plugins_name_the_forge_variant(store: Store, root: Path, cli, tmp_path: Path):
    store.import_pack(str(lora_file(tmp_path / "src" / "style.safetensors")), name="Style")
    reforge = webui_install(tmp_path / "reForge", "reforge")
    cli("attach", "forge", reforge)
    status = cli("status").stdout
    assert f"attached: {reforge} (reForge 1.0.0v2-v1.10.1RC; running: follows use/back after its Refresh)" in status
    assert "(also reForge, Forge Classic)" in cli("plugins").stdout
    record = next(r for r in json.loads(cli("plugins", "--json").stdout) if r["name"] == "forge")
    assert record["variants"] == {"forge": ["reForge", "Forge Classic"]}
    # the A1111 adapter points at the right one
    line = assert_clear_error(cli("attach", "a1111", reforge, ok=False), "Forge install")
    assert f"synapse attach forge {reforge}" in line


def test_doctor_warns_when_a_hidden_store_folder_is_not_listed(cli, synapse_cli, tmp_path: Path):
    root = tmp_path / ".synapse"
    env = {"SYNAPSE_LOAD_PLUGINS": "a1111"}
    assert synapse_cli("store", "init", root=root, env=env).returncode == 0
    install = webui_install(tmp_path / "webui", "a1111")
    assert synapse_cli("attach", "a1111", install, root=root, env=env).returncode == 0
    assert synapse_cli("doctor", root=root, env=env).returncode == 0  # list_hidden_files defaults to on
    (install / "config.json").write_text(json.dumps({"list_hidden_files": False}))
    result = synapse_cli("doctor", root=root, env=env)
    assert result.returncode == 1
    assert "'Load models/files in hidden directories' (list_hidden_files) is off" in result.stdout
    assert "checkpoints, LoRAs and upscalers" in result.stdout
