"""Files a UI writes into its view are never lost (issue 11, item 1).

After ``attach``, a UI's model folders are the view, and UIs write there: A1111/Forge save
``<model>.json`` user metadata (ui_extra_networks_user_metadata.py:write_user_metadata) and
``<model>.preview.png`` ("Replace preview") beside models, the checkpoint merger writes into
``--ckpt-dir`` (extras.py: run_modelmerger); SD.Next with ``--models-dir`` keeps its whole models
root there, a Hugging Face cache among it (modules/ui_definitions.py, paths.create_paths). Each
test writes such files through ``active`` and checks that every later command keeps them, at the
same path with the same bytes, in every profile of that UI.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from uiviews.kit import UIS, sha_of, views

from synapse_core.store import Store
from synapse_core.testing import lora_file, write_safetensors

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24 + b"a preview the user chose"


def checkpoint(path: Path, seed: int) -> Path:
    """A tiny file the kind detector sees as a checkpoint (UNet + VAE keys)."""
    return write_safetensors(
        path,
        {"model.diffusion_model.input_blocks.0.0.weight": (4, 4), "first_stage_model.decoder.conv_in.weight": (2, 2)},
        payload=bytes([seed]) * 36,
    )


def write_ui_files(root: Path, tmp_path: Path) -> dict[str, dict[str, bytes]]:
    """Write, through each UI's ``active`` link, the files the UI would write; returns them."""
    a1111 = views(root) / "a1111" / "active"
    sdnext = views(root) / "sdnext" / "active"
    merged = checkpoint(tmp_path / "merge-src" / "merged.safetensors", seed=7).read_bytes()
    files = {
        "a1111": {
            "models/Lora/style.json": b'{"activation text": "my own words", "preferred weight": 0.7}',
            "models/Lora/style.preview.png": PNG,
            "models/Stable-diffusion/merged.safetensors": merged,
            "embeddings/newly_trained.txt": b"not a model: notes the user keeps beside embeddings",
        },
        "sdnext": {
            "models/huggingface/models--org--repo/blobs/0a1b2c": b"weights of a diffusers model",
            "models/huggingface/models--org--repo/refs/main": b"r1",
            "models/styles/mystyle.json": b'{"name": "mystyle", "prompt": "{prompt}, ink"}',
        },
    }
    for ui, written in files.items():
        top = a1111 if ui == "a1111" else sdnext
        for rel, data in written.items():
            (top / rel).parent.mkdir(parents=True, exist_ok=True)
            (top / rel).write_bytes(data)
    snapshot = sdnext / "models/huggingface/models--org--repo/snapshots/r1"
    snapshot.mkdir(parents=True)
    os.symlink("../../blobs/0a1b2c", snapshot / "model.safetensors")  # the Hub cache's own relative link
    files["sdnext"]["models/huggingface/models--org--repo/snapshots/r1/model.safetensors"] = (
        b"weights of a diffusers model"
    )
    return files


def assert_kept(root: Path, files: dict[str, dict[str, bytes]], when: str) -> None:
    """Every file is visible through ``active`` and in every profile tree of its UI."""
    for ui, written in files.items():
        trees = [p for p in (views(root) / ui / "profiles").iterdir() if not p.name.startswith(".")]
        assert trees, ui
        for top in [views(root) / ui / "active", *trees]:
            for rel, data in written.items():
                path = top / rel
                assert path.exists(), f"after {when}: {ui} lost {rel} in {top.name}"
                assert path.read_bytes() == data, f"after {when}: {ui}'s {rel} changed in {top.name}"


def test_files_a_ui_writes_survive_every_command_in_every_profile(store: Store, root: Path, cli, tmp_path: Path):
    store.import_pack(str(lora_file(tmp_path / "src" / "A" / "style.safetensors", seed=1)), name="A")
    store.import_pack(str(lora_file(tmp_path / "src" / "B" / "other.safetensors", seed=2)), name="B")
    files = write_ui_files(root, tmp_path)

    cli("import", lora_file(tmp_path / "src" / "C" / "third.safetensors", seed=3), "--name", "C")
    assert_kept(root, files, "import")
    merged = files["a1111"]["models/Stable-diffusion/merged.safetensors"]
    shown = json.loads(cli("show", "saved-a1111", "--json").stdout)
    [resource] = shown["resources"]
    assert resource["expose"] == "merged.safetensors" and resource["kind"] == "checkpoint"
    assert resource["sha256"] == sha_of(tmp_path / "merge-src" / "merged.safetensors") and resource["installed"]
    assert (root / "data/blobs/sha256" / resource["sha256"][:2] / resource["sha256"]).read_bytes() == merged

    cli("remove", "B")
    assert_kept(root, files, "remove")
    cli("install", "A")
    assert_kept(root, files, "install")
    cli("use", "A")
    assert_kept(root, files, "use")
    cli("back")
    assert_kept(root, files, "back")
    cli("use", "C", "--ui", "sdnext")
    assert_kept(root, files, "use --ui sdnext")
    cli("doctor", "--rebuild-views")
    assert_kept(root, files, "doctor --rebuild-views")
    cli("gc", "--now")
    assert_kept(root, files, "gc")
    cli("back", "--ui", "sdnext")
    cli("gc", "--now")  # work__C's tree of sdnext is pruned now: what sdnext wrote there stays
    assert_kept(root, files, "back and gc")
    doctor = json.loads(cli("doctor", "--json").stdout)
    assert all(p["fixed"] for p in doctor["problems"]), doctor["problems"]
    kept = set(doctor["kept"])
    assert "a1111: models/Lora/style.json" in kept and "sdnext: models/huggingface" in kept, kept
    status = {u["ui"]: u for u in json.loads(cli("status", "--json").stdout)["uis"]}
    assert "models/styles" in status["sdnext"]["kept"]


