"""Fixtures for the workflow tests: a store with every installed plugin, a fake Civitai on loopback
(``SYNAPSE_CIVITAI_URL``), and the real CLI against both. Config and cache folders are the test's own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from synapse_civitai.fake_server import FakeCivitai
from synapse_core.store import Store
from synapse_core.testing import make_registry

SYNAPSE = Path(sys.executable).parent / "synapse"
_SCRUBBED = (
    "SYNAPSE_ROOT",
    "SYNAPSE_STRICT_PLUGINS",
    "SYNAPSE_DISABLE_PLUGINS",
    "SYNAPSE_LOAD_PLUGINS",
    "SYNAPSE_DEBUG",
    "CIVITAI_API_TOKEN",
    "HF_TOKEN",
    "HF_ENDPOINT",
)


@pytest.fixture
def fake() -> Iterator[FakeCivitai]:
    """A started, empty fake Civitai (tests add the models they need)."""
    with FakeCivitai() as server:
        yield server


@pytest.fixture
def env(fake: FakeCivitai, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment of this process and of CLI runs: the fake as Civitai, private config."""
    settings = {
        "SYNAPSE_CIVITAI_URL": fake.api_url,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "HF_HOME": str(tmp_path / "hf-home"),
        "SYNAPSE_CIVITAI_BACKOFF": "0.01",
    }
    for key in _SCRUBBED:
        monkeypatch.delenv(key, raising=False)
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    return {**{k: v for k, v in os.environ.items() if k not in _SCRUBBED}, **settings}


@pytest.fixture
def store(tmp_path: Path, env: dict[str, str]) -> Store:
    """An initialised store with every installed plugin (UI adapters, Civitai)."""
    registry = make_registry(entry_points=True, env=env)
    assert "comfyui" in registry.graph_vocabularies, "the ComfyUI plugin is not installed: run 'make install'"
    store = Store(root=tmp_path / "store", registry=registry)
    store.init()
    return store


RunCli = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def cli(store: Store, env: dict[str, str], tmp_path: Path) -> RunCli:
    """Run the installed ``synapse`` on the store: ``cli("needs", path, "--json", input="y\\n")``."""

    def run(*args: str | Path, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        argv = [str(SYNAPSE), "--root", str(store.layout.root), *map(str, args)]
        return subprocess.run(
            argv, capture_output=True, text=True, env=env, cwd=tmp_path, input=input, timeout=timeout, check=False
        )

    return run
