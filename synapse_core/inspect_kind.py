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
