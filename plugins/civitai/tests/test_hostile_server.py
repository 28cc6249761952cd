"""Issue 12, the network's side: a Civitai (or a storage host) answering with hostile or broken
data. Every value from a network is validated before it becomes a path, a name or a number,
and what a network sends is bounded. Each test names the audit's problem it reproduces."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from civitai_checks import assert_blob, blobs, failed, ok, pack_files

from synapse_civitai.fake_server import FakeCivitai, FakeFile, FakeImage

MIB = 1 << 20


def tamper(fake: FakeCivitai, path: str, change: Callable[[Any], Any], *, query: str = "") -> None:
    """From now on, answer ``path`` with the fake's own JSON for it, changed by ``change``."""
    data = httpx.get(f"{fake.api_url}{path}{query}").json()
    body = change(data)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    fake.inject(f"^{path}$", 200, body=raw, content_type="application/json", times=None, server="api")


def _with_sha256(value: str) -> Callable[[Any], Any]:
    def change(model: Any) -> Any:
        model["modelVersions"][0]["files"][0]["hashes"]["SHA256"] = value
        return model

    return change


# -- 1 and 12: a SHA256 that is not one -----------------------------------------------------------------------


def test_1_a_sha256_that_is_a_path_never_names_a_file(
    fake: FakeCivitai, root: Path, tmp_path: Path, synapse: Callable[..., Any], add_model: Callable[..., FakeFile]
) -> None:
    add_model(700001, 701001, 702001)
    victim = tmp_path / "victim.part"  # what data/tmp/../../../victim.part names
    victim.write_bytes(b"the user's file")
    tamper(fake, "/api/v1/models/700001", _with_sha256("../../../victim"))
    for args in (("--sync",), ()):
        line = failed(synapse("import", "civitai:700001", *args))
        assert "sha256" in line and "64" in line, line
    assert victim.read_bytes() == b"the user's file"
    assert blobs(root) == []
    assert not (root / "state" / "packs").exists() or not list((root / "state" / "packs").iterdir())


@pytest.mark.parametrize("value", ["NOT-A-HASH", "ab" * 31, "/" + "a" * 63, "a" * 64 + "\n"])
def test_12_a_malformed_sha256_is_one_line_in_import(
    fake: FakeCivitai, synapse: Callable[..., Any], add_model: Callable[..., FakeFile], value: str
) -> None:
    add_model(703001, 704001, 705001)
    tamper(fake, "/api/v1/models/703001", _with_sha256(value))
    for args in ((), ("--sync",)):
        assert "sha256" in failed(synapse("import", "civitai:703001", *args))


def test_12_a_malformed_sha256_in_an_update_is_one_line(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any], add_model: Callable[..., FakeFile]
) -> None:
    add_model(706001, 707001, 708001, name="Upd")
    ok(synapse("import", "civitai:706001", "--name", "Upd", "--sync"))
    bad = FakeFile(708002, "upd_v2.safetensors", size=3000, hashes={"SHA256": "../../x", "AutoV2": "0123456789"})
    fake.add_version(706001, 707002, name="v2", files=[bad])
    plan = ok(synapse("check-updates", "--json"))
    assert [n["pack"] for n in plan["failed"]] == ["Upd"] and "sha256" in plan["failed"][0]["message"]
    assert "sha256" in failed(synapse("update", "Upd"))
    assert "sha256" in failed(synapse("update", "Upd", "--sync"))
    assert pack_files(root, "Upd")[0]["source"]["version_id"] == "707001"


# -- 2: a link planted at the partial download's name -------------------------------------------------------------


@pytest.mark.parametrize("plant", ["symlink", "hard link"])
def test_2_a_link_planted_as_the_partial_is_never_written_through(
    fake: FakeCivitai,
    root: Path,
    tmp_path: Path,
    synapse: Callable[..., Any],
    add_model: Callable[..., FakeFile],
    plant: str,
) -> None:
    file = add_model(709001, 710001, 711001, size=64 * 1024)
    sha = fake.file_sha256(file.id)
    outside = tmp_path / "users-file.bin"
    outside.write_bytes(b"mine")
    outside.chmod(0o644)
    part = root / "data" / "tmp" / f"{sha}.part"
    part.parent.mkdir(parents=True, exist_ok=True)
    if plant == "symlink":
        part.symlink_to(outside)
    else:
        os.link(outside, part)
    ok(synapse("import", "civitai:709001", "--sync"))
    assert outside.read_bytes() == b"mine" and stat.S_IMODE(outside.stat().st_mode) == 0o644
    assert_blob(root, sha)
    blob = root / "data" / "blobs" / "sha256" / sha[:2] / sha
    assert not blob.is_symlink() and blob.stat().st_nlink == 1


# -- 10 and 18: only the API says a model is gone; errors name their cause -----------------------------------------


def test_10_a_404_from_the_storage_host_does_not_mark_the_pack_removed(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any], add_model: Callable[..., FakeFile]
) -> None:
    file = add_model(715001, 716001, 717001, name="Kept")
    ok(synapse("import", "civitai:715001", "--name", "Kept"))
    fake.inject(rf"^/model/{file.id}/", 404, server="cdn", times=None)
    line = failed(synapse("install", "Kept"))
    assert "download host" in line, line
    assert pack_files(root, "Kept")[0]["upstream"] == "ok"


def test_10_18_a_redirect_to_a_file_url_is_refused_by_name(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any], add_model: Callable[..., FakeFile]
) -> None:
    add_model(718001, 719001, 720001, name="Redirected")
    ok(synapse("import", "civitai:718001", "--name", "Redirected"))
    fake.inject(r"^/api/download/", 302, headers={"location": "file:///etc/passwd"}, server="api", times=None)
    line = failed(synapse("install", "Redirected"))
    assert "file:" in line and "network" not in line, line
    assert pack_files(root, "Redirected")[0]["upstream"] == "ok"


