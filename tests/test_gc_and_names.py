"""What `gc` keeps and says, what `du` counts, and pack names git would leave out (the CLI as users run it)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import RunCli

from synapse_core.testing import lora_file


def _store_with_removed_pack(tmp_path: Path, synapse_cli: RunCli) -> Path:
    root = tmp_path / "store"
    assert synapse_cli("store", "init", root=root).returncode == 0
    lora_file(tmp_path / "big.safetensors", seed=7)
    assert synapse_cli("import", tmp_path / "big.safetensors", "--name", "Big", root=root).returncode == 0
    assert synapse_cli("remove", "Big", root=root).returncode == 0
    return root


def test_gc_says_what_it_kept_within_the_grace_period_and_now_takes_it(tmp_path: Path, synapse_cli: RunCli) -> None:
    root = _store_with_removed_pack(tmp_path, synapse_cli)
    first = synapse_cli("gc", root=root)
    assert first.returncode == 0, first.stderr
    assert "removed 0 blob(s)" in first.stdout
    assert "kept 1 blob(s)" in first.stdout and "--now removes them" in first.stdout
    blobs = [p for p in (root / "data" / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 1

    as_json = json.loads(synapse_cli("gc", "--dry-run", "--json", root=root).stdout)
    assert as_json["kept_blobs"] == 1 and as_json["blobs"] == 0 and as_json["grace_hours"] > 0

    now = synapse_cli("gc", "--now", root=root)
    assert "removed 1 blob(s)" in now.stdout and "kept" not in now.stdout
    assert not [p for p in (root / "data" / "blobs").rglob("*") if p.is_file()]


def test_du_shows_the_bytes_no_pack_references(tmp_path: Path, synapse_cli: RunCli) -> None:
    root = _store_with_removed_pack(tmp_path, synapse_cli)
    out = synapse_cli("du", root=root)
    assert "no pack references" in out.stdout and "synapse gc" in out.stdout
    report = json.loads(synapse_cli("du", "--json", root=root).stdout)
    assert report["unreferenced_bytes"] == report["store_bytes"] > 0


def test_a_pack_name_starting_with_a_dot_is_refused_because_git_would_leave_it_out(
    tmp_path: Path, synapse_cli: RunCli
) -> None:
    root = tmp_path / "store"
    assert synapse_cli("store", "init", root=root).returncode == 0
    lora_file(tmp_path / "d.safetensors", seed=3)
    for name in (".git", ".hidden"):
        out = synapse_cli("import", tmp_path / "d.safetensors", "--name", name, root=root)
        assert out.returncode != 0
        assert "starts with a dot" in out.stderr and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
    assert not (root / "state" / "packs" / ".git").exists()
    assert json.loads(synapse_cli("list", "--json", root=root).stdout) in ([], {"packs": []})
