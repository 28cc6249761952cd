"""The SD.Next adapter: its folders, and one ``--models-dir`` flag.

Facts come from vladmandic/sdnext at 058a7f0c; see each layout entry's
``source``. Every default model folder is ``<models_path>/<name>``
(``modules/ui_definitions.py`` "System Paths"), and ``--models-dir`` sets
``models_path`` (``modules/paths.py``), so one flag points all of them at a view
laid out with SD.Next's folder names.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

from synapse_core.attach_flags import FlagAttach, FlagTarget, count_model_files, count_model_folders, read_json_object
from synapse_core.hash_caches import (
    Title,
    cached_hashes,
    drop_json_keys,
    titles_with_new_bytes,
    update_json_sections,
)
from synapse_core.kinds import AssetKind
from synapse_core.sidecar_files import bounded, json_sidecar, preview_sidecar, stem_of
from synapse_core.ui import (
    AttachPlan,
    InstallInfo,
    KeyStyle,
    KindFolder,
    Liveness,
    Sidecar,
    SidecarRequest,
    UIAdapter,
    Unsupported,
    ViewHash,
)

MODELS_FLAG = "--models-dir"

LAYOUT: Mapping[AssetKind, KindFolder | Unsupported] = {
    AssetKind.CHECKPOINT: KindFolder(
        "models/Stable-diffusion",
        frozenset({".safetensors"}),  # list_models filters on .safetensors only: no .ckpt
        KeyStyle.RELATIVE_PATH,
        "modules/sd_checkpoint.py (model_path, list_models)",
        MODELS_FLAG,
    ),
    # name = stem with "." replaced by "_"; available_networks is filled by a thread
    # pool, so which of two same-named LoRAs wins is not defined.
    AssetKind.LORA: KindFolder(
        "models/Lora",
        frozenset({".pt", ".ckpt", ".safetensors"}),
        KeyStyle.STEM,
        "modules/lora/lora_load.py list_available_networks; modules/lora/network.py",
        MODELS_FLAG,
    ),
    AssetKind.EMBEDDING: KindFolder(
        "models/embeddings",
        frozenset({".pt", ".safetensors"}),
        KeyStyle.STEM,
        "modules/ui_definitions.py (embeddings_dir); modules/ui_extra_networks_textual_inversion.py",
        MODELS_FLAG,
    ),
    AssetKind.VAE: KindFolder(
        "models/VAE", frozenset({".safetensors"}), KeyStyle.BASENAME, "modules/sd_vae.py refresh_vae_list", MODELS_FLAG
    ),
    # Only .safetensors files at the TOP LEVEL of control_dir/controlnet are listed
    # (shared_helpers.listdir is not recursive): the view must not nest them.
    AssetKind.CONTROLNET: KindFolder(
        "models/control/controlnet",
        frozenset({".safetensors"}),
        KeyStyle.STEM,
        "modules/control/units/controlnet.py find_models (top level only)",
        MODELS_FLAG,
        recursive=False,
    ),
    AssetKind.UPSCALER: KindFolder(
        "models/ESRGAN",
        frozenset({".pth", ".pt"}),
        KeyStyle.STEM,
        "modules/upscaler.py find_folder; modules/ui_definitions.py (esrgan_models_path)",
        MODELS_FLAG,
    ),
    AssetKind.HYPERNETWORK: Unsupported(
        "SD.Next has no hypernetwork support;"
        " --hypernetwork-dir is only a hidden compatibility flag (modules/cmd_args.py)"
    ),
    # Keyed by stem for .safetensors, by full file name for .gguf: STEM is the safe side.
    AssetKind.TEXT_ENCODER: KindFolder(
        "models/Text-encoder",
        frozenset({".safetensors", ".gguf"}),
        KeyStyle.STEM,
        "modules/model_te.py refresh_te_list",
        MODELS_FLAG,
    ),
    AssetKind.DIFFUSION_MODEL: KindFolder(
        "models/UNET",
        frozenset({".safetensors", ".gguf", ".pth"}),
        KeyStyle.STEM,
        "modules/sd_unet.py refresh_unet_list",
        MODELS_FLAG,
    ),
    AssetKind.CLIP_VISION: Unsupported(
        "SD.Next downloads CLIP-vision encoders from Hugging Face into hfcache_dir itself (modules/ipadapter.py)"
    ),
    AssetKind.IPADAPTER: Unsupported(
        "SD.Next downloads IP-Adapters from the Hugging Face repo h94/IP-Adapter on demand (modules/ipadapter.py)"
    ),
    AssetKind.MOTION_MODULE: Unsupported(
        "SD.Next's AnimateDiff script downloads motion adapters with hf_hub_download (scripts/animatediff.py)"
    ),
    AssetKind.OTHER: Unsupported("SD.Next has no catch-all model folder"),
    # modules/modelloader.py load_diffusers_models: the top level of diffusers_dir; a folder counts if it
    # holds model_index.json (or is a Hugging Face cache models--org--name with snapshots)
    AssetKind.DIFFUSERS: KindFolder(
        "models/Diffusers",
        frozenset(),
        KeyStyle.RELATIVE_PATH,
        "modules/modelloader.py load_diffusers_models (top level of diffusers_dir)",
        MODELS_FLAG,
        recursive=False,
        folders=True,
        marker="model_index.json",
    ),
    # the detailer lists the top-level .pt files of yolo_dir by stem (os.listdir, not recursive)
    AssetKind.DETECTION: KindFolder(
        "models/yolo",
        frozenset({".pt"}),
        KeyStyle.STEM,
        "modules/detailer/helper.py (yolo_dir: top-level .pt); modules/ui_definitions.py",
        MODELS_FLAG,
        recursive=False,
    ),
    AssetKind.MOTION_LORA: Unsupported(
        "SD.Next offers a fixed list of motion LoRAs from Hugging Face (scripts/animatediff.py LORAS)"
    ),
    **{
        kind: Unsupported(
            f"SD.Next has no folder for {kind.value.replace('_', ' ')} models"
            " (modules/ui_definitions.py System Paths); it downloads what it needs from Hugging Face"
        )
        for kind in (
            AssetKind.STYLE_MODEL,
            AssetKind.GLIGEN,
            AssetKind.PHOTOMAKER,
            AssetKind.VAE_APPROX,
            AssetKind.MODEL_PATCH,
            AssetKind.AUDIO_ENCODER,
            AssetKind.LATENT_UPSCALER,
            AssetKind.CLASSIFIER,
            AssetKind.BACKGROUND_REMOVAL,
            AssetKind.FRAME_INTERPOLATION,
            AssetKind.GEOMETRY_ESTIMATION,
            AssetKind.OPTICAL_FLOW,
        )
    },
}

NOTES = (
    "Why one --models-dir and not --vae-dir / --embeddings-dir / --lora-dir: SD.Next's VAE and",
    "embedding lists read the settings (opts.vae_dir, opts.embeddings_dir), not the command line",
    "(modules/cmd_args.py settings_args, modules/sd_vae.py), so those two flags do not change what is",
    "listed. --models-dir moves the default of every model folder at once (modules/paths.py).",
    "The same as an environment variable: SD_MODELSDIR=<the path above>.",
    "A folder set explicitly in SD.Next's System Paths settings (config.json: lora_dir, vae_dir,",
    "embeddings_dir, unet_dir, te_dir, control_dir, esrgan_models_path) still wins: attach stops on one",
    "(reset it in Settings > System Paths), and with --force that kind stays hidden (see 'synapse status').",
    "SD.Next also creates and downloads into folders under the models folder (Diffusers, huggingface,",
    "styles, wildcards, yolo, ...): set diffusers_dir and hfcache_dir to folders of your own first,",
    "or those downloads land in the view, which Synapse rebuilds.",
)


class SDNextAdapter(UIAdapter):
    """vladmandic's SD.Next, attached with ``--models-dir``.

    No file is changed: SD.Next ships no webui-user.sh (webui.sh only sources one if
    the user made it) and its webui.bat reads none, so one flag or one environment
    variable, shown to the user, is both the simplest and the least invasive attach.
    """

    name: ClassVar[str] = "sdnext"
    display_name: ClassVar[str] = "SD.Next"
    layout: ClassVar[Mapping[AssetKind, KindFolder | Unsupported]] = LAYOUT

    def looks_like_install(self, path: Path) -> bool:
        """launch.py with modules/ and SD.Next's own installer.py (A1111 and Forge have none)."""
        return all(
            (
                (path / "launch.py").is_file(),
                (path / "modules").is_dir(),
                (path / "installer.py").is_file(),
            )
        )

    def flag_attach(self) -> FlagAttach:
        """One flag: the view's models folder becomes SD.Next's models folder."""
        target = FlagTarget(MODELS_FLAG, "models", adds=False)
        return FlagAttach(self.name, self.display_name, "COMMANDLINE_ARGS", (target,), (), NOTES)

    def plan_attach(self, install: Path, view: Path) -> AttachPlan:
        """Instructions only: the flag (or environment variable) to start SD.Next with."""
        return self.flag_attach().plan_attach(install, view)

    def plan_detach(self, install: Path, view: Path) -> AttachPlan:
        """Instructions only: start SD.Next without the flag again."""
        return self.flag_attach().plan_detach(install, view)

    def attach_conflicts(self, install: Path, view: Path) -> list[str]:
        """Models in the install's own models folder (``--models-dir`` replaces all of it) and
        folders set explicitly in config.json, which SD.Next lists instead of the view's."""
        settings = read_json_object(install / SETTINGS_FILE)
        root = _resolve(install, settings.get("models_dir", "models"))
        found = []
        count = sum(count_model_files(root / _under_models(e.folder), e.extensions) for e in _kind_folders())
        count += count_model_folders(root / "Diffusers", ("model_index.json", "snapshots"))
        if count:
            files = "file" if count == 1 else "files"
            found.append(f"{count} model {files} in {root} (which {MODELS_FLAG} replaces)")
        for key, label, kind_folder in explicit_folders(install, view, settings):
            count = count_model_files(_resolve(install, settings[key]), kind_folder.extensions)
            there = f", {count} model files there" if count else ""
            found.append(
                f"config.json sets {key} to {settings[key]}{there} (SD.Next lists {label} from it, not from the view)"
            )
        return found

    def describe_install(self, install: Path) -> InstallInfo:
        """SD.Next follows a switch after Refresh; explicit config.json folders hide their kind."""
        settings = read_json_object(install / SETTINGS_FILE)
        hidden = {kind for key, _, _folder in explicit_folders(install, None, settings) for kind in KINDS_OF[key]}
        lists = {
            kind: Unsupported(f"config.json sets {_KEY_OF[kind]}: SD.Next lists that folder, not the view's")
            if kind in hidden
            else entry
            for kind, entry in self.layout.items()
        }
        return InstallInfo(self.display_name, None, Liveness.REFRESH, FOLLOWS, lists)

    def sidecars(self, request: SidecarRequest) -> list[Sidecar]:
        """``<stem>.preview.<ext>`` (ui_extra_networks.py find_preview_file) for the networks pages,
        and for checkpoints, LoRAs and embeddings the ``<stem>.json`` info SD.Next reads as a Civitai
        model (ui_extra_networks.py find_info, find_version; ui_extra_networks_lora.py get_tags).
        No json beside a VAE: sd_vae.refresh_vae_list takes a VAE folder's json for a diffusers VAE."""
        found = [preview_sidecar(request, PREVIEW_TYPES)] if request.kind in PREVIEW_KINDS else []
        known = request.trigger_words or request.description or request.base_model or request.tags or request.creator
        if request.kind in INFO_KINDS and known:  # nothing to say: no json (SD.Next reads the file's own metadata)
            found.append(json_sidecar(f"{stem_of(request.expose)}.json", civitai_info(request)))
        return [sidecar for sidecar in found if sidecar is not None]

    def record_hashes(self, install: Path, view: Path, entries: Sequence[ViewHash]) -> int:
        """The "hashes" store of ``<install>/data/cache.json`` (modules/hashes.py, read at start-up
        by load_cache: a running SD.Next sees them after a restart, and may write its own over them),
        and the cached metadata of files whose bytes changed (data/metadata.json, keyed by path)."""
        records = cached_hashes(self, view, entries, HASH_TITLES, STALE)
        cache = install / "data" / "cache.json"
        moved = titles_with_new_bytes(cache, "hashes", records)
        changed = update_json_sections(cache, "hashes", records)
        paths = [str(view / f.folder / e.expose) for e in entries if (f := self.folder(e.kind)) and e.sha256 in moved]
        drop_json_keys(install / "data" / "metadata.json", paths)
        return changed


