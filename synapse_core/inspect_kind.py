"""Guess a model file's asset kind from its safetensors header, without loading weights."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from synapse_core.kinds import AssetKind

MAX_HEADER = 100 * 1024 * 1024
MODEL_EXTENSIONS = frozenset({".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".pkl", ".pt2"})

_LORA_MARKERS = (".lora_down.", ".lora_up.", "lora_A.", "lora_B.", ".hada_w1", ".lokr_w1", ".alpha", "dora_scale")
_VAE_PREFIXES = ("encoder.", "decoder.", "quant_conv.", "post_quant_conv.")
_EMBEDDING_KEYS = {"emb_params", "clip_l", "clip_g", "string_to_param"}

# Kinds a header cannot tell from the one it shows: a motion LoRA has a LoRA's tensor names, a
# TAESD decoder a VAE's, a motion module or a model patch holds diffusion-model blocks.
_LOOK_ALIKE = {
    AssetKind.LORA: {AssetKind.MOTION_LORA},
    AssetKind.VAE: {AssetKind.VAE_APPROX},
    AssetKind.DIFFUSION_MODEL: {AssetKind.MOTION_MODULE, AssetKind.MODEL_PATCH},
}
# What files that sit next to models are, by how their names end (checked before the extension).
_NOT_MODELS = {
    ".civitai.info": "Civitai metadata",
    ".json": "a JSON file (metadata or a workflow)",
    ".png": "an image",
    ".jpg": "an image",
    ".jpeg": "an image",
    ".webp": "an image",
    ".gif": "an image",
    ".mp4": "a video",
    ".webm": "a video",
    ".txt": "a text file",
    ".md": "a text file",
    ".html": "a web page",
    ".info": "a metadata file",
    ".yaml": "a configuration file",
    ".yml": "a configuration file",
    ".zip": "an archive (unpack it first)",
}
_MAGIC = ((b"\x89PNG", "an image"), (b"\xff\xd8\xff", "an image"), (b"GIF8", "an image"), (b"%PDF", "a PDF document"))


def read_safetensors_header(path: Path) -> dict[str, Any] | None:
    """The JSON header of a .safetensors file, or None if it is not one."""
    try:
        with open(path, "rb") as handle:
            raw_len = handle.read(8)
            if len(raw_len) != 8:
                return None
            (length,) = struct.unpack("<Q", raw_len)
            if length <= 1 or length > MAX_HEADER:
                return None
            header = json.loads(handle.read(length))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return header if isinstance(header, dict) else None


def not_a_model(path: Path) -> str | None:
    """What a file is when it is plainly not a model (its name or its first bytes say so), else None."""
    name = path.name.lower()
    for ending, what in _NOT_MODELS.items():
        if name.endswith(ending) and path.suffix.lower() not in MODEL_EXTENSIONS:
            return what
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError:
        return None  # reading it is the caller's error to report
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "an image"
    text = head.lstrip()
    if text[:1] in (b"{", b"[") and b"\0" not in head:
        return "a JSON file (metadata or a workflow)"
    return None


def kind_problem(path: Path, kind: AssetKind) -> AssetKind | None:
    """The kind the file's header shows when it contradicts ``kind`` (the user's --kind), else None."""
    shown = guess_kind(path)
    if shown is None or shown == kind or kind in _LOOK_ALIKE.get(shown, ()):
        return None
    return shown


def guess_kind(path: Path) -> AssetKind | None:
    """The kind a file most likely is, or None when the header does not tell."""
    if path.suffix.lower() not in (".safetensors", ".sft"):
        return None
    header = read_safetensors_header(path)
    if header is None:
        return None
    return kind_from_header(header)


def kind_from_header(header: dict[str, Any]) -> AssetKind | None:
    """Apply the header rules: training metadata first, then tensor-name patterns."""
    metadata = header.get("__metadata__") or {}
    if isinstance(metadata, dict) and metadata.get("ss_network_module"):
        return AssetKind.LORA
    keys = [k for k in header if k != "__metadata__"]
    if not keys:
        return None
    if any(k.startswith(("lora_unet_", "lora_te")) or any(m in k for m in _LORA_MARKERS) for k in keys):
        return AssetKind.LORA
    if set(keys) <= _EMBEDDING_KEYS:
        return AssetKind.EMBEDDING
    if any(k.startswith(("control_model.", "controlnet_")) or "input_hint_block" in k for k in keys):
        return AssetKind.CONTROLNET
    if any(k.startswith("model.diffusion_model.") for k in keys):
        vae = any(k.startswith("first_stage_model.") for k in keys)
        return AssetKind.CHECKPOINT if vae else AssetKind.DIFFUSION_MODEL
    if all(k.startswith(_VAE_PREFIXES) for k in keys):
        return AssetKind.VAE
    if any(k.startswith(("double_blocks.", "single_blocks.", "input_blocks.", "joint_blocks.")) for k in keys):
        return AssetKind.DIFFUSION_MODEL
    return None
