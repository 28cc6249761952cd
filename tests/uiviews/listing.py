"""What each UI lists from a folder tree, by its own rules (reproduced here, each citing the UI's
file and function), so tests can compare a view with what the UI would really show.

Each function takes the UI's root (an ``active`` view, as the attach points the UI at it)
and returns ``{kind: {path relative to the root}}`` for every file or folder the UI lists.
Revisions: ComfyUI a125cd84 (+ 1df2885e keys), A1111 45b8a499, Forge dfdcbab6, reForge
3b56b268, Forge Classic 1f95d717, SD.Next 058a7f0c.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

Listing = dict[str, set[str]]
PT = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}  # folder_paths.supported_pt_extensions


def _walk(root: Path, folder: str, extensions: Iterable[str] | None, *, follow: bool = True) -> set[str]:
    """os.walk(followlinks=...) filtered by lower-cased extension (None: every file)."""
    exts = None if extensions is None else set(extensions)
    found = set()
    for dirpath, _dirs, files in os.walk(root / folder, followlinks=follow):
        for name in files:
            if exts is None or os.path.splitext(name)[1].lower() in exts:
                found.add(os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/"))
    return found


def _top(root: Path, folder: str, extensions: Iterable[str]) -> set[str]:
    """os.listdir of one folder, files whose name ends with an extension."""
    base = root / folder
    if not base.is_dir():
        return set()
    return {f"{folder}/{n}" for n in os.listdir(base) if (base / n).is_file() and n.lower().endswith(tuple(extensions))}


def _glob(root: Path, folder: str, patterns: Iterable[str]) -> set[str]:
    """glob.iglob(<folder>/**/<pattern>, recursive=True)."""
    found = set()
    for pattern in patterns:
        for path in glob.iglob(str(root / folder / "**" / pattern), recursive=True):
            if os.path.isfile(path):
                found.add(os.path.relpath(path, root).replace(os.sep, "/"))
    return found


def _marked_folders(root: Path, folder: str, marker: str, *, recursive: bool) -> set[str]:
    found = set()
    base = root / folder
    if recursive:  # nodes.py DiffusersLoader: os.walk(followlinks=True), every dir holding the marker
        for dirpath, _dirs, files in os.walk(base, followlinks=True):
            if marker in files:
                found.add(os.path.relpath(dirpath, root).replace(os.sep, "/"))
    elif base.is_dir():  # modules/modelloader.py load_diffusers_models: os.listdir of the top
        found = {f"{folder}/{n}" for n in os.listdir(base) if (base / n / marker).is_file()}
    return found


def comfyui(root: Path, *, gguf: bool = True) -> Listing:
    """folder_paths.py get_filename_list: recursive_search (os.walk followlinks=True) and
    filter_files_extensions per key; custom nodes' keys as they register them; ``gguf``:
    city96/ComfyUI-GGUF unet_gguf/clip_gguf (.gguf in the diffusion_models/text_encoders folders)."""
    keys = {
        "checkpoint": "checkpoints",
        "lora": "loras",
        "embedding": "embeddings",
        "vae": "vae",
        "controlnet": "controlnet",
        "upscaler": "upscale_models",
        "hypernetwork": "hypernetworks",
        "text_encoder": "text_encoders",
        "diffusion_model": "diffusion_models",
        "clip_vision": "clip_vision",
        "ipadapter": "ipadapter",  # IPAdapterPlus.py resets the key's extensions to supported_pt_extensions
        "motion_module": "animatediff_models",  # AnimateDiff-Evolved utils_model.py
        "motion_lora": "animatediff_motion_lora",
        "style_model": "style_models",
        "gligen": "gligen",
        "photomaker": "photomaker",
        "vae_approx": "vae_approx",
        "model_patch": "model_patches",
        "audio_encoder": "audio_encoders",
        "latent_upscaler": "latent_upscale_models",
        "detection": "detection",
        "background_removal": "background_removal",
        "frame_interpolation": "frame_interpolation",
        "geometry_estimation": "geometry_estimation",
        "optical_flow": "optical_flow",
    }
    listing = {kind: _walk(root, f"models/{key}", PT) for kind, key in keys.items()}
    listing["classifier"] = _walk(root, "models/classifiers", {""})  # folder_paths.py: {""}
    if gguf:
        listing["diffusion_model"] |= _walk(root, "models/diffusion_models", {".gguf"})
        listing["text_encoder"] |= _walk(root, "models/text_encoders", {".gguf"})
    listing["diffusers"] = _marked_folders(root, "models/diffusers", "model_index.json", recursive=True)
    return listing


def _webui_files(root: Path, folder: str, extensions: Iterable[str], blacklist: tuple[str, ...] = ()) -> set[str]:
    """modules/util.py walk_files (os.walk followlinks=True, extension filter) as
    modules/modelloader.py load_models uses it (ext_blacklist by name ending)."""
    return {p for p in _walk(root, folder, extensions) if not p.lower().endswith(blacklist)}


_EMBEDDINGS = {".pt", ".bin", ".safetensors", ".png", ".webp", ".jxl", ".avif"}  # textual_inversion.py load_from_file
_NO_VAE = (".vae.ckpt", ".vae.safetensors")


def a1111(root: Path, *, controlnet: bool = True) -> Listing:
    """AUTOMATIC1111 45b8a499 (``controlnet``: with sd-webui-controlnet)."""
    listing = {
        # modules/sd_models.py list_models: load_models(ext_filter=[".ckpt", ".safetensors"], ext_blacklist=.vae.*)
        "checkpoint": _webui_files(root, "models/Stable-diffusion", {".ckpt", ".safetensors"}, _NO_VAE),
        # extensions-builtin/Lora/networks.py list_available_networks: walk_files(.pt .ckpt .safetensors)
        "lora": _webui_files(root, "models/Lora", {".pt", ".ckpt", ".safetensors"}),
        # modules/textual_inversion/textual_inversion.py load_from_dir: os.walk(followlinks=True)
        "embedding": {p for p in _walk(root, "embeddings", _EMBEDDINGS) if ".preview." not in p},
        # modules/sd_vae.py refresh_vae_list: glob **/*.ckpt, **/*.pt, **/*.safetensors
        "vae": _glob(root, "models/VAE", ["*.ckpt", "*.pt", "*.safetensors"]),
        # modules/hypernetworks/hypernetwork.py list_hypernetworks: glob **/*.pt
        "hypernetwork": _glob(root, "models/hypernetworks", ["*.pt"]),
        # modules/esrgan_model.py load_model: find_models(ext_filter=[".pt", ".pth"])
        "upscaler": _webui_files(root, "models/ESRGAN", {".pt", ".pth"}),
    }
    if controlnet:  # Mikubill/sd-webui-controlnet scripts/global_state.py: .pt .pth .ckpt .safetensors .bin
        listing["controlnet"] = _walk(root, "models/ControlNet", {".pt", ".pth", ".ckpt", ".safetensors", ".bin"})
    return listing


def forge(root: Path, variant: str = "forge") -> Listing:
    """Forge dfdcbab6, reForge 3b56b268, Forge Classic 1f95d717."""
    classic, fork = variant == "forge_classic", variant != "forge"
    checkpoints = {".ckpt", ".safetensors"} if fork else {".ckpt", ".safetensors", ".gguf"}  # sd_models.list_models
    listing = {
        "checkpoint": _webui_files(root, "models/Stable-diffusion", checkpoints, _NO_VAE),
        "lora": _webui_files(root, "models/Lora", {".pt", ".ckpt", ".safetensors"}),  # sd_forge_lora / Lora networks.py
        "embedding": {p for p in _walk(root, "embeddings", _EMBEDDINGS) if ".preview." not in p},
        # lib_controlnet/global_state.py CN_MODEL_EXTS (os.scandir, recursive)
        "controlnet": _walk(root, "models/ControlNet", {".pt", ".pth", ".ckpt", ".safetensors", ".bin", ".patch"}),
        # modules/esrgan_model.py: find_models(ext_filter=[".pt", ".pth", ".safetensors"])
        "upscaler": _webui_files(root, "models/ESRGAN", {".pt", ".pth", ".safetensors"}),
    }
    if not classic:
        listing["hypernetwork"] = _glob(root, "models/hypernetworks", ["*.pt"])
    if fork:  # modules/sd_vae.py refresh_vae_list (A1111's globs)
        listing["vae"] = _glob(root, "models/VAE", ["*.ckpt", "*.pt", "*.safetensors"])
    else:  # modules_forge/main_entry.py refresh_models: os.walk (no followlinks) over VAE + text_encoder
        modules = {".ckpt", ".pt", ".bin", ".safetensors", ".gguf"}
        listing["vae"] = _walk(root, "models/VAE", modules, follow=False)
        listing["text_encoder"] = _walk(root, "models/text_encoder", modules, follow=False)
    return listing


def sdnext(root: Path) -> Listing:
    """SD.Next 058a7f0c with --models-dir at ``root/models`` (modules/files_cache.py list_files:
    os.scandir, recursive, symlinked folders entered, case-insensitive extensions)."""
    return {
        "checkpoint": _walk(root, "models/Stable-diffusion", {".safetensors"}),  # sd_checkpoint.list_models
        "lora": _walk(root, "models/Lora", {".pt", ".ckpt", ".safetensors"}),  # lora/lora_load.py
        "embedding": _walk(root, "models/embeddings", {".pt", ".safetensors"}),  # textual inversion lister
        "vae": _walk(root, "models/VAE", {".safetensors"}),  # sd_vae.refresh_vae_list **/*.safetensors
        "controlnet": _top(root, "models/control/controlnet", [".safetensors"]),  # shared_helpers.listdir
        "upscaler": _walk(root, "models/ESRGAN", {".pth", ".pt"}),  # upscaler.find_folder
        "diffusion_model": _walk(root, "models/UNET", {".safetensors", ".gguf", ".pth"}),  # sd_unet.refresh_unet_list
        "text_encoder": _walk(root, "models/Text-encoder", {".safetensors", ".gguf"}),  # model_te.refresh_te_list
        "detection": _top(root, "models/yolo", [".pt"]),  # detailer/helper.py: os.listdir(yolo_dir), .pt
        "diffusers": _marked_folders(root, "models/Diffusers", "model_index.json", recursive=False),
    }
