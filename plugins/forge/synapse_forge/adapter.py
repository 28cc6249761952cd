"""The Forge adapter: command-line flags in webui-user.sh/.bat, for Forge and its forks.

The folders are in :mod:`synapse_forge.layout`, the forks (reForge, Forge Classic) in
:mod:`synapse_forge.variants`. Facts come from lllyasviel/stable-diffusion-webui-forge
at dfdcbab6, Panchovix/stable-diffusion-webui-reForge at 3b56b268 and
Haoming02/sd-webui-forge-classic at 1f95d717.
"""

from __future__ import annotations

from collections.abc import Mapping
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
from synapse_core.kinds import AssetKind
from synapse_core.ui import AttachPlan, InstallInfo, KindFolder, Liveness, UIAdapter, Unsupported
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
