"""A command costs what it changes (issue 14): one import into a store of 500 packs touches only
the new pack's entries in each view; a folder becomes 500 packs in one commit and one view update."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from uiviews.kit import HAS_GIT, UIS, views

from synapse_core.testing import lora_file


def entries(root: Path) -> dict[str, tuple[int, int]]:
    """Every non-directory of every view tree (links not followed): path -> (inode, mtime)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(views(root)):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            if name.startswith(".synapse-"):
                continue  # the manifest and fingerprint change with every change of their view
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            found[os.path.relpath(path, views(root))] = (st.st_ino, st.st_mtime_ns)
    return found


@pytest.mark.slow
def test_one_import_into_500_packs_touches_only_the_new_packs_entries(tmp_path: Path, cli, root: Path):
    library = tmp_path / "library"
    for i in range(500):
        lora_file(library / f"set{i % 9}" / f"lora{i}.safetensors", seed=i)
    commits_before = _commits(root)
    said = json.loads(cli("import", library, "--each", "--json").stdout)
    assert len(said["packs"]) == 500
    if HAS_GIT:
        assert _commits(root) == commits_before + 1, "a folder of 500 packs is one state commit"
    shown = json.loads(cli("show", "lora7", "--json").stdout)
    assert shown["resources"][0]["expose"] == "set7/lora7.safetensors", "the subfolder stays in the exposed name"
    cli("use", "lora3")  # a work view on every UI's stack is kept current too
    before = entries(root)

    cli("import", lora_file(tmp_path / "new" / "fresh.safetensors", seed=9999), "--name", "Fresh")
    after = entries(root)
    changed = {p for p in after if before.get(p) != after[p]}
    gone = set(before) - set(after)
    assert not gone, f"an import removed entries: {sorted(gone)[:5]}"
    for path in changed:
        assert path.endswith("/fresh.safetensors"), f"an import touched {path}"
    trees = {p.split("/profiles/")[0] + "/" + p.split("/profiles/")[1].split("/")[0] for p in changed}
    assert trees == {f"{ui}/{profile}" for ui in UIS for profile in ("global", "work__lora3")}, trees

    cli("remove", "lora11")
    final = entries(root)
    removed = set(after) - set(final)
    assert removed and all(p.endswith("/set2/lora11.safetensors") or p.endswith("/lora11.safetensors") for p in removed)
    assert all(final[p] == after[p] for p in final if p in after), "remove touched other entries"


def _commits(root: Path) -> int:
    if not HAS_GIT:
        return 0
    out = subprocess.run(
        ["git", "-C", str(root / "state"), "rev-list", "--count", "HEAD"], capture_output=True, text=True
    )
    return int(out.stdout.strip() or 0)


def test_each_refuses_names_already_taken_and_changes_nothing(tmp_path: Path, cli, root: Path):
    library = tmp_path / "library"
    lora_file(library / "a.safetensors", seed=1)
    lora_file(library / "b.safetensors", seed=2)
    cli("import", lora_file(tmp_path / "b.safetensors", seed=3), "--name", "b")
    result = cli("import", library, "--each", ok=False)
    assert result.returncode != 0 and "'b' already exists" in result.stderr, result.stderr
    assert [p["name"] for p in json.loads(cli("list", "--json").stdout)] == ["b"]
    same = cli("import", tmp_path / "library" / "a.safetensors", "--each", ok=False)
    assert "--each takes a folder" in same.stderr
