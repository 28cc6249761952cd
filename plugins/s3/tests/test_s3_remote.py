"""s3:// remotes against moto in server mode on loopback (and a proxy that injects faults)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from synapse_core.remotes import blob_key
from synapse_core.testing import write_safetensors

MiB = 1024 * 1024


def _ok(result):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip().startswith(("{", "[")) else result.stdout


def _one_line_error(result, words: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and words in lines[0], result.stderr


def _big_model(path: Path, size: int) -> Path:
    return write_safetensors(path, {"w": (size // 2,)}, payload=os.urandom(size))


def _store(run, root: Path, bucket: str, endpoint: str, *options: str) -> None:
    _ok(run("store", "init", root=root))
    args = [f"--option={o}" for o in options]
    _ok(run("remote", "add", "team", f"s3://{bucket}/lib", "--endpoint-url", endpoint, *args, root=root))


def _sha(run, root: Path, pack: str) -> str:
    return _ok(run("show", pack, "--json", root=root))["lock"]["resources"]["main"]["sha256"]


@pytest.mark.slow
def test_push_and_pull_between_two_stores(run, tmp_path, s3_server, bucket):
    a, b = tmp_path / "a", tmp_path / "b"
    _store(run, a, bucket, s3_server.endpoint, "part_size_mib=5")
    _store(run, b, bucket, s3_server.endpoint)
    big = _big_model(tmp_path / "files/big.safetensors", 17 * MiB)  # 4 parts of 5 MiB
    small = _big_model(tmp_path / "files/small.safetensors", 1000)
    _ok(run("import", big, "--kind", "lora", root=a))
    _ok(run("import", small, "--kind", "lora", root=a))
    pushed = _ok(run("push", "--all", "--json", root=a))
    assert (pushed["uploaded"], pushed["blobs"]) == (2, 2)
    client = s3_server.client()
    head = client.head_object(Bucket=bucket, Key="lib/" + blob_key(_sha(run, a, "big")))
    assert head["ContentLength"] == big.stat().st_size and head["Metadata"]["sha256"] == _sha(run, a, "big")
    assert _ok(run("push", "--all", "--json", root=a))["uploaded"] == 0

    pulled = _ok(run("pull", "--json", root=b))
    assert sorted(pulled["new_packs"]) == ["big", "small"]
    for name, path in (("big", big), ("small", small)):
        sha = _sha(run, b, name)
        assert (b / "data/blobs/sha256" / sha[:2] / sha).read_bytes() == path.read_bytes()
    usage = _ok(run("du", "--remote", "--json", root=b))
    assert usage[0]["blobs"] == 2 and usage[0]["packs"] == 2 and usage[0]["missing_here"] == 0
    assert _ok(run("doctor", "--verify-blobs", root=b))


@pytest.mark.slow
def test_a_500_on_a_part_is_retried(run, tmp_path, s3_server, bucket, fault_proxy):
    a = tmp_path / "a"
    _store(run, a, bucket, fault_proxy.endpoint, "part_size_mib=5")
    _ok(run("import", _big_model(tmp_path / "files/big.safetensors", 12 * MiB), "--kind", "lora", root=a))
    fault_proxy.fail_parts[2] = 1
    _ok(run("push", "big", root=a))
    assert fault_proxy.failed == [2] and sorted(fault_proxy.parts_sent) == [1, 2, 3]


@pytest.mark.slow
def test_a_part_that_keeps_failing_then_a_resumed_push(run, tmp_path, s3_server, bucket, fault_proxy):
    a = tmp_path / "a"
    _store(run, a, bucket, fault_proxy.endpoint, "part_size_mib=5", "parallel_parts=1")
    _ok(run("import", _big_model(tmp_path / "files/big.safetensors", 22 * MiB), "--kind", "lora", root=a))
    fault_proxy.fail_parts[3] = -1
    failed = run("push", "big", root=a)
    _one_line_error(failed, "InternalError")
    assert s3_server.client().list_objects_v2(Bucket=bucket, Prefix="lib/packs/").get("KeyCount") == 0
    first = set(fault_proxy.parts_sent)
    assert {1, 2} <= first and 3 not in first
    fault_proxy.fail_parts.clear()
    fault_proxy.parts_sent.clear()
    _ok(run("push", "big", root=a))
    assert sorted(fault_proxy.parts_sent) == sorted({1, 2, 3, 4, 5} - first)  # the parts there were checked, not sent


@pytest.mark.slow
def test_an_upload_cut_mid_way_is_resumed(run, popen, tmp_path, s3_server, bucket, fault_proxy):
    a = tmp_path / "a"
    _store(run, a, bucket, fault_proxy.endpoint, "part_size_mib=5", "parallel_parts=1")
    _ok(run("import", _big_model(tmp_path / "files/big.safetensors", 42 * MiB), "--kind", "lora", root=a))  # 9 parts
    push = popen("push", "big", root=a)
    deadline = time.monotonic() + 60
    while len(fault_proxy.parts_sent) < 3 and time.monotonic() < deadline and push.poll() is None:
        time.sleep(0.005)
    push.kill()
    push.wait()
    cut_at = len(fault_proxy.parts_sent)
    assert 3 <= cut_at < 9, "the push was not cut mid-way"
    fault_proxy.parts_sent.clear()
    _ok(run("push", "big", root=a))
    assert len(fault_proxy.parts_sent) <= 9 - cut_at + 1  # at most the part in flight again
    head = s3_server.client().head_object(Bucket=bucket, Key="lib/" + blob_key(_sha(run, a, "big")))
    assert head["ContentLength"] == (tmp_path / "files/big.safetensors").stat().st_size


@pytest.mark.slow
def test_a_remote_object_that_does_not_match_its_name(run, tmp_path, s3_server, bucket):
    a, b = tmp_path / "a", tmp_path / "b"
    _store(run, a, bucket, s3_server.endpoint)
    _store(run, b, bucket, s3_server.endpoint)
    _ok(run("import", _big_model(tmp_path / "files/m.safetensors", 3000), "--kind", "lora", root=a))
    _ok(run("push", "m", root=a))
    sha = _sha(run, a, "m")
    size = (a / "data/blobs/sha256" / sha[:2] / sha).stat().st_size
    s3_server.client().put_object(Bucket=bucket, Key="lib/" + blob_key(sha), Body=b"x" * size)  # same size, other bytes
    _one_line_error(run("pull", "m", root=b), "does not match")
    assert _ok(run("list", "--json", root=b)) == []
    doctor = run("doctor", "--verify-blobs", root=a)
    assert doctor.returncode == 1 and "does not hash to its name" in doctor.stdout


def test_missing_credentials_and_a_missing_bucket(run, tmp_path, s3_server, bucket):
    a = tmp_path / "a"
    _store(run, a, bucket, s3_server.endpoint)
    _ok(run("import", _big_model(tmp_path / "files/m.safetensors", 3000), "--kind", "lora", root=a))
    _one_line_error(run("push", "m", root=a, credentials=False), "no credentials found")
    _ok(run("remote", "add", "gone", "s3://no-such-bucket", "--endpoint-url", s3_server.endpoint, root=a))
    _one_line_error(run("push", "m", "--remote", "gone", root=a), "does not exist")
    doctor = run("doctor", root=a)
    assert doctor.returncode == 1 and "'no-such-bucket' does not exist" in doctor.stdout
    assert "synapse-test" not in (a / "state/config.json").read_text()  # no key in the store
    _one_line_error(run("remote", "add", "x", "s3://Bad_Bucket", root=a), "not a bucket name")
    _one_line_error(
        run("remote", "add", "x", "s3://ok-bucket", "--endpoint-url", "http://k:s@host", root=a), "no credentials"
    )


def test_prune_aborts_only_idle_uploads_of_blobs(run, tmp_path, s3_server, bucket):
    root = tmp_path / "a"
    _store(run, root, bucket, s3_server.endpoint)
    client = s3_server.client()

    def begin(key: str) -> str:
        return client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]

    idle_key = "lib/" + blob_key("a" * 64)  # moto dates every upload's Initiated in 2010: long idle
    begin(idle_key)
    busy_key = "lib/" + blob_key("b" * 64)
    busy = begin(busy_key)
    client.upload_part(Bucket=bucket, Key=busy_key, UploadId=busy, PartNumber=1, Body=b"z" * 100)  # written now
    begin("lib/packs/x/pack.json")  # not a blob: never ours to abort
    begin("other/" + blob_key("c" * 64))  # outside the remote's prefix
    begin("lib/blobs/sha256/aa/not-a-sha256")

    listed = _ok(run("remote", "prune", "--dry-run", "--json", root=root))
    assert listed == {"remote": "team", "uploads": [blob_key("a" * 64)], "bytes": 0, "dry_run": True}
    assert len(client.list_multipart_uploads(Bucket=bucket)["Uploads"]) == 5

    done = _ok(run("remote", "prune", root=root))
    assert "team: 1 unfinished upload(s)" in done
    left = sorted(u["Key"] for u in client.list_multipart_uploads(Bucket=bucket)["Uploads"])
    assert left == sorted(
        [busy_key, "lib/packs/x/pack.json", "other/" + blob_key("c" * 64), "lib/blobs/sha256/aa/not-a-sha256"]
    )
    # with a shorter idle time the busy one is idle too: its part's bytes are counted
    assert _ok(run("remote", "prune", "--older-than", "0s", "--json", root=root))["bytes"] == 100


def test_prune_without_credentials_is_one_line(run, tmp_path, s3_server, bucket):
    root = tmp_path / "a"
    _store(run, root, bucket, s3_server.endpoint)
    _one_line_error(run("remote", "prune", root=root, credentials=False), "no credentials")
