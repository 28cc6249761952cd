"""doctor and the views: rebuilding from state and blobs alone, missing blobs, dangling links,
and a views folder on a filesystem without symlinks (issue 4)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from uiviews.kit import HAS_GIT, PLUGIN_ENV, UIS, blob, manifest, sha_of, views

from synapse_core.store import Store
from synapse_core.testing import lora_file, write_safetensors


def tree(top: Path) -> dict[str, tuple[str, object]]:
    """Everything under ``top``: links by target, files by bytes, folders by name."""
    found: dict[str, tuple[str, object]] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(top).as_posix()
            if path.is_symlink():
                found[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                found[rel] = ("dir", None)
            elif name == ".synapse-fingerprint":  # folder mtimes are the disk's, not the view's content
                found[rel] = ("file", {k: v for k, v in json.loads(path.read_bytes()).items() if k != "dirs"})
            else:
                found[rel] = ("file", path.read_bytes())
    return found


def dangling(top: Path) -> list[str]:
    """Every symlink under ``top`` whose target does not exist (every view, stacked or not)."""
    return [rel for rel, (what, _) in tree(top).items() if what == "link" and not os.path.exists(top / rel)]


def check_runtime(root: Path) -> dict[str, list[str]]:
    """runtime.json and every `active` agree; no view has a dangling link."""
    runtime = json.loads((root / "data" / "runtime.json").read_text())
    found = {ui: rt["stack"] for ui, rt in runtime["ui"].items()}
    assert sorted(found) == list(UIS)
    for ui, stack in found.items():
        assert stack[0] == "global"
        assert os.readlink(views(root) / ui / "active") == f"profiles/{stack[-1]}"
        for profile in stack:
            assert manifest(root, ui, profile)["profile"] == profile
    assert dangling(views(root)) == []
    return found


def delete_blob(root: Path, sha: str) -> None:
    path = blob(root, sha)
    os.chmod(path.parent, 0o755)
    path.unlink()


def state_head(root: Path) -> tuple[str, str] | None:
    if not HAS_GIT or not (root / "state" / ".git").is_dir():
        return None
    git = ["git", "-C", str(root / "state")]
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout
    dirty = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True, check=True).stdout
    return head, dirty


# -- rebuilding views ------------------------------------------------------------------------------------------------


def test_rebuild_views_recreates_identical_trees(
    store: Store, root: Path, cli, tmp_path: Path, assert_store_consistent
):
    src = tmp_path / "src"
    store.import_pack(str(lora_file(src / "e" / "style.safetensors", seed=1)), name="Earlier")
    store.import_pack(str(lora_file(src / "l" / "style.safetensors", seed=2)), name="Later")
    lora_file(src / "Folder" / "a" / "x.safetensors", seed=3)
    write_safetensors(src / "Folder" / "vae" / "sharp.safetensors", {"decoder.conv_in.weight": (4, 4)})
    store.import_pack(str(src / "Folder"), name="Folder")
    store.use("Earlier", uis=["comfyui"])
    store.use("Later", uis=["comfyui"])
    store.use("Folder", uis=["a1111", "forge"])
    check_runtime(root)
    before = tree(views(root))
    assert sum(1 for what, _ in before.values() if what == "link") > 10

    shutil.rmtree(views(root))
    broken = cli("doctor", ok=False)
    assert broken.returncode == 1 and "problem" in broken.stdout, broken.stdout

    rebuilt = cli("doctor", "--rebuild-views")
    assert "fixed" in rebuilt.stdout or "healthy" in rebuilt.stdout
    after = tree(views(root))
    assert sorted(after) == sorted(before)
    assert after == before  # links, manifests and fingerprints alike
    check_runtime(root)
    healthy = cli("doctor", "--json")
    assert json.loads(healthy.stdout)["problems"] == []
    assert_store_consistent(root)


def test_doctor_finds_and_fixes_a_wrong_active_link(store: Store, root: Path, cli, tmp_path: Path):
    store.import_pack(str(lora_file(tmp_path / "src" / "e" / "style.safetensors", seed=1)), name="Earlier")
    store.use("Earlier", uis=["comfyui"])
    active = views(root) / "comfyui" / "active"
    active.unlink()
    os.symlink("profiles/global", active)  # not the top of comfyui's stack
    result = cli("doctor", ok=False)
    assert result.returncode == 1 and "comfyui" in result.stdout and "work__Earlier" in result.stdout
    cli("doctor", "--fix")
    assert check_runtime(root)["comfyui"] == ["global", "work__Earlier"]
    cli("doctor")


def _two_conflicting_packs_then_a_hand_edited_policy(store: Store, root: Path, tmp_path: Path) -> None:
    """Earlier and Later both expose style.safetensors; global's policy is then edited by hand."""
    store.import_pack(str(lora_file(tmp_path / "src" / "e" / "style.safetensors", seed=1)), name="Earlier")
    store.import_pack(str(lora_file(tmp_path / "src" / "l" / "style.safetensors", seed=2)), name="Later")
    profile = root / "state" / "profiles" / "global" / "profile.json"
    data = json.loads(profile.read_text())
    data["conflicts"]["policy"] = "first_wins"
    profile.write_text(json.dumps(data))