def test_18_a_publish_across_file_systems_blames_the_store_not_the_source(
    root: Path, synapse: Callable[..., Any], tmp_path: Path
) -> None:
    from synapse_core.testing import lora_file

    blobs_dir = root / "data" / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(blobs_dir)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs (needs root)")
    try:
        source = lora_file(tmp_path / "files" / "x.safetensors", seed=5)
        line = failed(synapse("import", source, "--name", "X"))
        assert "file system" in line and str(source) not in line, line
    finally:
        subprocess.run(["umount", "-l", str(blobs_dir)], capture_output=True)


# -- 15: JSON nested too deeply --------------------------------------------------------------------------------


def test_15_deeply_nested_json_is_one_line(
    fake: FakeCivitai, synapse: Callable[..., Any], add_model: Callable[..., FakeFile]
) -> None:
    add_model(721001, 722001, 723001)
    tamper(fake, "/api/v1/models/721001", lambda _: b"[" * 200_000 + b"]" * 200_000)
    assert "nested" in failed(synapse("import", "civitai:721001"))


def test_15_an_api_answer_is_bounded(
    fake: FakeCivitai, synapse: Callable[..., Any], add_model: Callable[..., FakeFile]
) -> None:
    add_model(724001, 725001, 726001)
    tamper(fake, "/api/v1/models/724001", lambda model: {**model, "padding": "x" * (40 * MIB)})
    assert "larger than" in failed(synapse("import", "civitai:724001"))


# -- 19: a Retry-After beyond any budget ------------------------------------------------------------------------


def test_19_a_retry_after_of_a_day_gives_up_at_once_with_the_servers_time(
    fake: FakeCivitai, synapse: Callable[..., Any], add_model: Callable[..., FakeFile]
) -> None:
    add_model(727001, 728001, 729001)
    fake.inject(r"^/api/v1/models/727001$", 429, headers={"retry-after": "86400"}, server="api", times=None)
    started = time.monotonic()
    line = failed(synapse("import", "civitai:727001", env={"SYNAPSE_CIVITAI_BACKOFF": "1"}))
    assert time.monotonic() - started < 20
    assert "24 h" in line and "try again after" in line, line


def test_19_a_short_retry_after_is_waited_for_and_said(
    fake: FakeCivitai, synapse: Callable[..., Any], add_model: Callable[..., FakeFile]
) -> None:
    add_model(730001, 731001, 732001)
    fake.inject(r"^/api/v1/models/730001$", 429, headers={"retry-after": "1"}, server="api", times=1)
    result = synapse("import", "civitai:730001")
    ok(result)
    assert "trying again in" in result.stderr and "429" in result.stderr, result.stderr


# -- 20: previews and descriptions are bounded ------------------------------------------------------------------


def test_20_a_huge_preview_is_skipped_and_a_huge_description_cut(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any], add_model: Callable[..., FakeFile]
) -> None:
    huge = b"\xff\xd8\xff" + b"\0" * (20 * MIB)
    add_model(
        733001, 734001, 735001, name="Big", model={"description": "d" * MIB}, images=[FakeImage(7330, content=huge)]
    )
    result = ok(synapse("import", "civitai:733001", "--name", "Big", "--json"))
    assert result["previews"] == 0
    assert any("preview" in w and "larger than" in w for w in result["warnings"]), result["warnings"]
    assert any("description" in w for w in result["warnings"]), result["warnings"]
    pack, _ = pack_files(root, "Big")
    assert len(pack["description"]) <= 64 * 1024
    previews = root / "state" / "packs" / "Big" / "resources" / "previews"
    assert not previews.exists() or not list(previews.iterdir())


# -- 23: concurrent check-updates keep each other's entries --------------------------------------------------------


def test_23_concurrent_check_updates_keep_each_others_entries(
    fake: FakeCivitai, root: Path, env: dict[str, str], synapse: Callable[..., Any], add_model: Callable[..., FakeFile]
) -> None:
    add_model(736001, 737001, 738001, name="One")
    add_model(739001, 740001, 741001, name="Two")
    ok(synapse("import", "civitai:736001", "--name", "One"))
    ok(synapse("import", "civitai:739001", "--name", "Two"))
    fake.inject(r"^/api/v1/models$", delay=1.5, times=2, server="api")
    argv = [str(Path(sys.executable).parent / "synapse"), "--root", str(root), "check-updates"]
    runs = [
        subprocess.Popen([*argv, name], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for name in ("One", "Two")
    ]
    for run in runs:
        assert run.wait(timeout=60) == 0, run.stderr.read() if run.stderr else ""
    checks = json.loads((root / "data" / "update-checks.json").read_text())
    assert sorted(checks["packs"]) == ["One", "Two"]


# -- 26: a string where a list belongs --------------------------------------------------------------------------


def test_26_trained_words_given_as_one_string_are_one_word(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any], add_model: Callable[..., FakeFile]
) -> None:
    add_model(742001, 743001, 744001, name="Words")

    def as_string(model: Any) -> Any:
        model["modelVersions"][0]["trainedWords"] = "paper lantern"
        model["tags"] = "style"
        return model

    tamper(fake, "/api/v1/models/742001", as_string)
    ok(synapse("import", "civitai:742001", "--name", "Words"))
    pack, _ = pack_files(root, "Words")
    assert pack["trigger_words"] == ["paper lantern"] and pack["tags"] == ["style"]
