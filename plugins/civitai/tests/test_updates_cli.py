"""`synapse check-updates` and `synapse update`, run as users run them, against the fake Civitai (issue 6)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from civitai_checks import blob, failed, ok, pack_files

from synapse_civitai.fake_server import FakeCivitai, FakeFile


def state_head(root: Path) -> tuple[str, str]:
    """The state commit and `git status` of state/ (clean is '')."""
    state = root / "state"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=state, capture_output=True, text=True, check=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=state, capture_output=True, text=True, check=True)
    return head.stdout.strip(), dirty.stdout


def view_target(root: Path, ui: str, relative: str) -> Path:
    """Where a file of the UI's active view leads."""
    return Path(os.path.realpath(root / "data" / "views" / ui / "active" / relative))


def files(*specs: tuple[int, str, str]) -> list[FakeFile]:
    """New-version files of one kind that differ in precision only: (file id, name, fp)."""
    return [
        FakeFile(file_id, name, size=1000 + file_id % 1000, metadata={"format": "SafeTensor", "fp": fp})
        for file_id, name, fp in specs
    ]


def test_a_newer_version_is_reported_previewed_and_applied(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any], add_model: Callable[..., FakeFile]
) -> None:
    add_model(770001, 771001, 772001, name="Cycle Lora", file_name="cycle_v1.safetensors")
    ok(synapse("import", "civitai:770001", "--name", "Cycle", "--sync"))
    assert ok(synapse("check-updates", "--json"))["current"] == ["Cycle"]

    fake.add_version(770001, 771002, name="v2", files=[FakeFile(772002, "cycle_v2.safetensors", size=3000)])
    plan = ok(synapse("check-updates", "--json"))
    [update] = plan["updates"]
    assert (update["pack"], update["current_version_id"], update["latest_version_id"]) == ("Cycle", "771001", "771002")
    human = ok(synapse("check-updates"))
    assert "Cycle: 771001 -> 771002 (v2)" in human and "cycle_v1.safetensors -> cycle_v2.safetensors" in human

    before, view_before = state_head(root), view_target(root, "comfyui", "models/loras/cycle_v1.safetensors")
    dry = ok(synapse("update", "Cycle", "--dry-run", "--json"))
    assert dry["dry_run"] is True and dry["applied"] == []
    assert state_head(root) == before, "a dry run commits nothing and leaves state/ clean"
    assert view_target(root, "comfyui", "models/loras/cycle_v1.safetensors") == view_before

    applied = ok(synapse("update", "Cycle", "--sync", "--json"))
    assert applied["applied"] == ["Cycle"]
    pack, lock = pack_files(root, "Cycle")
    [locked] = lock["resources"].values()
    assert (pack["source"]["version_id"], locked["file_id"]) == ("771002", "772002")
    # the exposed name stays, so workflows that name the file keep working; the bytes are the new ones
    new_blob = blob(root, fake.file_sha256(772002))
    assert view_target(root, "comfyui", "models/loras/cycle_v1.safetensors") == new_blob.resolve()
    assert ok(synapse("check-updates", "--json"))["current"] == ["Cycle"]

    ok(synapse("use", "Cycle"))
    assert view_target(root, "forge", "models/Lora/cycle_v1.safetensors") == new_blob.resolve()
    ok(synapse("back"))
    assert view_target(root, "forge", "models/Lora/cycle_v1.safetensors") == new_blob.resolve()


def test_an_ambiguous_update_asks_then_remembers_the_choice(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any], add_model: Callable[..., FakeFile]
) -> None:
    add_model(780001, 781001, 782001, name="Choice Lora")  # fp16, the recorded preference
    ok(synapse("import", "civitai:780001", "--name", "Choice"))
    fake.add_version(
        780001,
        781002,
        name="v2",
        files=files((782002, "c_bf16.safetensors", "bf16"), (782003, "c_fp32.safetensors", "fp32")),
    )

    before = state_head(root)
    refused = synapse("update", "Choice")
    assert refused.returncode != 0
    assert "--choose main=782002 or --choose main=782003" in refused.stdout
    assert "nothing was changed" in failed(refused)
    assert state_head(root) == before

    line = failed(synapse("update", "Choice", "--choose", "main=999"))
    assert "--choose" in line and "999" in line, line
    assert state_head(root) == before

    ok(synapse("update", "Choice", "--choose", "main=782003"))
    [locked] = pack_files(root, "Choice")[1]["resources"].values()
    assert locked["file_id"] == "782003"

    fake.add_version(
        780001,
        781003,
        name="v3",
        files=files((782004, "c3_bf16.safetensors", "bf16"), (782005, "c3_fp32.safetensors", "fp32")),
    )
    ok(synapse("update", "Choice"))  # fp32 was chosen once: no question this time
    [locked] = pack_files(root, "Choice")[1]["resources"].values()
    assert locked["file_id"] == "782005"


def test_pinned_packs_are_never_updatable(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any], add_model: Callable[..., FakeFile]
) -> None:
    add_model(790001, 791001, 792001, name="Pinned Lora")
    ok(synapse("import", "civitai:790001@791001", "--name", "Pinned"))  # a version given: pinned
    fake.add_version(790001, 791002, name="v2", files=[FakeFile(792002, "p_v2.safetensors", size=2000)])
    plan = ok(synapse("check-updates", "--json"))
    assert plan["updates"] == [] and plan["pinned"] == ["Pinned"]
    before = state_head(root)
    assert "pinned" in failed(synapse("update", "Pinned"))
    assert ok(synapse("update", "--all", "--json"))["applied"] == []
    assert state_head(root) == before

    ok(synapse("pack", "policy", "Pinned", "follow_latest"))
    assert [u["pack"] for u in ok(synapse("check-updates", "--json"))["updates"]] == ["Pinned"]


def test_update_arguments_that_make_no_sense_are_one_clear_line(root: Path, synapse: Callable[..., Any]) -> None:
    before = state_head(root)
    assert "name the packs to update, or pass --all" in failed(synapse("update"))
    assert "not both" in failed(synapse("update", "Some", "--all"))
    assert "unknown pack 'Nope'" in failed(synapse("update", "Nope"))
    assert "--max-age" in failed(synapse("check-updates", "--max-age", "soon"))
    assert state_head(root) == before


def test_update_records_a_model_gone_upstream_and_its_return(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any], add_model: Callable[..., FakeFile]
) -> None:
    add_model(795001, 796001, 797001, name="Fleeting Lora")
    ok(synapse("import", "civitai:795001", "--name", "Fleeting"))
    fake.get_model(795001).published = False
    ok(synapse("update", "--all"))
    pack, _ = pack_files(root, "Fleeting")
    assert pack["upstream"] == "removed" and pack["name"] == "Fleeting", "metadata is kept"
    assert state_head(root)[1] == ""
    fake.get_model(795001).published = True
    ok(synapse("update", "--all"))
    assert pack_files(root, "Fleeting")[0]["upstream"] == "ok"
