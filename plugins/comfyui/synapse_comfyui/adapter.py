"""The ComfyUI adapter: folder_paths keys, and one owned section of extra_model_paths.yaml.

Facts come from Comfy-Org/ComfyUI at a125cd84 (v0.3.64); see the ``source`` of
each layout entry. ComfyUI names models by their path relative to the search
root, follows symlinks (``os.walk(followlinks=True)``) and filters by
``supported_pt_extensions`` (``folder_paths.py``). It reads
``<install>/extra_model_paths.yaml`` at start-up and any file given with
``--extra-model-paths-config`` (``main.py`` ``apply_custom_paths``,
``utils/extra_config.py`` ``load_extra_path_config``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs

from synapse_core.attach_flags import insert_region, lines_of, newline_of, read_text, remove_region, replace_region
from synapse_core.errors import InvalidInput
from synapse_core.kinds import AssetKind
from synapse_core.sidecar_files import preview_sidecar, read_beside
from synapse_core.ui import (
    AttachPlan,
    FileChange,
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
)

SUPPORTED_PT_EXTENSIONS = frozenset({".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"})
"""``folder_paths.supported_pt_extensions``, used by every key we map."""

CONFIG_NAME = "extra_model_paths.yaml"
SECTION = "synapse"
NOTICE = "# managed by Synapse Store: 'synapse attach' rewrites and 'synapse detach' removes this section"
INDENT = "    "

_FP = "folder_paths.py"
_ADE = "Kosinkadink/ComfyUI-AnimateDiff-Evolved animatediff/utils_model.py (custom node)"
_GGUF = frozenset({".gguf"})
"""city96/ComfyUI-GGUF nodes.py: unet_gguf and clip_gguf share the diffusion_models and
text_encoders folder lists, filtered to .gguf (custom node)."""


@attrs.frozen
class Row:
    """One folder_paths key: the kind it holds, its folder in the view, where the fact comes from."""

    kind: AssetKind
    key: str
    folder: str
    source: str = _FP
    extensions: frozenset[str] = SUPPORTED_PT_EXTENSIONS
    folders: bool = False
    node: str | None = None
    """The custom node that registers the key (and reads it), if not ComfyUI itself."""


ROWS: tuple[Row, ...] = (
    Row(AssetKind.CHECKPOINT, "checkpoints", "models/checkpoints"),
    Row(AssetKind.LORA, "loras", "models/loras"),
    Row(AssetKind.EMBEDDING, "embeddings", "models/embeddings", f"{_FP}; comfy/sd1_clip.py load_embed"),
    Row(AssetKind.VAE, "vae", "models/vae"),
    Row(AssetKind.CONTROLNET, "controlnet", "models/controlnet"),
    Row(AssetKind.UPSCALER, "upscale_models", "models/upscale_models"),
    Row(AssetKind.HYPERNETWORK, "hypernetworks", "models/hypernetworks"),
    Row(
        AssetKind.TEXT_ENCODER,
        "text_encoders",
        "models/text_encoders",
        f"{_FP}; .gguf: city96/ComfyUI-GGUF nodes.py clip_gguf",
        SUPPORTED_PT_EXTENSIONS | _GGUF,
    ),
    Row(
        AssetKind.DIFFUSION_MODEL,
        "diffusion_models",
        "models/diffusion_models",
        f"{_FP}; .gguf: city96/ComfyUI-GGUF nodes.py unet_gguf",
        SUPPORTED_PT_EXTENSIONS | _GGUF,
    ),
    Row(AssetKind.CLIP_VISION, "clip_vision", "models/clip_vision"),
    Row(
        AssetKind.IPADAPTER,
        "ipadapter",
        "models/ipadapter",
        "cubiq/ComfyUI_IPAdapter_plus IPAdapterPlus.py (custom node)",
        node="ipadapter_plus",
    ),
    Row(AssetKind.MOTION_MODULE, "animatediff_models", "models/animatediff_models", _ADE, node="animatediff-evolved"),
    Row(
        AssetKind.MOTION_LORA,
        "animatediff_motion_lora",
        "models/animatediff_motion_lora",
        _ADE,
        node="animatediff-evolved",
    ),
    Row(AssetKind.STYLE_MODEL, "style_models", "models/style_models"),
    Row(AssetKind.GLIGEN, "gligen", "models/gligen"),
    Row(AssetKind.PHOTOMAKER, "photomaker", "models/photomaker"),
    Row(AssetKind.VAE_APPROX, "vae_approx", "models/vae_approx"),
    Row(AssetKind.MODEL_PATCH, "model_patches", "models/model_patches"),
    Row(AssetKind.AUDIO_ENCODER, "audio_encoders", "models/audio_encoders"),
    Row(AssetKind.LATENT_UPSCALER, "latent_upscale_models", "models/latent_upscale_models"),
    # folder_paths.py gives classifiers the extension set {""}: only files without an extension
    Row(AssetKind.CLASSIFIER, "classifiers", "models/classifiers", extensions=frozenset({""})),
    Row(AssetKind.DETECTION, "detection", "models/detection"),
    Row(AssetKind.BACKGROUND_REMOVAL, "background_removal", "models/background_removal"),
    Row(AssetKind.FRAME_INTERPOLATION, "frame_interpolation", "models/frame_interpolation"),
    Row(AssetKind.GEOMETRY_ESTIMATION, "geometry_estimation", "models/geometry_estimation"),
    Row(AssetKind.OPTICAL_FLOW, "optical_flow", "models/optical_flow"),
    # extensions ["folder"]: nodes.py DiffusersLoader walks it (followlinks) and lists every folder
    # holding model_index.json, by its path relative to the root
    Row(
        AssetKind.DIFFUSERS,
        "diffusers",
        "models/diffusers",
        f"{_FP}; nodes.py DiffusersLoader",
        frozenset(),
        folders=True,
    ),
)


def _key_style(kind: AssetKind) -> KeyStyle:
    # A prompt's "embedding:x" is looked up in every sub-folder of the embedding roots,
    # collected into a set (comfy/sd1_clip.py expand_directory_list), so two embeddings
    # with the same stem collide and the winner is arbitrary. Every other key lists
    # and loads files by their path relative to the root (folder_paths.py).
    return KeyStyle.STEM if kind is AssetKind.EMBEDDING else KeyStyle.RELATIVE_PATH


def _entry(row: Row) -> KindFolder:
    marker = "model_index.json" if row.folders else None
    return KindFolder(
        row.folder, row.extensions, _key_style(row.kind), row.source, row.key, folders=row.folders, marker=marker
    )


def _layout() -> dict[AssetKind, KindFolder | Unsupported]:
    layout: dict[AssetKind, KindFolder | Unsupported] = {row.kind: _entry(row) for row in ROWS}
    layout[AssetKind.OTHER] = Unsupported("ComfyUI has no catch-all model folder; each folder_paths key holds one kind")
    return layout


class ComfyUIAdapter(UIAdapter):
    """ComfyUI: a view laid out like ComfyUI's root, attached through extra_model_paths.yaml."""

    name: ClassVar[str] = "comfyui"
    display_name: ClassVar[str] = "ComfyUI"
    layout: ClassVar[Mapping[AssetKind, KindFolder | Unsupported]] = _layout()

    def looks_like_install(self, path: Path) -> bool:
        """A ComfyUI checkout has main.py next to folder_paths.py or the comfy package."""
        return (path / "main.py").is_file() and ((path / "folder_paths.py").is_file() or (path / "comfy").is_dir())

    def section_values(self, view: Path) -> dict[str, str]:
        """The section as ComfyUI's loader reads it: base_path, then one key per supported kind."""
        values = {"base_path": str(view)}
        for entry in self.layout.values():
            if isinstance(entry, KindFolder) and entry.attach_key:
                current = values.get(entry.attach_key)
                values[entry.attach_key] = entry.folder if current is None else f"{current}\n{entry.folder}"
        return values

    def section_text(self, view: Path, newline: str = "\n") -> str:
        """The ``synapse:`` section as YAML text, without a final line break."""
        lines = [f"{SECTION}:", INDENT + NOTICE]
        lines += [line for key, value in self.section_values(view).items() for line in _yaml_entry(key, value)]
        return newline.join(lines)

    def plan_attach(self, install: Path, view: Path) -> AttachPlan:
        """Set the ``synapse`` section of extra_model_paths.yaml (create the file if needed)."""
        path = install / CONFIG_NAME
        text = read_text(path)
        before = _load(path, text or "")
        base = _drop_empty_mapping(text or "", before)
        new = _set_section(base, self.section_text(view, newline_of(text or "")), path, before)
        _check_result(path, before, new, self.section_values(view))
        verb = "add" if text is None else "set"
        changes = () if new == text else (FileChange(path, new, f"{verb} the '{SECTION}' section"),)
        return AttachPlan(self.name, install, view, self._attach_instructions(path, view), changes)

    def plan_detach(self, install: Path, view: Path) -> AttachPlan:
        """Remove the ``synapse`` section; every other byte of the file stays."""
        path = install / CONFIG_NAME
        text = read_text(path)
        if text is None:
            return AttachPlan(self.name, install, view, f"{path} does not exist; nothing to detach.")
        before = _load(path, text)
        span = _find_section(text, path, before)
        if span is None:
            return AttachPlan(self.name, install, view, f"{path} has no '{SECTION}' section; nothing to detach.")
        new, note = _keep_loadable(remove_region(text, *span))
        _check_result(path, before, new, None)
        change = FileChange(path, new, f"removed the '{SECTION}' section{note}")
        info = f"Removes the '{SECTION}' section from {path}{note}; the rest of the file stays as it is."
        return AttachPlan(self.name, install, view, info, (change,))

    def describe_install(self, install: Path) -> InstallInfo:
        """What this ComfyUI lists: the keys its folder_paths.py defines, the keys of the custom
        nodes it has (IPAdapter_plus, AnimateDiff-Evolved), .gguf only with ComfyUI-GGUF."""
        keys = set(_KEY.findall(_text(install / "folder_paths.py")))
        nodes = _custom_nodes(install)
        lists: dict[AssetKind, KindFolder | Unsupported] = dict(self.layout)
        for row in ROWS:
            if row.node is not None and not any(row.node in node for node in nodes):
                lists[row.kind] = Unsupported(f"needs the custom node that reads '{row.key}' ({row.source})")
            elif row.node is None and keys and row.key not in keys:
                lists[row.kind] = Unsupported(
                    f"this ComfyUI's folder_paths.py has no '{row.key}' key (a newer one has)"
                )
            elif row.extensions >= _GGUF and not any("gguf" in node for node in nodes):
                entry = _entry(row)
                lists[row.kind] = attrs.evolve(entry, extensions=entry.extensions - _GGUF)
        return InstallInfo(self.display_name, None, Liveness.REFRESH, FOLLOWS, lists)

    def model_folders(self, install: Path) -> list[ModelFolder]:
        """Its models/ folders (the legacy models/unet and models/clip too: folder_paths.py maps them
        to diffusion_models and text_encoders) and every folder the other sections of
        extra_model_paths.yaml add (utils/extra_config.py load_extra_path_config)."""
        found = [
            ModelFolder(row.kind, install / row.folder, f"ComfyUI's {row.folder} folder ({row.source})")
            for row in ROWS
            if not row.folders and (install / row.folder).is_dir()
        ]
        for folder, kind in LEGACY_FOLDERS.items():
            if (install / folder).is_dir():
                found.append(ModelFolder(kind, install / folder, f"ComfyUI's {folder} folder ({_FP}: legacy name)"))
        path = install / CONFIG_NAME
        text = read_text(path)
        sections = _load(path, text) if text else {}
        for name, section in sections.items():
            if name == SECTION or not isinstance(section, dict):
                continue
            for key, kind, where in _section_folders(path, section):
                if where.is_dir():
                    found.append(ModelFolder(kind, where, f"'{key}' of the '{name}' section of {CONFIG_NAME}"))
        return found

    def read_metadata(self, model: Path, siblings: Collection[str]) -> FoundMetadata:
        """Previews (app/model_manager.py get_model_previews) and StabilityMatrix's ``<stem>.cm-info.json``."""
        return read_beside(model, siblings, PREVIEW_TYPES, records=(".cm-info.json",))

    def sidecars(self, request: SidecarRequest) -> list[Sidecar]:
        """``<stem>.preview.<ext>`` for the model library (app/model_manager.py get_model_previews:
        ``<base>.<image>`` or ``<base>.preview.<image>``), except in custom nodes' folders: a key a
        node has not registered yet lists every file (folder_paths.py add_model_folder_path)."""
        if request.kind in _NODE_KINDS or request.kind is AssetKind.DIFFUSERS:
            return []
        preview = preview_sidecar(request, PREVIEW_TYPES)
        return [preview] if preview is not None else []

    def _attach_instructions(self, path: Path, view: Path) -> str:
        section = self.section_text(view)
        return "\n".join(
            [
                f"ComfyUI reads {path} at start-up. Synapse owns one section of it, '{SECTION}',",
                "and leaves every other line as it is:",
                "",
                section,
                "",
                "Alternative that changes nothing inside the install: save exactly the text above as a",
                "file of its own (base_path is absolute, so any location works) and start ComfyUI with",
                "  --extra-model-paths-config <that file>",
                "Restart ComfyUI after attaching.",
            ]
        )


