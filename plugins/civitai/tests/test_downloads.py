"""Downloads through `synapse install` against the fake: resume after kill -9, retries and backoff,
gated and refused files, integrity, web pages instead of files, the token, and progress output."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from civitai_checks import assert_blob, assert_secret_absent, blobs, failed, ok, pack_files, partials

from synapse_civitai.fake_server import FakeCivitai, FakeFile

PACK = "PaperLanternStyle"
MIB = 1 << 20
TOKEN = "civitai-9d2e61f0c4b7a35e8f1d"


@pytest.fixture
def big(add_model: Callable[..., FakeFile]) -> FakeFile:
    """A 4 MiB file (pack 'BigStyle'), big enough to be caught halfway."""
    return add_model(660001, 661001, 662001, size=4 * MIB, name="Big Style")


def _wait_for(predicate: Callable[[], bool], proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"the install ended early (exit {proc.returncode})"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _part_of(root: Path, sha256: str) -> Path:
    return root / "data" / "tmp" / f"{sha256}.part"


def _cdn_file_requests(fake: FakeCivitai, file_id: int) -> list[Any]:
    return fake.requests_for("cdn", rf"^/model/{file_id}/")


# -- resume ------------------------------------------------------------------------------------------------------


def test_kill_9_halfway_then_install_resumes_with_range(
    fake: FakeCivitai, big: FakeFile, root: Path, env: dict[str, str], synapse: Callable[..., Any]
) -> None:
    sha = fake.file_sha256(big.id)
    ok(synapse("import", "civitai:660001"))
    fake.inject(rf"^/model/{big.id}/", server="cdn", slow_bytes_per_sec=MIB, times=1)
    part = _part_of(root, sha)
    argv = [str(Path(sys.executable).parent / "synapse"), "--root", str(root), "install", "BigStyle"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: proc.poll() is None and part.is_file() and part.stat().st_size >= MIB, proc)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    kept = part.stat().st_size
    assert 0 < kept < big.byte_size, "killed halfway"
    assert part.read_bytes() == big.read(0, kept), "the partial holds the file's first bytes"
    assert blobs(root) == []

    run = synapse("install", "BigStyle")
    ok(run)
    assert run.stderr == "", "no progress (nor anything else) when stderr is not a terminal"
    resumed = _cdn_file_requests(fake, big.id)[-1]
    assert resumed.header("range") == f"bytes={kept}-"
    assert resumed.header("if-range") == big.etag()  # the validator kept beside the partial
    assert resumed.status == 206
    assert_blob(root, sha)
    assert partials(root) == []


def test_a_200_answer_to_a_range_request_restarts_cleanly(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any]
) -> None:
    """A server that ignores Range sends the whole file: it must not be appended to the partial."""
    ok(synapse("import", "civitai:424242"))
    sha = fake.file_sha256(808003)
    file = fake.get_file(808003)[0]
    part = _part_of(root, sha)
    part.write_bytes(file.read(0, 100_000))  # what an earlier, killed run left
    fake.inject(r"^/model/808003/", server="cdn", ignore_range=True, times=1)
    ok(synapse("install", PACK))
    [request] = _cdn_file_requests(fake, 808003)
    assert request.header("range") == "bytes=100000-" and request.status == 200
    assert_blob(root, sha)
    assert partials(root) == []


def test_a_partial_that_already_holds_the_whole_file_is_published(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any]
) -> None:
    """Killed after the last byte but before publishing: the resume asks for nothing more (416)."""
    ok(synapse("import", "civitai:424242"))
    sha = fake.file_sha256(808003)
    _part_of(root, sha).write_bytes(fake.get_file(808003)[0].read())
    ok(synapse("install", PACK))
    requests = _cdn_file_requests(fake, 808003)
    assert requests[0].header("range") == f"bytes={fake.get_file(808003)[0].byte_size}-"
    assert_blob(root, sha)
    assert partials(root) == []


def test_a_truncated_body_is_retried_and_completes(
    fake: FakeCivitai, add_model: Callable[..., FakeFile], root: Path, synapse: Callable[..., Any]
) -> None:
    file = add_model(670001, 671001, 672001, size=3 * MIB, name="Cut Short")
    ok(synapse("import", "civitai:670001"))
    cut = 2 * MIB + 100
    fake.inject(rf"^/model/{file.id}/", server="cdn", truncate_after=cut, times=1)
    ok(synapse("install", "CutShort"))
    first, *rest = _cdn_file_requests(fake, file.id)
    assert first.header("range") is None
    assert rest, "the download was tried again"
    start = int(rest[0].header("range").removeprefix("bytes=").rstrip("-"))
    assert 0 < start <= cut, "the retry resumed after the bytes already received"
    assert_blob(root, fake.file_sha256(file.id))


# -- retries and backoff -------------------------------------------------------------------------------------------


def test_503_twice_then_success(fake: FakeCivitai, root: Path, synapse: Callable[..., Any]) -> None:
    ok(synapse("import", "civitai:424242"))
    knob = fake.inject(r"^/api/download/models/909002$", 503, times=2)
    ok(synapse("install", PACK))
    assert knob.hits == 2
    assert [r.status for r in fake.requests_for("api", r"^/api/download/")] == [503, 503, 307]
    assert_blob(root, fake.file_sha256(808003))


def test_429_with_retry_after_is_honoured(fake: FakeCivitai, root: Path, synapse: Callable[..., Any]) -> None:
    ok(synapse("import", "civitai:424242"))
    fake.inject(r"^/api/download/models/909002$", 429, times=1, headers={"Retry-After": "1"})
    ok(synapse("install", PACK))
    first, second = fake.requests_for("api", r"^/api/download/")[:2]
    assert first.status == 429
    assert second.time - first.time >= 1.0, "Retry-After: 1 was not waited for (backoff alone is 0.01 s here)"
    assert_blob(root, fake.file_sha256(808003))


def test_429_forever_is_a_clear_error_after_retries(fake: FakeCivitai, root: Path, synapse: Callable[..., Any]) -> None:
    ok(synapse("import", "civitai:424242"))
    fake.inject(r"^/api/download/models/909002$", 429, times=None)
    err = failed(synapse("install", PACK))
    assert "rate limit" in err.lower()
    assert len(fake.requests_for("api", r"^/api/download/")) >= 3, "it retried before giving up"
    assert blobs(root) == []


# -- gated and refused files ------------------------------------------------------------------------------------


def test_a_gated_model_needs_the_token_and_the_token_stays_on_the_api_host(
    fake: FakeCivitai, add_model: Callable[..., FakeFile], root: Path, synapse: Callable[..., Any]
) -> None:
    file = add_model(680001, 681001, 682001, size=20_000, name="Members Only", require_auth=True)
    ok(synapse("import", "civitai:680001"))
    run = synapse("install", "MembersOnly")
    err = failed(run)
    assert "CIVITAI_API_TOKEN" in err and "synapse civitai login" in err
    assert blobs(root) == []

    fake.add_token(TOKEN)
    with_token = {"CIVITAI_API_TOKEN": TOKEN}
    fake.clear_requests()
    runs = [synapse("install", "MembersOnly", env=with_token)]
    ok(runs[0])
    assert_blob(root, fake.file_sha256(file.id))
    download = fake.requests_for("api", r"^/api/download/")
    assert download and all(r.header("authorization") == f"Bearer {TOKEN}" for r in download)
    assert _cdn_file_requests(fake, file.id)
    assert all(r.header("authorization") is None for r in fake.requests_for("cdn"))
    runs += [synapse(*args, env=with_token) for args in (("show", "MembersOnly"), ("list", "--json"))]
    assert_secret_absent(TOKEN, root, *(r.stdout + r.stderr for r in runs))


def test_early_access_names_the_deadline(
    fake: FakeCivitai, add_model: Callable[..., FakeFile], root: Path, synapse: Callable[..., Any]
) -> None:
    add_model(
        690001, 691001, 692001, name="Soon", availability="EarlyAccess", early_access_deadline="2099-05-04T03:02:01Z"
    )
    ok(synapse("import", "civitai:690001"))
    err = failed(synapse("install", "Soon"))
    assert "Early Access" in err and "2099-05-04" in err
    assert pack_files(root, "Soon")[0]["upstream"] == "ok"


def test_downloads_disabled_by_the_creator(
    fake: FakeCivitai, add_model: Callable[..., FakeFile], root: Path, synapse: Callable[..., Any]
) -> None:
    add_model(700001, 701001, 702001, name="Generate Only", usage_control="Generation")
    ok(synapse("import", "civitai:700001"))
    err = failed(synapse("install", "GenerateOnly"))
    assert "disabled downloads" in err
    assert "CIVITAI_API_TOKEN" not in err  # not mistaken for "login required" (both are 401)


def test_a_version_gone_upstream_marks_the_pack_removed_and_keeps_its_metadata(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any]
) -> None:
    ok(synapse("import", "civitai:424242"))
    pack_before, lock_before = pack_files(root, PACK)
    fake.get_version(909002).published = False
    err = failed(synapse("install", PACK))
    assert "not found on Civitai" in err
    pack_after, lock_after = pack_files(root, PACK)
    assert pack_after["upstream"] == "removed"
    assert {k: v for k, v in pack_after.items() if k != "upstream"} == {
        k: v for k, v in pack_before.items() if k != "upstream"
    }
    assert lock_after == lock_before
    assert [p["upstream"] for p in ok(synapse("list", "--json"))] == ["removed"]


def test_a_transient_storage_404_is_retried_and_does_not_mark_the_pack_removed(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any]
) -> None:
    """civitai-api.md 1.6: a storage-resolve failure is a 404 with Cache-Control: private, no-store."""
    ok(synapse("import", "civitai:424242"))
    fake.storage_failures = 1
    ok(synapse("install", PACK))
    assert [r.status for r in fake.requests_for("api", r"^/api/download/")] == [404, 307]
    assert pack_files(root, PACK)[0]["upstream"] == "ok"
    assert_blob(root, fake.file_sha256(808003))


def test_a_pack_back_upstream_is_no_longer_marked_removed(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any]
) -> None:
    ok(synapse("import", "civitai:424242"))
    fake.get_version(909002).published = False
    failed(synapse("install", PACK))
    assert pack_files(root, PACK)[0]["upstream"] == "removed"
    fake.get_version(909002).published = True  # republished by its creator
    ok(synapse("install", PACK))
    assert pack_files(root, PACK)[0]["upstream"] == "ok"


def test_an_archived_model_is_a_410_and_marks_the_pack_archived(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any]
) -> None:
    ok(synapse("import", "civitai:424242"))
    fake.get_model(424242).mode = "Archived"
    err = failed(synapse("install", PACK))
    assert "archived" in err
    assert fake.requests_for("api", r"^/api/download/")[-1].status == 410
    pack, lock = pack_files(root, PACK)
    assert pack["upstream"] == "archived" and pack["trigger_words"] == ["paperlantern style"]
    assert lock["resources"]["main"]["file_id"] == "808003"


# -- integrity and web pages -------------------------------------------------------------------------------------


def test_bytes_that_do_not_match_civitais_sha256_leave_nothing(
    fake: FakeCivitai, add_model: Callable[..., FakeFile], root: Path, synapse: Callable[..., Any]
) -> None:
    wrong = "AB" * 32
    file = add_model(
        710001, 711001, 712001, size=300_000, name="Bad Hash", hashes={"AutoV2": wrong[:10], "SHA256": wrong}
    )
    ok(synapse("import", "civitai:710001"))
    run = synapse("install", "BadHash")
    err = failed(run)
    assert run.returncode != 0
    assert "sha256" in err and "does not match" in err
    assert _cdn_file_requests(fake, file.id), "the bytes were downloaded, then refused"
    assert blobs(root) == []
    assert partials(root) == []
    # and with --sync at import: no pack is left half-made
    err = failed(synapse("import", "civitai:710001", "--sync", "--name", "BadHashSync"))
    assert not (root / "state" / "packs" / "BadHashSync").exists()
    assert blobs(root) == [] and partials(root) == []


def test_a_short_file_without_a_civitai_sha256_is_refused(
    fake: FakeCivitai, add_model: Callable[..., FakeFile], root: Path, synapse: Callable[..., Any]
) -> None:
    """No SHA256 yet (scan pending) and a body cut short with no Content-Length: the size Civitai
    gives (sizeKB) is the only check left, and it must be made."""
    add_model(720001, 721001, 722001, size=300_000, hashes={}, name="Scan Pending")
    fake.inject(r"^/model/722001/", server="cdn", omit_content_length=True, truncate_after=100_000, times=None)
    err = failed(synapse("import", "civitai:720001"))
    assert "300000" in err and "100000" in err
    assert blobs(root) == []
    assert not (root / "state" / "packs" / "ScanPending").exists()


def test_a_web_page_where_a_file_was_expected_is_an_error_not_a_file(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any]
) -> None:
    ok(synapse("import", "civitai:424242"))
    page = b"<!DOCTYPE html><html><body>Just a moment...</body></html>"
    cases = {
        "a Cloudflare page at 200 from storage": lambda: fake.inject_html(r"^/model/", 200, server="cdn", times=None),
        "a login page at 200 from the API": lambda: fake.inject_html(r"^/api/download/", 200, page="login", times=None),
        "HTML sent as octet-stream": lambda: fake.inject(
            r"^/model/", 200, server="cdn", body=page, content_type="application/octet-stream", times=None
        ),
        "JSON at 200": lambda: fake.inject(
            r"^/model/", 200, server="cdn", body=b'{"error":"nope"}', content_type="application/json", times=None
        ),
    }
    for case, inject in cases.items():
        fake.clear_injections()
        inject()
        err = failed(synapse("install", PACK))
        assert "web page" in err or "JSON" in err, case
        assert blobs(root) == [], case


def test_a_web_page_where_json_was_expected_fails_the_import(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any]
) -> None:
    fake.inject_html(r"^/api/v1/models/424242$", 200, times=None)
    err = failed(synapse("import", "civitai:424242"))
    assert "web page" in err
    assert not list((root / "state" / "packs").iterdir())


# -- the token ---------------------------------------------------------------------------------------------------


def test_the_token_appears_in_no_file_and_no_output(
    fake: FakeCivitai, add_model: Callable[..., FakeFile], root: Path, synapse: Callable[..., Any]
) -> None:
    fake.add_token(TOKEN)
    add_model(730001, 731001, 732001, name="Gated One", require_auth=True)
    add_model(
        740001,
        741001,
        742001,
        name="Early One",
        availability="EarlyAccess",
        early_access_deadline="2099-01-01T00:00:00Z",
    )
    env = {"CIVITAI_API_TOKEN": TOKEN}
    runs = []
    for args in (
        ("import", "civitai:730001", "--sync"),
        ("import", f"{fake.api_url}/api/download/models/909002?token={TOKEN}", "--sync"),
        ("import", "civitai:740001"),
        ("search", "one", "--remote", "--json"),
        ("show", "GatedOne", "--json"),
        ("civitai", "status"),
    ):
        runs.append(synapse(*args, env=env))
        ok(runs[-1])
    for args in (
        ("install", "EarlyOne"),  # refused: early access
        ("import", f"https://civitai.com/api/download/models/abc?token={TOKEN}"),  # a malformed link
    ):
        runs.append(synapse(*args, env=env))
        failed(runs[-1])
    blocked = f'{{"error":"key {TOKEN} is blocked"}}'.encode()  # an error body that echoes the key
    fake.inject(r"^/api/download/", 403, times=None, body=blocked, content_type="application/json")
    runs.append(synapse("import", "civitai:424242@909001", "--sync", "--name", "Blocked", env=env))
    failed(runs[-1])
    assert_secret_absent(TOKEN, root, *(r.stdout + r.stderr for r in runs))
    assert all(TOKEN not in r.target for r in fake.requests), "the token never travels in a URL"


# -- progress and parallel downloads ------------------------------------------------------------------------------


def _run_with_tty_stderr(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run with stdout on a pipe and stderr on a pseudo-terminal; return (code, stdout, stderr)."""
    master, slave = pty.openpty()
    tty.setraw(slave)  # no "\n" -> "\r\n" translation: a "\r" can only come from a progress line
    chunks: list[bytes] = []

    def pump() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=slave, timeout=60, check=False)
    finally:
        os.close(slave)
    reader.join(timeout=5)
    os.close(master)
    return proc.returncode, proc.stdout.decode(), b"".join(chunks).decode(errors="replace")


