"""The AUTOMATIC1111 adapter: its folders, and command-line flags in webui-user.sh/.bat.

Facts come from AUTOMATIC1111/stable-diffusion-webui at c8a5322d (just before
v1.8.0) and, for ControlNet, from the Mikubill/sd-webui-controlnet extension;
see each layout entry's ``source``. A1111 keys LoRAs, embeddings and
hypernetworks by their bare file name without extension and VAEs by their file
name with extension, so same-named files in different sub-folders collide.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from synapse_core.attach_flags import Dialect, FlagAttach, LaunchScript, targets_from_layout
from synapse_core.kinds import AssetKind
from synapse_core.ui import AttachPlan, KeyStyle, KindFolder, UIAdapter, Unsupported

_CONTROLNET_EXTENSIONS = frozenset({".pt", ".pth", ".ckpt", ".safetensors", ".bin"})
_CONTROLNET_SOURCE = "Mikubill/sd-webui-controlnet scripts/global_state.py (extension)"

LAYOUT: Mapping[AssetKind, KindFolder | Unsupported] = {
    AssetKind.CHECKPOINT: KindFolder(
        "models/Stable-diffusion",
        frozenset({".ckpt", ".safetensors"}),
        KeyStyle.RELATIVE_PATH,
        "modules/sd_models.py (model_path, list_models); modules/modelloader.py load_models",
        "--ckpt-dir",
    ),
    AssetKind.LORA: KindFolder(
        "models/Lora",
        frozenset({".pt", ".ckpt", ".safetensors"}),
        KeyStyle.STEM,
        "extensions-builtin/Lora/preload.py; extensions-builtin/Lora/networks.py",
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
        frozenset({".ckpt", ".pt", ".safetensors"}),
        KeyStyle.BASENAME,
        "modules/sd_vae.py refresh_vae_list",
        "--vae-dir",
    ),
    # The extension shows "<stem> [<hash>]" in its dropdown, but resolves models named
    # without a hash (API, x/y/z plot, infotext) through cn_models_names, keyed by the
    # lower-cased stem, where the file walked last wins; its API lists only those
    # names. So same-stem files do collide: key by STEM.
    AssetKind.CONTROLNET: KindFolder(
        "models/ControlNet", _CONTROLNET_EXTENSIONS, KeyStyle.STEM, _CONTROLNET_SOURCE, "--controlnet-dir"
    ),
    AssetKind.UPSCALER: KindFolder(
        "models/ESRGAN",
        frozenset({".pt", ".pth", ".safetensors"}),
        KeyStyle.STEM,
        "modules/esrgan_model.py; modules/upscaler.py; modules/cmd_args.py (--esrgan-models-path)",
        "--esrgan-models-path",
    ),
    AssetKind.HYPERNETWORK: KindFolder(
        "models/hypernetworks",
        frozenset({".pt"}),
        KeyStyle.STEM,
        "modules/hypernetworks/hypernetwork.py list_hypernetworks",
        "--hypernetwork-dir",
    ),
    AssetKind.TEXT_ENCODER: Unsupported(
        "AUTOMATIC1111 has no text-encoder folder;"
        " --clip-models-path is only for the interrogator (modules/cmd_args.py)"
    ),
    AssetKind.DIFFUSION_MODEL: Unsupported(
        "AUTOMATIC1111 loads only full checkpoints (modules/sd_models.py); it has no folder for UNet-only files"
    ),
    AssetKind.CLIP_VISION: Unsupported(
        "AUTOMATIC1111 has no CLIP-vision folder; sd-webui-controlnet downloads the encoders it needs itself"
    ),
    AssetKind.IPADAPTER: KindFolder(
        "models/ControlNet",
        _CONTROLNET_EXTENSIONS,
        KeyStyle.STEM,
        f"{_CONTROLNET_SOURCE}: IP-Adapter models are listed as ControlNet models",
        "--controlnet-dir",
    ),
    AssetKind.MOTION_MODULE: Unsupported(
        "AUTOMATIC1111 needs the sd-webui-animatediff extension for motion modules; its folders are not mapped"
    ),
    AssetKind.OTHER: Unsupported("AUTOMATIC1111 has no catch-all model folder"),
}

ADDING_FLAGS = frozenset({"--ckpt-dir", "--vae-dir", "--esrgan-models-path", "--controlnet-dir"})
"""Flags whose folder is searched as well as the install's own (sd_models.list_models and
modelloader.load_models put --ckpt-dir / --*-models-path first; sd_vae.refresh_vae_list
globs models/VAE and --vae-dir; the extension adds --controlnet-dir). The other flags
replace the install's folder."""

