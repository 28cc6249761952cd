"""The Forge adapter: its folders, and command-line flags in webui-user.sh/.bat.

Facts come from lllyasviel/stable-diffusion-webui-forge at dfdcbab6; see each
layout entry's ``source``. Forge keeps A1111's folders and flags and adds
``.gguf`` checkpoints, a text-encoder folder and a built-in ControlNet. Like
A1111 it keys LoRAs, embeddings and hypernetworks by bare file name without
extension, and VAEs and text encoders by file name with extension.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from synapse_core.attach_flags import Dialect, FlagAttach, LaunchScript, targets_from_layout
from synapse_core.kinds import AssetKind
from synapse_core.ui import AttachPlan, KeyStyle, KindFolder, UIAdapter, Unsupported

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
}

ADDING_FLAGS = frozenset({"--ckpt-dir", "--vae-dir", "--text-encoder-dir", "--esrgan-models-path"})
"""Flags whose folder is searched as well as the install's own (sd_models.list_models and
modelloader.load_models put --ckpt-dir / --*-models-path first; sd_vae.refresh_vae_list and
main_entry.refresh_models list models/VAE and models/text_encoder plus --vae-dir and
--text-encoder-dir). The other flags replace the install's folder (modules_forge/shared.py
takes --controlnet-dir instead of models/ControlNet)."""

SCRIPTS = (
    LaunchScript("webui-user.sh", Dialect.SH),  # webui.sh sources it before launching
    LaunchScript("webui-user.bat", Dialect.BAT, before=r"^\s*@?call\s+webui\.bat\b"),  # it ends by calling webui.bat
)

NOTES = (
    "A flag given twice counts once, the last time: the synapse block comes last, so it overrides",
    "the same flags set earlier in COMMANDLINE_ARGS (and --forge-ref-a1111-home skips flags already given).",
    "Forge does not scan models/LyCORIS: LyCORIS/LoCon files are exposed as LoRAs in models/Lora.",
    "Forge lists VAEs and text encoders together by file name: a VAE and a text encoder with the",
    "same file name conflict, and only the winner is linked.",
)


class ForgeAdapter(UIAdapter):
    """lllyasviel's stable-diffusion-webui-forge, attached through command-line flags."""

    name: ClassVar[str] = "forge"
    display_name: ClassVar[str] = "Forge"
    layout: ClassVar[Mapping[AssetKind, KindFolder | Unsupported]] = LAYOUT

    def looks_like_install(self, path: Path) -> bool:
        """webui.py or launch.py with modules/ and modules_forge/."""
        has_entry = (path / "webui.py").is_file() or (path / "launch.py").is_file()
        return has_entry and (path / "modules").is_dir() and (path / "modules_forge").is_dir()

    def flag_attach(self) -> FlagAttach:
        """Every flag Forge itself defines for the kinds it supports."""
        targets = targets_from_layout(self.layout.values(), ADDING_FLAGS)
        return FlagAttach(self.name, self.display_name, "COMMANDLINE_ARGS", targets, SCRIPTS, NOTES)

    def plan_attach(self, install: Path, view: Path) -> AttachPlan:
        """The flags, and the synapse block of webui-user.sh / webui-user.bat (those that exist)."""
        return self.flag_attach().plan_attach(install, view)

    def plan_detach(self, install: Path, view: Path) -> AttachPlan:
        """Remove the synapse block from webui-user.sh / webui-user.bat."""
        return self.flag_attach().plan_detach(install, view)
