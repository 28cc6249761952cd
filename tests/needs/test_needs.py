"""`synapse needs`: each model's status against the UI's view, the library and the sources (a fake
Civitai on loopback plays the remote source: download URLs in a workflow's `models`, and by-hash
look-ups for the hashes A1111 images carry)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from needs.kit import comfy_png, infotext, jpeg_with_parameters, model_record, png, ui_node, ui_workflow_1

from synapse_civitai.fake_server import FakeCivitai, FakeFile
from synapse_core.store import Store
from synapse_core.testing import lora_file, write_safetensors
from synapse_core.workflows.derived_hashes import autov1, autov3
from synapse_core.workflows.report import ModelNeed, NeedsReport
from synapse_core.workflows.service import Workflows


def safetensors_bytes(tmp_path: Path, name: str, size: int = 4096) -> bytes:
    path = write_safetensors(tmp_path / "made" / name, {"w": (size // 2,)}, payload=os.urandom(size))
    return path.read_bytes()


def civitai_file(
    fake: FakeCivitai,
    model_id: int,
    version_id: int,
    file_id: int,
    content: bytes,
    *,
    name: str,
    type: str,
    autov3_hash: str | None = None,
) -> FakeFile:
    """A one-file model on the fake; ``autov3_hash`` adds the AutoV3 Civitai stores for LoRAs."""
    hashes = None
    if autov3_hash is not None:
        sha = hashlib.sha256(content).hexdigest().upper()
        hashes = {"AutoV2": sha[:10], "SHA256": sha, "AutoV3": autov3_hash.upper()}
    file = FakeFile(
        file_id,
        name,
        content=content,
        primary=True,
        hashes=hashes,
        override_name=name,
        metadata={"format": "SafeTensor", "size": "pruned", "fp": "fp16"},
    )
    fake.add_model(model_id, name=f"Model {model_id}", type=type)
    fake.add_version(model_id, version_id, name="v1", files=[file])
    return file


def by_name(report: NeedsReport) -> dict[str, ModelNeed]:
    return {m.name: m for m in report.models}


def needs(
    store: Store, data: bytes | dict[str, Any], ui: str | None = "comfyui", label: str = "wf.json"
) -> NeedsReport:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return Workflows(store).needs(raw, label, ui).report


@pytest.fixture
def library(store: Store, tmp_path: Path) -> dict[str, Path]:
    """Local packs: a checkpoint, a LoRA, and two packs exposing dup.safetensors with other bytes."""
    files = {
        "base": write_safetensors(tmp_path / "files" / "base.safetensors", {"w": (64,)}, payload=os.urandom(128)),
        "style": lora_file(tmp_path / "files" / "style.safetensors", seed=1),
        "dup1": lora_file(tmp_path / "files" / "one" / "dup.safetensors", seed=2),
        "dup2": lora_file(tmp_path / "files" / "two" / "dup.safetensors", seed=3),
    }
    store.import_pack(str(files["base"]), name="Base", kind="checkpoint")
    store.import_pack(str(files["style"]), name="Style", kind="lora")
    store.import_pack(str(files["dup1"]), name="DupOne", kind="lora")
    store.import_pack(str(files["dup2"]), name="DupTwo", kind="lora")
    return files


def test_each_status_of_a_workflow(store: Store, library: dict[str, Path], fake: FakeCivitai, tmp_path: Path) -> None:
    vae = safetensors_bytes(tmp_path, "ae.safetensors", 6000)
    civitai_file(fake, 700, 7001, 70001, vae, name="ae.safetensors", type="VAE")
    style_sha = hashlib.sha256(library["style"].read_bytes()).hexdigest()
    download = f"{fake.api_url}/api/download/models/7001"
    graph = ui_workflow_1(
        [
            ui_node(1, "CheckpointLoaderSimple", ["base.safetensors"]),
            ui_node(2, "LoraLoader", ["sub\\style.safetensors", 1, 1]),
            ui_node(3, "LoraLoader", ["renamed.safetensors", 1, 1]),
            ui_node(
                4,
                "VAELoader",
                ["ae.safetensors"],
                properties={"models": [model_record("ae.safetensors", download, "vae")]},
            ),
            ui_node(5, "LoraLoader", ["nothing.safetensors", 1, 1]),
            ui_node(6, "LoraLoader", ["x/dup.safetensors", 1, 1]),
        ],
        models=[{"name": "renamed.safetensors", "directory": "loras", "hash": style_sha, "hash_type": "sha256"}],
    )
    report = needs(store, graph)
    assert report.ui == "comfyui" and report.profile == "global"
    found = by_name(report)
    assert found["base.safetensors"].status == "present"
    assert found["base.safetensors"].detail == "in comfyui's view (models/checkpoints/base.safetensors)"
    style = found["sub\\style.safetensors"]
    assert (style.status, style.library.pack, style.library.matched_by) == ("in_library", "Style", "name")  # type: ignore[union-attr]
    renamed = found["renamed.safetensors"]
    assert (renamed.status, renamed.library.pack, renamed.library.matched_by) == ("in_library", "Style", "hash")  # type: ignore[union-attr]
    ae = found["ae.safetensors"]
    assert ae.status == "findable" and ae.offer is not None
    assert (ae.offer.source, ae.offer.size, ae.offer.sha256) == ("civitai", len(vae), hashlib.sha256(vae).hexdigest())
    assert found["nothing.safetensors"].status == "unresolvable"
    assert "only the name" in found["nothing.safetensors"].detail
    dup = found["x/dup.safetensors"]
    assert dup.status == "unresolvable" and dup.detail.startswith("ambiguous: 2 different files match by name")
    assert "DupOne (dup.safetensors)" in dup.detail and "DupTwo (dup.safetensors)" in dup.detail
    assert not fake.requests_for("cdn"), "needs downloaded something"


def test_a_name_whose_bytes_differ_from_the_hash_is_not_present(store: Store, library: dict[str, Path]) -> None:
    wrong = "0" * 64
    graph = ui_workflow_1(
        [ui_node(1, "CheckpointLoaderSimple", ["base.safetensors"])],
        models=[{"name": "base.safetensors", "directory": "checkpoints", "hash": wrong, "hash_type": "sha256"}],
    )
    need = by_name(needs(store, graph, ui="comfyui"))["base.safetensors"]
    assert need.status == "unresolvable"
    assert (
        "matches no library file" in need.detail or "no installed source" in need.detail or "no file of" in need.detail
    )


def a1111_image(params: dict[str, str], prompt: str = "a harbor") -> str:
    return infotext(prompt, "lowres", {"Steps": "20", "Sampler": "Euler a", "CFG scale": "7", "Seed": "1", **params})


def test_an_a1111_image_resolved_by_hashes(store: Store, fake: FakeCivitai, tmp_path: Path) -> None:
    # on Civitai only: a checkpoint found by its AutoV2 (Model hash), a LoRA by its AutoV3 (Lora hashes)
    remote_ckpt = safetensors_bytes(tmp_path, "harborMix.safetensors", 8000)
    civitai_file(fake, 800, 8001, 80001, remote_ckpt, name="harborMix_v30.safetensors", type="Checkpoint")
    remote_lora_path = tmp_path / "made" / "lantern.safetensors"
    remote_lora_path.write_bytes(safetensors_bytes(tmp_path, "lantern.safetensors", 3000))
    lantern_v3 = autov3(remote_lora_path)
    assert lantern_v3 is not None
    civitai_file(
        fake,
        801,
        8011,
        80011,
        remote_lora_path.read_bytes(),
        name="paperLantern.safetensors",
        type="LORA",
        autov3_hash=lantern_v3,
    )
    # in the library only: a LoRA whose AutoV3 is computed here, an embedding by its SHA-256 prefix (TI hashes)
    local_lora = lora_file(tmp_path / "files" / "ink.safetensors", seed=9)
    store.import_pack(str(local_lora), name="Ink", kind="lora")
    embedding = write_safetensors(
        tmp_path / "files" / "badhands.safetensors", {"emb_params": (2, 8)}, payload=os.urandom(32)
    )
    store.import_pack(str(embedding), name="BadHands", kind="embedding")
    ink_v3 = autov3(local_lora)
    ti = hashlib.sha256(embedding.read_bytes()).hexdigest()[:12]
    text = a1111_image(
        {
            "Model hash": hashlib.sha256(remote_ckpt).hexdigest()[:10],
            "Model": "harborMix_v30",
            "Lora hashes": f"paperLantern: {lantern_v3}, inkWash: {ink_v3}, ghost: 0badc0ffee00",
            "TI hashes": f"badhands: {ti}",
            "Version": "v1.10.1",
        },
        prompt="<lora:paperLantern:0.8> <lora:inkWash:1> <lora:ghost:1> badhands",
    )
    for data, container in ((png({"parameters": text}), "png"), (jpeg_with_parameters(text), "jpeg")):
        report = needs(store, data, ui=None, label=f"image.{container}")
        assert report.container == container and report.format == "infotext" and report.ui is None
        found = by_name(report)
        model = found["harborMix_v30"]
        assert model.status == "findable" and model.offer is not None
        assert (model.offer.source, model.offer.file_name) == ("civitai", "harborMix_v30.safetensors")
        lantern = found["paperLantern"]
        assert (
            lantern.status == "findable"
            and lantern.offer is not None
            and lantern.offer.sha256 == hashlib.sha256(remote_lora_path.read_bytes()).hexdigest()
        )
        ink = found["inkWash"]
        assert (ink.status, ink.library.pack, ink.library.matched_by) == ("in_library", "Ink", "hash")  # type: ignore[union-attr]
        assert (found["badhands"].status, found["badhands"].library.pack) == ("in_library", "BadHands")  # type: ignore[union-attr]
        ghost = found["ghost"]
        assert ghost.status == "unresolvable" and "0badc0ffee00" in ghost.detail and "civitai" in ghost.detail
    assert (store.layout.data / "derived-hashes.json").is_file()  # the computed AutoV3 is kept
    assert not fake.requests_for("cdn")


def test_an_old_autov1_model_hash_matches_a_library_checkpoint(store: Store, tmp_path: Path) -> None:
    big = write_safetensors(
        tmp_path / "files" / "old.ckpt.safetensors", {"w": (600_000,)}, payload=os.urandom(1_200_000)
    )
    store.import_pack(str(big), name="Old", kind="checkpoint")
    legacy = autov1(big)
    assert legacy is not None and len(legacy) == 8
    report = needs(store, png({"parameters": a1111_image({"Model hash": legacy, "Model": "old"})}), ui=None)
    need = report.models[0]
    assert (need.status, need.library.pack) == ("in_library", "Old")  # type: ignore[union-attr]


def test_present_in_an_a1111_family_view_by_hash(store: Store, tmp_path: Path) -> None:
    lora = lora_file(tmp_path / "files" / "localName.safetensors", seed=4)
    store.import_pack(str(lora), name="Local", kind="lora")
    sha = hashlib.sha256(lora.read_bytes()).hexdigest()
    text = a1111_image({"Lora hashes": f"otherName: {sha[:12]}"}, prompt="<lora:otherName:1>")
    need = needs(store, png({"parameters": text}), ui="forge").models[0]
    assert need.status == "present" and need.detail == "in forge's view as localName.safetensors"


def test_an_image_with_a_comfyui_workflow_and_the_cli(
    store: Store, library: dict[str, Path], cli, tmp_path: Path
) -> None:
    graph = ui_workflow_1(
        [ui_node(1, "CheckpointLoaderSimple", ["base.safetensors"]), ui_node(2, "LoraLoader", [5, 1, 1])]
    )
    image = tmp_path / "ComfyUI_00001_.png"
    image.write_bytes(comfy_png(graph, None))
    result = cli("needs", image, "--json")
    assert result.returncode == 0, result.stderr
    report = NeedsReport.model_validate_json(result.stdout)
    assert report == needs(store, image.read_bytes(), label=str(image))
    assert [(m.name, m.status) for m in report.models] == [("base.safetensors", "present")]
    assert report.problems == ["node 2 (LoraLoader) lora_name: 5 is a number where a file name belongs; ignored"]
    human = cli("needs", image)
    assert human.returncode == 0 and "present" in human.stdout and "problem: node 2 (LoraLoader)" in human.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"random": [1, 2]}', "JSON, but not a workflow"),
        (png({"Software": "x"}), "carries no workflow, prompt or generation parameters"),
        (png({"workflow": "{}"})[:30], "truncated"),
    ],
)
def test_bad_files_are_one_line_and_exit_2(cli, tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "shared.png"
    path.write_bytes(content)
    result = cli("needs", path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"error: {path}: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_several_files_report_the_readable_ones(cli, library: dict[str, Path], tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(ui_workflow_1([ui_node(1, "CheckpointLoaderSimple", ["base.safetensors"])])))
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    result = cli("needs", good, bad, tmp_path / "missing.json", "--json")
    assert result.returncode == 2
    reports = json.loads(result.stdout)
    assert [r["file"] for r in reports] == [str(good)]
    assert f"error: {bad}: JSON, but not a workflow" in result.stderr
    assert f"error: {tmp_path / 'missing.json'}: no such file" in result.stderr
