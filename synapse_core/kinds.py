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
    MOTION_LORA = "motion_lora"
    """A LoRA for an AnimateDiff motion module (not a LoRA of the image model)."""
    STYLE_MODEL = "style_model"
    """An image-prompt style adapter (Flux Redux, T2I style)."""
    GLIGEN = "gligen"
    PHOTOMAKER = "photomaker"
    VAE_APPROX = "vae_approx"
    """A tiny preview decoder (TAESD)."""
    MODEL_PATCH = "model_patch"
    """Weights patched into a diffusion model (ControlNet blocks of Qwen-Image, for example)."""
    AUDIO_ENCODER = "audio_encoder"
    LATENT_UPSCALER = "latent_upscaler"
    """An upscaler that works on latents (LTX-Video's spatial upscaler), not on pixels."""
    CLASSIFIER = "classifier"
    DETECTION = "detection"
    """An object or face detector (YOLO), used by detailers."""
    BACKGROUND_REMOVAL = "background_removal"
    FRAME_INTERPOLATION = "frame_interpolation"
    GEOMETRY_ESTIMATION = "geometry_estimation"
    OPTICAL_FLOW = "optical_flow"
    DIFFUSERS = "diffusers"
    """A multi-file model: a folder with model_index.json at its top (see UIAdapter folder kinds)."""
    OTHER = "other"


ALL_KINDS: tuple[AssetKind, ...] = tuple(AssetKind)


def kind_names() -> str:
    """The kinds as a comma-separated list, for error messages."""
    return ", ".join(kind.value for kind in AssetKind)
