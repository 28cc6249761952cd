"""`synapse install --for FILE`: the list (with sizes) first, nothing fetched without --yes or an answer,
then each findable model imported under the folder and name the workflow spells."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from needs.kit import model_record, ui_node, ui_workflow_1

from synapse_civitai.fake_server import FakeCivitai, FakeFile
from synapse_core.cli.output import human_size
from synapse_core.store import Store
from synapse_core.testing import write_safetensors
from synapse_core.workflows.report import InstallForResult


def add(
    fake: FakeCivitai, model_id: int, content: bytes, name: str, type: str, hashes: dict[str, str] | None = None
) -> str:
    """A one-file model on the fake; returns its download URL."""
    file = FakeFile(model_id * 10, name, content=content, primary=True, override_name=name, hashes=hashes)
    fake.add_model(model_id, name=f"Model {model_id}", type=type)
    fake.add_version(model_id, model_id + 1, name="v1", files=[file])
    return f"{fake.api_url}/api/download/models/{model_id + 1}"


def model_bytes(tmp_path: Path, name: str, size: int) -> bytes:
    return write_safetensors(tmp_path / "made" / name, {"w": (size // 2,)}, payload=os.urandom(size)).read_bytes()


@pytest.fixture
def shared(fake: FakeCivitai, tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A shared workflow that needs a checkpoint and a LoRA in a sub-folder, both on the fake."""
    files = {
        "ckpt": model_bytes(tmp_path, "c.safetensors", 20_000),
        "lora": model_bytes(tmp_path, "l.safetensors", 5_000),
    }
    ckpt_url = add(fake, 900, files["ckpt"], "harborMix_v30.safetensors", "Checkpoint")
    lora_url = add(fake, 910, files["lora"], "paperLantern_v2.safetensors", "LORA")
    graph = ui_workflow_1(
        [
            ui_node(1, "CheckpointLoaderSimple", ["harborMix_v30.safetensors"]),
            ui_node(2, "LoraLoader", ["styles\\lantern.safetensors", 0.8, 0.8]),
        ],
        models=[
            model_record("harborMix_v30.safetensors", ckpt_url, "checkpoints"),
            model_record("styles\\lantern.safetensors", lora_url, "loras", hashlib.sha256(files["lora"]).hexdigest()),
        ],
    )
    path = tmp_path / "shared_workflow.json"
    path.write_text(json.dumps(graph))
    return path, files


def test_nothing_is_fetched_without_yes(cli, store: Store, fake: FakeCivitai, shared, assert_store_consistent) -> None:
    path, files = shared
    result = cli("install", "--for", path)  # stdin is not a terminal: no one to ask
    assert result.returncode == 2
    assert result.stderr == "error: 2 file(s) would be fetched; pass --yes to fetch them without asking\n"
    assert f"harborMix_v30.safetensors: download from civitai ({human_size(len(files['ckpt']))})" in result.stdout
    assert f"styles\\lantern.safetensors: download from civitai ({human_size(len(files['lora']))})" in result.stdout
    assert not fake.requests_for("cdn") and store.list_packs() == []
    as_json = cli("install", "--for", path, "--json")
    assert as_json.returncode == 2 and as_json.stdout == "" and "pass --yes" in as_json.stderr
    assert_store_consistent(store.layout.root)


def test_install_for_fetches_and_places_files_where_the_workflow_looks(
    cli, store: Store, fake: FakeCivitai, shared, assert_store_consistent
) -> None:
    path, files = shared
    result = cli("install", "--for", path, "--yes", "--json")
    assert result.returncode == 0, result.stderr
    outcome = InstallForResult.model_validate_json(result.stdout)
    assert [(i.name, i.action, i.size) for i in outcome.planned] == [
        ("harborMix_v30.safetensors", "download", len(files["ckpt"])),
        ("styles\\lantern.safetensors", "download", len(files["lora"])),
    ]
    assert len(outcome.done) == 2 and outcome.bytes_written == len(files["ckpt"]) + len(files["lora"])
    # ComfyUI looks names up as exact strings, and on Linux '\\' is a character of a file name
    # (execution.py validate_inputs, folder_paths.get_full_path): the LoRA is in the library under
    # styles/lantern.safetensors, and 'use --for' places it under the spelling (test_use_for.py)
    assert [m.status for m in outcome.report.models] == ["present", "in_library"]
    view = store.layout.active_link("comfyui")
    assert (view / "models/checkpoints/harborMix_v30.safetensors").read_bytes() == files["ckpt"]
    assert (view / "models/loras/styles/lantern.safetensors").read_bytes() == files["lora"]
    assert_store_consistent(store.layout.root)
    again = cli("install", "--for", path, "--yes")
    assert again.returncode == 0 and "nothing to download" in again.stdout
    assert len(fake.requests_for("cdn")) == 2


def test_a_download_whose_bytes_lie_leaves_nothing(
    cli, store: Store, fake: FakeCivitai, tmp_path: Path, assert_store_consistent
) -> None:
    content = model_bytes(tmp_path, "v.safetensors", 3_000)
    liar = {"SHA256": "AB" * 32, "AutoV2": "ABABABABAB"}
    url = add(fake, 920, content, "vae.safetensors", "VAE", hashes=liar)
    path = tmp_path / "wf.json"
    path.write_text(
        json.dumps(
            ui_workflow_1(
                [ui_node(1, "VAELoader", ["vae.safetensors"])], models=[model_record("vae.safetensors", url, "vae")]
            )
        )
    )
    result = cli("install", "--for", path, "--yes")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert store.list_packs() == [] and not list(store.blobs.iter_blobs())
    assert_store_consistent(store.layout.root)


def test_a_pack_whose_file_is_not_installed_is_installed(cli, store: Store, fake: FakeCivitai, tmp_path: Path) -> None:
    content = model_bytes(tmp_path, "u.safetensors", 4_000)
    add(fake, 930, content, "upscaler.pth", "Upscaler")
    store.import_pack(f"{fake.api_url}/models/930")  # metadata only: the file is not fetched yet
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(ui_workflow_1([ui_node(1, "UpscaleModelLoader", ["upscaler.pth"])])))
    result = cli("install", "--for", path, "--yes", "--json")
    assert result.returncode == 0, result.stderr
    outcome = InstallForResult.model_validate_json(result.stdout)
    assert [(i.action, i.pack) for i in outcome.done] == [("install", "Model930")]
    assert store.blobs.has(hashlib.sha256(content).hexdigest())


def test_install_needs_a_pack_or_for(cli) -> None:
    result = cli("install")
    assert result.returncode == 2 and "name a PACK or give --for FILE" in result.stderr
