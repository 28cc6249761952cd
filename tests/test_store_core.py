"""Issue 3: the store core — layout, content-addressed blobs, packs from local files, state history.

Most tests drive the installed ``synapse`` CLI as a subprocess on a real store in a temp folder,
and check the store's invariants (``assert_store_consistent``) after the commands they run.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from synapse_core import Store
from synapse_core.errors import InvalidInput, NotFound, SynapseError
from synapse_core.history import HistoryEntry
from synapse_core.kinds import AssetKind
from synapse_core.results import (
    DoctorReport,
    DuReport,
    GcResult,
    ImportResult,
    InitResult,
    InstallResult,
    PackDetails,
    PackSummary,
    RemoveResult,
)
from synapse_core.testing import make_registry, make_store

MiB = 1024 * 1024
SYNAPSE = Path(sys.executable).parent / "synapse"
KIND_NAMES = [k.value for k in AssetKind]


# -- a CLI harness bound to one store root -------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """What "no change" means: git status, commit count, blobs, temps and data/tmp."""

    status: str
    commits: int
    blobs: frozenset[str]
    temps: frozenset[str]
    tmp_entries: frozenset[str]


class Harness:
    """Runs ``synapse --root <root> ...`` and checks the store after each successful command."""

    def __init__(self, root: Path, run: Callable[..., subprocess.CompletedProcess[str]], checks: dict[str, Any]):
        self.root = root
        self._run = run
        self._checks = checks

    def __call__(self, *args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return self._run(*args, root=self.root, env=env)

    def ok(self, *args: str | Path, env: dict[str, str] | None = None) -> Any:
        """Run a command that must succeed; return its parsed JSON when ``--json`` was given."""
        result = self(*args, env=env)
        assert result.returncode == 0, f"synapse {' '.join(map(str, args))} failed:\n{result.stderr}"
        assert "Traceback" not in result.stderr
        self.consistent()
        return json.loads(result.stdout) if "--json" in args else result

    def consistent(self, **kwargs: Any) -> None:
        self._checks["consistent"](self.root, **kwargs)

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def blobs_dir(self) -> Path:
        return self.root / "data" / "blobs" / "sha256"

    def git(self, *args: str) -> str:
        return subprocess.run(["git", "-C", str(self.state), *args], capture_output=True, text=True, check=True).stdout

    def commits(self) -> int:
        return int(self.git("rev-list", "--count", "HEAD"))

    def messages(self) -> list[str]:
        return [entry["message"] for entry in self.ok("history", "-n", "100", "--json")]

    def blobs(self) -> frozenset[str]:
        if not self.blobs_dir.exists():
            return frozenset()
        return frozenset(p.name for p in self.blobs_dir.rglob("*") if p.is_file())

    def blob(self, sha256: str) -> Path:
        return self.blobs_dir / sha256[:2] / sha256

    def snapshot(self) -> Snapshot:
        tmp = self.root / "data" / "tmp"
        return Snapshot(
            status=self.git("status", "--porcelain"),
            commits=self.commits(),
            blobs=self.blobs(),
            temps=frozenset(str(p) for p in self._checks["temps"](self.root)),
            tmp_entries=frozenset(os.listdir(tmp)) if tmp.exists() else frozenset(),
        )

    def fails_cleanly(self, *args: str | Path, words: tuple[str, ...] = ()) -> str:
        """Run a command that must fail with one ``error:`` line and change nothing; return that line."""
        before = self.snapshot()
        result = self(*args)
        line = assert_one_error_line(result)
        for word in words:
            assert word in line, f"{word!r} not in {line!r}"
        after = self.snapshot()
        assert after.status == "", f"state/ is dirty after a failed command:\n{after.status}"
        assert after == before
        self.consistent()
        return line


def assert_one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, f"expected a failure, got exit 0:\n{result.stdout}"
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


@pytest.fixture
def checks(assert_store_consistent, temp_files, check_blobs, sha256_of) -> dict[str, Any]:
    return {"consistent": assert_store_consistent, "temps": temp_files, "blobs": check_blobs, "sha": sha256_of}


@pytest.fixture
def cli(store: Store, synapse_cli, checks) -> Harness:
    """The CLI bound to an initialised store (built-in plugins only)."""
    return Harness(store.layout.root, synapse_cli, checks)


def write_big_lora(path: Path, mib: int) -> Path:
    """A valid LoRA .safetensors of ``mib`` MiB of random bytes, written in chunks."""
    header = {
        "lora_unet_big.lora_down.weight": {"dtype": "F16", "shape": [mib * 512, 1024], "data_offsets": [0, mib * MiB]},
        "__metadata__": {"ss_network_module": "networks.lora"},
    }
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        for _ in range(mib):
            handle.write(os.urandom(MiB))
    return path


def bytes_written_by_this_process() -> int:
    """``wchar`` of /proc/self/io: every byte this process passed to write(), whatever the file system."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


needs_proc_io = pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs /proc/self/io to count writes")


# -- init ----------------------------------------------------------------------------------------------------


def test_init_is_idempotent_and_state_is_a_git_repo(synapse_cli, checks, tmp_path: Path) -> None:
    h = Harness(tmp_path / "fresh", synapse_cli, checks)
    first = h.ok("store", "init", "--json")
    assert first["created"] is True and first["history"] is True and first["uis"] == []
    state_files = {p: p.read_bytes() for p in h.state.rglob("*.json")}
    assert {p.relative_to(h.state).as_posix() for p in state_files} == {
        "config.json",
        "ui_sets.json",
        "profiles/global/profile.json",
    }
    for folder in ("data/blobs/sha256", "data/tmp", "state/packs", "state/profiles"):
        assert (h.root / folder).is_dir(), folder
    second = h.ok("store", "init", "--json")
    assert second["created"] is False
    assert {p: p.read_bytes() for p in h.state.rglob("*.json")} == state_files
    assert h.git("rev-parse", "--is-inside-work-tree").strip() == "true"
    assert h.messages() == ["init store"]
    assert h.git("status", "--porcelain") == ""
    human = h.ok("store", "init")
    assert "already present" in human.stdout


