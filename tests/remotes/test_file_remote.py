"""Remotes in a shared folder (file://): push from one store, pull and install into another."""

from __future__ import annotations

import json
from pathlib import Path

from synapse_core.remotes import blob_key


def _init(synapse_cli, root: Path, remote: Path) -> None:
    assert synapse_cli("store", "init", root=root).returncode == 0
    added = synapse_cli("remote", "add", "nas", remote.as_uri(), root=root)
    assert added.returncode == 0, added.stderr


def _json(result):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_push_then_pull_into_another_store(synapse_cli, tmp_path, make_lora):
    remote = tmp_path / "nas"
    remote.mkdir()
    a, b = tmp_path / "a", tmp_path / "b"
    _init(synapse_cli, a, remote)
    _init(synapse_cli, b, remote)
    lora = make_lora("ink", seed=3)
    assert synapse_cli("import", lora, root=a).returncode == 0
    sha = _json(synapse_cli("show", "ink", "--json", root=a))["lock"]["resources"]["main"]["sha256"]

    pushed = _json(synapse_cli("push", "ink", "--json", root=a))
    assert (pushed["uploaded"], pushed["bytes_uploaded"]) == (1, lora.stat().st_size)
    assert (remote / blob_key(sha)).read_bytes() == lora.read_bytes()
    assert (remote / "packs/ink/pack.json").read_bytes() == (a / "state/packs/ink/pack.json").read_bytes()
    again = _json(synapse_cli("push", "--all", "--json", root=a))
    assert again["uploaded"] == 0  # the remote has it: asked by HEAD, nothing sent

    pulled = _json(synapse_cli("pull", "--json", root=b))
    assert pulled["new_packs"] == ["ink"] and pulled["downloaded"] == 1
    assert (b / "data/blobs/sha256" / sha[:2] / sha).read_bytes() == lora.read_bytes()
    assert (b / "state/packs/ink/lock.json").read_bytes() == (a / "state/packs/ink/lock.json").read_bytes()
    listed = _json(synapse_cli("list", "--json", root=b))
    assert [(p["name"], p["installed"]) for p in listed] == [("ink", True)]
    usage = _json(synapse_cli("du", "--remote", "--json", root=b))
    assert usage == [
        {
            "remote": "nas",
            "url": remote.as_uri(),
            "blobs": 1,
            "bytes": lora.stat().st_size,
            "packs": 1,
            "missing_here": 0,
        }
    ]


def test_install_fetches_from_the_remote_first(synapse_cli, tmp_path, make_lora):
    remote = tmp_path / "nas"
    remote.mkdir()
    a, b = tmp_path / "a", tmp_path / "b"
    _init(synapse_cli, a, remote)
    _init(synapse_cli, b, remote)
    lora = make_lora("ink", seed=4)
    assert synapse_cli("import", lora, root=a).returncode == 0
    assert synapse_cli("push", "ink", root=a).returncode == 0
    assert synapse_cli("pull", "ink", root=b).returncode == 0
    sha = _json(synapse_cli("show", "ink", "--json", root=b))["lock"]["resources"]["main"]["sha256"]
    assert synapse_cli("gc", "--now", root=b).returncode == 0  # nothing to collect: the pack holds it
    # the blob goes (as if never installed) and the original file too: only the remote has the bytes
    blob = b / "data/blobs/sha256" / sha[:2] / sha
    blob.chmod(0o644)
    blob.unlink()
    lora.unlink()
    installed = _json(synapse_cli("install", "ink", "--json", root=b))
    assert installed["from_remotes"] == ["main"]
    assert blob.is_file()

    # the source first: it lacks the file, then the remote serves it
    blob.chmod(0o644)
    blob.unlink()
    assert synapse_cli("remote", "order", "source", "remotes", root=b).returncode == 0
    assert _json(synapse_cli("install", "ink", "--json", root=b))["from_remotes"] == ["main"]


