"""The ComfyUI adapter: its layout (each fact with the ComfyUI file it comes from),
and the extra_model_paths.yaml section it owns, checked against ComfyUI's loader rules.

Facts: Comfy-Org/ComfyUI a125cd84 (v0.3.64). ``COMFYUI_SRC=<checkout>`` also runs
the attach plan through ComfyUI's real ``folder_paths`` and ``utils.extra_config``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from synapse_comfyui.adapter import SUPPORTED_PT_EXTENSIONS, ComfyUIAdapter
from synapse_core.errors import InvalidInput
from synapse_core.kinds import AssetKind
from synapse_core.ui import AttachPlan, KeyStyle, KindFolder, Unsupported

ADAPTER = ComfyUIAdapter()

PT = frozenset({".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"})
GGUF = PT | {".gguf"}  # city96/ComfyUI-GGUF: unet_gguf / clip_gguf share these folders, filtered to .gguf
# kind, folder_paths key, folder, the ComfyUI (or custom node) file the fact comes from, extensions
# (Comfy-Org/ComfyUI folder_paths.py at a125cd84 and at 1df2885e for the keys added since)
LAYOUT_FACTS = [
    ("checkpoint", "checkpoints", "models/checkpoints", "folder_paths.py", PT),
    ("lora", "loras", "models/loras", "folder_paths.py", PT),
    ("embedding", "embeddings", "models/embeddings", "folder_paths.py", PT),
    ("vae", "vae", "models/vae", "folder_paths.py", PT),
    ("controlnet", "controlnet", "models/controlnet", "folder_paths.py", PT),
    ("upscaler", "upscale_models", "models/upscale_models", "folder_paths.py", PT),
    ("hypernetwork", "hypernetworks", "models/hypernetworks", "folder_paths.py", PT),
    ("text_encoder", "text_encoders", "models/text_encoders", "ComfyUI-GGUF nodes.py clip_gguf", GGUF),
    ("diffusion_model", "diffusion_models", "models/diffusion_models", "ComfyUI-GGUF nodes.py unet_gguf", GGUF),
    ("clip_vision", "clip_vision", "models/clip_vision", "folder_paths.py", PT),
    ("ipadapter", "ipadapter", "models/ipadapter", "IPAdapterPlus.py", PT),
    ("motion_module", "animatediff_models", "models/animatediff_models", "animatediff/utils_model.py", PT),
    ("motion_lora", "animatediff_motion_lora", "models/animatediff_motion_lora", "animatediff/utils_model.py", PT),
    ("style_model", "style_models", "models/style_models", "folder_paths.py", PT),
    ("gligen", "gligen", "models/gligen", "folder_paths.py", PT),
    ("photomaker", "photomaker", "models/photomaker", "folder_paths.py", PT),
    ("vae_approx", "vae_approx", "models/vae_approx", "folder_paths.py", PT),
    ("model_patch", "model_patches", "models/model_patches", "folder_paths.py", PT),
    ("audio_encoder", "audio_encoders", "models/audio_encoders", "folder_paths.py", PT),
    ("latent_upscaler", "latent_upscale_models", "models/latent_upscale_models", "folder_paths.py", PT),
    ("classifier", "classifiers", "models/classifiers", "folder_paths.py", frozenset({""})),
    ("detection", "detection", "models/detection", "folder_paths.py", PT),
    ("background_removal", "background_removal", "models/background_removal", "folder_paths.py", PT),
    ("frame_interpolation", "frame_interpolation", "models/frame_interpolation", "folder_paths.py", PT),
    ("geometry_estimation", "geometry_estimation", "models/geometry_estimation", "folder_paths.py", PT),
    ("optical_flow", "optical_flow", "models/optical_flow", "folder_paths.py", PT),
    ("diffusers", "diffusers", "models/diffusers", "nodes.py DiffusersLoader", frozenset()),
]


@pytest.mark.parametrize(
    ("kind", "key", "folder", "source", "extensions"), LAYOUT_FACTS, ids=[row[0] for row in LAYOUT_FACTS]
)
def test_kind_maps_to_folder_paths_key(kind: str, key: str, folder: str, source: str, extensions: frozenset) -> None:
    entry = ADAPTER.layout[AssetKind(kind)]
    assert isinstance(entry, KindFolder)
    assert (entry.folder, entry.attach_key, entry.extensions) == (folder, key, extensions)
    assert source in entry.source


def test_every_kind_is_declared() -> None:
    assert set(ADAPTER.layout) == set(AssetKind)
    assert {kind.value for kind in AssetKind} - {row[0] for row in LAYOUT_FACTS} == {"other"}
    other = ADAPTER.layout[AssetKind.OTHER]
    assert isinstance(other, Unsupported) and other.reason


def test_diffusers_entries_are_folders_with_model_index_json_nodes_py_diffusers_loader() -> None:
    assert not ADAPTER.accepts(AssetKind.DIFFUSERS, "model.safetensors")  # a file is never one
    assert ADAPTER.accepts_folder(AssetKind.DIFFUSERS, {"model_index.json", "unet", "vae"})
    assert not ADAPTER.accepts_folder(AssetKind.DIFFUSERS, {"unet", "vae"})
    assert not ADAPTER.accepts_folder(AssetKind.LORA, {"model_index.json"})


def test_classifiers_list_only_files_without_an_extension_folder_paths_py() -> None:
    assert ADAPTER.accepts(AssetKind.CLASSIFIER, "aesthetic")
    assert not ADAPTER.accepts(AssetKind.CLASSIFIER, "aesthetic.safetensors")


def test_gguf_is_placed_for_comfyui_gguf_but_not_in_core_only_keys() -> None:
    assert ADAPTER.accepts(AssetKind.DIFFUSION_MODEL, "flux1-q4.gguf")
    assert ADAPTER.accepts(AssetKind.TEXT_ENCODER, "t5-q8.gguf")
    assert not ADAPTER.accepts(AssetKind.CHECKPOINT, "x.gguf") and not ADAPTER.accepts(AssetKind.LORA, "x.gguf")


FOLDER_PATHS_0_3_64 = "".join(  # the keys folder_paths.py defines at a125cd84 (no latent_upscale_models yet)
    f'folder_names_and_paths["{key}"] = ([], set())\n'
    for key in [
        "checkpoints",
        "configs",
        "loras",
        "vae",
        "text_encoders",
        "diffusion_models",
        "clip_vision",
        "style_models",
        "embeddings",
        "diffusers",
        "vae_approx",
        "controlnet",
        "gligen",
        "upscale_models",
        "custom_nodes",
        "hypernetworks",
        "photomaker",
        "classifiers",
        "model_patches",
        "audio_encoders",
    ]
)


def test_describe_install_follows_its_folder_paths_and_custom_nodes(tmp_path: Path) -> None:
    install = tmp_path / "ComfyUI"
    (install / "comfy").mkdir(parents=True)
    (install / "main.py").write_text("")
    (install / "folder_paths.py").write_text(FOLDER_PATHS_0_3_64)
    lists = ADAPTER.describe_install(install).lists
    assert lists is not None
    latent, ipadapter, unet = (
        lists[k] for k in (AssetKind.LATENT_UPSCALER, AssetKind.IPADAPTER, AssetKind.DIFFUSION_MODEL)
    )
    assert isinstance(latent, Unsupported) and "'latent_upscale_models'" in latent.reason
    assert isinstance(ipadapter, Unsupported) and "custom node" in ipadapter.reason
    assert isinstance(unet, KindFolder) and ".gguf" not in unet.extensions
    assert isinstance(lists[AssetKind.GLIGEN], KindFolder)
    for node in ("ComfyUI-GGUF", "comfyui_ipadapter_plus", "ComfyUI-AnimateDiff-Evolved"):
        (install / "custom_nodes" / node).mkdir(parents=True)
    lists = ADAPTER.describe_install(install).lists
    assert lists is not None
    assert lists[AssetKind.IPADAPTER] == ADAPTER.layout[AssetKind.IPADAPTER]
    assert lists[AssetKind.MOTION_LORA] == ADAPTER.layout[AssetKind.MOTION_LORA]
    assert lists[AssetKind.DIFFUSION_MODEL] == ADAPTER.layout[AssetKind.DIFFUSION_MODEL]


def test_supported_pt_extensions_as_in_folder_paths_py() -> None:
    expected = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}
    assert expected == SUPPORTED_PT_EXTENSIONS
    assert ADAPTER.accepts(AssetKind.LORA, "x.SafeTensors")  # filter_files_extensions lower-cases
    assert ADAPTER.accepts(AssetKind.CHECKPOINT, "x.sft")
    assert not ADAPTER.accepts(AssetKind.LORA, "x.json")
    assert not ADAPTER.accepts(AssetKind.OTHER, "x.safetensors")


def test_loras_are_keyed_by_relative_path_folder_paths_py() -> None:
    # folder_paths.recursive_search lists paths relative to the root: a/x and b/x are two models
    a = ADAPTER.conflict_key(AssetKind.LORA, "a/x.safetensors")
    b = ADAPTER.conflict_key(AssetKind.LORA, "b/x.safetensors")
    assert a != b
    assert ADAPTER.layout[AssetKind.LORA].key_style is KeyStyle.RELATIVE_PATH  # type: ignore[union-attr]


def test_embeddings_collide_by_stem_comfy_sd1_clip_py() -> None:
    # comfy/sd1_clip.py load_embed searches every sub-folder (a set) for "embedding:x", trying
    # x, x.safetensors, x.pt, x.bin: same stems in two folders collide
    a = ADAPTER.conflict_key(AssetKind.EMBEDDING, "a/x.pt")
    b = ADAPTER.conflict_key(AssetKind.EMBEDDING, "b/x.safetensors")
    assert a == b == "x"


def test_looks_like_install(tmp_path: Path) -> None:
    assert not ADAPTER.looks_like_install(tmp_path)
    (tmp_path / "main.py").write_text("")
    assert not ADAPTER.looks_like_install(tmp_path)
    (tmp_path / "comfy").mkdir()
    assert ADAPTER.looks_like_install(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "main.py").write_text("")
    (other / "folder_paths.py").write_text("")
    assert ADAPTER.looks_like_install(other)


# --------------------------------------------------------------------------- the yaml section

USER_YAML = """\
# my own paths, hand-written
a111:
    base_path: /mnt/a1111/   # trailing comment

    checkpoints: models/Stable-diffusion
    loras: |
         models/Lora
         models/LyCORIS

