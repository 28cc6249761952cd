"""Correctness never depends on the lock (issue 11, item 2): on NFS or SMB a lock can silently
do nothing. With the store lock switched off, ``gc`` runs against ``import --move`` 50 times:
no original is lost and no committed pack misses its blob."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from synapse_core.testing import lora_file

SYNAPSE = Path(sys.executable).parent / "synapse"


@pytest.mark.slow
def test_gc_during_import_move_without_the_lock_loses_nothing(tmp_path: Path, synapse_cli) -> None:
    root = tmp_path / "store"
    env = {"SYNAPSE_TEST_NO_LOCK": "1"}
    assert synapse_cli("store", "init", root=root, env=env).returncode == 0
    base = [str(SYNAPSE), "--root", str(root)]
    from conftest import cli_env

    outcomes = []
    for round_ in range(50):
        original = lora_file(tmp_path / "incoming" / f"m{round_}.safetensors", seed=round_)
        data = original.read_bytes()
        move = subprocess.Popen(
            [*base, "import", str(original), "--move", "--json"],
            env=cli_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        gc = subprocess.Popen([*base, "gc", "--json"], env=cli_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        moved_out, moved_err = move.communicate(timeout=60)
        gc.communicate(timeout=60)
        assert "Traceback" not in moved_err, moved_err
        outcomes.append((original, data, json.loads(moved_out)["pack"] if move.returncode == 0 else None))
    listed = {p["name"]: p for p in json.loads(synapse_cli("list", "--json", root=root, env=env).stdout)}
    blobs = {p.name: p.read_bytes() for p in (root / "data/blobs/sha256").glob("*/*")}
    assert any(pack for _, _, pack in outcomes), "no import went through: the test tested nothing"
    for original, data, pack in outcomes:
        if pack is None:  # refused (another command's marker): nothing may be gone
            assert original.read_bytes() == data, f"a refused import lost {original}"
            continue
        assert listed[pack]["installed"], f"{pack} lost its blob"
        assert original.exists() or data in blobs.values(), f"{original} is gone and the store lacks its bytes"
