"""Shared fixtures: the real CLI as a subprocess, temp stores, model files, and the store invariants.

Test modules here are imported with ``--import-mode=importlib``, so helpers are handed out as
fixtures (``assert_store_consistent``, ``make_lora``...) rather than imported from this file.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from pydantic import BaseModel

from synapse_core.models import (
    Config,
    DerivedHashCache,
    HashCache,
    Pack,
    PackLock,
    PreviewIndex,
    Profile,
    Runtime,
    UISets,
    UpdateChecks,
    ViewManifest,
)
from synapse_core.store import Store
from synapse_core.testing import lora_file, make_store, write_safetensors

SYNAPSE = Path(sys.executable).parent / "synapse"
# Variables a developer may have set that would change what a test sees.
_SCRUBBED_ENV = ("SYNAPSE_ROOT", "SYNAPSE_STRICT_PLUGINS", "SYNAPSE_DISABLE_PLUGINS", "SYNAPSE_DEBUG")

RunCli = Callable[..., "subprocess.CompletedProcess[str]"]


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a CLI run: no third-party plugins unless ``extra`` says otherwise."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env["SYNAPSE_LOAD_PLUGINS"] = ""
    env.update(extra or {})
    return env


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the entry-point cache (synapse_core/entry_points.py) out of the developer's ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))


@pytest.fixture
def synapse_cli(tmp_path: Path) -> RunCli:
    """Run the installed ``synapse`` console script: ``synapse_cli("list", "--json", root=r)``.

    ``env`` entries are added to (and override) the default environment, which loads no
    entry-point plugins (``SYNAPSE_LOAD_PLUGINS=""``). Returns the CompletedProcess (text mode).
    """
    assert SYNAPSE.exists(), f"{SYNAPSE} is missing: run 'make install'"

    def run(
        *args: str | Path,
        root: Path | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(SYNAPSE)]
        if root is not None:
            argv += ["--root", str(root)]
        argv += [str(a) for a in args]
        return subprocess.run(
            argv, capture_output=True, text=True, env=cli_env(env), cwd=cwd or tmp_path, timeout=timeout, check=False
        )

    return run


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """An initialised store at ``tmp_path/store`` with the built-in plugins only."""
    return make_store(tmp_path / "store", entry_points=False)


@pytest.fixture
def make_lora(tmp_path: Path) -> Callable[..., Path]:
    """``make_lora("name", seed)``: a tiny LoRA file under ``tmp_path/files/`` with distinct bytes per seed."""

    def make(name: str = "style", seed: int = 0, folder: Path | None = None) -> Path:
        return lora_file((folder or tmp_path / "files") / f"{name}.safetensors", seed=seed)

    return make


@pytest.fixture
def make_model(tmp_path: Path) -> Callable[..., Path]:
    """``make_model("name", {tensor: shape}, metadata=..., size=...)``: a small .safetensors file.

    ``size`` (bytes, even) fills one tensor with random bytes so that files are distinct.
    """

    def make(
        name: str, tensors: Mapping[str, tuple[int, ...]], *, metadata: Mapping[str, str] | None = None, folder=None
    ) -> Path:
        path = (folder or tmp_path / "files") / name
        nbytes = 2 * sum(_count(shape) for shape in tensors.values())
        return write_safetensors(path, tensors, metadata=metadata, payload=os.urandom(nbytes))

    return make


def _count(shape: tuple[int, ...]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


# -- the store's invariants ----------------------------------------------------------------------------------

_STATE_MODELS: dict[str, type[BaseModel]] = {
    "config.json": Config,
    "ui_sets.json": UISets,
    "packs/*/pack.json": Pack,
    "packs/*/lock.json": PackLock,
    "packs/*/resources/previews.json": PreviewIndex,
    "profiles/*/profile.json": Profile,
}


def _walk(top: Path) -> Iterator[Path]:
    """Every file under ``top``, outside state/.git."""
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            yield Path(dirpath) / name


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_blobs(root: Path) -> list[str]:
    """Problems under data/blobs: a file not named by the sha256 of its bytes, in the wrong bucket, or writable."""
    problems = []
    blobs = root / "data" / "blobs"
    for path in _walk(blobs) if blobs.exists() else ():
        rel = path.relative_to(blobs).parts
        if len(rel) != 3 or rel[0] != "sha256" or rel[1] != path.name[:2]:
            problems.append(f"{path}: not at blobs/sha256/<2 hex>/<sha256>")
        elif sha256_of(path) != path.name:
            problems.append(f"{path}: name is not the sha256 of its bytes")
        elif stat.S_IMODE(path.stat().st_mode) != 0o444:
            problems.append(f"{path}: mode {oct(stat.S_IMODE(path.stat().st_mode))}, expected 0o444")
    return problems


def temp_files(root: Path) -> list[Path]:
    """Temp files (``.*.tmp``) anywhere under data/ and state/ (outside state/.git)."""
    return [p for top in (root / "data", root / "state") if top.exists() for p in _walk(top) if _is_temp(p)]


def _is_temp(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(".tmp")


def assert_store_consistent(root: Path, *, allow_temps_in_tmp: bool = False) -> None:
    """The invariants that must hold after every command.

    Every JSON file under state/ and data/ parses and validates with its model; every blob is
    named by its sha256 (and read-only); no temp file is left behind (with ``allow_temps_in_tmp``,
    temps of a killed process may remain under data/tmp/, which gc removes after a grace period).
    """
    state, data = root / "state", root / "data"
    problems: list[str] = []
    for path in _walk(state):
        if path.suffix != ".json":
            continue
        rel = path.relative_to(state)
        model = next(
            (
                m
                for pattern, m in _STATE_MODELS.items()
                if rel.match(pattern) and len(rel.parts) == len(Path(pattern).parts)
            ),
            None,
        )
        if model is None:
            problems.append(f"{path}: a JSON file the store does not know")
            continue
        problems += _validate(path, model)
    runtime = data / "runtime.json"
    for path in _walk(data) if data.exists() else ():
        if path == runtime:
            problems += _validate(runtime, Runtime)
        elif path == data / "update-checks.json":
            problems += _validate(path, UpdateChecks)
        elif path == data / "plugins.json":
            problems += _validate_plain_json(path)
        elif path == data / "hash-cache.json":
            problems += _validate(path, HashCache)
        elif path == data / "derived-hashes.json":
            problems += _validate(path, DerivedHashCache)
        elif _is_view_manifest(data, path):
            problems += _validate(path, ViewManifest)
        elif path.is_relative_to(data / "views"):
            if path.name == "kept.json" and len(path.relative_to(data / "views").parts) == 2:
                problems += _validate_plain_json(path)
            # everything else under views/ is a view's sidecar, the sidecar store or a file a UI wrote
        elif path.name.endswith(".part.json") and path.parent == data / "tmp":
            problems += _validate_plain_json(path)  # a resumable download's validator
        elif path.suffix == ".json":
            problems.append(f"{path}: a JSON file the store does not know")
    problems += check_blobs(root)
    for temp in temp_files(root):
        if not (allow_temps_in_tmp and temp.parent == data / "tmp"):
            problems.append(f"{temp}: temp file left behind")
    assert not problems, "store invariants broken:\n" + "\n".join(problems)


def _is_view_manifest(data: Path, path: Path) -> bool:
    """data/views/<ui>/profiles/<profile>/.synapse-view.json"""
    rel = path.relative_to(data).parts
    return len(rel) == 5 and rel[0] == "views" and rel[2] == "profiles" and rel[4] == ".synapse-view.json"


def _validate(path: Path, model: type[BaseModel]) -> list[str]:
    try:
        model.model_validate_json(path.read_bytes())
    except Exception as exc:
        return [f"{path}: does not validate as {model.__name__}: {exc}"]
    return []


def _validate_plain_json(path: Path) -> list[str]:
    try:
        json.loads(path.read_bytes())
    except ValueError as exc:
        return [f"{path}: not JSON: {exc}"]
    return []


@pytest.fixture(name="assert_store_consistent")
def assert_store_consistent_fixture() -> Callable[..., None]:
    """:func:`assert_store_consistent`, for test modules."""
    return assert_store_consistent


@pytest.fixture(name="check_blobs")
def check_blobs_fixture() -> Callable[[Path], list[str]]:
    """:func:`check_blobs`, for test modules."""
    return check_blobs


@pytest.fixture(name="temp_files")
def temp_files_fixture() -> Callable[[Path], list[Path]]:
    """:func:`temp_files`, for test modules."""
    return temp_files


@pytest.fixture(name="sha256_of")
def sha256_of_fixture() -> Callable[[Path], str]:
    """:func:`sha256_of`, for test modules."""
    return sha256_of
