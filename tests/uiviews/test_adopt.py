"""``synapse adopt`` (issue 15): a ComfyUI and an A1111 install with duplicates, sub-folders, a
linked sub-folder and sidecars, into the library and back, through the real CLI."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from uiviews import listing
from uiviews.installs import comfy_install, webui_install
from uiviews.kit import assert_clear_error, views

from synapse_core.testing import lora_file


def manifest(*tops: Path) -> dict[str, tuple[str, int, str | None]]:
    """Every file and link under ``tops`` (linked folders followed): sha256 (or link text), mode."""
    found: dict[str, tuple[str, int, str | None]] = {}
    for top in tops:
        for dirpath, dirs, files in os.walk(top, followlinks=True):
            for name in files + [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]:
                path = os.path.join(dirpath, name)
                info = os.lstat(path)
                if stat.S_ISLNK(info.st_mode):
                    found[path] = ("link", 0, os.readlink(path))
                    if os.path.isdir(path):
                        continue
                    info = os.stat(path)
                digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
                found.setdefault(path, (digest, stat.S_IMODE(info.st_mode), None))
                if found[path][0] == "link":
                    found[path + "@"] = (digest, stat.S_IMODE(info.st_mode), None)
    return found


def names(lists: dict[str, set[str]]) -> set[tuple[str, str]]:
    """(kind, name inside the kind's folder) of a UI listing."""
    return {
        (kind, path.split("/", 2)[-1] if path.startswith("models/") else path.split("/", 1)[-1])
        for kind, paths in lists.items()
        for path in paths
    }


def world(tmp_path: Path) -> tuple[Path, Path, Path]:
    """ComfyUI and A1111 sharing two files, a linked sub-folder, sidecars of three tools."""
    comfy = comfy_install(tmp_path / "ComfyUI")
    a1111 = webui_install(tmp_path / "webui")
    shared = tmp_path / "shared-loras"
    detail = lora_file(comfy / "models/loras/styles/add_detail.safetensors", seed=1)
    (comfy / "models/loras/styles/add_detail.preview.png").write_bytes(b"\x89PNG comfy preview")
    (comfy / "models/loras/styles/add_detail.cm-info.json").write_text(
        json.dumps({"ModelName": "Add Detail", "TrainedWords": ["detailed"], "BaseModel": "SD 1.5"})
    )
    ckpt = comfy / "models/checkpoints/base.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(os.urandom(4096))
    lora_file(shared / "ink.safetensors", seed=2)
    os.symlink(shared, comfy / "models/loras/linked")
    (comfy / "models/loras/notes.txt").write_text("my notes\n")
    (comfy / "user/default/workflows").mkdir(parents=True)
    (comfy / "user/default/workflows/w.json").write_text("{}")
    # A1111: the same LoRA (another copy) with its own sidecars, the same checkpoint, one of its own
    lora = a1111 / "models/Lora/add_detail.safetensors"
    lora.parent.mkdir(parents=True)
    lora.write_bytes(detail.read_bytes())
    os.chmod(lora, 0o600)
    (a1111 / "models/Lora/add_detail.json").write_text(
        json.dumps({"activation text": "add_detail, sharp", "preferred weight": 0.7, "notes": "mine"})
    )
    (a1111 / "models/Lora/add_detail.civitai.info").write_text(
        json.dumps({"trainedWords": ["civ"], "baseModel": "SD 1.5"})
    )
    (a1111 / "models/Stable-diffusion").mkdir(parents=True)
    os.link(ckpt, a1111 / "models/Stable-diffusion/base.ckpt")  # hard links between installs are common
    lora_file(a1111 / "models/Lora/sub/own.safetensors", seed=3)
    return comfy, a1111, shared


@pytest.mark.slow
def test_adopt_two_installs_and_undo(tmp_path: Path, cli, root: Path) -> None:
    comfy, a1111, shared = world(tmp_path)
    before = manifest(comfy, a1111, shared)
    listed = {"comfyui": names(listing.comfyui(comfy)), "a1111": names(listing.a1111(a1111))}
    assert ("lora", "styles/add_detail.safetensors") in listed["comfyui"]
    assert ("lora", "linked/ink.safetensors") in listed["comfyui"]

    plan = json.loads(cli("adopt", comfy, a1111, "--dry-run", "--json").stdout)["plan"]
    assert manifest(comfy, a1111, shared) == before  # a dry run changes nothing
    by_path = {Path(f["path"]).relative_to(tmp_path).as_posix(): f for f in plan["files"]}
    assert by_path["ComfyUI/models/checkpoints/base.ckpt"]["kind"] == "checkpoint"  # from the folder
    assert by_path["ComfyUI/models/loras/styles/add_detail.safetensors"]["expose"] == "styles/add_detail.safetensors"
    assert by_path["webui/models/Lora/add_detail.safetensors"]["action"] == "duplicate"
    assert by_path["ComfyUI/models/loras/linked/ink.safetensors"]["action"] == "link"
    assert plan["copy_bytes"] == 0 and not plan["needs_copy"]
    assert len({f["sha256"] for f in plan["files"]}) == 4

    blobs_before = sum(1 for p in (root / "data/blobs").rglob("*") if p.is_file())
    inodes = {os.stat(f["path"]).st_ino for f in plan["files"]}
    result = cli("adopt", comfy, a1111)
    assert "linked" in result.stdout and "attached comfyui" in result.stdout, result.stdout
    blobs = [p for p in (root / "data/blobs").rglob("*") if p.is_file()]
    assert len(blobs) - blobs_before == 4  # each distinct file one blob
    assert {p.stat().st_ino for p in blobs} <= inodes  # the originals' own inodes: no byte copied
    # the UIs' own folders no longer hold the adopted models; their other files stay
    assert not (comfy / "models/loras/styles/add_detail.safetensors").exists()
    assert not (a1111 / "models/Lora/add_detail.safetensors").exists()
    assert (comfy / "models/loras/notes.txt").read_text() == "my notes\n"
    assert (a1111 / "models/Lora/add_detail.json").exists() and (comfy / "user/default/workflows/w.json").exists()
    # every name each UI listed is listed through its view
    for ui, lister in (("comfyui", listing.comfyui), ("a1111", listing.a1111)):
        active = views(root) / ui / "active"
        assert listed[ui] <= names(lister(active)), (ui, listed[ui] - names(lister(active)))
    assert "synapse" in (comfy / "extra_model_paths.yaml").read_text()
    assert "--lora-dir" in (a1111 / "webui-user.sh").read_text()
    # previews and trigger words are in the packs
    packs = {p["name"]: p for p in json.loads(cli("list", "--json").stdout)}
    detail = json.loads(cli("show", "add_detail", "--json").stdout)
    assert "add_detail" in packs
    assert {"add_detail", "sharp"} <= set(detail["pack"]["trigger_words"])
    assert detail["pack"]["preferred_weight"] == 0.7 and detail["previews"]

    undo = cli("adopt", "--undo", comfy)
    assert "put back" in undo.stdout
    assert manifest(comfy, a1111, shared) == before
    assert not (comfy / "extra_model_paths.yaml").exists()  # the attach made it; undo removes it


def test_adopt_bad_input(tmp_path: Path, cli, root: Path) -> None:
    assert_clear_error(cli("adopt", tmp_path / "nope", ok=False), "no such folder")
    folder = tmp_path / "loras"
    lora_file(folder / "a.safetensors", seed=1)
    bad = os.fsencode(str(folder)) + b"/bad\xff.safetensors"
    with open(bad, "wb") as handle:
        handle.write(b"x" * 10)
    plan = json.loads(cli("adopt", folder, "--dry-run", "--json").stdout)["plan"]
    assert [f["expose"] for f in plan["files"]] == ["a.safetensors"]
    assert any("UTF-8" in s["reason"] for s in plan["skipped"])
    comfy = comfy_install(tmp_path / "ComfyUI")
    lora_file(comfy / "models/loras/x.safetensors", seed=5)
    cli("adopt", comfy)
    assert_clear_error(cli("adopt", comfy, ok=False), "already attached")


def test_second_adopt_hashes_nothing_and_keep_originals_keeps(tmp_path: Path, cli) -> None:
    folder = tmp_path / "models"
    for n in range(3):
        lora_file(folder / "loras" / f"l{n}.safetensors", seed=n)
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "c.ckpt").write_bytes(os.urandom(2048))  # kind from its folder's name
    first = json.loads(cli("adopt", folder, "--keep-originals", "--json").stdout)
    assert first["plan"]["hashed_files"] == 4 and len(first["packs"]) == 4
    assert all((folder / "loras" / f"l{n}.safetensors").exists() for n in range(3))
    again = json.loads(cli("adopt", folder, "--keep-originals", "--json").stdout)
    assert again["plan"]["hashed_files"] == 0 and again["packs"] == []
    assert {f["action"] for f in again["plan"]["files"]} == {"present"}
