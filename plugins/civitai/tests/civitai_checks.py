"""Checks the Civitai tests share: CLI outcomes and what a store holds (plain functions, not fixtures)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import zlib
from pathlib import Path
from typing import Any


def ok(result: subprocess.CompletedProcess[str]) -> Any:
    """Assert a CLI run succeeded and return its stdout parsed as JSON (or the text)."""
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    try:
        return json.loads(result.stdout)
    except ValueError:
        return result.stdout


def failed(result: subprocess.CompletedProcess[str]) -> str:
    """Assert a CLI run failed with one 'error: ...' line and no traceback; return stderr."""
    assert result.returncode != 0, f"expected a failure\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    assert "error:" in result.stderr, result.stderr
    return result.stderr


def pack_files(store_root: Path, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """pack.json and lock.json of a pack, as dicts."""
    folder = store_root / "state" / "packs" / name
    return json.loads((folder / "pack.json").read_text()), json.loads((folder / "lock.json").read_text())


def blob(store_root: Path, sha256: str) -> Path:
    """Where the store keeps that blob."""
    return store_root / "data" / "blobs" / "sha256" / sha256[:2] / sha256


def assert_blob(store_root: Path, sha256: str) -> None:
    """The blob is present and its bytes hash to its name."""
    path = blob(store_root, sha256)
    assert path.is_file(), f"no blob {sha256}"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha256


def blobs(store_root: Path) -> list[str]:
    """The sha256 of every blob in the store."""
    folder = store_root / "data" / "blobs"
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def partials(store_root: Path) -> list[Path]:
    """Every file left under data/tmp/."""
    folder = store_root / "data" / "tmp"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def assert_secret_absent(secret: str, store_root: Path, *outputs: str) -> None:
    """The secret is in no file under the store root (git objects decompressed too) and in
    none of the given outputs."""
    needle = secret.encode()
    leaks = []
    for path in store_root.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        if needle in data:
            leaks.append(str(path))
        elif "objects" in path.parts:
            try:
                if needle in zlib.decompress(data):
                    leaks.append(f"{path} (git object)")
            except zlib.error:
                pass
    assert not leaks, f"the secret was written to: {leaks}"
    for index, text in enumerate(outputs):
        assert secret not in text, f"the secret is in output #{index}: {text}"
