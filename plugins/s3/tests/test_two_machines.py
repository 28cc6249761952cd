"""Two stores on one machine stand for two machines: push from one, then pull and sync into
the other with the Civitai stand-in stopped, and compare the UIs' views byte for byte."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synapse_civitai.fake_server import FakeCivitai, seed_demo
from synapse_core.testing import write_safetensors
from synapse_s3.testing import TEST_CREDENTIALS

SYNAPSE = Path(sys.executable).parent / "synapse"


def view_files(root: Path, ui: str = "comfyui") -> dict[str, str]:
    """Every file a UI sees through its active view: path -> sha256 of the bytes read through it
    (Synapse's own manifest files left out: they name the profile)."""
    active = root / "data/views" / ui / "active"
    found = {}
    for dirpath, _dirs, names in os.walk(active, followlinks=True):
        for name in names:
            if name.startswith(".synapse-"):
                continue
            path = Path(dirpath) / name
            found[path.relative_to(active).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.mark.slow
def test_push_then_sync_a_lock_file_into_a_second_store(tmp_path, s3_server, bucket):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SYNAPSE_", "CIVITAI_"))}
    env.update(TEST_CREDENTIALS)
    env.update(
        SYNAPSE_LOAD_PLUGINS="s3,civitai,comfyui",
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        SYNAPSE_CIVITAI_BACKOFF="0.01",
    )

    def run(*args: str | Path, root: Path):
        result = subprocess.run(
            [str(SYNAPSE), "--root", str(root), *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )
        return result

    def ok(*args: str | Path, root: Path) -> str:
        result = run(*args, root=root)
        assert result.returncode == 0, result.stderr
        return result.stdout

    a, b = tmp_path / "a", tmp_path / "b"
    remote = ("remote", "add", "team", f"s3://{bucket}", "--endpoint-url", s3_server.endpoint)
    with FakeCivitai() as fake:
        seed_demo(fake)
        env["SYNAPSE_CIVITAI_URL"] = fake.api_url
        for root in (a, b):
            ok("store", "init", root=root)
            ok(*remote, root=root)
        ok("import", "civitai:424242@909001", "--sync", root=a)
        ok("import", "civitai:515151", "--sync", root=a)
        local = write_safetensors(tmp_path / "files/ink.safetensors", {"w": (600,)}, payload=os.urandom(1200))
        ok("import", local, "--kind", "lora", root=a)
        ok("push", "--all", root=a)
        ok("export", "-o", tmp_path / "synapse.lock", root=a)
    # the stand-in is stopped: everything comes from the remote now
    lock = (tmp_path / "synapse.lock").read_text()
    assert "sha256" in lock and "order = [" in lock
    assert ok("export", root=a).encode() == (tmp_path / "synapse.lock").read_bytes()  # deterministic

    ok("import", write_safetensors(tmp_path / "files/mine.safetensors", {"w": (8,)}), "--kind", "lora", root=b)
    synced = json.loads(ok("sync", tmp_path / "synapse.lock", "--json", root=b))
    assert sorted(synced["imported"]) == sorted(p["name"] for p in json.loads(ok("list", "--json", root=a)))
    assert synced["fetched"] and synced["fetched"] == synced["from_remotes"]
    assert view_files(b) == view_files(a) and view_files(a)
    assert "mine" in [p["name"] for p in json.loads(ok("list", "--json", root=b))]  # the user's own pack stays

    # a lock file naming a file that no remote and no source has: refused with the list, nothing changed
    text = (tmp_path / "synapse.lock").read_text()
    first_sha = text.split('sha256 = "', 1)[1][:64]
    (tmp_path / "broken.lock").write_text(text.replace(first_sha, "0" * 64))
    c = tmp_path / "c"
    ok("store", "init", root=c)
    ok(*remote, root=c)
    refused = run("sync", tmp_path / "broken.lock", root=c)
    assert refused.returncode != 0 and "found nowhere" in refused.stderr, refused.stderr
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in refused.stderr  # the other lines: the source's retries
    assert json.loads(ok("list", "--json", root=c)) == []
