"""Forge's folders: where it lists each asset kind, and how it names those files.

Facts come from lllyasviel/stable-diffusion-webui-forge at dfdcbab6; see each
layout entry's ``source``. Forge keeps A1111's folders and flags and adds
``.gguf`` checkpoints, a text-encoder folder and a built-in ControlNet. Like
A1111 it keys LoRAs, embeddings and hypernetworks by bare file name without
extension, and VAEs and text encoders by file name with extension.
"""

from __future__ import annotations

from collections.abc import Mapping

from synapse_core.kinds import AssetKind
from synapse_core.ui import KeyStyle, KindFolder, Unsupported

_CHECKPOINT_EXTENSIONS = frozenset({".ckpt", ".safetensors", ".gguf"})
_MODULE_EXTENSIONS = frozenset({".ckpt", ".pt", ".bin", ".safetensors", ".gguf"})
_CONTROLNET_EXTENSIONS = frozenset({".pt", ".pth", ".ckpt", ".safetensors", ".bin", ".patch"})
_CONTROLNET_SOURCE = "modules_forge/shared.py; extensions-builtin/sd_forge_controlnet/lib_controlnet/global_state.py"
_VAE_AND_TEXT_ENCODERS = "models/VAE + models/text_encoder (one list in Forge)"
_CHECKPOINT_SOURCE = "modules/sd_models.py list_models"

LAYOUT: Mapping[AssetKind, KindFolder | Unsupported] = {
    AssetKind.CHECKPOINT: KindFolder(
        "models/Stable-diffusion", _CHECKPOINT_EXTENSIONS, KeyStyle.RELATIVE_PATH, _CHECKPOINT_SOURCE, "--ckpt-dir"
    ),
    AssetKind.LORA: KindFolder(
        "models/Lora",
        frozenset({".pt", ".ckpt", ".safetensors"}),
        KeyStyle.STEM,
        "extensions-builtin/sd_forge_lora/preload.py;"
        " extensions-builtin/sd_forge_lora/networks.py process_network_files",
        "--lora-dir",
    ),
    AssetKind.EMBEDDING: KindFolder(
        "embeddings",
        frozenset({".pt", ".bin", ".safetensors", ".png", ".webp", ".jxl", ".avif"}),
        KeyStyle.STEM,
        "modules/cmd_args.py (--embeddings-dir); modules/textual_inversion/textual_inversion.py load_from_dir",
        "--embeddings-dir",
    ),
    AssetKind.VAE: KindFolder(
        "models/VAE",
        _MODULE_EXTENSIONS,
        KeyStyle.BASENAME,
        "modules/sd_vae.py refresh_vae_list; modules_forge/main_entry.py refresh_models",
        "--vae-dir",
        name_scope=_VAE_AND_TEXT_ENCODERS,
    ),
    # Forge shows and looks up ControlNets as "<stem> [<content hash>]" and has no
    # stem-only index, so different files never collide: key by relative path.
    AssetKind.CONTROLNET: KindFolder(
        "models/ControlNet", _CONTROLNET_EXTENSIONS, KeyStyle.RELATIVE_PATH, _CONTROLNET_SOURCE, "--controlnet-dir"
    ),
    AssetKind.UPSCALER: KindFolder(
        "models/ESRGAN",
        frozenset({".pt", ".pth", ".safetensors"}),
        KeyStyle.STEM,
        "modules/esrgan_model.py; modules/upscaler.py; modules/modelloader.py load_upscalers",
        "--esrgan-models-path",
    ),
    AssetKind.HYPERNETWORK: KindFolder(
        "models/hypernetworks",
        frozenset({".pt"}),
        KeyStyle.STEM,
        "modules/hypernetworks/hypernetwork.py list_hypernetworks",
        "--hypernetwork-dir",
    ),
    AssetKind.TEXT_ENCODER: KindFolder(
        "models/text_encoder",
        _MODULE_EXTENSIONS,
        KeyStyle.BASENAME,
        "modules_forge/main_entry.py refresh_models; modules/cmd_args.py (--text-encoder-dir)",
        "--text-encoder-dir",
        name_scope=_VAE_AND_TEXT_ENCODERS,
    ),
    # UNet-only files (Flux, GGUF) have no folder of their own: Forge lists them with
    # the checkpoints, its only model list.
    AssetKind.DIFFUSION_MODEL: KindFolder(
        "models/Stable-diffusion",
        _CHECKPOINT_EXTENSIONS,
        KeyStyle.RELATIVE_PATH,
        f"{_CHECKPOINT_SOURCE} (UNet-only files are listed as checkpoints)",
        "--ckpt-dir",
    ),
    # annotator_path.py creates ControlNetPreprocessor/clip_vision but nothing reads it:
    # the CLIP-vision preprocessors load fixed file names (e.g. CLIP-ViT-H-14.safetensors)
    # from ControlNetPreprocessor itself, downloading them when missing. Pointing
    # --controlnet-preprocessor-models-dir at a view would send every preprocessor
    # download into the view, so Synapse does not manage this kind for Forge.
    AssetKind.CLIP_VISION: Unsupported(
        "Forge's CLIP-vision preprocessors download fixed file names into models/ControlNetPreprocessor"
        " themselves (modules_forge/supported_preprocessor.py load_clipvision); no folder lists other files"
    ),
    AssetKind.IPADAPTER: KindFolder(
        "models/ControlNet",
        _CONTROLNET_EXTENSIONS,
        KeyStyle.RELATIVE_PATH,
        "extensions-builtin/sd_forge_ipadapter/scripts/forge_ipadapter.py (a ControlNet model type); "
        + _CONTROLNET_SOURCE,
        "--controlnet-dir",
    ),
    AssetKind.MOTION_MODULE: Unsupported("Forge has no AnimateDiff support built in"),
    AssetKind.OTHER: Unsupported("Forge has no catch-all model folder"),
    AssetKind.MOTION_LORA: Unsupported("Forge has no AnimateDiff support built in"),
    AssetKind.DIFFUSERS: Unsupported(
        "Forge's models/diffusers is its Hugging Face cache (modules_forge/initialization.py sets HF_HOME to it),"
        " not a list of models"
    ),
    AssetKind.PHOTOMAKER: Unsupported(
        "Forge's PhotoMaker space downloads its own weights (extensions-builtin/forge_space_photo_maker_v2)"
    ),
    **{
        kind: Unsupported(
            f"Forge has no {kind.value.replace('_', ' ')} models (no folder or flag in modules/cmd_args.py)"
        )
        for kind in (
            AssetKind.STYLE_MODEL,
            AssetKind.GLIGEN,
            AssetKind.VAE_APPROX,
            AssetKind.MODEL_PATCH,
            AssetKind.AUDIO_ENCODER,
            AssetKind.LATENT_UPSCALER,
            AssetKind.CLASSIFIER,
            AssetKind.DETECTION,
            AssetKind.BACKGROUND_REMOVAL,
            AssetKind.FRAME_INTERPOLATION,
            AssetKind.GEOMETRY_ESTIMATION,
            AssetKind.OPTICAL_FLOW,
        )
    },
}
