"""Civitai's vocabulary mapped onto Synapse's: model and file types to asset kinds,
and the choice of files within a version (civitai-api.md sections 1.6, 2.3, 3, 5.3)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from synapse_core.errors import InvalidInput
from synapse_core.kinds import AssetKind
from synapse_core.models import NsfwLevel

MODEL_TYPE_KINDS: dict[str, AssetKind] = {
    "checkpoint": AssetKind.CHECKPOINT,
    "textualinversion": AssetKind.EMBEDDING,
    "hypernetwork": AssetKind.HYPERNETWORK,
    "lora": AssetKind.LORA,
    "locon": AssetKind.LORA,
    "dora": AssetKind.LORA,
    "controlnet": AssetKind.CONTROLNET,
    "upscaler": AssetKind.UPSCALER,
    "motionmodule": AssetKind.MOTION_MODULE,
    "vae": AssetKind.VAE,
    "textencoder": AssetKind.TEXT_ENCODER,
    "clip": AssetKind.TEXT_ENCODER,
    "unet": AssetKind.DIFFUSION_MODEL,
    "clipvision": AssetKind.CLIP_VISION,
    "detection": AssetKind.DETECTION,  # YOLO detectors for detailers (ADetailer, SD.Next, ComfyUI)
}
FILE_TYPE_KINDS: dict[str, AssetKind] = {
    "vae": AssetKind.VAE,
    "text encoder": AssetKind.TEXT_ENCODER,
    "vision encoder": AssetKind.CLIP_VISION,
    "clipvision": AssetKind.CLIP_VISION,
    "unet": AssetKind.DIFFUSION_MODEL,
    "diffusion model": AssetKind.DIFFUSION_MODEL,
    "controlnet": AssetKind.CONTROLNET,
    "upscaler": AssetKind.UPSCALER,
    "enhancement lora": AssetKind.LORA,
    "training data": AssetKind.OTHER,
    "archive": AssetKind.OTHER,
    "config": AssetKind.OTHER,
    "workflow": AssetKind.OTHER,
    "other": AssetKind.OTHER,
}
MAIN_FILE_TYPES = frozenset({"model", "pruned model", "diffusion model"})
DEFAULT_PREFERENCES = {"format": "SafeTensor", "size": "pruned", "fp": "fp16"}
PREFERENCE_KEYS = ("format", "size", "fp", "quantType")


# nsfwLevel is a bitmask PG=1, PG13=2, R=4, X=8, XXX=16, Blocked=32 (an int on images), or the
# /api/v1/images string form (civitai-api.md 2.4, 2.5); the highest bit set decides.
_NSFW_NAMES: dict[str, NsfwLevel] = {"none": "none", "soft": "soft", "mature": "mature", "x": "explicit"}


def nsfw_level(value: object) -> NsfwLevel | None:
    """Civitai's rating of an image as Synapse's level; None when it is missing or unreadable."""
    if isinstance(value, str):
        return _NSFW_NAMES.get(value.strip().lower())
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return None
    if value >= 8:
        return "explicit"
    return "mature" if value >= 4 else "soft" if value >= 2 else "none"


def kind_for(model_type: str | None, file: Mapping[str, Any]) -> AssetKind:
    """The asset kind of one file of a model; unknown types become ``other``, never an error."""
    file_type = str(file.get("type") or "").lower()
    if file_type in FILE_TYPE_KINDS:
        return FILE_TYPE_KINDS[file_type]
    return MODEL_TYPE_KINDS.get(str(model_type or "").lower().replace(" ", ""), AssetKind.OTHER)


def file_metadata(file: Mapping[str, Any]) -> dict[str, str]:
    """The file's format/size/fp/quantType, as strings (missing keys left out)."""
    meta = file.get("metadata") or {}
    return {k: str(meta[k]) for k in PREFERENCE_KEYS if isinstance(meta, dict) and meta.get(k) is not None}


def _score(file: Mapping[str, Any], prefer: Mapping[str, str]) -> float:
    """Civitai's own ranking (CV-file): format 100, size 10, fp 1, quantType 0.5, +1000 for model files."""
    meta = file_metadata(file)
    weights = {"format": 100.0, "size": 10.0, "fp": 1.0, "quantType": 0.5}
    score = sum(w for k, w in weights.items() if k in prefer and meta.get(k, "").lower() == prefer[k].lower())
    if str(file.get("type") or "").lower() in MAIN_FILE_TYPES:
        score += 1000
    return score


def primary_file(files: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The file marked primary, else the one Civitai's server rule would pick."""
    marked = [f for f in files if f.get("primary") is True]
    if marked:
        return marked[0]
    ranked = sorted(files, key=lambda f: -_score(f, DEFAULT_PREFERENCES))
    return ranked[0] if ranked else None


def choose_files(
    files: Sequence[Mapping[str, Any]],
    *,
    file_ids: Sequence[str] = (),
    all_files: bool = False,
    prefer: Mapping[str, str] | None = None,
) -> list[Mapping[str, Any]]:
    """The files an import takes: given ids, all, the best match of preferences, or the primary."""
    if not files:
        raise InvalidInput("this Civitai version has no files to download")
    if file_ids:
        by_id = {str(f.get("id")): f for f in files}
        unknown = [i for i in file_ids if i not in by_id]
        if unknown:
            raise InvalidInput(f"no file {', '.join(unknown)} in this version; its files are {describe_files(files)}")
        return [by_id[i] for i in file_ids]
    if all_files:
        return list(files)
    wanted = {k: v for k, v in (prefer or {}).items() if k in PREFERENCE_KEYS}
    if wanted:
        # what the user asked for first, Civitai's defaults only to break ties (else the default
        # size=pruned outweighs an explicit fp=fp32 and a matching file is never chosen)
        best = max(files, key=lambda f: (_score(f, wanted), _score(f, DEFAULT_PREFERENCES)))
        mismatch = {k: v for k, v in wanted.items() if file_metadata(best).get(k, "").lower() != v.lower()}
        if mismatch:
            asked = ", ".join(f"{k}={v}" for k, v in mismatch.items())
            raise InvalidInput(f"no file of this version has {asked}; its files are {describe_files(files)}")
        return [best]
    chosen = primary_file(files)
    assert chosen is not None
    return [chosen]


def describe_files(files: Sequence[Mapping[str, Any]]) -> str:
    """Files as 'id name (format fp size)', for messages."""
    parts = []
    for f in files:
        meta = " ".join(file_metadata(f).values())
        parts.append(f"{f.get('id')} {f.get('name')} ({meta})" if meta else f"{f.get('id')} {f.get('name')}")
    return "; ".join(parts)


def resource_id(file: Mapping[str, Any], primary_id: Any, taken: set[str]) -> str:
    """A stable id for a resource: 'main' for the primary file, else from its type and metadata."""
    if file.get("id") == primary_id and "main" not in taken:
        return "main"
    words = [str(file.get("type") or "file"), *file_metadata(file).values()]
    base = re.sub(r"[^a-z0-9]+", "_", " ".join(words).lower()).strip("_") or "file"
    candidate = base if base not in taken else f"{base}_{file.get('id')}"
    return candidate


def camel_pack_name(model_name: str) -> str:
    """'Paper Lantern Style' -> 'PaperLanternStyle' (the core still validates it)."""
    words = re.findall(r"[^\W_]+", model_name)
    return "".join(w[:1].upper() + w[1:] for w in words)[:80] or "CivitaiModel"