def test_root_comes_from_option_then_env(synapse_cli, checks, tmp_path: Path) -> None:
    by_env = tmp_path / "by-env"
    result = synapse_cli("store", "init", "--json", env={"SYNAPSE_ROOT": str(by_env)})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["root"] == str(by_env)
    assert (by_env / "state" / "config.json").is_file()
    by_option = tmp_path / "by-option"
    result = synapse_cli("store", "init", root=by_option, env={"SYNAPSE_ROOT": str(by_env / "not-this")})
    assert result.returncode == 0, result.stderr
    assert (by_option / "state" / "config.json").is_file()
    assert not (by_env / "not-this").exists()


# -- import: kinds -------------------------------------------------------------------------------------------

KIND_CASES: list[tuple[str, dict[str, tuple[int, ...]], dict[str, str] | None, AssetKind]] = [
    ("lora_by_metadata", {"w.weight": (4, 4)}, {"ss_network_module": "networks.lora"}, AssetKind.LORA),
    (
        "lora_by_kohya_keys",
        {"lora_unet_down_blocks_0.lora_down.weight": (4, 8), "lora_unet_down_blocks_0.lora_up.weight": (8, 4)},
        None,
        AssetKind.LORA,
    ),
    ("lycoris_by_keys", {"lora_te_text_model_encoder_layers_0_mlp_fc1.hada_w1_a": (4, 4)}, None, AssetKind.LORA),
    ("lora_by_peft_keys", {"unet.up_blocks.0.attentions.0.to_q.lora_A.weight": (4, 8)}, None, AssetKind.LORA),
    ("embedding_sd15", {"emb_params": (2, 768)}, None, AssetKind.EMBEDDING),
    ("embedding_sdxl", {"clip_l": (2, 768), "clip_g": (2, 1280)}, None, AssetKind.EMBEDDING),
    (
        "vae",
        {"encoder.conv_in.weight": (8, 3), "decoder.conv_out.weight": (3, 8), "quant_conv.weight": (8, 8)},
        None,
        AssetKind.VAE,
    ),
    (
        "checkpoint",
        {
            "model.diffusion_model.input_blocks.0.0.weight": (8, 4),
            "first_stage_model.encoder.conv_in.weight": (8, 3),
            "cond_stage_model.transformer.text_model.encoder.layers.0.mlp.fc1.weight": (4, 4),
        },
        None,
        AssetKind.CHECKPOINT,
    ),
    (
        "diffusion_model_unet",
        {"model.diffusion_model.input_blocks.0.0.weight": (8, 4)},
        None,
        AssetKind.DIFFUSION_MODEL,
    ),
    (
        "diffusion_model_flux",
        {"double_blocks.0.img_attn.qkv.weight": (4, 4), "single_blocks.0.linear1.weight": (4, 4)},
        None,
        AssetKind.DIFFUSION_MODEL,
    ),
    (
        "controlnet",
        {"control_model.input_hint_block.0.weight": (4, 3), "control_model.zero_convs.0.0.weight": (4, 4)},
        None,
        AssetKind.CONTROLNET,
    ),
    ("controlnet_diffusers", {"controlnet_cond_embedding.conv_in.weight": (4, 3)}, None, AssetKind.CONTROLNET),
]


@pytest.mark.parametrize(("name", "tensors", "metadata", "kind"), KIND_CASES, ids=[c[0] for c in KIND_CASES])
def test_kind_is_inferred_from_the_header(
    store: Store, make_model, assert_store_consistent, name: str, tensors, metadata, kind: AssetKind
) -> None:
    path = make_model(f"{name}.safetensors", tensors, metadata=metadata)
    result = store.import_pack(str(path))
    assert result.pack == name
    assert [r.kind for r in result.resources] == [kind]
    assert store.show(name).pack.resources[0].kind == kind
    assert_store_consistent(store.layout.root)


def test_import_a_file_from_the_cli(cli: Harness, make_lora, sha256_of) -> None:
    path = make_lora("Paper Lantern", seed=3)
    out = cli.ok("import", path, "--json")
    assert out["pack"] == "Paper_Lantern" and out["source"] == "local"
    (res,) = out["resources"]
    assert res["id"] == "main" and res["kind"] == "lora" and res["expose"] == "Paper Lantern.safetensors"
    assert res["sha256"] == sha256_of(path) and res["size"] == path.stat().st_size and res["installed"] is True
    assert out["bytes_written"] == path.stat().st_size
    pack = json.loads((cli.state / "packs" / "Paper_Lantern" / "pack.json").read_text())
    assert pack["source"]["provider"] == "local" and pack["source"]["url"] == path.as_uri()
    lock = json.loads((cli.state / "packs" / "Paper_Lantern" / "lock.json").read_text())
    assert lock["resources"]["main"]["sha256"] == res["sha256"]


def test_unknown_header_without_kind_is_a_clear_error_listing_kinds(cli: Harness, make_model) -> None:
    path = make_model("mystery.safetensors", {"foo.weight": (4, 4)})
    line = cli.fails_cleanly("import", path, words=("mystery.safetensors", "--kind"))
    for kind in KIND_NAMES:
        assert kind in line
    out = cli.ok("import", path, "--kind", "upscaler", "--json")
    assert out["resources"][0]["kind"] == "upscaler"


