"""Sharp edges users hit (issue 11, item 3, part edges1): a store that cannot be written, serve on every interface, doctor notices, check-updates --max-age; the real CLI as a subprocess."""

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
    return {
        str(p.relative_to(root)): os.readlink(p) if p.is_symlink() else p.read_bytes() if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
    }


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