#comfyui:
#     base_path: path/to/comfyui/
other_ui:
    base_path: ~/other
    gligen: models/gligen
"""


def _apply(plan: AttachPlan) -> None:
    """What the core does with a plan: write each change, bytes as given."""
    for change in plan.changes:
        with open(change.path, "w", encoding="utf-8", newline="") as handle:
            handle.write(change.content)


def _view(tmp_path: Path) -> Path:
    return tmp_path / "store" / "data" / "views" / "comfyui" / "active"


def test_attach_creates_the_file_with_string_values(tmp_path: Path) -> None:
    view = _view(tmp_path)
    plan = ADAPTER.plan_attach(tmp_path, view)
    [change] = plan.changes
    assert change.path == tmp_path / "extra_model_paths.yaml"
    data = yaml.safe_load(change.content)
    assert list(data) == ["synapse"]
    section = data["synapse"]
    assert section["base_path"] == str(view)
    assert all(isinstance(value, str) for value in section.values())  # the loader calls .split("\n")
    folders = {e.attach_key: e.folder for e in ADAPTER.layout.values() if isinstance(e, KindFolder)}
    assert {k: v for k, v in section.items() if k != "base_path"} == folders
    assert "--extra-model-paths-config" in plan.instructions
    assert "base_path:" in plan.instructions


def test_attach_keeps_every_other_byte_and_detach_restores_the_file(tmp_path: Path) -> None:
    config = tmp_path / "extra_model_paths.yaml"
    config.write_text(USER_YAML, encoding="utf-8")
    view = _view(tmp_path)
    attach = ADAPTER.plan_attach(tmp_path, view)
    [change] = attach.changes
    assert change.content.startswith(USER_YAML)
    parsed = yaml.safe_load(change.content)
    assert parsed["a111"] == yaml.safe_load(USER_YAML)["a111"]
    assert parsed["other_ui"] == {"base_path": "~/other", "gligen": "models/gligen"}
    _apply(attach)
    [undo] = ADAPTER.plan_detach(tmp_path, view).changes
    assert undo.content == USER_YAML


def test_reattach_replaces_the_section_in_place(tmp_path: Path) -> None:
    config = tmp_path / "extra_model_paths.yaml"
    config.write_text(USER_YAML, encoding="utf-8")
    _apply(ADAPTER.plan_attach(tmp_path, tmp_path / "old-view"))
    config.write_bytes(config.read_bytes() + b"# added by the user after attach\nlast:\n    vae: models/vae\n")
    user_tail = "# added by the user after attach\nlast:\n    vae: models/vae\n"
    view = _view(tmp_path)
    [change] = ADAPTER.plan_attach(tmp_path, view).changes
    assert change.content.count("synapse:") == 1
    assert change.content.startswith(USER_YAML) and change.content.endswith(user_tail)
    assert yaml.safe_load(change.content)["synapse"]["base_path"] == str(view)
    _apply(ADAPTER.plan_attach(tmp_path, view))
    assert ADAPTER.plan_attach(tmp_path, view).changes == ()  # already attached: nothing to write
    [undo] = ADAPTER.plan_detach(tmp_path, view).changes
    assert undo.content == USER_YAML + user_tail


@pytest.mark.parametrize(
    "original",
    ["a111:\n    vae: models/VAE", "a111:\r\n    vae: models/VAE\r\n", "# only a comment\n", ""],
    ids=["no-final-newline", "crlf", "comments-only", "empty"],
)
def test_round_trip_is_byte_exact(tmp_path: Path, original: str) -> None:
    config = tmp_path / "extra_model_paths.yaml"
    config.write_bytes(original.encode())
    _apply(ADAPTER.plan_attach(tmp_path, _view(tmp_path)))
    assert yaml.safe_load(config.read_bytes())["synapse"]["base_path"] == str(_view(tmp_path))
    [undo] = ADAPTER.plan_detach(tmp_path, _view(tmp_path)).changes
    if yaml.safe_load(original) is None:
        # ComfyUI fails on a file that parses to nothing (utils/extra_config.py: for c in None)
        assert undo.content.startswith(original) and yaml.safe_load(undo.content) == {}
    else:
        assert undo.content == original


class _TwoFoldersForOneKey(ComfyUIAdapter):
    """A layout where two kinds share one folder_paths key (as unet/diffusion_models do)."""

    layout: ClassVar[Mapping[AssetKind, KindFolder | Unsupported]] = {
        **ComfyUIAdapter.layout,
        AssetKind.OTHER: KindFolder(
            "models/unet", SUPPORTED_PT_EXTENSIONS, KeyStyle.RELATIVE_PATH, "x", "diffusion_models"
        ),
    }


def test_several_folders_for_one_key_are_a_newline_separated_string(tmp_path: Path) -> None:
    # utils/extra_config.py splits each value on "\n"; a YAML list would not load
    view = _view(tmp_path)
    _apply(_TwoFoldersForOneKey().plan_attach(tmp_path, view))
    value = yaml.safe_load((tmp_path / "extra_model_paths.yaml").read_text())["synapse"]["diffusion_models"]
    assert value == "models/diffusion_models\nmodels/unet"
    roots = comfy_extra_paths(tmp_path / "extra_model_paths.yaml")
    assert roots["diffusion_models"] == [str(view / "models/diffusion_models"), str(view / "models/unet")]


def test_detach_of_a_created_file_leaves_a_loadable_file(tmp_path: Path) -> None:
    _apply(ADAPTER.plan_attach(tmp_path, _view(tmp_path)))
    plan = ADAPTER.plan_detach(tmp_path, _view(tmp_path))
    _apply(plan)
    assert comfy_extra_paths(tmp_path / "extra_model_paths.yaml") == {}


def test_detach_without_file_or_section_changes_nothing(tmp_path: Path) -> None:
    assert ADAPTER.plan_detach(tmp_path, _view(tmp_path)).changes == ()
    (tmp_path / "extra_model_paths.yaml").write_text(USER_YAML)
    assert ADAPTER.plan_detach(tmp_path, _view(tmp_path)).changes == ()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a111:\n  base_path: [unclosed\n", "not valid YAML"),
        ("- a\n- b\n", "not a mapping"),
        ("synapse: {base_path: /x}\n", "cannot edit safely"),
        ("synapse:\n    loras: a\nsynapse:\n    vae: b\n", "cannot edit safely"),
    ],
    ids=["invalid-yaml", "top-level-list", "flow-style-section", "two-sections"],
)
def test_unsafe_files_are_refused(tmp_path: Path, text: str, problem: str) -> None:
    config = tmp_path / "extra_model_paths.yaml"
    config.write_text(text)
    with pytest.raises(InvalidInput) as info:
        ADAPTER.plan_attach(tmp_path, _view(tmp_path))
    assert str(config) in info.value.message
    assert problem in info.value.message
    assert "fix or move it; nothing was changed" in info.value.message
    assert config.read_text() == text


# --------------------------------------------------------------------------- semantics

LEGACY = {"unet": "diffusion_models", "clip": "text_encoders"}  # folder_paths.map_legacy


def comfy_extra_paths(yaml_path: Path) -> dict[str, list[str]]:
    """Our own reading of utils/extra_config.py load_extra_path_config (ui-layouts.md §3)."""
    config = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    yaml_dir = os.path.dirname(os.path.abspath(yaml_path))
    paths: dict[str, list[str]] = {}
    for name in config:  # ComfyUI iterates the top level as is: a file that parses to None fails
        if config[name] is None:
            continue
        conf: dict[str, str] = dict(config[name])
        base = conf.pop("base_path", "")
        if base:
            base = os.path.expandvars(os.path.expanduser(base))
            base = base if os.path.isabs(base) else os.path.abspath(os.path.join(yaml_dir, base))
        conf.pop("is_default", None)
        for key, value in conf.items():
            for line in value.split("\n"):  # a YAML list has no .split: ComfyUI fails the same way
                if not line:
                    continue
                full = os.path.join(base, line) if base else line
                if not base and not os.path.isabs(full):
                    full = os.path.abspath(os.path.join(yaml_dir, line))
                paths.setdefault(LEGACY.get(key, key), []).append(os.path.normpath(full))
    return paths


def comfy_filename_list(roots: list[str], extensions: frozenset[str]) -> list[str]:
    """folder_paths.get_filename_list: os.walk(followlinks=True), relative names, extension filter."""
    names: set[str] = set()
    for root in roots:
        for dirpath, subdirs, files in os.walk(root, followlinks=True):
            subdirs[:] = [d for d in subdirs if d != ".git"]
            for file_name in files:
                relative = os.path.relpath(os.path.join(dirpath, file_name), root)
                if not extensions or os.path.splitext(relative)[1].lower() in extensions:
                    names.add(relative)
    return sorted(names)


def comfy_full_path(roots: list[str], name: str) -> str | None:
    """folder_paths.get_full_path: the first root holding the file (links followed)."""
    name = os.path.relpath(os.path.join("/", name), "/")
    for root in roots:
        candidate = os.path.join(root, name)
        if os.path.isfile(candidate):
            return candidate
    return None


def _fake_view(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A store with two blobs and a view whose LoRAs are symlinks (one through a linked folder)."""
    blobs = tmp_path / "store" / "data" / "blobs" / "sha256" / "ab"
    blobs.mkdir(parents=True)
    lora_blob, linked_blob = blobs / ("ab" + "1" * 62), blobs / ("ab" + "2" * 62)
    lora_blob.write_bytes(b"lora bytes")
    linked_blob.write_bytes(b"other lora")
    profile = tmp_path / "store" / "data" / "views" / "comfyui" / "profiles" / "global"
    loras = profile / "models" / "loras"
    (loras / "packA").mkdir(parents=True)
    (loras / "packA" / "style.safetensors").symlink_to(lora_blob)
    (loras / "notes.txt").write_text("not a model")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "linked.safetensors").symlink_to(linked_blob)
    (loras / "packB").symlink_to(shared, target_is_directory=True)
    view = _view(tmp_path)
    view.symlink_to(Path("profiles") / "global", target_is_directory=True)
    return view, lora_blob, linked_blob


