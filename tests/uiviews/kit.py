"""Helpers shared by the tests of views, use/back, doctor and attach."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

UIS = ("a1111", "comfyui", "forge", "sdnext")
PLUGIN_ENV = {"SYNAPSE_LOAD_PLUGINS": ",".join(UIS)}
LORA_FOLDER = {"a1111": "models/Lora", "forge": "models/Lora", "sdnext": "models/Lora", "comfyui": "models/loras"}
HAS_GIT = shutil.which("git") is not None


def sha_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def blob(root: Path, sha: str) -> Path:
    return root / "data" / "blobs" / "sha256" / sha[:2] / sha


def views(root: Path) -> Path:
    return root / "data" / "views"


def manifest(root: Path, ui: str, profile: str = "global") -> dict:
    return json.loads((views(root) / ui / "profiles" / profile / ".synapse-view.json").read_text())


def assert_clear_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """A user error: non-zero exit, one line on stderr, no traceback, every word named."""
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]