def test_non_safetensors_file_needs_kind(cli: Harness, tmp_path: Path) -> None:
    ckpt = tmp_path / "files" / "old_model.ckpt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    ckpt.write_bytes(os.urandom(2048))
    cli.fails_cleanly("import", ckpt, words=("--kind", "checkpoint"))
    out = cli.ok("import", ckpt, "--kind", "checkpoint", "--json")
    assert out["resources"][0]["kind"] == "checkpoint"


def test_unknown_kind_value_is_one_error_line(cli: Harness, make_lora) -> None:
    line = cli.fails_cleanly("import", make_lora(), "--kind", "lorra")
    assert "lorra" in line and "lora" in line


def test_unknown_kind_value_fails_without_change(cli: Harness, make_lora) -> None:
    before = cli.snapshot()
    result = cli("import", make_lora(), "--kind", "lorra")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "lorra" in result.stderr and "checkpoint" in result.stderr
    assert cli.snapshot() == before


# -- import: folders -----------------------------------------------------------------------------------------


def test_import_a_folder_gives_one_resource_per_model_file(cli: Harness, make_lora, make_model, tmp_path: Path) -> None:
    folder = tmp_path / "My Models"
    make_lora("style", seed=1, folder=folder)
    make_model("vae_ft.safetensors", {"encoder.a": (4, 4), "decoder.b": (4, 4)}, folder=folder / "sub")
    (folder / "notes.txt").write_text("not a model")
    (folder / "preview.png").write_bytes(b"\x89PNG....")
    make_lora(".hidden", seed=9, folder=folder)
    out = cli.ok("import", folder, "--json")
    assert out["pack"] == "My_Models"
    got = {r["id"]: (r["kind"], r["expose"]) for r in out["resources"]}
    assert got == {"style": ("lora", "style.safetensors"), "sub__vae_ft": ("vae", "sub/vae_ft.safetensors")}
    assert len(cli.blobs()) == 2
    assert all(r["installed"] for r in out["resources"])


def test_folder_without_model_files_is_an_error(cli: Harness, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "readme.txt").write_text("hello")
    (folder / "image.png").write_bytes(b"png")
    cli.fails_cleanly("import", folder, words=("no model files", ".safetensors"))


def test_folder_with_one_unknown_file_imports_nothing(cli: Harness, make_lora, make_model, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    make_lora("good", seed=1, folder=folder)
    make_model("mystery.safetensors", {"foo.weight": (4, 4)}, folder=folder)
    cli.fails_cleanly("import", folder, words=("mystery.safetensors", "--kind"))
    assert cli.blobs() == frozenset()


def test_folder_files_with_the_same_stem_stay_distinct(cli: Harness, make_lora, tmp_path: Path) -> None:
    folder = tmp_path / "formats"
    make_lora("style", seed=1, folder=folder)
    (folder / "style.ckpt").write_bytes(os.urandom(1024))
    out = cli.ok("import", folder, "--kind", "lora", "--json")
    ids = [r["id"] for r in out["resources"]]
    assert len(set(ids)) == 2
    lock = json.loads((cli.state / "packs" / "formats" / "lock.json").read_text())
    assert len({r["sha256"] for r in lock["resources"].values()}) == 2


# -- import: dedup, link, move, blob layout ------------------------------------------------------------------


def test_blobs_are_read_only_and_named_by_sha256(cli: Harness, make_lora, sha256_of) -> None:
    path = make_lora("style", seed=4)
    cli.ok("import", path)
    sha = sha256_of(path)
    blob = cli.blob(sha)
    assert blob.is_file()
    assert blob.relative_to(cli.root).as_posix() == f"data/blobs/sha256/{sha[:2]}/{sha}"
    assert stat.S_IMODE(blob.stat().st_mode) == 0o444
    assert blob.read_bytes() == path.read_bytes()
    assert os.listdir(cli.root / "data" / "tmp") == []
    assert path.exists(), "copy is the default: the original stays"


def test_same_file_under_two_names_is_stored_once(cli: Harness, make_lora) -> None:
    path = make_lora("shared", seed=5)
    first = cli.ok("import", path, "--name", "First", "--json")
    assert first["bytes_written"] == path.stat().st_size
    sha = first["resources"][0]["sha256"]
    before = cli.blob(sha).stat()
    second = cli.ok("import", path, "--name", "Second", "--json")
    assert second["bytes_written"] == 0
    assert second["resources"][0]["sha256"] == sha
    after = cli.blob(sha).stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_nlink) == (before.st_ino, before.st_mtime_ns, before.st_nlink)
    assert cli.blobs() == {sha}
    assert [p["name"] for p in cli.ok("list", "--json")] == ["First", "Second"]
    profile = json.loads((cli.state / "profiles" / "global" / "profile.json").read_text())
    assert profile["packs"] == ["First", "Second"]


@needs_proc_io
def test_second_import_of_the_same_file_writes_no_file_data(store: Store, tmp_path: Path) -> None:
    path = write_big_lora(tmp_path / "files" / "four.safetensors", 4)
    store.import_pack(str(path), name="A")
    written = bytes_written_by_this_process()
    result = store.import_pack(str(path), name="B")
    written = bytes_written_by_this_process() - written
    assert result.bytes_written == 0
    assert written < path.stat().st_size // 4, f"the second import wrote {written} bytes"