def test_comfyui_semantics_list_and_resolve_a_linked_lora(tmp_path: Path) -> None:
    view, lora_blob, linked_blob = _fake_view(tmp_path)
    install = tmp_path / "ComfyUI"
    install.mkdir()
    _apply(ADAPTER.plan_attach(install, view))
    roots = comfy_extra_paths(install / "extra_model_paths.yaml")
    assert roots["loras"] == [str(view / "models" / "loras")]
    names = comfy_filename_list(roots["loras"], SUPPORTED_PT_EXTENSIONS)
    assert names == ["packA/style.safetensors", "packB/linked.safetensors"]
    found = comfy_full_path(roots["loras"], "packA/style.safetensors")
    assert found is not None and os.path.realpath(found) == str(lora_blob.resolve())
    linked = comfy_full_path(roots["loras"], "packB/linked.safetensors")
    assert linked is not None and os.path.realpath(linked) == str(linked_blob.resolve())
    assert comfy_full_path(roots["loras"], "style.safetensors") is None  # a bare basename does not match


@pytest.fixture
def real_comfyui():  # type: ignore[no-untyped-def]
    """ComfyUI's own folder_paths and utils.extra_config, from COMFYUI_SRC (else skip)."""
    src = os.environ.get("COMFYUI_SRC")
    if not src:
        pytest.skip("set COMFYUI_SRC to a ComfyUI checkout to run this test")
    loaded = sys.modules.get("utils")
    if loaded is not None and not str(getattr(loaded, "__file__", "")).startswith(src):
        pytest.skip("another 'utils' module is already imported")
    sys.path.insert(0, src)
    try:
        import folder_paths  # type: ignore[import-not-found]
        from utils import extra_config  # type: ignore[import-not-found]
    except Exception as exc:
        pytest.skip(f"cannot import ComfyUI from {src}: {exc}")
    finally:
        sys.path.remove(src)
    return folder_paths, extra_config


def test_real_comfyui_loader_lists_and_resolves_the_lora(tmp_path: Path, real_comfyui) -> None:  # type: ignore[no-untyped-def]
    folder_paths, extra_config = real_comfyui
    view, lora_blob, _ = _fake_view(tmp_path)
    install = tmp_path / "ComfyUI"
    install.mkdir()
    _apply(ADAPTER.plan_attach(install, view))
    extra_config.load_extra_path_config(str(install / "extra_model_paths.yaml"))
    assert str(view / "models" / "loras") in folder_paths.get_folder_paths("loras")
    names = folder_paths.get_filename_list("loras")
    assert "packA/style.safetensors" in names and "packB/linked.safetensors" in names
    assert "notes.txt" not in names
    found = folder_paths.get_full_path("loras", "packA/style.safetensors")
    assert found is not None and os.path.realpath(found) == str(lora_blob.resolve())
    for entry in ADAPTER.layout.values():  # every key we write is one ComfyUI now searches
        if isinstance(entry, KindFolder):
            assert str(view / entry.folder) in folder_paths.get_folder_paths(entry.attach_key)