def test_progress_on_a_terminal_only_and_never_with_json(
    fake: FakeCivitai, root: Path, env: dict[str, str], synapse: Callable[..., Any]
) -> None:
    ok(synapse("import", "civitai:424242"))
    ok(synapse("import", "civitai:626262"))
    exe = str(Path(sys.executable).parent / "synapse")
    # on a terminal: a progress line (bytes, speed) redrawn with \r
    code, _, tty_err = _run_with_tty_stderr([exe, "--root", str(root), "install", PACK], env)
    assert code == 0, tty_err
    assert "\r\x1b[K" in tty_err and "/s" in tty_err and "ETA" in tty_err
    # --json on a terminal: silent, and stdout is pure JSON
    code, out, tty_err = _run_with_tty_stderr([exe, "--root", str(root), "install", "HarborMix", "--json"], env)
    assert code == 0, tty_err
    assert "\r" not in tty_err and "\x1b[K" not in tty_err and "/s" not in tty_err
    assert out.lstrip().startswith("{")


def test_files_download_in_parallel(fake: FakeCivitai, root: Path, synapse: Callable[..., Any]) -> None:
    files = [
        FakeFile(752000 + i, f"part{i}.safetensors", size=150_000, metadata={"fp": fp}, primary=i == 0)
        for i, fp in enumerate(("fp16", "fp32", "bf16"))
    ]
    fake.add_model(750001, name="Three Files", type="LORA")
    fake.add_version(750001, 751001, name="v1", files=files)
    ok(synapse("import", "civitai:750001", "--all-files"))
    fake.inject(r"^/model/", server="cdn", slow_bytes_per_sec=100_000, times=None)  # 1.5 s per file
    ok(synapse("install", "ThreeFiles"))
    starts = sorted(r.time for r in fake.requests_for("cdn", r"^/model/"))
    assert len(starts) == 3
    # one after the other, each would start 1.5 s after the previous one
    assert starts[-1] - starts[0] < 1.2, "the three files were fetched one after the other"
    assert sorted(blobs(root)) == sorted(fake.file_sha256(f.id) for f in files)


def test_two_files_with_the_same_bytes_in_one_install(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any]
) -> None:
    """Civitai has duplicate files (civitai-api.md 1.4): e.g. the same weights as Model and Pruned Model."""
    fp16 = {"format": "SafeTensor", "size": "pruned", "fp": "fp16"}
    twins = [
        FakeFile(762001, "same.safetensors", size=MIB, seed=5, primary=True, metadata=fp16),
        FakeFile(762002, "same_too.safetensors", size=MIB, seed=5, type="Pruned Model", metadata={"format": "Other"}),
    ]
    fake.add_model(760001, name="Same Bytes", type="LORA")
    fake.add_version(760001, 761001, name="v1", files=twins)
    assert fake.file_sha256(762001) == fake.file_sha256(762002)
    ok(synapse("import", "civitai:760001", "--all-files"))
    fake.inject(r"^/model/", server="cdn", slow_bytes_per_sec=2 * MIB, times=None)  # both in flight together
    ok(synapse("install", "SameBytes"))
    assert_blob(root, fake.file_sha256(762001))