def _reflinks_work(folder: Path) -> bool:
    src, dst = folder / ".probe-src", folder / ".probe-dst"
    src.write_bytes(b"x" * 4096)
    try:
        with open(src, "rb") as s, open(dst, "wb") as d:
            fcntl.ioctl(d.fileno(), 0x40049409, s.fileno())  # FICLONE
        return True
    except OSError:
        return False
    finally:
        src.unlink(missing_ok=True)
        dst.unlink(missing_ok=True)


def test_link_imports_without_a_copy(cli: Harness, make_lora, sha256_of, tmp_path: Path) -> None:
    path = make_lora("linked", seed=6)
    content = path.read_bytes()
    out = cli.ok("import", path, "--link", "--json")
    sha = out["resources"][0]["sha256"]
    blob = cli.blob(sha)
    assert blob.read_bytes() == content and sha256_of(blob) == sha
    if blob.stat().st_ino != path.stat().st_ino:
        assert _reflinks_work(tmp_path), "--link made neither a hard link nor a reflink"
    assert path.exists()
    assert stat.S_IMODE(blob.stat().st_mode) == 0o444


@needs_proc_io
def test_link_mode_writes_no_file_data(store: Store, tmp_path: Path) -> None:
    path = write_big_lora(tmp_path / "files" / "linked.safetensors", 4)
    written = bytes_written_by_this_process()
    result = store.import_pack(str(path), name="Linked", mode="link")
    written = bytes_written_by_this_process() - written
    assert result.resources[0].installed
    assert written < path.stat().st_size // 4, f"--link wrote {written} bytes"


def test_move_moves_the_file_into_the_store(cli: Harness, make_lora, sha256_of) -> None:
    path = make_lora("moved", seed=7)
    content, sha = path.read_bytes(), sha256_of(path)
    inode = path.stat().st_ino
    out = cli.ok("import", path, "--move", "--json")
    assert not path.exists()
    blob = cli.blob(sha)
    assert out["resources"][0]["sha256"] == sha
    assert blob.read_bytes() == content
    assert blob.stat().st_ino == inode, "a move on one file system is a rename, not a copy"


# -- list, show, remove, gc, du, install, doctor -------------------------------------------------------------


def test_list_show_remove(cli: Harness, make_lora, sha256_of) -> None:
    assert cli.ok("list", "--json") == []
    assert "no packs yet" in cli.ok("list").stdout
    a, b = make_lora("alpha", seed=1), make_lora("beta", seed=2)
    cli.ok("import", a)
    cli.ok("import", b)
    listed = cli.ok("list", "--json")
    assert [p["name"] for p in listed] == ["alpha", "beta"]
    assert listed[0]["kinds"] == ["lora"] and listed[0]["installed"] is True
    assert listed[0]["size"] == a.stat().st_size and listed[0]["provider"] == "local"
    shown = cli.ok("show", "alpha", "--json")
    assert shown["pack"]["name"] == "alpha"
    assert shown["lock"]["resources"]["main"]["sha256"] == sha256_of(a)
    assert shown["resources"][0]["installed"] is True
    human = cli.ok("show", "alpha").stdout
    assert "alpha" in human and sha256_of(a)[:12] in human and "installed" in human

    removed = cli.ok("remove", "alpha", "--json")
    assert removed == {"pack": "alpha", "profiles_changed": ["global"], "switched_back": {}}
    assert [p["name"] for p in cli.ok("list", "--json")] == ["beta"]
    assert not (cli.state / "packs" / "alpha").exists()
    assert cli.blob(sha256_of(a)).is_file(), "remove keeps blobs until gc"
    profile = json.loads((cli.state / "profiles" / "global" / "profile.json").read_text())
    assert profile["packs"] == ["beta"]
    cli.fails_cleanly("show", "alpha", words=("unknown pack 'alpha'",))
    cli.fails_cleanly("remove", "alpha", words=("unknown pack 'alpha'",))
    cli.fails_cleanly("show", "bta", words=("beta",))  # close names are suggested


def test_gc_removes_only_unreferenced_blobs_and_stale_temps(cli: Harness, make_lora, sha256_of) -> None:
    keep, drop = make_lora("keep", seed=1), make_lora("drop", seed=2)
    cli.ok("import", keep)
    cli.ok("import", drop)
    cli.ok("remove", "drop")
    young = cli.ok("gc", "--json")
    assert young["blobs"] == 0, "a blob unreferenced only now stays for the grace period"
    assert cli.blob(sha256_of(drop)).exists()
    tmp = cli.root / "data" / "tmp"
    # a temp of a killed writer (no process has that pid), and one of a writer that still runs (this test)
    stale, fresh = tmp / f".ingest.{2**22 + 1}.aaaaaaaa.tmp", tmp / f".ingest.{os.getpid()}.bbbbbbbb.tmp"
    stale.write_bytes(b"old partial")
    fresh.write_bytes(b"a writer is still on this")
    old = time.time() - 3 * 24 * 3600
    os.utime(stale, (old, old))
    commits = cli.commits()

    dry = cli("gc", "--now", "--dry-run", "--json")
    assert dry.returncode == 0
    report = json.loads(dry.stdout)
    assert report == {
        "dry_run": True,
        "blobs": 1,
        "bytes": drop.stat().st_size,
        "removed": [sha256_of(drop)],
        "kept_blobs": 0,
        "kept_bytes": 0,
        "grace_hours": 0.0,
    }
    assert cli.blob(sha256_of(drop)).exists() and stale.exists()

    report = json.loads(cli("gc", "--now", "--json").stdout)
    assert report["blobs"] == 1 and report["removed"] == [sha256_of(drop)]
    assert cli.blobs() == {sha256_of(keep)}
    assert not stale.exists(), "a temp of a killed command is removed"
    assert fresh.exists(), "a temp whose writer still runs stays, even with --now"
    fresh.unlink()
    cli.consistent()
    assert cli.commits() == commits, "gc changes no state, so it makes no commit"
    assert "removed 0 blob(s)" in cli.ok("gc").stdout


