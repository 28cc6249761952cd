"""A store written by the code before schema 2 opens, migrates once, and every command works on it.

tests/fixtures/store-v1.tar.gz was made by tests/fixtures/make_v1_store.py with main at 3f6af35:
three packs (two from the Civitai stand-in, one local file), a ComfyUI install attached, the
work profile of one pack in use, an update check on record.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from synapse_civitai.fake_server import FakeCivitai, FakeFile, seed_demo

FIXTURE = Path(__file__).parent / "fixtures" / "store-v1.tar.gz"
BUILT_AT = "/tmp/synapse-v1-fixture"
"""Where make_v1_store.py built the fixture: absolute paths under it are moved to the test's folder."""
SYNAPSE = Path(sys.executable).parent / "synapse"


def _git(state: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(state), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def unpack_v1(into: Path) -> Path:
    """The fixture, moved under ``into``: the prefix it was built under is rewritten in its text
    files, and the moved state is committed (as if it had been made there). Returns the folder."""
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(into, filter="tar")
    top = into / "v1"
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_symlink() or path.suffix not in (".json", ".yaml"):
                continue
            text = path.read_text()
            if BUILT_AT in text:
                path.chmod(0o644)
                path.write_text(text.replace(BUILT_AT, str(top)))
    _git(top / "store" / "state", "commit", "-qam", "fixture moved")
    return top


@pytest.fixture
def fake() -> Iterator[FakeCivitai]:
    with FakeCivitai() as server:
        seed_demo(server)
        yield server


def test_a_store_of_schema_1_migrates_once_and_every_command_works(tmp_path: Path, fake: FakeCivitai) -> None:
    top = unpack_v1(tmp_path)
    root, state = top / "store", top / "store" / "state"
    commits_before = _git(state, "rev-list", "--count", "HEAD").strip()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SYNAPSE_", "CIVITAI_"))},
        "SYNAPSE_CIVITAI_URL": fake.api_url,
        "SYNAPSE_CIVITAI_BACKOFF": "0.01",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }

    def synapse(*args: str | Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(SYNAPSE), "--root", str(root), *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        assert (done.returncode == 0) == ok, f"synapse {' '.join(map(str, args))}: {done.stdout}{done.stderr}"
        assert "Traceback" not in done.stderr
        return done

    # the first command migrates: one commit, every file at schema 2, ids as strings
    synapse("back", "--ui", "comfyui")  # the light form leaves a store of older code to the full one
    log = _git(state, "log", "--format=%s", f"-{int(commits_before) + 5}").splitlines()
    assert log[:2] == ["back", "migrate the store to schema 2"] or log[:1] == ["migrate the store to schema 2"]
    assert sum(line.startswith("migrate") for line in log) == 1
    for path in [*state.rglob("*.json"), root / "data" / "runtime.json", root / "data" / "update-checks.json"]:
        assert json.loads(path.read_text())["schema_version"] == 2, path
    pack = json.loads((state / "packs" / "PaperLanternStyle" / "pack.json").read_text())
    assert pack["source"]["version_id"] == "909001"
    assert pack["source"]["metadata"] == {"model_id": 424242}
    assert set(pack["source"]) == {"provider", "url", "version_id", "version_name", "metadata"}
    lock = json.loads((state / "packs" / "PaperLanternStyle" / "lock.json").read_text())
    assert (lock["resources"]["main"]["version_id"], lock["resources"]["main"]["file_id"]) == ("909001", "808001")
    local = json.loads((state / "packs" / "LocalStyle" / "pack.json").read_text())
    assert local["source"]["metadata"] == {"path": str(top / "files" / "local_style.safetensors")}
    checks = json.loads((root / "data" / "update-checks.json").read_text())
    assert checks["packs"]["PaperLanternStyle"]["latest_version_id"] == "909002"
    assert not (root / "data" / ".mutation").exists()

    # once: the next command does not migrate again
    head = _git(state, "rev-parse", "HEAD")
    synapse("status")
    assert _git(state, "rev-parse", "HEAD") == head

    # every command on the migrated store
    workflow = tmp_path / "workflow.json"
    workflow.write_text(
        json.dumps({"1": {"class_type": "LoraLoader", "inputs": {"lora_name": "paper_lantern_v1.safetensors"}}})
    )
    fresh = tmp_path / "new_style.safetensors"
    fresh.write_bytes((top / "files" / "local_style.safetensors").read_bytes() + b"\0" * 8)
    fake.add_version(424242, 909003, name="v3.0", files=[FakeFile(808009, "paper_lantern_v3.safetensors", size=4096)])
    for args in (
        ("list",),
        ("show", "PaperLanternStyle"),
        ("status", "--json"),
        ("profiles",),
        ("profile", "show", "work__PaperLanternStyle"),
        ("history",),
        ("du",),
        ("plugins",),
        ("doctor",),
        ("search", "lantern"),
        ("search", "lantern", "--remote"),
        ("identify", top / "files" / "local_style.safetensors"),
        ("needs", workflow),
        ("use", "LocalStyle", "--ui", "comfyui"),
        ("back", "--ui", "comfyui"),
        ("use", "InkWashEmbedding"),
        ("back",),
        ("install", "InkWashEmbedding"),
        ("check-updates",),
        ("update", "PaperLanternStyle", "--dry-run"),
        ("update", "PaperLanternStyle", "--sync"),
        ("pack", "policy", "PaperLanternStyle", "pinned"),
        ("import", fresh, "--name", "NewStyle", "--sync"),
        ("import", "https://civitai.com/models/626262", "--sync"),
        ("remove", "LocalStyle"),
        ("detach", "comfyui", top / "ComfyUI"),
        ("attach", "comfyui", top / "ComfyUI"),
        ("gc", "--dry-run"),
        ("gc", "--now"),
        ("doctor", "--fix"),
    ):
        synapse(*args)
    shown = json.loads(synapse("show", "PaperLanternStyle", "--json").stdout)
    assert shown["pack"]["source"]["version_id"] == "909003"
    assert sum(line.startswith("migrate") for line in _git(state, "log", "--format=%s").splitlines()) == 1
