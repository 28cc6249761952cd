"""Helpers for UI adapters' sidecars: the files a UI reads beside a model (a preview image,
a metadata json). Generic: each adapter chooses names, image types and json content."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable, Mapping

from synapse_core.ui import Sidecar, SidecarRequest

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