def test_du_reports_bytes_per_pack_and_dedup(cli: Harness, make_lora) -> None:
    shared, own = make_lora("shared", seed=1), make_lora("own", seed=2)
    cli.ok("import", shared, "--name", "One")
    cli.ok("import", shared, "--name", "Two")
    cli.ok("import", own, "--name", "Three")
    report = cli.ok("du", "--json")
    usage = {p["pack"]: p for p in report["packs"]}
    size_shared, size_own = shared.stat().st_size, own.stat().st_size
    assert usage["One"] == {"pack": "One", "bytes": size_shared, "shared_bytes": size_shared}
    assert usage["Two"]["shared_bytes"] == size_shared
    assert usage["Three"] == {"pack": "Three", "bytes": size_own, "shared_bytes": 0}
    assert report["store_bytes"] == size_shared + size_own
    assert report["referenced_bytes"] == size_shared + size_own
    assert report["saved_by_dedup"] == size_shared
    assert "saved by dedup" in cli.ok("du").stdout


def test_doctor_finds_a_corrupt_blob_quarantines_it_and_install_restores_it(cli: Harness, make_lora, sha256_of) -> None:
    path = make_lora("fragile", seed=8)
    cli.ok("import", path)
    sha = sha256_of(path)
    healthy = cli.ok("doctor", "--verify-blobs", "--json")
    assert healthy["problems"] == [] and "blob names match their bytes" in healthy["checks"]

    blob = cli.blob(sha)
    blob.chmod(0o644)
    with open(blob, "r+b") as handle:
        handle.seek(100)
        handle.write(b"\xff\xfe bit rot")
    blob.chmod(0o444)
    commits = cli.commits()

    found = cli("doctor", "--verify-blobs", "--json")
    assert found.returncode == 1
    (problem,) = json.loads(found.stdout)["problems"]
    assert sha[:12] in problem["message"] and "fragile" in problem["message"] and problem["fixed"] is False
    assert blob.exists(), "without --fix nothing moves"
    assert cli("doctor").returncode == 0, "without --verify-blobs the bytes are not re-hashed"

    fixed = cli("doctor", "--verify-blobs", "--fix", "--json")
    assert fixed.returncode == 1, "the pack still lacks its file: a problem remains"
    problem, missing = json.loads(fixed.stdout)["problems"]
    assert problem["fixed"] is True
    assert missing["fixed"] is False and "run 'synapse install fragile'" in missing["message"]
    assert not blob.exists()
    (quarantined,) = (cli.root / "data" / "quarantine").iterdir()
    assert quarantined.name.startswith(sha) and b"bit rot" in quarantined.read_bytes()
    cli.consistent()
    shown = cli.ok("show", "fragile", "--json")
    assert shown["resources"][0]["installed"] is False
    assert "missing" in cli.ok("show", "fragile").stdout
    assert cli.ok("list", "--json")[0]["installed"] is False
    missing = cli("doctor", "--json")
    assert missing.returncode == 1 and "synapse install fragile" in missing.stdout

    installed = cli.ok("install", "fragile", "--json")
    assert installed["fetched"] == ["main"] and installed["bytes_written"] == path.stat().st_size
    assert blob.read_bytes() == path.read_bytes()
    assert cli.ok("show", "fragile", "--json")["resources"][0]["installed"] is True
    assert cli.ok("doctor", "--verify-blobs", "--json")["problems"] == []
    again = cli.ok("install", "fragile", "--json")
    assert again["fetched"] == [] and again["present"] == ["main"] and again["bytes_written"] == 0
    assert cli.commits() == commits, "doctor and install change no state file"


def test_install_from_a_changed_original_fails_and_adds_no_blob(cli: Harness, make_lora, sha256_of) -> None:
    path = make_lora("changing", seed=9)
    cli.ok("import", path)
    sha = sha256_of(path)
    cli.blob(sha).chmod(0o644)
    cli.blob(sha).write_bytes(b"corrupt")
    cli.blob(sha).chmod(0o444)
    assert cli("doctor", "--verify-blobs", "--fix").returncode == 1  # set aside; the pack now lacks it
    path.write_bytes(path.read_bytes() + b"edited since")
    cli.fails_cleanly("install", "changing", words=("no longer has the bytes",))


# -- history -------------------------------------------------------------------------------------------------


def test_each_state_change_is_one_commit_with_a_meaningful_message(cli: Harness, make_lora) -> None:
    a, b = make_lora("a", seed=1), make_lora("b", seed=2)
    assert cli.messages() == ["init store"]
    steps = [
        (("import", a, "--name", "Foo"), "import pack Foo"),
        (("import", b, "--name", "Bar"), "import pack Bar"),
        (("remove", "Foo"), "remove pack Foo"),
    ]
    for args, message in steps:
        count = cli.commits()
        cli.ok(*args)
        assert cli.commits() == count + 1
        assert cli.messages()[0] == message
        assert cli.git("status", "--porcelain") == ""
    count = cli.commits()
    for args in (("list",), ("show", "Bar"), ("du",), ("gc",), ("install", "Bar"), ("doctor",), ("history",)):
        cli.ok(*args)
    assert cli.commits() == count, "commands that change no state make no commit"
    history = cli.ok("history", "--json")
    assert [e["message"] for e in history] == ["remove pack Foo", "import pack Bar", "import pack Foo", "init store"]
    assert all(re.fullmatch(r"[0-9a-f]{12}", e["commit"]) for e in history)
    assert "import pack Bar" in cli.ok("history").stdout


