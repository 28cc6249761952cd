"""Helpers for UI adapters' sidecars: the files a UI reads beside a model (a preview image,
a metadata json). Generic: each adapter chooses names, image types and json content."""

from __future__ import annotations

import json
import posixpath
import stat
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from synapse_core.ui import FoundMetadata, Sidecar, SidecarRequest

MAX_JSON_TEXT = 20_000
"""Longest description or notes put in a json sidecar (pack descriptions can be long HTML)."""


def stem_of(expose: str) -> str:
    """The entry's file name without its last extension: ``styles/ink.safetensors`` -> ``ink``."""
    return posixpath.splitext(posixpath.basename(expose))[0]


def preview_sidecar(
    request: SidecarRequest, extensions: Iterable[str], pattern: str = "{stem}.preview.{ext}"
) -> Sidecar | None:
    """The pack's first preview whose type the UI shows (``extensions``: lower-case, no dot),
    named after the entry (``x.preview.png``); None if the pack has none of those."""
    allowed = {ext.lower() for ext in extensions}
    for path in request.previews:
        ext = path.suffix.lower().lstrip(".")
        if ext in allowed and path.is_file():
            return Sidecar(f"{stem_of(request.expose)}.preview.{ext}", source=path)
    return None


def json_sidecar(name: str, data: Mapping[str, object]) -> Sidecar:
    """A json file (indented like the UIs write theirs, unicode kept)."""
    return Sidecar(name, content=(json.dumps(data, indent=4, ensure_ascii=False) + "\n").encode())


def bounded(text: str | None) -> str | None:
    """``text`` cut to :data:`MAX_JSON_TEXT` characters (None stays None)."""
    return None if text is None else text[:MAX_JSON_TEXT]


_FAMILIES = (
    # (what a base model's name starts with, lower-cased), the family: sources name base models
    # freely ("SD 1.5", "SDXL 1.0", "Pony", "Illustrious", "Flux.1 D"); UIs know a few families
    (("sd 1", "sd1"), "sd1"),
    (("sd 2", "sd2"), "sd2"),
    (("sdxl", "pony", "illustrious", "noobai"), "sdxl"),
    (("flux",), "flux"),
)


def model_family(base_model: str | None) -> str | None:
    """The architecture family of a base model name (sd1, sd2, sdxl, flux), or None."""
    name = (base_model or "").strip().lower()
    return next((family for starts, family in _FAMILIES if name.startswith(starts)), None)


# -- reading what UIs and their extensions keep beside a model (synapse adopt) -------------------

MAX_SIDECAR_BYTES = 1024 * 1024
"""A metadata file larger than this is not read (metadata is small; anything bigger is not ours to parse)."""


def found_previews(model: Path, siblings: Collection[str], extensions: Iterable[str]) -> tuple[Path, ...]:
    """``<stem>.preview.<ext>`` and ``<stem>.<ext>`` image files beside ``model`` (regular files only;
    ``siblings``: the names in its folder)."""
    stem = model.name.rsplit(".", 1)[0]
    found = []
    for pattern in ("{stem}.preview.{ext}", "{stem}.{ext}"):
        for ext in extensions:
            name = pattern.format(stem=stem, ext=ext)
            if name in siblings and name != model.name and _regular(model.with_name(name)):
                found.append(model.with_name(name))
    return tuple(found)


def read_json_file(path: Path) -> dict[str, Any] | None:
    """A small JSON object file, or None (missing, too big, not an object, not JSON)."""
    if not _regular(path):
        return None
    try:
        if path.stat().st_size > MAX_SIDECAR_BYTES:
            return None
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _words(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return ()
    return tuple(w.strip() for w in value if isinstance(w, str) and w.strip())


def user_metadata_fields(data: Mapping[str, object]) -> dict[str, Any]:
    """The fields of an extra-networks user-metadata json (``<stem>.json``: "activation text",
    "preferred weight", "notes", "description", "sd version") as FoundMetadata fields."""
    found: dict[str, Any] = {}
    words = _words(data.get("activation text"))
    if words:
        found["trigger_words"] = words
    weight = data.get("preferred weight")
    if isinstance(weight, int | float) and not isinstance(weight, bool) and weight:
        found["preferred_weight"] = float(weight)
    for key, field in (("notes", "notes"), ("description", "description"), ("sd version", "base_model")):
        text = _text(data.get(key))
        if text and text.lower() != "unknown":
            found[field] = bounded(text)
    return found


def version_record_fields(data: Mapping[str, object]) -> dict[str, Any]:
    """The fields of a model-version record as sources' helpers save it beside a model (camelCase
    ``trainedWords``/``baseModel``/``description``, or PascalCase ``TrainedWords``/``BaseModel``/
    ``ModelDescription``) as FoundMetadata fields."""
    found: dict[str, Any] = {}
    words = _words(data.get("trainedWords", data.get("TrainedWords")))
    if words:
        found["trigger_words"] = words
    base = _text(data.get("baseModel", data.get("BaseModel")))
    if base:
        found["base_model"] = base
    model = data.get("model")
    described = model.get("description") if isinstance(model, dict) else None
    for value in (data.get("description"), described, data.get("ModelDescription")):
        text = _text(value)
        if text:
            found["description"] = bounded(text)
            break
    return found


def merged(*parts: Mapping[str, Any]) -> dict[str, Any]:
    """Fields from several sidecars: the first that gives a field wins."""
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            out.setdefault(key, value)
    return out


def read_beside(
    model: Path,
    siblings: Collection[str],
    previews: Iterable[str],
    *,
    user_json: bool = False,
    records: Iterable[str] = (),
    configs: Iterable[str] = (),
) -> FoundMetadata:
    """What the files beside ``model`` say, in the formats a UI adapter names: preview images of
    ``previews`` types, ``<stem>.json`` user metadata (``user_json``), model-version records named
    ``<stem><suffix>`` for each of ``records`` (e.g. ``.cm-info.json``), and ``<stem><suffix>``
    config files (``configs``, e.g. ``.yaml``). ``siblings``: the names in the model's folder (one
    listing for all its models). Unreadable or malformed files are ignored."""
    stem = model.name.rsplit(".", 1)[0]
    shown = found_previews(model, siblings, previews)
    files: list[Path] = list(shown)
    parts: list[dict[str, Any]] = []
    if user_json:
        path = model.with_name(f"{stem}.json")
        data = read_json_file(path) if path.name in siblings else None
        if data is not None:
            files.append(path)
            parts.append(user_metadata_fields(data))
    for suffix in records:
        path = model.with_name(stem + suffix)
        data = read_json_file(path) if path.name in siblings else None
        if data is not None:
            files.append(path)
            parts.append(version_record_fields(data))
    found_configs = tuple(model.with_name(stem + s) for s in configs if stem + s in siblings and stem + s != model.name)
    files += found_configs
    return FoundMetadata(files=tuple(files), previews=shown, configs=found_configs, **merged(*parts))
