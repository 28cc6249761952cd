"""kill -9 of ``synapse adopt`` at 20 random moments (issue 15): after each, the next command
(``doctor --fix``) completes or rolls the adopt back, and after ``adopt --undo`` where it had
completed, both installs are byte for byte and mode for mode what they were."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from uiviews.installs import comfy_install, webui_install
from uiviews.kit import PLUGIN_ENV
from uiviews.test_adopt import manifest

from synapse_core.testing import lora_file

SYNAPSE = Path(sys.executable).parent / "synapse"
HOOK = Path(__file__).parent.parent / "crashpoints"
POINTS = 20

pytestmark = pytest.mark.slow


def run(top: Path, *args: str, crash_at: int = 0, count_file: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNAPSE_")}
    env.update(PLUGIN_ENV)
    env["PYTHONPATH"] = os.pathsep.join([str(HOOK), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if crash_at:
        env["SYNAPSE_CRASH_AT"] = str(crash_at)
    if count_file is not None:
        env["SYNAPSE_CRASH_COUNT"] = str(count_file)
    return subprocess.run(
        [str(SYNAPSE), "--root", str(top / "store"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=top,
        timeout=120,
        check=False,
        start_new_session=True,
    )


def build(top: Path) -> None:
    comfy = comfy_install(top / "ComfyUI")
    a1111 = webui_install(top / "webui")
    for n in range(3):
        lora_file(comfy / f"models/loras/sub{n}/l{n}.safetensors", seed=n)
    (comfy / "models/loras/sub0/l0.preview.png").write_bytes(b"png")
    lora_file(top / "shared/s.safetensors", seed=9)
    os.symlink("../../../shared", comfy / "models/loras/linked")
    (a1111 / "models/Lora").mkdir(parents=True)
    shutil.copy(comfy / "models/loras/sub1/l1.safetensors", a1111 / "models/Lora/l1.safetensors")
    os.chmod(a1111 / "models/Lora/l1.safetensors", 0o640)
    lora_file(a1111 / "models/Lora/own.safetensors", seed=7)
    (a1111 / "models/Lora/own.json").write_text(json.dumps({"activation text": "own"}))
    assert run(top, "store", "init").returncode == 0


def trees(top: Path) -> dict[str, tuple[str, int, str | None]]:
    return {k.replace(str(top), ""): v for k, v in manifest(top / "ComfyUI", top / "webui", top / "shared").items()}


def test_adopt_killed_at_random_moments(tmp_path: Path) -> None:
    template = tmp_path / "template"
    build(template)
    before = trees(template)
    counting = tmp_path / "count"
    shutil.copytree(template, counting, symlinks=True)
    count_file = tmp_path / "calls.txt"
    done = run(counting, "adopt", "ComfyUI", "webui", count_file=count_file)
    assert done.returncode == 0, done.stderr
    calls = len(count_file.read_text().splitlines())  # one counted filesystem or git call a line
    seed = random.randrange(1 << 30)
    points = sorted(random.Random(seed).sample(range(1, calls + 1), min(POINTS, calls)))
    for point in points:
        top = tmp_path / f"p{point}"
        shutil.copytree(template, top, symlinks=True)
        killed = run(top, "adopt", "ComfyUI", "webui", crash_at=point)
        assert "Traceback" not in killed.stderr, (seed, point, killed.stderr)
        fixed = run(top, "doctor", "--fix")
        assert fixed.returncode == 0 and "Traceback" not in fixed.stderr, (seed, point, fixed.stdout, fixed.stderr)
        journals = list((top / "store/data/adopt").glob("*.json")) if (top / "store/data/adopt").is_dir() else []
        if journals:  # the adopt was completed: undo gives everything back
            assert [json.loads(j.read_text())["phase"] for j in journals] == ["done"], (seed, point)
            undo = run(top, "adopt", "--undo", "ComfyUI")
            assert undo.returncode == 0, (seed, point, undo.stderr)
        assert trees(top) == before, (seed, point, killed.returncode)
        assert run(top, "doctor").returncode == 0, (seed, point)
        shutil.rmtree(top)