# -- bad input: one line, non-zero, no change ----------------------------------------------------------------

BAD_NAMES = [
    "a/b",
    "a\\b",
    "..",
    "a..b",
    "bad\x07name",
    "tab\tname",
    "CON",
    "NUL.txt",
    "com1",
    "trailing.",
    " lead",
    "work__X",
]


_EMPTY_NAME = pytest.param(
    "",
    id="empty",
)


@pytest.mark.parametrize("name", [*BAD_NAMES, _EMPTY_NAME], ids=[*(repr(n) for n in BAD_NAMES), "empty"])
def test_invalid_pack_names_are_refused(cli: Harness, make_lora, name: str) -> None:
    cli.fails_cleanly("import", make_lora(), "--name", name, words=("invalid pack name",))


def test_nonexistent_paths_are_refused(cli: Harness, tmp_path: Path) -> None:
    cli.fails_cleanly("import", tmp_path / "nope" / "x.safetensors", words=("no such file or folder",))
    cli.fails_cleanly("import", "nope.safetensors", words=("nope.safetensors",))
    cli.fails_cleanly("import", "file:///definitely/not/here.safetensors", words=("no such file or folder",))


def test_a_taken_name_is_refused(cli: Harness, make_lora) -> None:
    cli.ok("import", make_lora("one", seed=1), "--name", "Taken")
    cli.fails_cleanly("import", make_lora("two", seed=2), "--name", "Taken", words=("'Taken' already exists", "--name"))
    # a name taken implicitly (from the file name) too
    cli.fails_cleanly("import", make_lora("Taken", seed=3), words=("already exists",))


def test_unknown_pack_for_install_is_refused(cli: Harness) -> None:
    cli.fails_cleanly("install", "Ghost", words=("unknown pack 'Ghost'",))


UNINIT_COMMANDS = [
    ("list",),
    ("show", "Foo"),
    ("import", "FILE"),
    ("remove", "Foo"),
    ("install", "Foo"),
    ("gc",),
    ("du",),
    ("doctor",),
    ("history",),
]


@pytest.mark.parametrize("args", UNINIT_COMMANDS, ids=[a[0] for a in UNINIT_COMMANDS])
def test_commands_on_a_store_never_initialised_say_so(synapse_cli, make_lora, tmp_path: Path, args) -> None:
    root = tmp_path / "nothing-here"
    argv = [str(make_lora()) if a == "FILE" else a for a in args]
    line = assert_one_error_line(synapse_cli(*argv, root=root))
    assert f"no store at {root}" in line and "synapse store init" in line


@pytest.mark.parametrize("args", UNINIT_COMMANDS, ids=[a[0] for a in UNINIT_COMMANDS])
def test_commands_on_a_store_never_initialised_create_nothing(synapse_cli, make_lora, tmp_path: Path, args) -> None:
    root = tmp_path / "nothing-here"
    argv = [str(make_lora()) if a == "FILE" else a for a in args]
    assert synapse_cli(*argv, root=root).returncode != 0
    assert not root.exists(), sorted(str(p) for p in root.rglob("*"))


def _break_pack_json(cli: Harness, make_lora) -> Path:
    cli.ok("import", make_lora("edited", seed=1), "--name", "Edited")
    cli.ok("import", make_lora("fine", seed=2), "--name", "Fine")
    pack_json = cli.state / "packs" / "Edited" / "pack.json"
    pack_json.write_text(pack_json.read_text().replace('"kind": "lora"', '"kind": "lorra"'))
    return pack_json


def test_hand_edited_pack_json_gives_an_error_naming_file_and_field(cli: Harness, make_lora) -> None:
    pack_json = _break_pack_json(cli, make_lora)
    commits = cli.commits()
    for args in (("show", "Edited"), ("list",)):
        line = assert_one_error_line(cli(*args))
        assert str(pack_json) in line and "resources.0.kind" in line
    doctor = cli("doctor", "--json")
    assert doctor.returncode == 1
    assert any("resources.0.kind" in p["message"] for p in json.loads(doctor.stdout)["problems"])
    fine = cli("show", "Fine", "--json")
    assert fine.returncode == 0 and json.loads(fine.stdout)["pack"]["name"] == "Fine", "other packs still work"
    assert cli.commits() == commits

    pack_json.write_text('{"schema_version": 1, "name": ')  # not even JSON
    line = assert_one_error_line(cli("show", "Edited"))
    assert str(pack_json) in line


def test_failed_command_on_a_hand_edited_store_makes_no_commit(cli: Harness, make_lora) -> None:
    _break_pack_json(cli, make_lora)
    commits = cli.commits()
    assert_one_error_line(cli("remove", "Edited"))
    assert cli.commits() == commits
    assert cli.git("show", "HEAD:packs/Edited/pack.json").count('"lora"') == 1


def test_the_advice_in_the_error_restores_the_file(cli: Harness, make_lora) -> None:
    _break_pack_json(cli, make_lora)
    line = assert_one_error_line(cli("show", "Edited"))
    match = re.search(r"restore it with '([^']+)'", line)
    assert match, line
    subprocess.run(shlex.split(match.group(1)), capture_output=True, check=False)
    cli.ok("show", "Edited")


