"""Sharp edges users hit (issue 11, item 3, part edges1): a store that cannot be written, serve on every interface, doctor notices, check-updates --max-age, waiting for the lock and Ctrl-C, temps of killed commands; the real CLI as a subprocess."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from synapse_civitai.fake_server import FakeCivitai, FakeFile
from synapse_core.store import Store
from synapse_core.testing import lora_file

SYNAPSE = Path(sys.executable).parent / "synapse"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNAPSE_")}
    return {**env, "SYNAPSE_LOAD_PLUGINS": "", **extra}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- serve on every interface --------------------------------------------------------------------------------------------


@contextmanager
def _serving(root: Path, *extra: str) -> Iterator[httpx.Client]:
    """``synapse serve --host 0.0.0.0`` with a token; a client that connects to 127.0.0.1 and sets Host itself."""
    port = _free_port()
    server = subprocess.Popen(
        [str(SYNAPSE), "--root", str(root), "serve", "--host", "0.0.0.0", "--port", str(port), *extra],
        env=_env(SYNAPSE_API_TOKEN="t0ken"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}/api", headers={"Authorization": "Bearer t0ken"}, timeout=10
        ) as api:
            deadline = time.monotonic() + 30
            while True:
                assert server.poll() is None, f"synapse serve exited: {server.communicate()}"
                try:
                    api.get("/store/status")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "synapse serve did not answer within 30 s"
                    time.sleep(0.05)
            yield api
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()


def _status(api: httpx.Client, host: str) -> int:
    port = api.base_url.port
    return api.get("/store/status", headers={"Host": f"{host}:{port}"}).status_code


def _outbound_address() -> str | None:
    """The address this machine would use to reach the network (what another machine connects to)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.connect(("192.0.2.1", 9))
            return str(udp.getsockname()[0])
    except OSError:
        return None


def test_serve_on_every_interface_answers_to_the_machines_names(store: Store) -> None:
    root = store.layout.root
    with _serving(root) as api:
        assert _status(api, socket.gethostname()) == 200
        assert _status(api, socket.getfqdn()) == 200
        address = _outbound_address()
        if address is not None:
            assert _status(api, address) == 200
        assert _status(api, "127.0.0.1") == 200
        assert _status(api, "nas.example") == 403  # DNS rebinding is still refused
        assert api.get("/store/status", headers={"Authorization": "Bearer wrong"}).status_code == 401

    config = store.files.config()
    store.files.save_config(config.model_copy(update={"allowed_hosts": ["synapse.lan"]}))
    with _serving(root, "--allow-host", "nas.example", "--allow-host", "NAS2.example") as api:
        assert _status(api, "nas.example") == 200
        assert _status(api, "nas2.example") == 200
        assert _status(api, "synapse.lan") == 200
        assert _status(api, "evil.example") == 403


# -- doctor: problems and notices; check-updates --max-age -------------------------------------------------------------


