"""What a parser finds in a file: each model reference, as written, with the facts the file gives."""

from __future__ import annotations

import os
import posixpath
import re
from typing import Literal

import attrs

from synapse_core.kinds import AssetKind

HashForm = Literal["sha256", "sha256_prefix", "autov1", "autov3"]
"""How a hex value relates to a file: its full SHA-256, a prefix of it, the legacy 8-hex hash of
64 KiB at 1 MiB, or the SHA-256 of a safetensors file after its header (first 12 hex)."""
NameMatch = Literal["path", "stem"]
"""How the UI finds the file by name: the exact path inside the folder, or the bare file stem."""

_HEX = re.compile(r"^[0-9a-f]+$")


@attrs.frozen
class HashClaim:
    """A hash the file gives for a model, and the forms it may have."""

    value: str
    forms: tuple[HashForm, ...]
    label: str
    """Where it was read, e.g. ``Lora hashes`` or ``models[].hash``."""


@attrs.define
class ModelRef:
    """One place in a file that names a model."""

    name: str
    """Exactly as written in the file."""
    where: str
    """The node and input, or the infotext key, e.g. ``node 4 (CheckpointLoaderSimple) ckpt_name``."""
    folder: str | None = None
    """The UI's folder key the name is relative to; None when the file does not say."""
    kinds: tuple[AssetKind, ...] = ()
    """The kinds the model may be (empty: unknown)."""
    match: NameMatch = "path"
    hashes: list[HashClaim] = attrs.Factory(list)
    url: str | None = None
    """Where the file says the model can be downloaded."""
    source_ref: str | None = None
    """A reference a source understands (an AIR), when the file gives one."""

    def key(self) -> tuple[str, str]:
        """What makes two references the same model: the folder (or kinds) and the normalised name."""
        scope = self.folder or ",".join(k.value for k in self.kinds)
        return scope, normalise_name(self.name).lower() if self.match == "stem" else normalise_name(self.name)


@attrs.define
class ParsedFile:
    """Every model reference of one file, and each problem met on the way."""

    format: str
    """``ui-0.4``, ``ui-1``, ``api`` or ``infotext``."""
    ui: str | None
    """The UI whose vocabulary read the file (None for infotext)."""
    refs: list[ModelRef] = attrs.Factory(list)
    problems: list[str] = attrs.Factory(list)


def normalise_name(name: str) -> str:
    """``sub\\x.safetensors`` and ``sub/x.safetensors`` are the same name (workflows saved on Windows)."""
    return name.replace("\\", "/")


def as_looked_up(name: str) -> str:
    """The path a UI on this machine looks the name up under: exact string matching (ComfyUI
    ``execution.py`` validate_inputs, ``folder_paths.get_full_path``), where ``\\`` separates
    folders only on Windows; elsewhere it is a character of the file name."""
    return normalise_name(name) if os.sep == "\\" else name


def name_problem(name: str) -> str | None:
    """Why a name cannot be a path inside a model folder, or None."""
    if not name.strip():
        return "it is empty"
    posix = normalise_name(name)
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
        return "it is an absolute path"
    if any(part in ("..", ".") for part in posix.split("/")):
        return "it has a '..' or '.' part"
    if any(ord(c) < 32 for c in posix):
        return "it contains control characters"
    if not posixpath.basename(posix):
        return "it names a folder, not a file"
    return None


def hex_value(value: object) -> str | None:
    """A lower-case hex string, or None when ``value`` is not one."""
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    return text if text and _HEX.match(text) else None


def claims_for(value: str, label: str, *, lora: bool = False) -> HashClaim | None:
    """The hash forms a hex value of this length can be in A1111-family infotext.

    10 hex: the first 10 of the full SHA-256 (A1111's shorthash, Civitai's AutoV2); 8 hex: the
    legacy hash; 12 hex: a LoRA's header-less SHA-256 (A1111 'addnet' = Civitai AutoV3) or the
    full SHA-256 (Forge since 2025, and textual-inversion hashes); 64 hex: the full SHA-256.
    """
    hexed = hex_value(value)
    if hexed is None:
        return None
    forms: tuple[HashForm, ...]
    if len(hexed) == 64:
        forms = ("sha256",)
    elif len(hexed) == 8:
        forms = ("autov1",)
    elif len(hexed) == 12 and lora:
        forms = ("autov3", "sha256_prefix")
    elif len(hexed) >= 10:
        forms = ("sha256_prefix",)
    else:
        return None
    return HashClaim(hexed, forms, label)