# -- a full disk, for real -----------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs; the test is skipped where mounting is not allowed."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command: cannot make a small disk to fill")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a 1 MiB tmpfs (needs root/CAP_SYS_ADMIN): {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, check=False)


def test_a_full_disk_during_ingest_is_a_clear_error_and_leaves_nothing(
    small_disk: Path, synapse_cli, checks, make_lora, tmp_path: Path
) -> None:
    h = Harness(small_disk / "store", synapse_cli, checks)
    h.ok("store", "init")
    big = write_big_lora(tmp_path / "files" / "two_mib.safetensors", 2)
    line = h.fails_cleanly("import", big, words=("disk is full",))
    assert "Traceback" not in line
    assert h.blobs() == frozenset()
    assert os.listdir(h.root / "data" / "tmp") == []
    assert h.ok("list", "--json") == []
    # the store still works once the file fits
    h.ok("import", make_lora("tiny", seed=1))
    assert len(h.blobs()) == 1


def test_a_failed_move_import_keeps_every_original(small_disk: Path, synapse_cli, checks, make_lora, tmp_path: Path):
    """--move of a folder whose second file does not fit: the first file, already stored, is not lost."""
    h = Harness(small_disk / "store", synapse_cli, checks)
    h.ok("store", "init")
    folder = tmp_path / "files" / "pack"
    first = make_lora("a_small", seed=1, folder=folder)
    second = write_big_lora(folder / "b_big.safetensors", 2)
    contents = {path: path.read_bytes() for path in (first, second)}
    h.fails_cleanly("import", folder, "--move", words=("disk is full",))
    assert {path: path.read_bytes() for path in contents} == contents, "every original is still there"
    assert h.blobs() == frozenset()
    assert h.ok("list", "--json") == []


def test_move_removes_the_original_also_when_the_store_already_has_its_bytes(
    cli: Harness, make_lora, tmp_path: Path
) -> None:
    original = make_lora("kept", seed=3)
    twin = tmp_path / "elsewhere" / "twin.safetensors"
    twin.parent.mkdir()
    twin.write_bytes(original.read_bytes())
    cli.ok("import", original, "--name", "First")
    cli.ok("import", twin, "--move", "--name", "Second")
    assert not twin.exists(), "a move leaves no copy behind, even when no bytes had to be written"
    assert original.exists()


# -- crash safety --------------------------------------------------------------------------------------------


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)


def test_kill_9_during_import_never_leaves_a_partial_blob(cli: Harness, checks, sha256_of, tmp_path: Path) -> None:
    big = write_big_lora(tmp_path / "files" / "big.safetensors", 96)
    sha = sha256_of(big)
    tmp = cli.root / "data" / "tmp"

    earlier_temps: set[str] = set()  # temps of processes killed in earlier rounds

    def temp_exists() -> bool:
        return any(name.endswith(".tmp") and name not in earlier_temps for name in os.listdir(tmp))

    def blob_exists() -> bool:
        return cli.blob(sha).exists()

    moments: list[tuple[str, Callable[[], bool], float]] = [
        ("at start-up", lambda: False, 0.05),
        ("as the copy starts", temp_exists, 0.0),
        ("mid copy", temp_exists, 0.04),
        ("late in the copy", temp_exists, 0.12),
        ("just after the blob is published", blob_exists, 0.0),
    ]
    killed_at = []
    for i, (label, condition, delay) in enumerate(moments):
        cli.blob(sha).unlink(missing_ok=True)  # every round really writes the blob again
        earlier_temps.update(os.listdir(tmp))
        env = {k: v for k, v in os.environ.items() if k != "SYNAPSE_ROOT"} | {"SYNAPSE_LOAD_PLUGINS": ""}
        argv = [str(SYNAPSE), "--root", str(cli.root), "import", str(big), "--name", f"Crash{i}"]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        started = time.monotonic()
        if label == "at start-up":
            time.sleep(delay)
        else:
            _wait_for(condition, proc)
            time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed_at.append(f"{label} ({time.monotonic() - started:.2f}s)")
        proc.wait(timeout=30)
        assert checks["blobs"](cli.root) == [], f"after kill -9 {label}"
        assert set(cli.blobs()) <= {sha}
    assert len(killed_at) >= 3, f"the import finished before most kills: {killed_at}"

    result = cli("import", big, "--name", "AfterCrash", "--json")
    assert result.returncode == 0, f"the next command failed after kills {killed_at}:\n{result.stderr}"
    out = json.loads(result.stdout)
    assert out["resources"][0]["sha256"] == sha and out["resources"][0]["installed"]
    assert checks["blobs"](cli.root) == []
    assert cli.blobs() == {sha}
    listed = cli("list", "--json")
    assert listed.returncode == 0 and "AfterCrash" in [p["name"] for p in json.loads(listed.stdout)]
    assert not any(cli.state in p.parents for p in checks["temps"](cli.root)), "a killed writer's temp in state/"
    cli.consistent(allow_temps_in_tmp=True)


def test_kill_9_while_state_is_written_is_not_committed_by_the_next_command(cli: Harness, make_lora) -> None:
    path = make_lora("victim", seed=1)
    for attempt in range(20):
        pack_dir = cli.state / "packs" / f"Victim{attempt}"
        proc = _spawn_import(cli.root, path, f"Victim{attempt}")
        while proc.poll() is None:
            with contextlib.suppress(FileNotFoundError):
                if any(n.endswith(".tmp") for n in os.listdir(pack_dir)):
                    proc.send_signal(signal.SIGKILL)
                    break
        proc.communicate(timeout=30)
        if pack_dir.is_dir() and any(n.endswith(".tmp") for n in os.listdir(pack_dir)):
            break  # killed between writing a state file's temp and renaming it
    else:
        pytest.skip("could not kill an import while it was writing a state file")
    cli.ok("import", make_lora("next", seed=2), "--name", "Next")  # the next command succeeds, and then:
    assert not [f for f in cli.git("ls-files").splitlines() if f.endswith(".tmp")], "a temp file is in history"
    assert "record manual edits" not in cli.messages()