def _cli(root: Path, *args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SYNAPSE), "--root", str(root), *map(str, args)],
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_pack_not_downloaded_yet_is_a_notice_not_a_problem(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with FakeCivitai() as fake:
        fake.add_model(7002, name="Velvet Portrait", type="LORA")
        fake.add_version(7002, 7201, name="v1", files=[FakeFile(72011, "velvet.safetensors", size=4096, primary=True)])
        civitai = {"SYNAPSE_LOAD_PLUGINS": "civitai", "SYNAPSE_CIVITAI_URL": fake.api_url}
        assert _cli(root, "store", "init", **civitai).returncode == 0
        imported = _cli(root, "import", "civitai:7002", **civitai)  # without --sync: its file is not downloaded
        assert imported.returncode == 0, imported.stderr
        doctor = _cli(root, "doctor", **civitai)
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert (
            "notice:" in doctor.stdout and "not downloaded yet" in doctor.stdout and "synapse install" in doctor.stdout
        )
        assert "problem:" not in doctor.stdout and "healthy" in doctor.stdout
        report = json.loads(_cli(root, "doctor", "--json", **civitai).stdout)
        assert report["problems"] == []
        [notice] = report["notices"]
        assert notice["check"] == "locked blobs present" and "not downloaded yet" in notice["message"]

        [pack] = json.loads(_cli(root, "list", "--json", **civitai).stdout)
        assert _cli(root, "install", pack["name"], **civitai).returncode == 0
        after = json.loads(_cli(root, "doctor", "--json", **civitai).stdout)
        assert after["problems"] == [] and after["notices"] == []


def test_a_blob_lost_from_a_view_is_still_a_problem(tmp_path: Path) -> None:
    root = tmp_path / "store"
    comfy = {"SYNAPSE_LOAD_PLUGINS": "comfyui"}
    assert _cli(root, "store", "init", **comfy).returncode == 0
    model = lora_file(tmp_path / "files" / "style.safetensors", seed=1)
    assert _cli(root, "import", model, "--name", "Style", **comfy).returncode == 0
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    (root / "data" / "blobs" / "sha256" / sha[:2] / sha).unlink()
    doctor = _cli(root, "doctor", "--json", **comfy)
    assert doctor.returncode == 1, doctor.stdout
    assert json.loads(doctor.stdout)["problems"], "a view linking a vanished blob is a problem"


def test_check_updates_max_age_says_how_many_packs_it_skipped(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with FakeCivitai() as fake:
        for model in (7001, 7002):
            fake.add_model(model, name=f"Model {model}", type="LORA")
            files = [FakeFile(model * 10, f"m{model}.safetensors", size=2048, primary=True)]
            fake.add_version(model, model * 100, name="v1", files=files)
        civitai = {"SYNAPSE_LOAD_PLUGINS": "civitai", "SYNAPSE_CIVITAI_URL": fake.api_url}
        assert _cli(root, "store", "init", **civitai).returncode == 0
        for model in (7001, 7002):
            assert _cli(root, "import", f"civitai:{model}", "--follow", **civitai).returncode == 0
        first = _cli(root, "check-updates", **civitai)
        assert first.returncode == 0 and "everything is up to date" in first.stdout, first.stdout + first.stderr
        again = _cli(root, "check-updates", "--max-age", "1h", **civitai)
        assert again.returncode == 0, again.stderr
        assert "everything is up to date" not in again.stdout, again.stdout
        assert "skipped 2 packs" in again.stdout and "--max-age" in again.stdout, again.stdout
        plan = json.loads(_cli(root, "check-updates", "--max-age", "1h", "--json", **civitai).stdout)
        assert len(plan["skipped_recent"]) == 2 and plan["current"] == []


# -- a store that cannot be written -----------------------------------------------------------------------------------


@contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """``folder`` made unwritable the way users meet it: a read-only mount (as root, whom file
    modes do not stop), else modes without write permission (EACCES)."""
    if os.geteuid() != 0:
        paths = [folder, *folder.rglob("*")]
        modes = {p: p.lstat().st_mode for p in paths if not p.is_symlink()}
        for path, mode in modes.items():
            path.chmod(mode & ~0o222)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    bind = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True, check=False)
    if bind.returncode != 0:
        pytest.skip(f"running as root and cannot mount read-only: {bind.stderr!r}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True, capture_output=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def _tree(root: Path) -> dict[str, bytes | str]:
    """Every file and link under the store with its bytes or target, but data/.lock (who last held
    the lock) and git's own files (a rollback's reset writes its reflog), with the commit state/ is at."""
    git = root / "state" / ".git"
    tree: dict[str, bytes | str] = {
        str(p.relative_to(root)): os.readlink(p) if p.is_symlink() else p.read_bytes()
        for p in sorted(root.rglob("*"))
        if (p.is_symlink() or p.is_file()) and p != root / "data" / ".lock" and git not in p.parents
    }
    if git.is_dir():
        head = ["git", "-C", str(root / "state"), "rev-parse", "HEAD"]
        tree["HEAD"] = subprocess.run(head, capture_output=True, text=True, check=True).stdout
    return tree


def test_a_store_on_a_read_only_path_says_so_in_one_line(tmp_path: Path) -> None:
    root = tmp_path / "store"
    comfy = {"SYNAPSE_LOAD_PLUGINS": "comfyui"}
    assert _cli(root, "store", "init", **comfy).returncode == 0
    model = lora_file(tmp_path / "files" / "style.safetensors", seed=1)
    other = lora_file(tmp_path / "files" / "other.safetensors", seed=2)
    assert _cli(root, "import", model, "--name", "Style", **comfy).returncode == 0
    before = _tree(root)
    with _read_only(root):
        for args in (
            ("store", "init"),
            ("doctor",),
            ("use", "Style"),
            ("import", other),
            ("check-updates",),
            ("gc",),
        ):
            result = _cli(root, *args, **comfy)
            lines = result.stderr.strip().splitlines()
            assert result.returncode != 0, (args, result.stdout)
            assert len(lines) == 1 and "Traceback" not in result.stderr, (args, result.stderr)
            assert str(root) in lines[0] and "--root" in lines[0], (args, lines[0])
            assert "read-only" in lines[0] or "permission denied" in lines[0], (args, lines[0])
        fresh = _cli(root / "new", "store", "init", **comfy)
        assert fresh.returncode != 0 and len(fresh.stderr.strip().splitlines()) == 1, fresh.stderr
        assert str(root) in fresh.stderr and "Traceback" not in fresh.stderr
    assert _tree(root) == before, "nothing changed"
    assert other.exists()


HOLD_LOCK = """
import sys, time
from pathlib import Path
from synapse_core.cli.main import activity
from synapse_core.layout import StoreLock
StoreLock.activity = activity(sys.argv[2:])
with StoreLock(Path(sys.argv[1])).hold():
    print("held", flush=True)
    time.sleep(60)
"""


@contextmanager
def _lock_held(root: Path, *doing: str) -> Iterator[int]:
    """The store lock held by another process, which records ``doing`` as the CLI would; its pid."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(root / "data" / ".lock"), *doing],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()


def _default_sigint() -> None:
    # as at a terminal: a suite started in the background by a shell inherits SIGINT ignored
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(root: Path, *args: str | Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(SYNAPSE), "--root", str(root), *map(str, args)],
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )


def _wait_for_line(process: subprocess.Popen[str], timeout: float = 30) -> tuple[str, float]:
    """The first line the process writes on stderr, and when it came (monotonic)."""
    assert process.stderr is not None
    line = process.stderr.readline()
    assert line, f"no line on stderr; exit {process.wait(timeout)}"
    return line, time.monotonic()


def test_waiting_for_the_lock_says_for_whom_and_ctrl_c_exits_cleanly(tmp_path: Path) -> None:
    root = tmp_path / "store"
    comfy = {"SYNAPSE_LOAD_PLUGINS": "comfyui"}
    assert _cli(root, "store", "init", **comfy).returncode == 0
    assert _cli(root, "import", lora_file(tmp_path / "files" / "a.safetensors"), "--name", "A", **comfy).returncode == 0
    used = _cli(root, "use", "A", **comfy)
    assert used.returncode == 0 and used.stderr == "", used.stderr
    assert (root / "data" / ".lock").read_text().split(": ", 1)[1] == "use A\n", "the holder records what it runs"
    before = _tree(root)

    with _lock_held(root, "install", "VelvetPortrait", "--sync") as pid:
        started = time.monotonic()
        waiter = _start(root, "back", **comfy)
        line, when = _wait_for_line(waiter)
        assert line == f"waiting for another synapse command: install VelvetPortrait, pid {pid}…\n"
        assert 0.8 < when - started < 15, "said after about a second"
        assert waiter.poll() is None, "still waiting"
        waiter.send_signal(signal.SIGINT)
        out, err = waiter.communicate(timeout=10)
        assert waiter.returncode == 130, (out, err)
        assert out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert "interrupted" in err and "nothing was changed" in err
    assert _tree(root) == before, "nothing changed"

    with _lock_held(root, "gc"):  # a command that gets the lock soon enough says nothing
        waiter = _start(root, "back", **comfy)
        time.sleep(0.3)
    out, err = waiter.communicate(timeout=30)
    assert waiter.returncode == 0 and err == "", err


def _sparse_lora(path: Path, size: int) -> Path:
    """A LoRA whose tensors are one hole of ``size`` bytes: large to read, nothing on disk."""
    count = size // 4
    header = {
        "lora_unet_down_blocks_0.lora_down.weight": {
            "dtype": "F16",
            "shape": [count, 1],
            "data_offsets": [0, 2 * count],
        },
        "lora_unet_down_blocks_0.lora_up.weight": {
            "dtype": "F16",
            "shape": [1, count],
            "data_offsets": [2 * count, 4 * count],
        },
        "__metadata__": {"ss_network_module": "networks.lora"},
    }
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write(len(raw).to_bytes(8, "little") + raw)
        handle.truncate(8 + len(raw) + 4 * count)
    return path


def _identity(path: Path) -> tuple[int, int, int, int]:
    info = path.stat()
    return info.st_ino, info.st_size, info.st_mtime_ns, info.st_mode


@pytest.mark.slow
def test_ctrl_c_during_a_local_import_stops_at_once_and_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "store"
    comfy = {"SYNAPSE_LOAD_PLUGINS": "comfyui"}
    assert _cli(root, "store", "init", **comfy).returncode == 0
    big = _sparse_lora(tmp_path / "files" / "big.safetensors", 3 << 30)  # seconds of hashing on any machine
    original = _identity(big)
    before = _tree(root)
    tmp = root / "data" / "tmp"
    importer = _start(root, "import", big, "--name", "Big", **comfy)
    try:
        deadline = time.monotonic() + 60
        while not any(tmp.glob(".ingest.*")):  # the copy has begun
            assert importer.poll() is None and time.monotonic() < deadline, importer.communicate()
            time.sleep(0.005)
        time.sleep(0.2)
        assert importer.poll() is None, "the import was still running"
        interrupted = time.monotonic()
        importer.send_signal(signal.SIGINT)
        _out, err = importer.communicate(timeout=30)
        stopped = time.monotonic() - interrupted
    finally:
        importer.kill()
        importer.wait()
    assert importer.returncode == 130 and "Traceback" not in err, err
    assert stopped < 5, f"stopped {stopped:.1f} s after Ctrl-C"  # about 0.1 s on an idle machine
    assert _tree(root) == before, "no temp, no blob, no pack"
    assert _identity(big) == original


def test_temps_of_killed_commands_are_reported_and_gc_removes_them_past_the_grace_period(tmp_path: Path) -> None:
    root = tmp_path / "store"
    assert _cli(root, "store", "init").returncode == 0
    tmp = root / "data" / "tmp"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    old = tmp / f".ingest.{dead.pid}.0123456789ab.tmp"  # named as BlobStore names them; its writer is gone
    young = tmp / f".ingest.{dead.pid}.ba9876543210.tmp"
    old.write_bytes(b"x" * 1000)
    young.write_bytes(b"y" * 24)
    seven_hours_ago = time.time() - 7 * 3600
    os.utime(old, (seven_hours_ago, seven_hours_ago))
    running = tmp / f".ingest.{os.getpid()}.aaaaaaaaaaaa.tmp"  # a command that still runs
    running.write_bytes(b"z")

    du = json.loads(_cli(root, "du", "--json").stdout)
    assert (du["temps"], du["temp_bytes"]) == (2, 1024)
    assert "temps left by killed commands: 2 file(s)" in _cli(root, "du").stdout
    doctor = _cli(root, "doctor", "--json")
    assert doctor.returncode == 0
    [notice] = [n for n in json.loads(doctor.stdout)["notices"] if "temp" in n["message"]]
    assert "2 temp file(s)" in notice["message"] and "synapse gc" in notice["message"]

    assert _cli(root, "gc").returncode == 0
    assert not old.exists() and young.exists() and running.exists(), "only what is past the grace period"
    assert _cli(root, "gc", "--now").returncode == 0
    assert not young.exists() and running.exists(), "never the temp of a command that runs"