PREVIEW_TYPES = ("jpg", "jpeg", "png", "webp", "tiff", "jp2", "jxl")  # ui_extra_networks.py find_preview_file
PREVIEW_KINDS = frozenset(
    {AssetKind.CHECKPOINT, AssetKind.LORA, AssetKind.EMBEDDING, AssetKind.VAE, AssetKind.DIFFUSION_MODEL}
)
INFO_KINDS = frozenset({AssetKind.CHECKPOINT, AssetKind.LORA, AssetKind.EMBEDDING})
HASH_TITLES: Mapping[AssetKind, Title] = {
    # sd_checkpoint.py CheckpointInfo: f"checkpoint/{relname}", relative to ckpt_dir, without extension
    AssetKind.CHECKPOINT: lambda expose: f"checkpoint/{posixpath.splitext(expose)[0]}",
    # lora/network.py NetworkOnDisk: "lora/" + name; lora_load.py: the stem with "." made "_"
    AssetKind.LORA: lambda expose: f"lora/{stem_of(expose).replace('.', '_')}",
}
STALE: Mapping[AssetKind, tuple[str, ...]] = {AssetKind.LORA: ("hashes-addnet",)}


def civitai_info(request: SidecarRequest) -> dict[str, object]:
    """A Civitai model record with one version: what SD.Next's networks pages read from ``.json``."""
    version: dict[str, object] = {
        "trainedWords": list(request.trigger_words),
        "files": [{"name": posixpath.basename(request.expose), "hashes": {"SHA256": request.sha256.upper()}}],
    }
    if request.base_model:
        version["baseModel"] = request.base_model
    info: dict[str, object] = {"name": request.pack, "description": bounded(request.description) or ""}
    info["tags"] = list(request.tags)
    if request.creator:
        info["creator"] = {"username": request.creator}
    info["modelVersions"] = [version]
    return info