def test_a_stale_git_index_lock_does_not_break_the_next_command(cli: Harness, make_lora) -> None:
    cli.ok("import", make_lora("before", seed=1))
    (cli.state / ".git" / "index.lock").write_bytes(b"")  # what git leaves when kill -9 hits it mid-commit
    result = cli("import", make_lora("after", seed=2))
    assert result.returncode == 0, result.stderr
    assert cli.messages()[0] == "import pack after"


# -- concurrency ---------------------------------------------------------------------------------------------


def _spawn_import(root: Path, path: Path, name: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "SYNAPSE_ROOT"} | {"SYNAPSE_LOAD_PLUGINS": ""}
    argv = [str(SYNAPSE), "--root", str(root), "import", str(path), "--name", name]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_two_imports_at_once_both_succeed(cli: Harness, tmp_path: Path) -> None:
    one = write_big_lora(tmp_path / "files" / "one.safetensors", 2)
    two = write_big_lora(tmp_path / "files" / "two.safetensors", 2)
    commits = cli.commits()
    procs = [_spawn_import(cli.root, one, "One"), _spawn_import(cli.root, two, "Two")]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    profile = json.loads((cli.state / "profiles" / "global" / "profile.json").read_text())
    assert sorted(profile["packs"]) == ["One", "Two"]
    assert cli.commits() == commits + 2
    assert sorted(cli.messages()[:2]) == ["import pack One", "import pack Two"]
    assert cli.git("status", "--porcelain") == ""
    assert len(cli.blobs()) == 2
    cli.consistent()


def test_two_imports_of_one_file_at_once_store_it_once(cli: Harness, tmp_path: Path) -> None:
    path = write_big_lora(tmp_path / "files" / "same.safetensors", 2)
    procs = [_spawn_import(cli.root, path, "Left"), _spawn_import(cli.root, path, "Right")]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert len(cli.blobs()) == 1
    assert [p["name"] for p in cli.ok("list", "--json")] == ["Left", "Right"]
    cli.consistent()


# -- without git ---------------------------------------------------------------------------------------------


def test_everything_works_without_git(synapse_cli, checks, make_lora, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin-without-git"
    bin_dir.mkdir()
    env = {"PATH": str(bin_dir)}
    h = Harness(tmp_path / "nogit", synapse_cli, checks)
    init = h.ok("store", "init", "--json", env=env)
    assert init["history"] is False
    assert not (h.state / ".git").exists()
    h.ok("import", make_lora("a", seed=1), env=env)
    assert [p["name"] for p in h.ok("list", "--json", env=env)] == ["a"]
    assert h.ok("history", "--json", env=env) == []
    doctor = h("doctor", "--json", env=env)
    report = json.loads(doctor.stdout)
    assert report["history"] is False
    assert doctor.returncode == 0 and "history is off" in h("doctor").stdout


# -- the Store facade as a library ---------------------------------------------------------------------------


def test_store_facade_returns_models_and_prints_nothing(
    tmp_path: Path,
    make_lora,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    assert_store_consistent,
) -> None:
    monkeypatch.setenv("SYNAPSE_LOAD_PLUGINS", "")
    root = tmp_path / "library"
    store = Store(root=str(root))
    assert isinstance(store.init(), InitResult)
    a, b = make_lora("a", seed=1), make_lora("b", seed=2)
    imported = store.import_pack(str(a), name="A")
    assert isinstance(imported, ImportResult) and imported.resources[0].kind is AssetKind.LORA
    store.import_pack(str(b), name="B", kind="lora", mode="link")
    listed = store.list_packs()
    assert [type(p) for p in listed] == [PackSummary, PackSummary] and [p.name for p in listed] == ["A", "B"]
    assert isinstance(store.show("A"), PackDetails)
    assert isinstance(store.install("A"), InstallResult)
    assert isinstance(store.du(), DuReport)
    doctor = store.doctor(verify_blobs=True)
    assert isinstance(doctor, DoctorReport) and doctor.healthy
    assert isinstance(store.remove("B"), RemoveResult)
    assert isinstance(store.gc(dry_run=True), GcResult)
    history = store.history_log()
    assert all(isinstance(e, HistoryEntry) for e in history)
    assert [e.message for e in history] == ["remove pack B", "import pack B", "import pack A", "init store"]
    for value in (imported, listed[0], store.du()):
        assert isinstance(value, BaseModel) and value.model_dump(mode="json")

    with pytest.raises(InvalidInput, match="no such file"):
        store.import_pack(str(tmp_path / "missing" / "x.safetensors"))
    with pytest.raises(NotFound, match=r"unknown pack .a.*A"):
        store.show("a")
    with pytest.raises(SynapseError, match="no store at"):
        Store(root=tmp_path / "elsewhere", registry=make_registry()).list_packs()

    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert_store_consistent(root)


def test_two_stores_in_one_process_are_independent(tmp_path: Path, make_lora) -> None:
    first = make_store(tmp_path / "one", entry_points=False)
    second = make_store(tmp_path / "two", entry_points=False)
    first.import_pack(str(make_lora("only_here", seed=1)))
    assert [p.name for p in first.list_packs()] == ["only_here"]
    assert second.list_packs() == []