def test_doctor_reports_a_view_that_no_longer_matches_state(store: Store, root: Path, cli, tmp_path: Path):
    _two_conflicting_packs_then_a_hand_edited_policy(store, root, tmp_path)
    result = cli("doctor", ok=False)
    assert result.returncode == 1 and "global" in result.stdout, result.stdout


def test_doctor_fix_brings_a_hand_edited_profile_view_up_to_date(store: Store, root: Path, cli, tmp_path: Path):
    _two_conflicting_packs_then_a_hand_edited_policy(store, root, tmp_path)
    cli("doctor", "--fix")
    for ui in UIS:
        [entry] = manifest(root, ui)["entries"]
        assert (entry["pack"], entry["shadows"]) == ("Earlier", ["Later"])
        assert manifest(root, ui)["policy"] == "first_wins"
    check_runtime(root)


# -- missing blobs ---------------------------------------------------------------------------------------------------


def test_a_missing_blob_is_left_out_reported_and_comes_back_on_install(store: Store, root: Path, cli, tmp_path: Path):
    a = lora_file(tmp_path / "src" / "A" / "a.safetensors", seed=1)
    b = lora_file(tmp_path / "src" / "B" / "b.safetensors", seed=2)
    store.import_pack(str(a), name="A")
    store.import_pack(str(b), name="B")
    store.use("B", uis=["comfyui"])
    delete_blob(root, sha_of(a))

    found = cli("doctor", ok=False)
    assert found.returncode == 1
    assert "synapse install A" in found.stdout and "dangling" in found.stdout, found.stdout

    cli("doctor", "--fix", ok=False)  # the blob itself stays missing: exit 1, but no view dangles any more
    assert dangling(views(root)) == []
    check_runtime(root)
    status = {u["ui"]: u for u in json.loads(cli("status", "--json").stdout)["uis"]}
    for ui in UIS:
        data = manifest(root, ui, status[ui]["active"])
        assert [(o["pack"], o["reason"]) for o in data["left_out"]] == [("A", "missing_blob")], ui
        assert [e["pack"] for e in data["entries"]] == ["B"]
        assert len(status[ui]["missing"]) == 1 and "a.safetensors" in status[ui]["missing"][0], status[ui]
        assert "synapse install A" in status[ui]["missing"][0]

    # a command that rebuilds views meanwhile never links the missing blob
    store.import_pack(str(lora_file(tmp_path / "src" / "C" / "c.safetensors", seed=3)), name="C")
    check_runtime(root)

    cli("install", "A")
    assert sha_of(blob(root, sha_of(a))) == sha_of(a)
    check_runtime(root)
    for ui in UIS:
        for profile in check_runtime(root)[ui]:
            data = manifest(root, ui, profile)
            assert data["left_out"] == [] and sorted(e["pack"] for e in data["entries"]) == ["A", "B", "C"]
    status = json.loads(cli("status", "--json").stdout)
    assert all(u["missing"] == [] for u in status["uis"])
    cli("doctor")


def test_no_view_dangles_after_back_remove_and_gc(store: Store, root: Path, cli, tmp_path: Path):
    store.import_pack(str(lora_file(tmp_path / "src" / "e" / "style.safetensors", seed=1)), name="Earlier")
    store.import_pack(str(lora_file(tmp_path / "src" / "l" / "style.safetensors", seed=2)), name="Later")
    store.use("Earlier", uis=list(UIS))
    store.back(uis=list(UIS))
    store.remove("Earlier")
    store.gc()
    assert dangling(views(root)) == []
    cli("doctor")  # healthy: gc pruned the views no UI stacks


# -- a views folder without symlinks ---------------------------------------------------------------------------------


def _fs_type(path: Path) -> str | None:
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[1] in (str(path), str(path.resolve())):
            return fields[2]
    return None


