"""Fixtures for the UI-facing tests: a store with the four UI adapter plugins and its CLI."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from uiviews.kit import PLUGIN_ENV, UIS

from synapse_core.store import Store
from synapse_core.testing import make_registry


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """An initialised store with the four UI adapter plugins (and no other entry point)."""
    registry = make_registry(entry_points=True, env=PLUGIN_ENV)
    assert sorted(registry.ui_adapters) == list(UIS), "UI adapter plugins are not installed: run 'make install'"
    store = Store(root=tmp_path / "store", registry=registry)
    store.init()
    return store


@pytest.fixture
def root(store: Store) -> Path:
    return store.layout.root


@pytest.fixture
def cli(synapse_cli, root: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real CLI on the store; ``ok=True`` asserts exit code 0."""

    def run(*args: str | Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = synapse_cli(*args, root=root, env=PLUGIN_ENV)
        if ok:
            assert result.returncode == 0, f"synapse {' '.join(map(str, args))}: {result.stderr}"
        return result

    return run