PREVIEW_TYPES = ("png", "jpg", "jpeg", "webp", "gif")  # images by mimetype (filter_files_content_types)
_NODE_KINDS = frozenset(row.kind for row in ROWS if row.node is not None)
FOLLOWS = (
    "lists follow after Refresh (press R): folder_paths.py get_filename_list drops its cache when a"
    " folder's mtime changes; a model already loaded under the same name is reused (nodes.py LoraLoader"
    " keeps loaded_lora by path, outputs are cached by input): restart ComfyUI to load a switched file"
)
_KEY = re.compile(r"""folder_names_and_paths\[\s*["'](\w+)["']\s*\]\s*=""")


def _custom_nodes(install: Path) -> list[str]:
    """The custom node folders, lower-cased (ComfyUI-Manager installs them under varied names)."""
    try:
        return [p.name.lower() for p in (install / "custom_nodes").iterdir() if p.is_dir()]
    except OSError:
        return []


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _yaml_entry(key: str, value: str) -> list[str]:
    """One ``key: value`` of the section: a string, never a list (the loader splits on newlines)."""
    if "\n" in value:
        return [f"{INDENT}{key}: |-", *(INDENT * 2 + part for part in value.split("\n"))]
    # A JSON string is a valid YAML double-quoted scalar: safe for any path.
    return [f"{INDENT}{key}: {json.dumps(value, ensure_ascii=False)}"]


