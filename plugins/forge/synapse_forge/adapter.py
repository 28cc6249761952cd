"""The Forge adapter: command-line flags in webui-user.sh/.bat, for Forge and its forks.

The folders are in :mod:`synapse_forge.layout`, the forks (reForge, Forge Classic) in
:mod:`synapse_forge.variants`. Facts come from lllyasviel/stable-diffusion-webui-forge
at dfdcbab6, Panchovix/stable-diffusion-webui-reForge at 3b56b268 and
Haoming02/sd-webui-forge-classic at 1f95d717.
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
    targets_from_layout,
)
from synapse_core.hash_caches import CachedHash, Title, cached_hashes, update_diskcache, update_json_sections
from synapse_core.kinds import AssetKind
from synapse_core.sidecar_files import bounded, json_sidecar, model_family, preview_sidecar, read_beside, stem_of
from synapse_core.ui import (
    AttachPlan,
    FoundMetadata,
    InstallInfo,
    KindFolder,
    Liveness,
    ModelFolder,
    Sidecar,
    SidecarRequest,
    UIAdapter,
    Unsupported,
    ViewHash,
)
from synapse_forge.layout import LAYOUT
from synapse_forge.variants import VARIANTS, detect_variant, forge_version

ADDING_FLAGS = frozenset({"--ckpt-dir", "--vae-dir", "--text-encoder-dir", "--esrgan-models-path"})
"""Flags whose folder is searched as well as the install's own (sd_models.list_models and
modelloader.load_models put --ckpt-dir / --*-models-path first; sd_vae.refresh_vae_list and
main_entry.refresh_models list models/VAE and models/text_encoder plus --vae-dir and
--text-encoder-dir). The other flags replace the install's folder (modules_forge/shared.py
takes --controlnet-dir instead of models/ControlNet)."""

SCRIPTS = (
    LaunchScript("webui-user.sh", Dialect.SH),  # webui.sh sources it before launching
    LaunchScript("webui-user.bat", Dialect.BAT, before=bat_call_pattern("webui.bat")),  # it ends by running webui.bat
)
PARSER = ExtensionParser(
    # As in A1111 (modules/shared_cmd_options.py): cmd_args.parser (Forge takes it from backend/args.py,
    # reForge and Forge Classic from ldm_patched/modules/args_parser.py), the preload() of the enabled
    # extensions and of every extensions-builtin folder, then parse_args.
    parser_file="modules/cmd_args.py",
    builtin_dirs=("extensions-builtin",),
    extension_dirs=("extensions",),
    settings_file="config.json",
    disabled_key="disabled_extensions",
    disable_all_key="disable_all_extensions",
    disabling_flags=("--disable-extra-extensions", "--disable-all-extensions"),
)
HIDDEN_FILES = HiddenFolders(
    # modules/shared_options.py "list_hidden_files"; modules/util.py walk_files skips "/." paths when off
    settings_file="config.json",
    option="list_hidden_files",
    label="Load models/files in hidden directories",
    kinds="checkpoints, LoRAs and upscalers",
    source="modules/util.py walk_files",
)

NOTES = (
    "A flag given twice counts once, the last time: the synapse block comes last, so it overrides",
    "the same flags set earlier in COMMANDLINE_ARGS (and --forge-ref-a1111-home skips flags already given).",
    "Forge does not scan models/LyCORIS: LyCORIS/LoCon files are exposed as LoRAs in models/Lora.",
    "Forge lists VAEs and text encoders together by file name: a VAE and a text encoder with the",
    "same file name conflict, and only the winner is linked.",
)
FOLLOWS = (
    "lists follow after Refresh (modules/paths_internal.py normalized_filepath keeps the 'active' path);"
    " a model already loaded stays in memory until another is picked"
)


class ForgeAdapter(UIAdapter):
    """lllyasviel's stable-diffusion-webui-forge and its forks reForge and Forge Classic,
    attached through command-line flags: each install gets only the flags its parser defines."""

    name: ClassVar[str] = "forge"
    display_name: ClassVar[str] = "Forge"
    layout: ClassVar[Mapping[AssetKind, KindFolder | Unsupported]] = LAYOUT
    variants: ClassVar[tuple[str, ...]] = tuple(v.name for v in VARIANTS if v.name != "Forge")

    def looks_like_install(self, path: Path) -> bool:
        """webui.py or launch.py with modules/ and modules_forge/ (Forge, reForge, Forge Classic)."""
        has_entry = (path / "webui.py").is_file() or (path / "launch.py").is_file()
        return has_entry and (path / "modules").is_dir() and (path / "modules_forge").is_dir()

    def flag_attach(self, install: Path) -> FlagAttach:
        """The flags of Forge's layout that this install's parser defines."""
        every = targets_from_layout(self.layout.values(), ADDING_FLAGS)
        plain = FlagAttach(self.name, self.display_name, "COMMANDLINE_ARGS", every, SCRIPTS)
        defined = PARSER.defined_flags(install, plain.user_flags(install, PARSER.disabling_flags))
        variant = detect_variant(install)
        left_out = [not_defined_note(self.layout, t.flag, PARSER.parser_file) for t in every if t.flag not in defined]
        notes = [*NOTES, *left_out]
        if variant.name != self.display_name:
            notes.insert(0, f"This is {variant.name}: Synapse passes only the flags its parser defines.")
        targets = tuple(t for t in every if t.flag in defined)
        return FlagAttach(self.name, variant.name, "COMMANDLINE_ARGS", targets, SCRIPTS, tuple(notes))

    def plan_attach(self, install: Path, view: Path) -> AttachPlan:
        """The flags, and the synapse block of webui-user.sh / webui-user.bat (those that exist)."""
        return self.flag_attach(install).plan_attach(install, view)

    def plan_detach(self, install: Path, view: Path) -> AttachPlan:
        """Remove the synapse block from webui-user.sh / webui-user.bat."""
        return self.flag_attach(install).plan_detach(install, view)

    def attach_conflicts(self, install: Path, view: Path) -> list[str]:
        """Models in the folders --lora-dir, --embeddings-dir, --hypernetwork-dir and --controlnet-dir
        replace (the variant's own folders), and the user's own flags the block would override."""
        return self.flag_attach(install).conflicts(install, own_folders(detect_variant(install).layout))

    def describe_install(self, install: Path) -> InstallInfo:
        """Forge, reForge or Forge Classic, with what that variant lists through the flags it got."""
        variant = detect_variant(install)
        flags = {t.flag for t in self.flag_attach(install).targets}
        return InstallInfo(
            variant.name, forge_version(install), Liveness.REFRESH, FOLLOWS, attached_layout(variant.layout, flags)
        )

    def check_install(self, install: Path, view: Path) -> list[str]:
        """The view under a hidden folder while "Load models/files in hidden directories" is off."""
        return hidden_folder_warnings(install, view, detect_variant(install).name, HIDDEN_FILES)

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
        """The "hashes" section of the install's cache (modules/hashes.py sha256_from_cache; Forge
        Classic wants the mtime equal, which the view's own mtime is), by Forge's titles."""
        return write_webui_hashes(install, cached_hashes(self, view, entries, HASH_TITLES, STALE))


CARD_KINDS = frozenset(
    {AssetKind.CHECKPOINT, AssetKind.DIFFUSION_MODEL, AssetKind.LORA, AssetKind.EMBEDDING, AssetKind.HYPERNETWORK}
)
PREVIEW_TYPES = ("png", "jpg", "jpeg", "webp", "gif")  # ui_extra_networks.py default_allowed_preview_extensions
SD_VERSIONS = {"sd1": "SD1", "sd2": "SD2", "sdxl": "SDXL", "flux": "Flux"}  # sd_forge_lora/network.py SdVersion
HASH_TITLES: Mapping[AssetKind, Title] = {
    # sd_models.py CheckpointInfo: f"checkpoint/{name}", name relative to --ckpt-dir, with its extension
    AssetKind.CHECKPOINT: lambda expose: f"checkpoint/{expose}",
    # UNet-only files are listed as checkpoints (sd_models.list_models), hashed the same way
    AssetKind.DIFFUSION_MODEL: lambda expose: f"checkpoint/{expose}",
    # sd_forge_lora/network.py NetworkOnDisk: "lora/" + name, name = the bare stem (networks.py)
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
    AssetKind.DIFFUSION_MODEL: ("safetensors-metadata",),
    AssetKind.LORA: ("safetensors-metadata", "hashes-addnet"),
}


def user_metadata(request: SidecarRequest, sd_versions: Mapping[str, str]) -> dict[str, object]:
    """ui_extra_networks_user_metadata.py's keys, from the pack: for LoRAs also sd_forge_lora/
    ui_edit_user_metadata.py save_lora_user_metadata's (activation text = trigger words). The
    format A1111 defines; synapse-a1111 writes the same (separate distributions)."""
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
    """Into ``<install>/cache/`` when its modules/cache.py uses diskcache (Forge, reForge, Forge
    Classic), else into ``<install>/cache.json`` (the JSON cache of early Forge, as in A1111)."""
    if not entries:
        return 0
    if "diskcache" in _text(install / "modules" / "cache.py"):
        return update_diskcache(install / "cache", "hashes", entries, {})
    return update_json_sections(install / "cache.json", "hashes", entries)


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


RECORDS = (".civitai.info", ".cm-info.json")
"""Model-version records extensions and launchers save beside a model: Civitai Helper, StabilityMatrix."""
