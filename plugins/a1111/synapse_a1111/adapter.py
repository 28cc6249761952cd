"""The AUTOMATIC1111 adapter: its folders, and command-line flags in webui-user.sh/.bat.

Facts come from AUTOMATIC1111/stable-diffusion-webui at c8a5322d (just before
v1.8.0) and, for ControlNet, from the Mikubill/sd-webui-controlnet extension;
see each layout entry's ``source``. A1111 keys LoRAs, embeddings and
hypernetworks by their bare file name without extension and VAEs by their file
name with extension, so same-named files in different sub-folders collide.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

from synapse_core.attach_flags import (
    Dialect,
    ExtensionParser,
    FlagAttach,
    HiddenFolders,
    LaunchScript,
    attached_layout,
    bat_call_pattern,
    hidden_folder_warnings,
    not_defined_note,
    own_folders,
    preload_flags,
    resolves_paths,
    targets_from_layout,
)
from synapse_core.hash_caches import CachedHash, Title, cached_hashes, update_diskcache, update_json_sections
from synapse_core.kinds import AssetKind
from synapse_core.sidecar_files import bounded, json_sidecar, model_family, preview_sidecar, read_beside, stem_of
from synapse_core.ui import (
    AttachPlan,
    FoundMetadata,
    InstallInfo,
    KeyStyle,
    KindFolder,
    Liveness,
    ModelFolder,
    Sidecar,
    SidecarRequest,
    UIAdapter,
    Unsupported,
    ViewHash,
)

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
        frozenset({".pt", ".pth"}),  # no .safetensors: find_models(ext_filter=[".pt", ".pth"])
        KeyStyle.STEM,
        "modules/esrgan_model.py load_model (find_models); modules/upscaler.py; modules/cmd_args.py",
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
    AssetKind.MOTION_LORA: Unsupported(
        "AUTOMATIC1111 needs the sd-webui-animatediff extension for motion LoRAs; its folders are not mapped"
    ),
    AssetKind.DETECTION: Unsupported(
        "AUTOMATIC1111 has no detector folder; the ADetailer extension keeps its own models/adetailer (not mapped)"
    ),
    AssetKind.VAE_APPROX: Unsupported(
        "AUTOMATIC1111 downloads its preview decoders by fixed name into models/VAE-approx (modules/sd_vae_approx.py)"
    ),
    AssetKind.DIFFUSERS: Unsupported("AUTOMATIC1111 loads single-file checkpoints only (modules/sd_models.py)"),
    **{
        kind: Unsupported(
            f"AUTOMATIC1111 has no {kind.value.replace('_', ' ')} models (no folder or flag in modules/cmd_args.py)"
        )
        for kind in (
            AssetKind.STYLE_MODEL,
            AssetKind.GLIGEN,
            AssetKind.PHOTOMAKER,
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

ADDING_FLAGS = frozenset({"--ckpt-dir", "--vae-dir", "--esrgan-models-path", "--controlnet-dir"})
"""Flags whose folder is searched as well as the install's own (sd_models.list_models and
modelloader.load_models put --ckpt-dir / --*-models-path first; sd_vae.refresh_vae_list
globs models/VAE and --vae-dir; the extension adds --controlnet-dir). The other flags
replace the install's folder."""

SCRIPTS = (
    LaunchScript("webui-user.sh", Dialect.SH),  # webui.sh sources it before launching
    LaunchScript("webui-user.bat", Dialect.BAT, before=bat_call_pattern("webui.bat")),  # it ends by running webui.bat
)
PARSER = ExtensionParser(
    # modules/shared_cmd_options.py: cmd_args.parser, then script_loading.preload_extensions over the
    # enabled extensions (launch_utils.list_extensions) and every folder of extensions-builtin; then
    # parse_args, which stops at a flag nobody defined ("unrecognized arguments").
    parser_file="modules/cmd_args.py",
    builtin_dirs=("extensions-builtin",),
    extension_dirs=("extensions",),
    settings_file="config.json",
    disabled_key="disabled_extensions",
    disable_all_key="disable_all_extensions",
    disabling_flags=("--disable-extra-extensions", "--disable-all-extensions"),
)
CONTROLNET_FLAG = "--controlnet-dir"
HIDDEN_FILES = HiddenFolders(
    # modules/shared_options.py "list_hidden_files" (default on); when off, modules/util.py walk_files
    # skips every file whose folder path contains "/.": modelloader.load_models and Lora/networks.py use it.
    settings_file="config.json",
    option="list_hidden_files",
    label="Load models/files in hidden directories",
    kinds="checkpoints, LoRAs and upscalers",
    source="modules/util.py walk_files",
)

