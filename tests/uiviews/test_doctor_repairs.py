"""doctor after a crash or a bad hand edit: it says what is wrong, --fix repairs it (audit findings)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

from uiviews.kit import UIS, blob

from synapse_core.testing import lora_file

Cli = Callable[..., CompletedProcess[str]]


def doctor(cli: Cli, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli("doctor", *args, "--json", ok=False)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def test_doctor_reports_an_interrupted_command_and_fix_rolls_it_back(cli: Cli, root: Path, tmp_path: Path) -> None:
    cli("import", lora_file(tmp_path / "in" / "keep.safetensors", seed=1), "--name", "Keep")
    # what `remove Keep` leaves when it is killed half-way: its marker and an uncommitted change
    (root / "data" / ".mutation").write_text("remove pack Keep")
    for file in (root / "state" / "packs" / "Keep").iterdir():
        file.unlink()
    code, report = doctor(cli)
    assert code == 1
    [problem] = [p for p in report["problems"] if p["check"] == "no interrupted command"]
    assert "'remove pack Keep' was interrupted" in problem["message"] and not problem["fixed"]

    code, report = doctor(cli, "--fix")
    assert code == 0 and any(p["fixed"] for p in report["problems"])
    assert not (root / "data" / ".mutation").exists()
    assert [p["name"] for p in json.loads(cli("list", "--json").stdout)] == ["Keep"]
    assert doctor(cli) == (0, doctor(cli)[1]) and doctor(cli)[1]["problems"] == []


def test_verify_blobs_fix_still_reports_the_blob_it_had_to_set_aside(cli: Cli, root: Path, tmp_path: Path) -> None:
    model = lora_file(tmp_path / "in" / "c.safetensors", seed=2)
    cli("import", model, "--name", "C")
    path = blob(root, hashlib.sha256(model.read_bytes()).hexdigest())
    path.chmod(0o644)
    with open(path, "ab") as handle:
        handle.write(b"garbage")
    code, report = doctor(cli, "--verify-blobs", "--fix")
    assert code == 1, "the pack still lacks its file after the corrupt blob is set aside"
    messages = [p["message"] for p in report["problems"] if not p["fixed"]]
    assert any("is missing; run 'synapse install C'" in m for m in messages), messages


def test_an_empty_stack_in_runtime_json_is_reported_and_reset(cli: Cli, root: Path) -> None:
    runtime = root / "data" / "runtime.json"
    data = json.loads(runtime.read_text())
    data["ui"]["comfyui"]["stack"] = []
    runtime.write_text(json.dumps(data))
    status = cli("status", ok=False)
    assert status.returncode != 0 and "Traceback" not in status.stderr
    assert "runtime.json is invalid" in status.stderr and "synapse doctor --fix" in status.stderr
    assert "git -C" not in status.stderr, "data/ is not under git: that advice would fail"
    assert doctor(cli)[0] == 1
    code, report = doctor(cli, "--fix")
    assert code == 0, report
    cli("status")
    stacks = {ui: entry["stack"] for ui, entry in json.loads(runtime.read_text())["ui"].items()}
    assert stacks == {ui: ["global"] for ui in UIS}
    assert os.readlink(root / "data" / "views" / "comfyui" / "active") == "profiles/global"