def _load(path: Path, text: str) -> dict[str, Any]:
    """The parsed file; refuse anything ComfyUI's loader could not walk."""
    import yaml  # only attach needs it; every command loads this plugin

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InvalidInput(f"{path} is not valid YAML ({first}); fix or move it; nothing was changed") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInput(f"{path} is not a mapping of sections; fix or move it; nothing was changed")
    return data


def _parses_to(text: str) -> object:
    """What an edited text parses to; a text that does not parse gives a value no check accepts."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return _UNPARSABLE


_UNPARSABLE = object()


_HEADER = re.compile(rf"^{SECTION}\s*:\s*(#.*)?$")


def _find_section(text: str, path: Path, parsed: Mapping[str, Any]) -> tuple[int, int] | None:
    """The span of our section: its header line and the indented lines under it."""
    lines = lines_of(text)
    headers = [i for i, line in enumerate(lines) if _HEADER.match(line.text)]
    if len(headers) > 1 or (not headers and SECTION in parsed):
        raise InvalidInput(
            f"{path} has a '{SECTION}' section Synapse cannot edit safely (written by hand?);"
            " fix or move it; nothing was changed"
        )
    if not headers:
        return None
    last = headers[0]
    for i in range(last + 1, len(lines)):
        line = lines[i].text
        if line.strip() and not line[0].isspace():
            break
        if line.strip():
            last = i
    return lines[headers[0]].start, lines[last].end


def _set_section(text: str, section: str, path: Path, parsed: Mapping[str, Any]) -> str:
    span = _find_section(text, path, parsed)
    if span is None:
        return insert_region(text, section, None, newline_of(text))
    return replace_region(text, span[0], span[1], section)


def _drop_empty_mapping(text: str, parsed: Mapping[str, Any]) -> str:
    """The ``{}`` line :func:`_keep_loadable` leaves in a file that would otherwise parse to
    nothing goes when a section comes back (a mapping cannot follow a flow mapping)."""
    if parsed:
        return text
    lines = [line for line in lines_of(text) if line.text.strip() == "{}"]
    return remove_region(text, lines[0].start, lines[0].end) if len(lines) == 1 else text


def _keep_loadable(text: str) -> tuple[str, str]:
    """ComfyUI fails on a file that parses to nothing (``for c in None``), so a file left
    empty, or with comments only, gets an empty mapping ``{}``."""
    if _parses_to(text) is not None:
        return text, ""
    return insert_region(text, "{}", None, newline_of(text)), " (left '{}' so that ComfyUI still loads the file)"


def _check_result(path: Path, before: Mapping[str, Any], text: str, ours: Mapping[str, str] | None) -> None:
    """The edited text must parse to the other sections unchanged, plus ours (or none)."""
    after = _parses_to(text)
    after = {} if after is None else after
    expected = {key: value for key, value in before.items() if key != SECTION}
    if ours is not None:
        expected[SECTION] = dict(ours)
    if after != expected:
        problem = "cannot be edited without changing other sections"
        raise InvalidInput(f"{path} {problem}; fix or move it; nothing was changed")


LEGACY_FOLDERS = {"models/unet": AssetKind.DIFFUSION_MODEL, "models/clip": AssetKind.TEXT_ENCODER}
_KINDS_BY_KEY = {row.key: row.kind for row in ROWS if not row.folders} | {
    "unet": AssetKind.DIFFUSION_MODEL,
    "clip": AssetKind.TEXT_ENCODER,
}


def _section_folders(config: Path, section: Mapping[str, Any]) -> list[tuple[str, AssetKind, Path]]:
    """The model folders one section of extra_model_paths.yaml adds, as load_extra_path_config reads
    them: base_path (vars and ~ expanded, relative to the file's folder), each key's value split on
    line breaks, each part joined to base_path."""
    import os

    base = section.get("base_path")
    base_path = None
    if isinstance(base, str) and base.strip():
        base_path = Path(os.path.expanduser(os.path.expandvars(base.strip())))
        if not base_path.is_absolute():
            base_path = config.parent / base_path
    found = []
    for key, value in section.items():
        kind = _KINDS_BY_KEY.get(str(key))
        if kind is None or not isinstance(value, str):
            continue
        for part in value.split("\n"):
            part = part.strip()
            if not part:
                continue
            where = Path(os.path.expanduser(os.path.expandvars(part)))
            if base_path is not None:
                where = base_path / where
            elif not where.is_absolute():
                where = config.parent / where
            found.append((str(key), kind, where))
    return found