NOTES = (
    "A flag given twice counts once, the last time: the synapse block comes last, so it overrides",
    "the same flags set earlier in COMMANDLINE_ARGS. LyCORIS/LoCon files are exposed as LoRAs in models/Lora.",
)
EXTENSION_NOTE = (
    "{flag} is defined by the {extension} extension: if you disable or remove it, A1111 refuses to start on"
    " the flag; 'synapse doctor' reports that and 'synapse doctor --fix' takes the flag out."
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
        """The flags for this install: only those its own parser defines (modules/cmd_args.py and
        the preload.py of its builtin and enabled extensions), because A1111 refuses to start on
        a flag it does not know (modules/shared_cmd_options.py parse_args)."""
        every = targets_from_layout(self.layout.values(), ADDING_FLAGS)
        plain = FlagAttach(self.name, self.display_name, "COMMANDLINE_ARGS", every, SCRIPTS)
        defined = PARSER.defined_flags(install, plain.user_flags(install, PARSER.disabling_flags))
        targets = tuple(t for t in every if t.flag in defined)
        notes = list(NOTES)
        for target in every:
            if target.flag not in defined:
                notes.append(not_defined_note(self.layout, target.flag, PARSER.parser_file))
        extension = controlnet_extension(install)
        if CONTROLNET_FLAG in defined and extension is not None:
            notes.append(EXTENSION_NOTE.format(flag=CONTROLNET_FLAG, extension=extension))
        return FlagAttach(self.name, self.display_name, "COMMANDLINE_ARGS", targets, SCRIPTS, tuple(notes))

    def plan_attach(self, install: Path, view: Path) -> AttachPlan:
        """The flags, and the synapse block of webui-user.sh / webui-user.bat (those that exist)."""
        return self.flag_attach(install).plan_attach(install, view)

    def plan_detach(self, install: Path, view: Path) -> AttachPlan:
        """Remove the synapse block from webui-user.sh / webui-user.bat."""
        return self.flag_attach(install).plan_detach(install, view)

    def attach_conflicts(self, install: Path, view: Path) -> list[str]:
        """Models in the folders --lora-dir, --embeddings-dir and --hypernetwork-dir replace, and
        the user's own flags that the block would override."""
        return self.flag_attach(install).conflicts(install, own_folders(self.layout))

    def describe_install(self, install: Path) -> InstallInfo:
        """A1111; before PR #15035 (v1.8.0) the flags' paths were resolve()d at start-up."""
        flags = {t.flag for t in self.flag_attach(install).targets}
        lists = attached_layout(self.layout, flags)
        if resolves_paths(install / "modules" / "paths_internal.py", "normalized_filepath"):
            detail = (
                "modules/paths_internal.py normalized_filepath resolve()s the flags' paths at start-up, so a"
                " running A1111 keeps the profile it started with: restart it after use/back"
            )
            return InstallInfo(self.display_name, None, Liveness.RESTART, detail, lists)
        detail = (
            "lists follow after Refresh (the flags keep the 'active' path: paths_internal.normalized_filepath"
            " absolute()); a model already loaded stays until another is picked (sd_models.reload_model_weights)"
        )
        return InstallInfo(self.display_name, None, Liveness.REFRESH, detail, lists)

    def check_install(self, install: Path, view: Path) -> list[str]:
        """The view under a hidden folder while "Load models/files in hidden directories" is off."""
        return hidden_folder_warnings(install, view, self.display_name, HIDDEN_FILES)

    def model_folders(self, install: Path) -> list[ModelFolder]:
        """Its own model folders and the folders its launcher scripts' flags name (--lora-dir ...)."""
        return self.flag_attach(install).model_folders(install, self.layout, self.display_name)

    def read_metadata(self, model: Path, siblings: Collection[str]) -> FoundMetadata:
        """Previews, the ``<stem>.json`` user metadata (extra_networks.py get_user_metadata), Civitai
        Helper's ``<stem>.civitai.info``, StabilityMatrix's ``<stem>.cm-info.json``, and the
        ``<stem>.yaml`` config A1111 reads beside a checkpoint (sd_models.py find_checkpoint_config_near_filename)."""
        return read_beside(model, siblings, PREVIEW_TYPES, user_json=True, records=RECORDS, configs=(".yaml",))

    def sidecars(self, request: SidecarRequest) -> list[Sidecar]:
        """For the extra-networks cards: ``<stem>.preview.<ext>`` (ui_extra_networks.py find_preview)
        and the ``<stem>.json`` user metadata (extra_networks.py get_user_metadata)."""
        if request.kind not in CARD_KINDS:
            return []
        data = user_metadata(request, SD_VERSIONS)
        found = [preview_sidecar(request, PREVIEW_TYPES)]
        if data:  # a pack with nothing to say gets no json (the UI writes one when the user edits the card)
            found.append(json_sidecar(f"{stem_of(request.expose)}.json", data))
        return [sidecar for sidecar in found if sidecar is not None]

    def record_hashes(self, install: Path, view: Path, entries: Sequence[ViewHash]) -> int:
        """The "hashes" section of the install's cache (modules/hashes.py sha256_from_cache), by the
        titles A1111 looks files up by; cache.json before v1.9, the diskcache folder cache/ after."""
        return write_webui_hashes(install, cached_hashes(self, view, entries, HASH_TITLES, STALE))


CARD_KINDS = frozenset({AssetKind.CHECKPOINT, AssetKind.LORA, AssetKind.EMBEDDING, AssetKind.HYPERNETWORK})
PREVIEW_TYPES = ("png", "jpg", "jpeg", "webp", "gif")  # ui_extra_networks.py default_allowed_preview_extensions
SD_VERSIONS = {"sd1": "SD1", "sd2": "SD2", "sdxl": "SDXL"}  # extensions-builtin/Lora/network.py SdVersion
HASH_TITLES: Mapping[AssetKind, Title] = {
    # sd_models.py CheckpointInfo: f"checkpoint/{name}", name relative to --ckpt-dir, with its extension
    AssetKind.CHECKPOINT: lambda expose: f"checkpoint/{expose}",
    # Lora/network.py NetworkOnDisk: "lora/" + name, name = the bare stem (networks.py)
    AssetKind.LORA: lambda expose: f"lora/{stem_of(expose)}",
    # textual_inversion.py load_from_file: "textual_inversion/" + name (the stem)
    AssetKind.EMBEDDING: lambda expose: f"textual_inversion/{stem_of(expose)}",
    # hypernetwork.py: f'hypernet/{name}' (list_hypernetworks: the stem)
    AssetKind.HYPERNETWORK: lambda expose: f"hypernet/{stem_of(expose)}",
}
STALE: Mapping[AssetKind, tuple[str, ...]] = {
    # cached from the old bytes under the same title: Lora/network.py reads sshs_model_hash from
    # "safetensors-metadata" first, then "hashes-addnet" (kohya's hash of a .safetensors)
    AssetKind.CHECKPOINT: ("safetensors-metadata",),
    AssetKind.LORA: ("safetensors-metadata", "hashes-addnet"),
}


def user_metadata(request: SidecarRequest, sd_versions: Mapping[str, str]) -> dict[str, object]:
    """ui_extra_networks_user_metadata.py's keys, from the pack: for LoRAs also Lora/
    ui_edit_user_metadata.py save_lora_user_metadata's (activation text = trigger words)."""
    data: dict[str, object] = {}
    if request.description:
        data["description"] = bounded(request.description)
    if request.kind is AssetKind.LORA:
        version = sd_versions.get(model_family(request.base_model) or "")
        if version:
            data["sd version"] = version
        if request.trigger_words:
            data["activation text"] = ", ".join(request.trigger_words)
        if request.preferred_weight is not None:
            data["preferred weight"] = request.preferred_weight
    if request.notes:
        data["notes"] = bounded(request.notes)
    return data


def write_webui_hashes(install: Path, entries: Sequence[CachedHash]) -> int:
    """Into ``<install>/cache/`` when its modules/cache.py uses diskcache (A1111 v1.9+, Forge),
    else into ``<install>/cache.json`` (the JSON cache of earlier versions)."""
    if not entries:
        return 0
    if "diskcache" in _text_or_empty(install / "modules" / "cache.py"):
        return update_diskcache(install / "cache", "hashes", entries, {})
    return update_json_sections(install / "cache.json", "hashes", entries)


def controlnet_extension(install: Path) -> str | None:
    """The enabled extension folder whose preload.py defines --controlnet-dir, if any."""
    for folder in PARSER.enabled_extensions(install):
        if CONTROLNET_FLAG in preload_flags([folder]):
            return folder.name
    return None


def _text_or_empty(path: Path) -> str:
    """A file's text; an unreadable one (or a folder by that name) is like an empty one."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


RECORDS = (".civitai.info", ".cm-info.json")
"""Model-version records extensions and launchers save beside a model: Civitai Helper, StabilityMatrix."""