SCRIPTS = (
    LaunchScript("webui-user.sh", Dialect.SH),  # webui.sh sources it before launching
    LaunchScript("webui-user.bat", Dialect.BAT, before=r"^\s*@?call\s+webui\.bat\b"),  # it ends by calling webui.bat
)
CONTROLNET_FLAG = "--controlnet-dir"

NOTES = (
    "A flag given twice counts once, the last time: the synapse block comes last, so it overrides",
    "the same flags set earlier in COMMANDLINE_ARGS. LyCORIS/LoCon files are exposed as LoRAs in models/Lora.",
)


class A1111Adapter(UIAdapter):
    """AUTOMATIC1111's stable-diffusion-webui, attached through command-line flags."""

    name: ClassVar[str] = "a1111"
    display_name: ClassVar[str] = "AUTOMATIC1111"
    layout: ClassVar[Mapping[AssetKind, KindFolder | Unsupported]] = LAYOUT

    def looks_like_install(self, path: Path) -> bool:
        """webui.py or launch.py with modules/, and not Forge (modules_forge/) or SD.Next (installer.py)."""
        has_entry = (path / "webui.py").is_file() or (path / "launch.py").is_file()
        is_other = (path / "modules_forge").is_dir() or (path / "installer.py").is_file()
        return has_entry and (path / "modules").is_dir() and not is_other

    def flag_attach(self, install: Path) -> FlagAttach:
        """The flags for this install: --controlnet-dir only if an enabled extension defines it,
        because A1111 refuses to start on a flag it does not know (modules/shared_cmd_options.py)."""
        targets = targets_from_layout(self.layout.values(), ADDING_FLAGS)
        notes: tuple[str, ...] = NOTES
        if controlnet_extension(install) is None:
            targets = tuple(t for t in targets if t.flag != CONTROLNET_FLAG)
            notes += ("ControlNet and IP-Adapter models need the sd-webui-controlnet extension; attach again after",)
            notes += ("installing it to add --controlnet-dir.",)
        return FlagAttach(self.name, self.display_name, "COMMANDLINE_ARGS", targets, SCRIPTS, notes)

    def plan_attach(self, install: Path, view: Path) -> AttachPlan:
        """The flags, and the synapse block of webui-user.sh / webui-user.bat (those that exist)."""
        return self.flag_attach(install).plan_attach(install, view)

    def plan_detach(self, install: Path, view: Path) -> AttachPlan:
        """Remove the synapse block from webui-user.sh / webui-user.bat."""
        return self.flag_attach(install).plan_detach(install, view)


def controlnet_extension(install: Path) -> str | None:
    """The enabled extension folder whose preload.py defines --controlnet-dir, if any."""
    extensions = install / "extensions"
    config = _read_config(install / "config.json")
    if not extensions.is_dir() or config.get("disable_all_extensions", "none") != "none":
        return None
    disabled = config.get("disabled_extensions", [])
    off = {str(name) for name in disabled} if isinstance(disabled, list) else set()
    for preload in sorted(extensions.glob("*/preload.py")):
        name = preload.parent.name
        if name not in off and CONTROLNET_FLAG in _text_or_empty(preload):
            return name
    return None


def _text_or_empty(path: Path) -> str:
    """A file's text; an unreadable one (or a folder by that name) is like an empty one."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _read_config(path: Path) -> dict[str, object]:
    """A1111's config.json (settings, including disabled extensions), or {} if unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
