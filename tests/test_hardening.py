"""Issue 12, the store's side: planted symlinks, full disks, failed rollbacks, hand-edited
files and hostile names. Each test names the problem of the audit it reproduces; the
Civitai side (hostile servers) is in plugins/civitai/tests/test_hostile_server.py."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import sha256_of
from test_store_core import Harness, assert_one_error_line
from test_store_core import small_disk as small_disk

from synapse_core.store import Store
from synapse_core.testing import make_registry
from synapse_core.views import discard_leftovers

COMFY_ENV = {"SYNAPSE_LOAD_PLUGINS": "comfyui"}


@pytest.fixture
def cli(store: Store, synapse_cli: Any, assert_store_consistent: Any, temp_files: Any, check_blobs: Any) -> Harness:
    checks = {"consistent": assert_store_consistent, "temps": temp_files, "blobs": check_blobs, "sha": sha256_of}
    return Harness(store.layout.root, synapse_cli, checks)


@pytest.fixture
def comfy(tmp_path: Path, synapse_cli: Any, assert_store_consistent: Any, temp_files: Any, check_blobs: Any) -> Harness:
    """A store with the ComfyUI adapter, so that views exist."""
    root = tmp_path / "comfy-store"
    Store(root=root, registry=make_registry(entry_points=True, env=COMFY_ENV)).init()
    checks = {"consistent": assert_store_consistent, "temps": temp_files, "blobs": check_blobs, "sha": sha256_of}

    def run(*args: Any, root: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return synapse_cli(*args, root=root, env={**COMFY_ENV, **(env or {})})

    return Harness(root, run, checks)


def _one_blob(h: Harness) -> Path:
    (sha,) = h.blobs()
    return h.blob(sha)


# -- 3 and 11: sources inside the store --------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["--move", "--link", "--copy"])
def test_3_importing_a_blob_is_refused_and_the_blob_kept(cli: Harness, make_lora, mode: str) -> None:
    cli.ok("import", make_lora("a", seed=1), "--name", "A")
    blob = _one_blob(cli)
    before = blob.read_bytes()
    args = ("import", blob, "--name", "B") + ((mode,) if mode != "--copy" else ())
    cli.fails_cleanly(*args, words=("inside the store",))
    assert blob.read_bytes() == before
    assert cli.ok("doctor", "--verify-blobs", "--json")["problems"] == []


def test_3_a_link_outside_that_leads_to_a_blob_is_refused(cli: Harness, make_lora, tmp_path: Path) -> None:
    cli.ok("import", make_lora("a", seed=1), "--name", "A")
    alias = tmp_path / "alias.safetensors"
    alias.symlink_to(_one_blob(cli))
    cli.fails_cleanly("import", alias, "--link", "--name", "B", words=("inside the store",))


def test_11_moving_a_view_folder_in_is_refused_and_the_view_kept(comfy: Harness, make_lora) -> None:
    comfy.ok("import", make_lora("a", seed=1), "--name", "A")
    loras = comfy.root / "data" / "views" / "comfyui" / "active" / "models" / "loras"
    assert (loras / "a.safetensors").exists()
    comfy.fails_cleanly("import", loras, "--move", "--name", "B", words=("inside the store",))
    assert (loras / "a.safetensors").exists()
    assert comfy.ok("doctor", "--json")["problems"] == []


# -- 4: a rollback that fails keeps the marker ------------------------------------------------------------------


@pytest.fixture
def failing_git(tmp_path: Path) -> dict[str, str]:
    """A PATH whose git refuses to commit and to reset, as with a stale lock it cannot remove."""
    real = shutil.which("git")
    if real is None:
        pytest.skip("git is not installed")
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "git"
    script.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do case "$a" in commit|reset)\n'
        "  echo \"fatal: Unable to create 'index.lock': File exists.\" >&2; exit 128;;\n"
        "esac; done\n"
        f'exec {real} "$@"\n'
    )
    script.chmod(0o755)
    return {"PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


def test_4_a_failed_rollback_keeps_the_marker_and_the_next_command_rolls_back(
    cli: Harness, make_lora, failing_git: dict[str, str]
) -> None:
    cli.ok("import", make_lora("a", seed=1), "--name", "A")
    failed = cli("import", make_lora("c", seed=3), "--name", "C", env=failing_git)
    line = assert_one_error_line(failed)
    assert "doctor --fix" in line, line
    assert (cli.root / "data" / ".mutation").exists(), "the marker must stay until a rollback succeeds"
    report = cli("doctor", "--json")
    assert report.returncode == 1 and "interrupted" in report.stdout
    cli.ok("pack", "policy", "A", "follow_latest")  # the next mutation rolls the failed one back first
    assert [p["name"] for p in cli.ok("list", "--json")] == ["A"]
    assert "import pack C" not in cli.messages()


# -- 13: a full disk before anything is written -----------------------------------------------------------------


def _fill(folder: Path) -> None:
    """Take every byte and inode left on the file system of ``folder``."""
    folder.mkdir()
    with contextlib.suppress(OSError), open(folder / "big", "wb") as handle:
        while True:
            handle.write(b"\0" * 65536)
    with contextlib.suppress(OSError):
        for count in range(100_000):
            (folder / str(count)).touch()


def test_13_no_inode_left_for_the_mutation_marker_is_one_line(small_disk: Path, synapse_cli, checks, make_lora) -> None:
    h = Harness(small_disk / "store", synapse_cli, checks)
    h.ok("store", "init")
    h.ok("import", make_lora("a", seed=1), "--name", "A")
    _fill(small_disk / "filler")
    line = assert_one_error_line(h("pack", "policy", "A", "follow_latest"))
    assert "disk is full" in line, line
    shutil.rmtree(small_disk / "filler")
    h.ok("pack", "policy", "A", "follow_latest")


@pytest.fixture
def checks(assert_store_consistent: Any, temp_files: Any, check_blobs: Any) -> dict[str, Any]:
    return {"consistent": assert_store_consistent, "temps": temp_files, "blobs": check_blobs, "sha": sha256_of}


# -- 6: a resource's expose leaving the view ---------------------------------------------------------------------


def test_6_an_expose_with_dotdot_is_invalid_and_nothing_is_created_outside(comfy: Harness, make_lora) -> None:
    comfy.ok("import", make_lora("a", seed=1), "--name", "A")
    pack_file = comfy.root / "state" / "packs" / "A" / "pack.json"
    pack = json.loads(pack_file.read_text())
    pack["resources"][0]["expose"] = "../../../../../../escaped/x.safetensors"
    pack_file.write_text(json.dumps(pack))
    outside = comfy.root.parent / "escaped"
    report = comfy("doctor", "--json")
    assert report.returncode == 1 and "expose" in report.stdout and "'..'" in report.stdout
    line = assert_one_error_line(comfy("use", "A"))
    assert "expose" in line, line
    assert not outside.exists()
    assert not list(comfy.root.parent.glob("**/escaped"))


@pytest.mark.parametrize("expose", ["/etc/x.safetensors", "a/../../x.safetensors", "a\\..\\x", "", "sub//x"])
def test_6_exposes_that_are_not_relative_paths_inside_a_folder_are_invalid(expose: str) -> None:
    from pydantic import ValidationError

    from synapse_core.models import ResourceSpec

    with pytest.raises(ValidationError):
        ResourceSpec(id="main", kind="lora", expose=expose)
    assert ResourceSpec(id="main", kind="lora", expose="sub/x.safetensors").expose == "sub/x.safetensors"


# -- 8: gc never follows a symlinked data/tmp -----------------------------------------------------------------------


def test_8_gc_does_not_clean_a_symlinked_tmp_folder(cli: Harness, make_lora, tmp_path: Path) -> None:
    cli.ok("import", make_lora("a", seed=1), "--name", "A")
    outside = tmp_path / "users-folder"
    outside.mkdir()
    old = outside / "old-notes.part"
    old.write_text("mine")
    os.utime(old, (0, 0))
    tmp = cli.root / "data" / "tmp"
    shutil.rmtree(tmp)
    tmp.symlink_to(outside)
    line = assert_one_error_line(cli("gc"))
    assert f"{tmp} is reached through a symbolic link" in line, line
    assert old.read_text() == "mine"
    assert cli.blobs(), "the refused gc changed nothing"


# -- 14 (not views): locks, index, caches, global profile ------------------------------------------------------


@pytest.mark.parametrize("lock", ["index.lock", "HEAD.lock", "refs/heads/main.lock"])
def test_14_a_stale_git_lock_is_seen_by_doctor_and_cleared(cli: Harness, make_lora, lock: str) -> None:
    cli.ok("import", make_lora("a", seed=1), "--name", "A")
    (cli.state / ".git" / lock).write_text("")
    report = cli("doctor", "--json")
    assert report.returncode == 1 and "stale lock" in report.stdout, report.stdout
    cli.ok("doctor", "--fix")
    assert cli.ok("doctor", "--json")["problems"] == []
    (cli.state / ".git" / lock).write_text("")  # and a mutation clears it by itself
    cli.ok("import", make_lora("b", seed=2), "--name", "B")
    assert "import pack B" in cli.messages()


def test_14_a_corrupt_git_index_is_seen_and_rebuilt(cli: Harness, make_lora) -> None:
    cli.ok("import", make_lora("a", seed=1), "--name", "A")
    (cli.state / ".git" / "index").write_bytes(b"DIRC garbage")
    report = cli("doctor", "--json")
    assert report.returncode == 1 and "index is broken" in report.stdout, report.stdout
    cli.ok("doctor", "--fix")
    assert cli.ok("doctor", "--json")["problems"] == []
    cli.ok("import", make_lora("b", seed=2), "--name", "B")
    assert cli.git("status", "--porcelain") == ""


@pytest.mark.parametrize("cache", ["update-checks.json", "hash-cache.json"])
def test_14_a_corrupt_cache_is_seen_by_doctor_and_rebuilt(cli: Harness, make_lora, cache: str) -> None:
    cli.ok("import", make_lora("a", seed=1), "--name", "A")
    (cli.root / "data" / cache).write_text("{not json")
    report = cli("doctor", "--json")
    assert report.returncode == 1 and cache in report.stdout, report.stdout
    cli.ok("doctor", "--fix")
    assert cli.ok("doctor", "--json")["problems"] == []
    assert not (cli.root / "data" / cache).exists()


def test_14_a_missing_global_profile_is_seen_and_recreated(cli: Harness, make_lora) -> None:
    cli.ok("import", make_lora("a", seed=1), "--name", "A")
    shutil.rmtree(cli.state / "profiles" / "global")
    report = cli("doctor", "--json")
    assert report.returncode == 1 and "global profile is missing" in report.stdout, report.stdout
    cli.ok("doctor", "--fix")
    assert cli.ok("doctor", "--json")["problems"] == []
    cli.ok("import", make_lora("b", seed=2), "--name", "B")
    assert json.loads((cli.state / "profiles" / "global" / "profile.json").read_text())["packs"] == ["A", "B"]


# -- 17: odd things where the store expects files ---------------------------------------------------------------


def test_17_a_lock_path_that_is_a_folder_is_one_line(cli: Harness, make_lora) -> None:
    lock = cli.root / "data" / ".lock"
    lock.unlink(missing_ok=True)
    lock.mkdir()
    line = assert_one_error_line(cli("import", make_lora("a", seed=1), "--name", "A"))
    assert ".lock is a folder" in line, line


def test_17_a_lock_path_that_is_a_symlink_is_not_followed(cli: Harness, make_lora, tmp_path: Path) -> None:
    lock = cli.root / "data" / ".lock"
    lock.unlink(missing_ok=True)
    target = tmp_path / "elsewhere" / "created-by-synapse"
    target.parent.mkdir()
    lock.symlink_to(target)
    line = assert_one_error_line(cli("import", make_lora("a", seed=1), "--name", "A"))
    assert "symbolic link" in line, line
    assert not target.exists()


def test_17_a_pack_folder_that_is_a_symlink_is_one_line(cli: Harness, make_lora, tmp_path: Path) -> None:
    cli.ok("import", make_lora("a", seed=1), "--name", "A")
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(cli.state / "packs" / "A", elsewhere)
    shutil.rmtree(cli.state / "packs" / "A")
    (cli.state / "packs" / "A").symlink_to(elsewhere)
    for command in (("list",), ("show", "A"), ("doctor",), ("remove", "A")):
        result = cli(*command)
        assert "Traceback" not in result.stderr, (command, result.stderr)
    assert (elsewhere / "pack.json").is_file(), "a file outside the store is never deleted"


# -- 26: names -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Sty\u200ble", "evil\u202etxt.exe", "a\u2028b", "x\ufeff"])
def test_26_invisible_and_bidi_characters_are_refused_in_pack_names(cli: Harness, make_lora, name: str) -> None:
    line = cli.fails_cleanly("import", make_lora("a", seed=1), "--name", name, words=("invisible",))
    assert "--name" in line


def test_26_file_names_lose_invisible_characters() -> None:
    from synapse_core.names import sanitize_file_name

    assert sanitize_file_name("a\u200bb\u202e.safetensors") == "ab.safetensors"


# -- 16 and 25: attach through a config file that is a bad symlink ---------------------------------------------


def _comfyui_install(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "main.py").write_text("")
    (folder / "folder_paths.py").write_text("")
    return folder


def test_16_attach_through_a_symlink_loop_is_one_line(comfy: Harness, tmp_path: Path) -> None:
    install = _comfyui_install(tmp_path / "ComfyUI")
    (install / "extra_model_paths.yaml").symlink_to(install / "other.yaml")
    (install / "other.yaml").symlink_to(install / "extra_model_paths.yaml")
    line = assert_one_error_line(comfy("attach", "comfyui", install))
    assert "loop" in line, line


def test_25_attach_through_a_dangling_symlink_creates_no_folders(comfy: Harness, tmp_path: Path) -> None:
    install = _comfyui_install(tmp_path / "ComfyUI")
    nowhere = tmp_path / "nowhere"
    (install / "extra_model_paths.yaml").symlink_to(nowhere / "deeper" / "extra.yaml")
    line = assert_one_error_line(comfy("attach", "comfyui", install))
    assert "does not exist" in line, line
    assert not nowhere.exists()


# -- 7 and 8 (views engine): runtime stacks, symlinked views folders ------------------------------------------


def test_7_a_stack_entry_that_is_a_path_never_points_active_outside(comfy: Harness, make_lora) -> None:
    comfy.ok("import", make_lora("a", seed=1), "--name", "A")
    runtime = comfy.root / "data" / "runtime.json"
    data = json.loads(runtime.read_text())
    data["ui"]["comfyui"]["stack"] = ["global", "../../../../../outside"]
    runtime.write_text(json.dumps(data))
    for command in (("import", make_lora("b", seed=2), "--name", "B"), ("back",), ("use", "A"), ("status",)):
        result = comfy(*command)
        assert "Traceback" not in result.stderr, (command, result.stderr)
    active = comfy.root / "data" / "views" / "comfyui" / "active"
    if active.is_symlink():
        assert os.path.realpath(active).startswith(os.path.realpath(comfy.root)), os.readlink(active)
    assert not (comfy.root.parent / "outside").exists()
    comfy.ok("doctor", "--fix")
    assert comfy.ok("doctor", "--json")["problems"] == []


def test_8_gc_does_not_prune_inside_a_symlinked_profiles_folder(comfy: Harness, make_lora, tmp_path: Path) -> None:
    comfy.ok("import", make_lora("a", seed=1), "--name", "A")
    outside = tmp_path / "users-profiles"
    (outside / "old-profile").mkdir(parents=True)
    (outside / "old-profile" / "notes.txt").write_text("mine")
    profiles = comfy.root / "data" / "views" / "comfyui" / "profiles"
    shutil.copytree(profiles, outside, symlinks=True, dirs_exist_ok=True)
    shutil.rmtree(profiles)
    profiles.symlink_to(outside)
    listing = sorted(p.name for p in outside.iterdir())
    for command in (("gc",), ("doctor", "--fix"), ("remove", "A")):
        line = assert_one_error_line(comfy(*command))
        assert f"{profiles} is reached through a symbolic link" in line, (command, line)
    assert (outside / "old-profile" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in outside.iterdir()) == listing, "nothing written or deleted where the link points"
    assert [p["name"] for p in comfy.ok("list", "--json")] == ["A"], "the refused remove changed nothing"
    report = comfy("doctor", "--json")
    assert report.returncode == 1 and "reached through a symbolic link" in report.stdout, report.stdout
    profiles.unlink()  # what the message says to do: the next command rebuilds the views
    comfy.ok("gc")
    assert comfy.ok("doctor", "--json")["problems"] == []


def test_8_view_pruning_never_reaches_through_a_linked_profiles_folder(tmp_path: Path) -> None:
    """Below the refusal: the trees and leftovers gc prunes are never listed through a link, and
    the removal helper never deletes through one."""
    store = Store(root=tmp_path / "store", registry=make_registry(entry_points=True, env=COMFY_ENV))
    store.init()
    outside = tmp_path / "users-profiles"
    for name in ("old-profile", ".staging-x-1-abcdef12", ".trash-y-abcdef12"):
        (outside / name).mkdir(parents=True)
        (outside / name / "notes.txt").write_text("mine")
    profiles = store.layout.views_dir / "comfyui" / "profiles"
    shutil.rmtree(profiles)
    profiles.symlink_to(outside)
    assert store.views.trees("comfyui") == []
    assert all(outside not in p.parents and profiles not in p.parents for p in store.views.leftovers("comfyui"))
    discard_leftovers(store.layout.root, [profiles / ".staging-x-1-abcdef12", profiles / "old-profile"])
    assert sorted(p.name for p in outside.iterdir()) == [".staging-x-1-abcdef12", ".trash-y-abcdef12", "old-profile"]
    assert all((p / "notes.txt").read_text() == "mine" for p in outside.iterdir())
