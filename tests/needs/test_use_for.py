"""`synapse use --for FILE`: after it, ComfyUI's own lookup finds every model of the workflow, with
the right bytes, under exactly the name the workflow spells.

ComfyUI's rule, reproduced from Comfy-Org/ComfyUI a125cd84:
* folder_paths.py: ``folder_names_and_paths`` starts with the install's own ``models/<dir>`` per
  folder key (``diffusion_models`` = models/unet + models/diffusion_models, ``text_encoders`` =
  models/text_encoders + models/clip, ...); ``map_legacy`` maps ``unet``/``clip``;
* utils/extra_config.py ``load_extra_path_config``: each section's ``base_path`` joined with every
  line of each key, appended after the defaults (``add_model_folder_path``, ``is_default`` false);
* folder_paths.py ``get_full_path``: the name made relative to ``/``, joined to each root in order,
  the first that is a file wins (a dangling link is skipped).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import yaml
from needs.kit import infotext, model_record, png, ui_node, ui_workflow_1

from synapse_core.models import Profile
from synapse_core.store import Store
from synapse_core.testing import lora_file, write_safetensors

DEFAULT_DIRS = {
    "checkpoints": ["checkpoints"],
    "configs": ["configs"],
    "loras": ["loras"],
    "vae": ["vae"],
    "text_encoders": ["text_encoders", "clip"],
    "diffusion_models": ["unet", "diffusion_models"],
    "clip_vision": ["clip_vision"],
    "style_models": ["style_models"],
    "embeddings": ["embeddings"],
    "controlnet": ["controlnet", "t2i_adapter"],
    "upscale_models": ["upscale_models"],
    "hypernetworks": ["hypernetworks"],
}
LEGACY = {"unet": "diffusion_models", "clip": "text_encoders"}


def comfyui_folders(install: Path) -> dict[str, list[str]]:
    """folder_names_and_paths after ComfyUI's start-up read the install's extra_model_paths.yaml."""
    folders = {key: [str(install / "models" / d) for d in dirs] for key, dirs in DEFAULT_DIRS.items()}
    yaml_path = install / "extra_model_paths.yaml"
    config = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    for conf in config.values():
        if conf is None:
            continue
        conf = dict(conf)
        base_path = conf.pop("base_path", None)
        if base_path is not None:
            base_path = os.path.expandvars(os.path.expanduser(base_path))
            if not os.path.isabs(base_path):
                base_path = os.path.abspath(os.path.join(yaml_path.parent, base_path))
        conf.pop("is_default", None)
        for key, value in conf.items():
            for line in value.split("\n"):
                if line:
                    full = os.path.normpath(os.path.join(base_path, line) if base_path else line)
                    paths = folders.setdefault(LEGACY.get(key, key), [])
                    if full not in paths:
                        paths.append(full)
    return folders


def get_full_path(folders: dict[str, list[str]], folder_name: str, filename: str) -> str | None:
    folder_name = LEGACY.get(folder_name, folder_name)
    if folder_name not in folders:
        return None
    filename = os.path.relpath(os.path.join("/", filename), "/")
    for root in folders[folder_name]:
        full_path = os.path.join(root, filename)
        if os.path.isfile(full_path):
            return full_path
    return None


def load_embed(roots: list[str], name: str) -> str | None:
    """comfy/sd1_clip.py load_embed: every folder under the roots (expand_directory_list), the name
    as given, else with .safetensors, .pt, .bin; the sha256 of the file found."""
    folders = [root for top in roots for root, _dirs, _files in os.walk(top, followlinks=True)]
    for folder in folders:
        path = os.path.join(folder, name)
        for candidate in (path, *(path + ext for ext in (".safetensors", ".pt", ".bin"))):
            if os.path.isfile(candidate):
                return sha256(candidate)
    return None


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_after_use_for_comfyui_finds_every_model_of_the_workflow(cli, store: Store, tmp_path: Path) -> None:
    files = tmp_path / "files"
    ckpt = write_safetensors(files / "harbor.safetensors", {"w": (64,)}, payload=os.urandom(128))
    lora = lora_file(files / "lantern.safetensors", seed=5)
    clip = write_safetensors(files / "clip_l.safetensors", {"t": (16,)}, payload=os.urandom(32))
    embedding = write_safetensors(files / "ink_wash.safetensors", {"emb_params": (2, 8)}, payload=os.urandom(32))
    vae_right = write_safetensors(files / "one" / "ae.safetensors", {"v": (16,)}, payload=os.urandom(32))
    vae_other = write_safetensors(files / "two" / "ae.safetensors", {"v": (16,)}, payload=os.urandom(32))
    for path, name, kind in (
        (ckpt, "Harbor", "checkpoint"),
        (lora, "Lantern", "lora"),
        (clip, "ClipL", "text_encoder"),
        (embedding, "InkWash", "embedding"),
        (vae_right, "VaeRight", "vae"),
        (vae_other, "VaeOther", "vae"),  # imported last: it wins ae.safetensors in global
    ):
        store.import_pack(str(path), name=name, kind=kind)
    graph = ui_workflow_1(
        [
            ui_node(1, "CheckpointLoaderSimple", ["SDXL\\harborMix_v30.safetensors"]),
            ui_node(2, "LoraLoader", ["styles/lantern_v2.safetensors", 0.8, 0.8]),
            ui_node(3, "CLIPLoader", ["clip_l.safetensors", "stable_diffusion", "default"]),
            ui_node(4, "VAELoader", ["ae.safetensors"]),
            ui_node(5, "CLIPTextEncode", ["harbor at dusk, embedding:ink_wash"]),
        ],
        models=[
            {
                "name": "SDXL\\harborMix_v30.safetensors",
                "directory": "checkpoints",
                "hash": sha256(ckpt),
                "hash_type": "sha256",
            },
            {
                "name": "styles/lantern_v2.safetensors",
                "directory": "loras",
                "hash": sha256(lora),
                "hash_type": "sha256",
            },
            model_record(
                "ae.safetensors",
                "https://huggingface.co/black-forest-labs/FLUX.1-schnell/resolve/main/ae.safetensors",
                "vae",
                sha256(vae_right),
            ),
        ],
    )
    workflow = tmp_path / "harbor_flux.json"
    workflow.write_text(json.dumps(graph))
    install = tmp_path / "ComfyUI"
    (install / "comfy").mkdir(parents=True)
    (install / "main.py").write_text("# ComfyUI\n")
    (install / "folder_paths.py").write_text("# folder_paths\n")
    own = write_safetensors(install / "models" / "checkpoints" / "own.safetensors", {"o": (8,)}, payload=os.urandom(16))
    attached = cli("attach", "comfyui", install)
    assert attached.returncode == 0, attached.stderr
    expected = {
        ("checkpoints", "SDXL\\harborMix_v30.safetensors"): sha256(ckpt),
        ("loras", "styles/lantern_v2.safetensors"): sha256(lora),
        ("text_encoders", "clip_l.safetensors"): sha256(clip),
        ("vae", "ae.safetensors"): sha256(vae_right),
    }
    before = comfyui_folders(install)
    assert get_full_path(before, "vae", "ae.safetensors") is not None
    assert sha256(get_full_path(before, "vae", "ae.safetensors")) == sha256(vae_other)  # global: the other VAE wins

    used = cli("use", "--for", workflow, "--json")
    assert used.returncode == 0, used.stderr
    outcome = json.loads(used.stdout)
    assert outcome["profile"] == "work__harbor_flux"
    assert outcome["uis"]["comfyui"] == ["global", "work__harbor_flux"]
    assert outcome["warnings"] == []
    folders = comfyui_folders(install)
    for (folder, name), digest in expected.items():
        found = get_full_path(folders, folder, name)
        assert found is not None, f"ComfyUI finds no {folder}/{name}"
        assert sha256(found) == digest, f"{folder}/{name} has the wrong bytes"
    assert load_embed(folders["embeddings"], "ink_wash") == sha256(embedding)
    assert get_full_path(folders, "checkpoints", "own.safetensors") == str(own)  # the install's own models stay first

    profile = Profile.model_validate_json((store.layout.profile_file("work__harbor_flux")).read_bytes())
    assert sorted(a.expose for a in profile.aliases) == [
        "SDXL\\harborMix_v30.safetensors",
        "styles/lantern_v2.safetensors",
    ]
    report = json.loads(cli("needs", workflow, "--json").stdout)
    assert [m["status"] for m in report["models"]] == ["present"] * 5

    back = cli("back", "--json")
    assert back.returncode == 0 and json.loads(back.stdout)["uis"]["comfyui"] == ["global"]
    assert get_full_path(comfyui_folders(install), "loras", "styles/lantern_v2.safetensors") is None


def test_use_for_an_a1111_image_names_loras_as_the_prompt_spells_them(cli, store: Store, tmp_path: Path) -> None:
    lora = lora_file(tmp_path / "files" / "localName.safetensors", seed=6)
    store.import_pack(str(lora), name="Local", kind="lora")
    image = tmp_path / "00001.png"
    text = infotext(
        "<lora:paperLantern:0.8>",
        "",
        {"Steps": "20", "Sampler": "Euler a", "Seed": "3", "Lora hashes": f"paperLantern: {sha256(lora)[:12]}"},
    )
    image.write_bytes(png({"parameters": text}))
    result = cli("use", "--for", image, "--ui", "forge", "--json")
    assert result.returncode == 0, result.stderr
    view = store.layout.active_link("forge")
    assert sha256(view / "models/Lora/paperLantern.safetensors") == sha256(lora)
    assert sha256(view / "models/Lora/localName.safetensors") == sha256(lora)


def test_use_for_with_no_model_in_the_library(cli, store: Store, tmp_path: Path) -> None:
    workflow = tmp_path / "wf.json"
    graph = ui_workflow_1(
        [ui_node(1, "CheckpointLoaderSimple", ["m.safetensors"])],
        models=[model_record("m.safetensors", "https://civitai.com/api/download/models/951", "checkpoints")],
    )
    workflow.write_text(json.dumps(graph))
    result = cli("use", "--for", workflow)
    assert result.returncode == 2
    assert (
        result.stderr
        == f"error: {workflow}: none of its 1 model(s) is in the library; run 'synapse install --for {workflow}' first\n"
    )
    assert store.files.stacks()["comfyui"] == ["global"]
    text_file = tmp_path / "a.txt"
    text_file.write_text("a\nSteps: 20, Sampler: Euler, Seed: 1, Model hash: 0123456789")
    no_ui = cli("use", "--for", text_file)
    assert no_ui.returncode == 2 and "say which one with --ui" in no_ui.stderr