SETTINGS_FILE = "config.json"
FOLLOWS = (
    "lists follow after Refresh (modules/files_cache.py keys folders by abspath and mtime, so the"
    " 'active' path is re-read); hashes and metadata are cached by name (modules/hashes.py, data/metadata.json)"
)
FOLDER_KEYS: Mapping[str, tuple[str, tuple[AssetKind, ...]]] = {
    # System Paths options (modules/ui_definitions.py) whose folder SD.Next lists INSTEAD of the
    # default under models_path; ckpt_dir is not here: sd_checkpoint.list_models lists
    # models_path/Stable-diffusion as well as ckpt_dir.
    "lora_dir": ("LoRAs", (AssetKind.LORA,)),
    "vae_dir": ("VAEs", (AssetKind.VAE,)),
    "embeddings_dir": ("embeddings", (AssetKind.EMBEDDING,)),
    "unet_dir": ("UNets", (AssetKind.DIFFUSION_MODEL,)),
    "te_dir": ("text encoders", (AssetKind.TEXT_ENCODER,)),
    "control_dir": ("ControlNets", (AssetKind.CONTROLNET,)),
    "esrgan_models_path": ("ESRGAN upscalers", (AssetKind.UPSCALER,)),
    "diffusers_dir": ("Diffusers models", (AssetKind.DIFFUSERS,)),
    "yolo_dir": ("detection models", (AssetKind.DETECTION,)),
}
KINDS_OF = {key: kinds for key, (_, kinds) in FOLDER_KEYS.items()}
_KEY_OF = {kind: key for key, kinds in KINDS_OF.items() for kind in kinds}


def _kind_folders() -> list[KindFolder]:
    return [entry for entry in LAYOUT.values() if isinstance(entry, KindFolder)]


def _under_models(folder: str) -> str:
    """A layout folder (``models/Lora``) relative to the models root (``Lora``)."""
    return folder.partition("/")[2]


def _resolve(install: Path, value: object) -> Path:
    """A config.json path as modules/paths.py create_paths (fix_path) reads it: relative to the data dir."""
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else install / path


def explicit_folders(
    install: Path, view: Path | None, settings: Mapping[str, object]
) -> list[tuple[str, str, KindFolder]]:
    """The folder keys config.json sets to somewhere other than the view's own folder."""
    found = []
    for key, (label, kinds) in FOLDER_KEYS.items():
        value = settings.get(key)
        entry = LAYOUT[kinds[0]]
        if not isinstance(value, str) or not value or not isinstance(entry, KindFolder):
            continue
        if view is not None and os.path.abspath(_resolve(install, value)) == os.path.abspath(view / entry.folder):
            continue
        found.append((key, label, entry))
    return found