@pytest.fixture
def fat_mount(tmp_path: Path) -> Iterator[Callable[[Path], str]]:
    """``mount(folder)``: a small FAT filesystem (no symlinks) mounted on ``folder``; returns its
    type as /proc/mounts names it. Kernel vfat if it can, else fusefat; skips if neither works."""
    if os.geteuid() != 0:
        pytest.skip("mounting a FAT image needs root")
    mkfs = shutil.which("mkfs.vfat") or shutil.which("mkfs.fat")
    if mkfs is None:
        pytest.skip("mkfs.vfat is not installed (apt-get install dosfstools)")
    mounted: list[tuple[Path, list[str]]] = []

    def mount(folder: Path) -> str:
        image = tmp_path / f"fat-{len(mounted)}.img"
        with open(image, "wb") as handle:
            handle.truncate(8 << 20)
        subprocess.run([mkfs, str(image)], check=True, capture_output=True)
        folder.mkdir(parents=True, exist_ok=True)
        command = ["mount", "-o", "loop", "-t", "vfat", str(image), str(folder)]
        kernel = subprocess.run(command, capture_output=True) if shutil.which("mount") else None
        if kernel is not None and kernel.returncode == 0:
            mounted.append((folder, ["umount", str(folder)]))
        elif shutil.which("fusefat") and os.path.exists("/dev/fuse"):
            fuse = subprocess.run(["fusefat", "-o", "rw+", str(image), str(folder)], capture_output=True)
            if fuse.returncode != 0 or _fs_type(folder) is None:
                pytest.skip(f"cannot mount a FAT image: kernel vfat failed and fusefat said {fuse.stderr!r}")
            mounted.append((folder, ["fusermount", "-u", str(folder)]))
        else:
            why = kernel.stderr.decode().strip() if kernel is not None else "no mount command"
            pytest.skip(f"cannot mount vfat ({why}) and fusefat is not installed (apt-get install fusefat)")
        kind = _fs_type(folder)
        assert kind is not None
        probe = folder / "probe"
        try:
            os.symlink("target", probe)
        except OSError:
            pass
        else:
            probe.unlink()
            pytest.skip(f"{kind} at {folder} supports symlinks after all")
        return kind

    try:
        yield mount
    finally:
        for folder, command in reversed(mounted):
            subprocess.run(command, capture_output=True)
            if _fs_type(folder) is not None:
                subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _leftovers(top: Path) -> list[str]:
    """Staging folders, temp files and symlinks under ``top``."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if name.startswith((".staging-", ".old-", ".active-")) or name.endswith(".tmp") or path.is_symlink():
                found.append(str(path.relative_to(top)))
    return found


def test_init_in_symlink_mode_on_a_filesystem_without_symlinks_fails_clearly(fat_mount, synapse_cli, tmp_path: Path):
    root = tmp_path / "store"
    kind = fat_mount(root / "data" / "views")
    result = synapse_cli("store", "init", "--link-mode", "symlink", root=root, env=PLUGIN_ENV)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert kind in lines[0] and "symlink" in lines[0], lines[0]
    assert _leftovers(root / "data" / "views") == []
    assert not any((root / "data" / "views" / ui / "active").exists() for ui in UIS)


def test_init_auto_on_a_filesystem_without_links_picks_copies_and_says_why(fat_mount, synapse_cli, tmp_path: Path):
    root = tmp_path / "store"
    kind = fat_mount(root / "data" / "views")
    result = synapse_cli("store", "init", root=root, env=PLUGIN_ENV)
    assert result.returncode == 0, result.stderr
    assert "copy" in result.stdout and kind in result.stdout and "no links" in result.stdout, result.stdout
    assert json.loads((root / "state" / "config.json").read_text())["link_mode"] == "copy"


def test_use_with_views_on_a_filesystem_without_symlinks_changes_nothing(
    store: Store, root: Path, cli, fat_mount, tmp_path: Path, assert_store_consistent
):
    store.import_pack(str(lora_file(tmp_path / "src" / "e" / "style.safetensors", seed=1)), name="Earlier")
    shutil.rmtree(views(root))
    kind = fat_mount(views(root))
    runtime = (root / "data" / "runtime.json").read_bytes()
    head = state_head(root)

    result = cli("use", "Earlier", ok=False)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert kind in lines[0] and "symlink" in lines[0] and "--link-mode" in lines[0], lines[0]
    assert _leftovers(views(root)) == []
    assert list(views(root).glob("*/profiles/work__Earlier")) == []
    assert (root / "data" / "runtime.json").read_bytes() == runtime
    assert state_head(root) == head
    assert not (root / "state" / "profiles" / "work__Earlier").exists()
    assert_store_consistent(root)
