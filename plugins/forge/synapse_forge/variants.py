"""Forge and its forks: which one an install is, and what each lists.

reForge (Panchovix/stable-diffusion-webui-reForge 3b56b268) and Forge Classic
(Haoming02/sd-webui-forge-classic 1f95d717) have ``modules_forge/`` like Forge, and
one view serves all three (Forge's layout), but they list less than Forge: no ``.gguf``
checkpoints, no text-encoder folder, A1111's VAE extensions, and Forge Classic has no
hypernetworks and keeps embeddings in ``models/embeddings``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import attrs

from synapse_core.attach_flags import Layout
from synapse_core.kinds import AssetKind
from synapse_core.ui import KindFolder, Unsupported
from synapse_forge.layout import LAYOUT

_A1111_CHECKPOINTS = frozenset({".ckpt", ".safetensors"})
_A1111_VAES = frozenset({".ckpt", ".pt", ".safetensors"})


@attrs.frozen
class Variant:
    """One UI of the Forge family: its name, how to tell it, and what it lists."""

    name: str
    repository: str
    """owner/name on GitHub, matched against the install's git remote."""
    layout: Layout


def _narrowed(changes: Mapping[AssetKind, KindFolder | Unsupported]) -> dict[AssetKind, KindFolder | Unsupported]:
    return {**LAYOUT, **changes}


def _with(kind: AssetKind, source: str, **fields: object) -> KindFolder:
    entry = LAYOUT[kind]
    assert isinstance(entry, KindFolder)
    return attrs.evolve(entry, source=source, **fields)  # type: ignore[arg-type]


_REFORGE_CHANGES: dict[AssetKind, KindFolder | Unsupported] = {
    AssetKind.CHECKPOINT: _with(
        AssetKind.CHECKPOINT,
        "reForge modules/sd_models.py list_models: ext_filter .ckpt .safetensors",
        extensions=_A1111_CHECKPOINTS,
    ),
    AssetKind.DIFFUSION_MODEL: _with(
        AssetKind.DIFFUSION_MODEL,
        "reForge modules/sd_models.py list_models (UNet-only .safetensors are listed as checkpoints; no .gguf)",
        extensions=_A1111_CHECKPOINTS,
    ),
    AssetKind.VAE: _with(
        AssetKind.VAE, "reForge modules/sd_vae.py refresh_vae_list", extensions=_A1111_VAES, name_scope=None
    ),
    AssetKind.TEXT_ENCODER: Unsupported(
        "reForge has no text-encoder folder and its parser no --text-encoder-dir (modules/cmd_args.py)"
    ),
}
_CLASSIC_CHANGES: dict[AssetKind, KindFolder | Unsupported] = {
    **{
        kind: attrs.evolve(entry, source=entry.source.replace("reForge", "Forge Classic"))
        for kind, entry in _REFORGE_CHANGES.items()
        if isinstance(entry, KindFolder)
    },
    AssetKind.TEXT_ENCODER: Unsupported(
        "Forge Classic has no text-encoder folder and its parser no --text-encoder-dir (modules/cmd_args.py)"
    ),
    AssetKind.HYPERNETWORK: Unsupported(
        "Forge Classic has no hypernetworks (no modules/hypernetworks, no --hypernetwork-dir in modules/cmd_args.py)"
    ),
    # its own embeddings folder is models/embeddings (modules/cmd_args.py --embeddings-dir default)
    AssetKind.EMBEDDING: _with(
        AssetKind.EMBEDDING,
        "Forge Classic modules/cmd_args.py (--embeddings-dir, default models/embeddings)",
        folder="models/embeddings",
    ),
}

FORGE = Variant("Forge", "lllyasviel/stable-diffusion-webui-forge", LAYOUT)
REFORGE = Variant("reForge", "Panchovix/stable-diffusion-webui-reForge", _narrowed(_REFORGE_CHANGES))
FORGE_CLASSIC = Variant("Forge Classic", "Haoming02/sd-webui-forge-classic", _narrowed(_CLASSIC_CHANGES))
VARIANTS = (FORGE, REFORGE, FORGE_CLASSIC)

_URL = re.compile(r"^\s*url\s*=\s*(\S+)", re.MULTILINE)
_VERSION = re.compile(r"""^version\s*=\s*['"]([^'"]{1,80})['"]""", re.MULTILINE)


def detect_variant(install: Path) -> Variant:
    """Which Forge an install is: by its git remote when it names one of them, else by its own
    marks (Forge Classic's modules_forge/forge_version.py says "classic", reForge's README names it)."""
    remotes = " ".join(_URL.findall(_text(install / ".git" / "config"))).lower()
    for variant in (FORGE_CLASSIC, REFORGE, FORGE):
        if variant.repository.split("/")[1].lower() in remotes:
            return variant
    if forge_version(install) == "classic":
        return FORGE_CLASSIC
    if "reforge" in _text(install / "README.md")[:2000].lower():
        return REFORGE
    return FORGE


def forge_version(install: Path) -> str | None:
    """The version in modules_forge/forge_version.py, e.g. ``2.0.1v1.10.1``."""
    found = _VERSION.search(_text(install / "modules_forge" / "forge_version.py"))
    return found.group(1) if found else None


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
