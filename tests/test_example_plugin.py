"""The example plugin in docs/examples installs with pip and works with no change to the core."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synapse_core.testing import lora_file, make_store

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "synapse-invokeai"
SYNAPSE = Path(sys.executable).parent / "synapse"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example built and installed by pip into a folder of its own (no network: no build isolation)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(EXAMPLE)],
        check=True,
    )  # fmt: skip
    return target


def test_the_installed_example_is_listed_by_synapse_plugins(installed: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(installed), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = subprocess.run([SYNAPSE, "plugins", "--json"], env=env, capture_output=True, text=True, check=True)
    records = {r["name"]: r for r in json.loads(result.stdout)}
    assert records["invokeai"]["status"] == "loaded"
    assert records["invokeai"]["distribution"] == "synapse-invokeai"
    assert records["invokeai"]["contributes"] == {"ui": ["invokeai"]}


def test_the_docs_snippet_puts_a_lora_in_autoimport(
    installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(installed))
    import synapse_invokeai

    store = make_store(tmp_path / "store", [("invokeai", synapse_invokeai)], entry_points=False)
    store.import_pack(str(lora_file(tmp_path / "x.safetensors")), name="X")
    link = store.layout.active_link("invokeai") / "autoimport/lora/x.safetensors"
    assert link.is_symlink() and link.exists()
