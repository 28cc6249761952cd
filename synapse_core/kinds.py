"""The core vocabulary of asset kinds.

Sources map their own types onto these kinds; UI adapters map these kinds onto
folders. Nothing else in the core knows a UI's or a source's words.
"""

from __future__ import annotations

from enum import StrEnum


class AssetKind(StrEnum):
    """What a model file is, independent of any UI or source."""

    CHECKPOINT = "checkpoint"
    LORA = "lora"
    EMBEDDING = "embedding"
    VAE = "vae"
    CONTROLNET = "controlnet"
    UPSCALER = "upscaler"
    HYPERNETWORK = "hypernetwork"
    TEXT_ENCODER = "text_encoder"
    DIFFUSION_MODEL = "diffusion_model"
    CLIP_VISION = "clip_vision"
    IPADAPTER = "ipadapter"
    MOTION_MODULE = "motion_module"
    OTHER = "other"


ALL_KINDS: tuple[AssetKind, ...] = tuple(AssetKind)


def kind_names() -> str:
    """The kinds as a comma-separated list, for error messages."""
    return ", ".join(kind.value for kind in AssetKind)