def test_a_file_the_ui_put_where_synapse_has_an_entry_wins_and_is_reported(
    store: Store, root: Path, cli, tmp_path: Path
):
    store.import_pack(str(lora_file(tmp_path / "src" / "A" / "style.safetensors", seed=1)), name="A")
    link = views(root) / "comfyui" / "active" / "models/loras/style.safetensors"
    assert link.is_symlink()
    users = lora_file(tmp_path / "users" / "style.safetensors", seed=9)
    theirs = users.read_bytes()
    os.replace(users, link)  # the UI downloaded its own file over Synapse's link
    cli("import", lora_file(tmp_path / "src" / "B" / "b.safetensors", seed=2), "--name", "B")
    assert not link.is_symlink() and link.read_bytes() == theirs
    # the user's file is a model the UI lists: it is taken in, and wins under its name
    shown = json.loads(cli("show", "saved-comfyui", "--json").stdout)
    assert [r["expose"] for r in shown["resources"]] == ["style.safetensors"]
    cli("use", "A")  # even in A's work profile, the file the UI wrote is what it sees
    assert (views(root) / "comfyui" / "active" / "models/loras/style.safetensors").read_bytes() == theirs
    status = {u["ui"]: u for u in json.loads(cli("status", "--json").stdout)["uis"]}
    assert any(
        "A's models/loras/style.safetensors is shadowed by saved-comfyui" in s for s in status["comfyui"]["shadowed"]
    )


def test_a_ui_plugin_installed_after_init_is_first_class(tmp_path: Path, synapse_cli):
    root = tmp_path / "store"
    older = {"SYNAPSE_LOAD_PLUGINS": "comfyui,a1111"}
    assert synapse_cli("store", "init", root=root, env=older).returncode == 0
    src = lora_file(tmp_path / "src" / "A" / "a.safetensors", seed=1)
    assert synapse_cli("import", src, "--name", "A", root=root, env=older).returncode == 0
    newer = {"SYNAPSE_LOAD_PLUGINS": ",".join(UIS)}  # forge and sdnext installed later
    used = synapse_cli("use", "A", "--ui", "forge", root=root, env=newer)
    assert used.returncode == 0, used.stderr
    sets = json.loads((root / "state/ui_sets.json").read_text())["sets"]
    assert sorted(sets["all"]) == sorted(UIS) and sorted(sets["default"]) == sorted(UIS)
    status = {u["ui"]: u for u in json.loads(synapse_cli("status", "--json", root=root, env=newer).stdout)["uis"]}
    assert status["forge"]["stack"] == ["global", "work__A"] and status["sdnext"]["stack"] == ["global"]
    assert (views(root) / "forge" / "active" / "models/Lora/a.safetensors").is_file()
    doctor = synapse_cli("doctor", root=root, env=newer)
    assert doctor.returncode == 0 and "healthy" in doctor.stdout, doctor.stdout
    back = synapse_cli("back", "--ui", "forge", root=root, env=newer)
    assert back.returncode == 0, back.stderr


def test_removing_a_pack_a_ui_uses_takes_the_ui_back(store: Store, root: Path, cli, tmp_path: Path):
    store.import_pack(str(lora_file(tmp_path / "src" / "A" / "a.safetensors", seed=1)), name="A")
    cli("use", "A", "--ui", "comfyui")
    said = cli("remove", "A").stdout
    assert "comfyui: back to global (it was using work__A)" in said, said
    assert os.readlink(views(root) / "comfyui" / "active") == "profiles/global"
    assert json.loads((root / "data/runtime.json").read_text())["ui"]["comfyui"]["stack"] == ["global"]
    assert not (root / "state/profiles/work__A").exists()
    assert "healthy" in cli("doctor").stdout
    store.import_pack(str(lora_file(tmp_path / "src" / "B" / "b.safetensors", seed=2)), name="B")
    cli("use", "B", "--ui", "a1111")
    removed = json.loads(cli("remove", "B", "--json").stdout)
    assert removed["switched_back"] == {"a1111": ["global"]}


def test_removing_a_pack_below_the_top_of_a_stack_keeps_the_ui_where_it_is(
    store: Store, root: Path, cli, tmp_path: Path
):
    for name, seed in (("A", 1), ("B", 2)):
        store.import_pack(str(lora_file(tmp_path / "src" / name / f"{name.lower()}.safetensors", seed=seed)), name=name)
    cli("use", "A", "--ui", "comfyui")
    cli("use", "B", "--ui", "comfyui")
    removed = json.loads(cli("remove", "A", "--json").stdout)
    assert removed["switched_back"] == {"comfyui": ["global", "work__B"]}
    assert os.readlink(views(root) / "comfyui" / "active") == "profiles/work__B"
    assert json.loads((root / "data/runtime.json").read_text())["ui"]["comfyui"]["stack"] == ["global", "work__B"]
    assert (views(root) / "comfyui" / "active" / "models/loras/b.safetensors").is_file()
    assert not (views(root) / "comfyui" / "active" / "models/loras/a.safetensors").exists()
    assert "healthy" in cli("doctor").stdout
    assert cli("back", "--ui", "comfyui").stdout.strip() == "comfyui: global"