def test_a_remote_object_whose_bytes_do_not_match_its_name(synapse_cli, tmp_path, make_lora):
    remote = tmp_path / "nas"
    remote.mkdir()
    a, b = tmp_path / "a", tmp_path / "b"
    _init(synapse_cli, a, remote)
    _init(synapse_cli, b, remote)
    assert synapse_cli("import", make_lora("ink", seed=5), root=a).returncode == 0
    assert synapse_cli("push", "ink", root=a).returncode == 0
    sha = _json(synapse_cli("show", "ink", "--json", root=a))["lock"]["resources"]["main"]["sha256"]
    obj = remote / blob_key(sha)
    data = bytearray(obj.read_bytes())
    data[-1] ^= 0xFF
    obj.write_bytes(bytes(data))

    refused = synapse_cli("pull", root=b)
    assert refused.returncode != 0
    assert "does not match" in refused.stderr and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert _json(synapse_cli("list", "--json", root=b)) == []  # nothing half-pulled
    assert not list((b / "data/blobs/sha256").rglob("*" + sha[-8:]))

    doctor = synapse_cli("doctor", "--verify-blobs", root=a)
    assert doctor.returncode == 1
    assert f"{sha[:12]}… does not hash to its name" in doctor.stdout


def test_remote_config_errors_are_one_line(synapse_cli, tmp_path):
    root = tmp_path / "s"
    assert synapse_cli("store", "init", root=root).returncode == 0
    for args, words in [
        (("remote", "add", "x", "ftp://host/p"), "no plugin opens"),
        (("remote", "add", "x", "file://nas/share"), "folder on this machine"),
        (("remote", "remove", "nope"), "no remote named"),
        (("push", "--all"), "no remote is configured"),
        (("remote", "order", "source", "source"), "each once"),
    ]:
        result = synapse_cli(*args, root=root)
        assert result.returncode != 0, args
        assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    gone = tmp_path / "unmounted"
    assert synapse_cli("remote", "add", "nas", gone.as_uri(), root=root).returncode == 0
    listed = _json(synapse_cli("remote", "list", "--json", root=root))
    assert listed == [{"name": "nas", "url": gone.as_uri(), "endpoint_url": None, "default": True}]
    doctor = synapse_cli("doctor", root=root)
    assert doctor.returncode == 1 and "does not exist (is it mounted?)" in doctor.stdout
    assert "secret" not in (root / "state/config.json").read_text()


def test_prune_removes_only_idle_unfinished_uploads(synapse_cli, tmp_path):
    import os
    import time

    remote = tmp_path / "nas"
    (remote / "tmp").mkdir(parents=True)
    root = tmp_path / "a"
    _init(synapse_cli, root, remote)
    old, fresh = "a" * 64, "b" * 64
    (remote / "tmp" / f"{old}.upload").write_bytes(b"x" * 1000)  # a push interrupted two days ago
    day_ago = time.time() - 2 * 86400
    os.utime(remote / "tmp" / f"{old}.upload", (day_ago, day_ago))
    (remote / "tmp" / f"{fresh}.upload").write_bytes(b"y" * 10)  # a push writing right now
    (remote / "tmp" / "notes.txt").write_text("not ours")
    os.utime(remote / "tmp" / "notes.txt", (day_ago, day_ago))
    (tmp_path / "elsewhere").write_bytes(b"keep")
    os.symlink(tmp_path / "elsewhere", remote / "tmp" / f"{'c' * 64}.upload")

    listed = _json(synapse_cli("remote", "prune", "--dry-run", "--json", root=root))
    assert listed == {"remote": "nas", "uploads": [blob_key(old)], "bytes": 1000, "dry_run": True}
    assert (remote / "tmp" / f"{old}.upload").exists()

    done = synapse_cli("remote", "prune", "nas", root=root)
    assert done.returncode == 0, done.stderr
    assert "1 unfinished upload(s), freed 1000 B" in done.stdout
    assert sorted(p.name for p in (remote / "tmp").iterdir()) == sorted(
        [f"{fresh}.upload", "notes.txt", f"{'c' * 64}.upload"]
    )
    assert (tmp_path / "elsewhere").read_bytes() == b"keep"

    bad = synapse_cli("remote", "prune", "--older-than", "soon", root=root)
    assert bad.returncode != 0 and "--older-than takes a number and a unit" in bad.stderr
