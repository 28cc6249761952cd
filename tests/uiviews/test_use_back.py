"""use / back / profiles: the per-UI runtime stack and its `active` links (issue 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from uiviews.kit import HAS_GIT, LORA_FOLDER, PLUGIN_ENV, UIS, assert_clear_error, blob, manifest, sha_of, views

from synapse_core.store import Store
from synapse_core.testing import lora_file


def stacks(root: Path) -> dict[str, list[str]]:
    runtime = json.loads((root / "data" / "runtime.json").read_text())
    return {ui: rt["stack"] for ui, rt in runtime["ui"].items()}


def check_runtime(root: Path) -> dict[str, list[str]]:
    """runtime.json and every `active` agree: active -> profiles/<top>, each stacked view exists
    and its links are its manifest's entries, none dangling; returns the stacks."""
    found = stacks(root)
    assert sorted(found) == list(UIS)
    for ui, stack in found.items():
        assert stack and stack[0] == "global", (ui, stack)
        assert os.readlink(views(root) / ui / "active") == f"profiles/{stack[-1]}", ui
        for profile in stack:
            data = manifest(root, ui, profile)
            assert (data["ui"], data["profile"]) == (ui, profile)
            top = views(root) / ui / "profiles" / profile
            made = {
                (Path(d) / n).relative_to(top).as_posix()
                for d, dirs, files in os.walk(top)
                for n in dirs + files
                if (Path(d) / n).is_symlink()
            }
            assert made == {e["path"] for e in data["entries"]}, (ui, profile)
            for entry in data["entries"]:
                assert Path(os.path.realpath(top / entry["path"])) == blob(root, entry["sha256"]).resolve()
    return found


def lora_in_active(root: Path, ui: str, name: str) -> Path:
    return views(root) / ui / "active" / LORA_FOLDER[ui] / name


def snapshot(root: Path) -> dict[str, object]:
    """What a command that fails must not change."""
    snap: dict[str, object] = {
        "runtime": (root / "data" / "runtime.json").read_bytes(),
        "active": {ui: os.readlink(views(root) / ui / "active") for ui in UIS},
        "profiles": sorted(p.name for p in (root / "state" / "profiles").iterdir()),
        "views": sorted(str(p.relative_to(root)) for p in views(root).glob("*/profiles/*")),
    }
    if HAS_GIT and (root / "state" / ".git").is_dir():
        git = ["git", "-C", str(root / "state")]
        snap["head"] = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
        snap["dirty"] = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True).stdout
    return snap


# -- the conflict round trip --------------------------------------------------------------------------------------


def test_use_makes_the_earlier_pack_win_and_back_restores(tmp_path: Path, synapse_cli, assert_store_consistent):
    root = tmp_path / "store"

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        result = synapse_cli(*args, root=root, env=PLUGIN_ENV)
        assert result.returncode == 0, f"synapse {args}: {result.stderr}"
        return result

    earlier = lora_file(tmp_path / "src" / "e" / "style.safetensors", seed=1)
    later = lora_file(tmp_path / "src" / "l" / "style.safetensors", seed=2)
    run("store", "init")
    assert check_runtime(root) == {ui: ["global"] for ui in UIS}
    run("import", earlier, "--name", "Earlier")
    run("import", later, "--name", "Later")

    def expect(top: str, winner: Path, loser: str) -> None:
        found = check_runtime(root)
        status = {u["ui"]: u for u in json.loads(run("status", "--json").stdout)["uis"]}
        for ui in UIS:
            assert found[ui][-1] == top and status[ui]["active"] == top and status[ui]["stack"] == found[ui]
            assert status[ui]["view"] == str(views(root) / ui / "active")
            link = lora_in_active(root, ui, "style.safetensors")
            assert os.path.realpath(link) == str(blob(root, sha_of(winner)).resolve()), ui
            [entry] = manifest(root, ui, top)["entries"]
            assert entry["shadows"] == [loser]
            assert len(status[ui]["shadowed"]) == 1

    expect("global", later, "Earlier")
    used = json.loads(run("use", "Earlier", "--json").stdout)
    assert used["uis"] == {ui: ["global", "work__Earlier"] for ui in UIS}
    expect("work__Earlier", earlier, "Later")
    # the global view is untouched by the switch
    for ui in UIS:
        [entry] = manifest(root, ui, "global")["entries"]
        assert entry["pack"] == "Later"
    run("back")
    assert check_runtime(root) == {ui: ["global"] for ui in UIS}
    expect("global", later, "Earlier")
    assert_store_consistent(root)


def test_use_and_back_on_chosen_uis_only(store: Store, root: Path, cli, tmp_path: Path):
    store.import_pack(str(lora_file(tmp_path / "src" / "e" / "style.safetensors", seed=1)), name="Earlier")
    store.import_pack(str(lora_file(tmp_path / "src" / "l" / "style.safetensors", seed=2)), name="Later")
    cli("use", "Earlier", "--ui", "comfyui", "--ui", "forge")
    assert check_runtime(root) == {
        "a1111": ["global"],
        "comfyui": ["global", "work__Earlier"],
        "forge": ["global", "work__Earlier"],
        "sdnext": ["global"],
    }
    cli("use", "Later", "--ui-set", "all")
    assert check_runtime(root)["comfyui"] == ["global", "work__Earlier", "work__Later"]
    assert check_runtime(root)["a1111"] == ["global", "work__Later"]
    cli("back", "--ui", "comfyui")
    found = check_runtime(root)
    assert found["comfyui"] == ["global", "work__Earlier"]
    assert found["forge"] == ["global", "work__Earlier", "work__Later"]
    [entry] = manifest(root, "comfyui", "work__Earlier")["entries"]
    assert sha_of(lora_in_active(root, "comfyui", "style.safetensors")) == entry["sha256"]


# -- bad input ------------------------------------------------------------------------------------------------------


def test_back_on_global_is_a_clear_error(root: Path, cli):
    before = snapshot(root)
    line = assert_clear_error(cli("back", ok=False), "global")
    assert line.startswith("error:")
    assert_clear_error(cli("back", "--ui", "comfyui", ok=False), "comfyui", "global")
    assert snapshot(root) == before


def test_bad_names_are_clear_errors_that_change_nothing(store: Store, root: Path, cli, tmp_path: Path):
    store.import_pack(str(lora_file(tmp_path / "src" / "e" / "style.safetensors", seed=1)), name="Earlier")
    store.import_pack(str(lora_file(tmp_path / "src" / "x" / "other.safetensors", seed=2)), name="Zebra")
    before = snapshot(root)
    assert_clear_error(cli("use", "Earlir", ok=False), "Earlir", "Earlier")  # close names
    assert_clear_error(cli("use", "Qqqq", ok=False), "Qqqq", "Earlier", "Zebra")  # nothing close: every name
    assert_clear_error(cli("use", "Earlier", "--ui", "nope", ok=False), "'nope'", "comfyui")
    assert_clear_error(cli("use", "Earlier", "--ui", "comfyui", "--ui", "comfyu", ok=False), "comfyu", "comfyui")
    assert_clear_error(cli("use", "Earlier", "--ui-set", "nope", ok=False), "'nope'", "default")
    assert_clear_error(cli("use", "Earlier", "--ui", "comfyui", "--ui-set", "all", ok=False), "--ui", "--ui-set")
    assert_clear_error(cli("back", "--ui", "nope", ok=False), "nope")
    assert snapshot(root) == before
    check_runtime(root)


# -- missing blobs ----------------------------------------------------------------------------------------------------


def _delete_blob(root: Path, sha: str) -> None:
    path = blob(root, sha)
    os.chmod(path.parent, 0o755)
    path.unlink()


def test_use_of_a_pack_with_missing_blobs_needs_sync(
    store: Store, root: Path, cli, tmp_path: Path, assert_store_consistent
):
    source = lora_file(tmp_path / "src" / "p" / "style.safetensors", seed=5)
    store.import_pack(str(lora_file(tmp_path / "src" / "o" / "other.safetensors", seed=6)), name="Other")
    store.import_pack(str(source), name="Pack")
    sha = sha_of(source)
    _delete_blob(root, sha)
    before = snapshot(root)

    line = assert_clear_error(cli("use", "Pack", ok=False), "Pack", "synapse install", "--sync")
    assert "Traceback" not in line
    assert snapshot(root) == before
    assert not (root / "state" / "profiles" / "work__Pack").exists()

    cli("use", "Pack", "--sync")
    assert blob(root, sha).is_file() and sha_of(blob(root, sha)) == sha
    assert check_runtime(root) == {ui: ["global", "work__Pack"] for ui in UIS}
    for ui in UIS:
        assert sha_of(lora_in_active(root, ui, "style.safetensors")) == sha
        assert lora_in_active(root, ui, "other.safetensors").is_file()
        # global (still on the stack, under work__Pack) shows the installed file too
        assert "style.safetensors" in {Path(e["path"]).name for e in manifest(root, ui, "global")["entries"]}
    assert_store_consistent(root)


def test_use_missing_blob_error_names_the_file(store: Store, root: Path, cli, tmp_path: Path):
    source = lora_file(tmp_path / "src" / "p" / "style.safetensors", seed=5)
    store.import_pack(str(source), name="Pack")
    _delete_blob(root, sha_of(source))
    assert_clear_error(cli("use", "Pack", ok=False), "style.safetensors")


# -- profiles ------------------------------------------------------------------------------------------------------


def test_profiles_and_profile_show(store: Store, root: Path, cli, tmp_path: Path):
    for seed, name in enumerate(("Cee", "Ay", "Bee")):  # import order is not name order
        store.import_pack(str(lora_file(tmp_path / "src" / name / f"{name.lower()}.safetensors", seed=seed)), name=name)
    cli("use", "Ay", "--ui", "comfyui")
    infos = json.loads(cli("profiles", "--json").stdout)
    assert [i["name"] for i in infos] == ["global", "work__Ay"]
    glob, work = infos
    assert glob["packs"] == ["Cee", "Ay", "Bee"] and glob["policy"] == "last_wins"
    assert glob["active_in"] == ["a1111", "forge", "sdnext"] and glob["stacked_in"] == list(UIS)
    assert work["packs"] == ["Cee", "Bee", "Ay"]
    assert work["active_in"] == work["stacked_in"] == ["comfyui"]
    shown = json.loads(cli("profile", "show", "work__Ay", "--json").stdout)
    assert shown == work
    human = cli("profile", "show", "work__Ay").stdout.splitlines()
    assert [line.strip() for line in human[1:4]] == ["1. Cee", "2. Bee", "3. Ay"], human
    assert_clear_error(cli("profile", "show", "work__Ai", ok=False), "work__Ai", "work__Ay")


# -- profiles' content changes while stacked -------------------------------------------------------------------------


def test_import_and_remove_keep_stacked_views_current(store: Store, root: Path, cli, tmp_path: Path):
    files = {n: lora_file(tmp_path / "src" / n / f"{n.lower()}.safetensors", seed=i) for i, n in enumerate("ABCD")}
    store.import_pack(str(files["A"]), name="A")
    store.import_pack(str(files["B"]), name="B")
    cli("use", "A")
    check_runtime(root)

    cli("import", files["C"], "--name", "C")
    assert check_runtime(root) == {ui: ["global", "work__A"] for ui in UIS}
    assert json.loads(cli("profile", "show", "work__A", "--json").stdout)["packs"] == ["B", "C", "A"]
    for ui in UIS:
        assert sha_of(lora_in_active(root, ui, "c.safetensors")) == sha_of(files["C"])

    cli("remove", "B")
    check_runtime(root)
    for ui in UIS:
        assert not lora_in_active(root, ui, "b.safetensors").exists()
        for profile in ("global", "work__A"):
            assert "B" not in {e["pack"] for e in manifest(root, ui, profile)["entries"]}

    # a deeper stack on one UI: a profile under the top stays current too
    cli("use", "C", "--ui", "comfyui")
    cli("import", files["D"], "--name", "D")
    assert check_runtime(root)["comfyui"] == ["global", "work__A", "work__C"]
    cli("back", "--ui", "comfyui")
    assert check_runtime(root)["comfyui"] == ["global", "work__A"]
    assert sha_of(lora_in_active(root, "comfyui", "d.safetensors")) == sha_of(files["D"])
    cli("back")
    assert check_runtime(root) == {ui: ["global"] for ui in UIS}
    for ui in UIS:
        names = sorted(p.name for p in (views(root) / ui / "active" / LORA_FOLDER[ui]).iterdir())
        assert names == ["a.safetensors", "c.safetensors", "d.safetensors"], ui


def test_use_again_refreshes_a_work_view_that_went_stale_off_the_stack(store: Store, root: Path, cli, tmp_path):
    store.import_pack(str(lora_file(tmp_path / "src" / "A" / "a.safetensors", seed=1)), name="A")
    store.use("A", uis=list(UIS))
    store.back(uis=list(UIS))
    store.import_pack(str(lora_file(tmp_path / "src" / "C" / "c.safetensors", seed=3)), name="C")
    cli("use", "A")
    check_runtime(root)
    for ui in UIS:
        assert lora_in_active(root, ui, "c.safetensors").is_file(), ui


def test_an_unchanged_profile_is_not_rebuilt(store: Store, root: Path, cli, tmp_path: Path):
    store.import_pack(str(lora_file(tmp_path / "src" / "e" / "style.safetensors", seed=1)), name="Earlier")
    store.import_pack(str(lora_file(tmp_path / "src" / "l" / "style.safetensors", seed=2)), name="Later")
    cli("use", "Earlier")

    def fingerprint() -> dict[str, object]:
        seen: dict[str, object] = {}
        for ui in UIS:
            for profile in ("global", "work__Earlier"):
                top = views(root) / ui / "profiles" / profile
                for path in (top, top / ".synapse-view.json", top / ".synapse-fingerprint"):
                    st = path.stat()
                    seen[str(path)] = (st.st_ino, st.st_mtime_ns, path.read_bytes() if path.is_file() else None)
        return seen

    before = fingerprint()
    cli("use", "Earlier")
    cli("status")
    cli("doctor")
    assert fingerprint() == before
    assert stacks(root) == {ui: ["global", "work__Earlier"] for ui in UIS}  # not pushed twice
    cli("back")
    cli("use", "Earlier")
    assert fingerprint() == before
    check_runtime(root)


def test_a_view_is_not_rebuilt_by_a_process_with_another_hash_seed(store: Store, root: Path, synapse_cli, tmp_path):
    """The view fingerprint must not depend on PYTHONHASHSEED (a frozenset's repr does)."""
    store.import_pack(str(lora_file(tmp_path / "src" / "e" / "style.safetensors", seed=1)), name="Earlier")
    marks = [views(root) / ui / "profiles" / "work__Earlier" / ".synapse-fingerprint" for ui in UIS]
    seen = []
    for seed in ("1", "2", "3"):
        result = synapse_cli("use", "Earlier", root=root, env={**PLUGIN_ENV, "PYTHONHASHSEED": seed})
        assert result.returncode == 0, result.stderr
        seen.append([(m.stat().st_ino, m.read_text()) for m in marks])
    assert seen[0] == seen[1] == seen[2]


# -- concurrency -----------------------------------------------------------------------------------------------------


def test_concurrent_use_and_back(store: Store, root: Path, tmp_path: Path, assert_store_consistent):
    shas = {}
    for seed, name in enumerate(("A", "B")):
        path = lora_file(tmp_path / "src" / name / "style.safetensors", seed=seed)
        shas[name] = sha_of(path)
        store.import_pack(str(path), name=name)

    exe = Path(sys.executable).parent / "synapse"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNAPSE_")} | PLUGIN_ENV

    def together(*commands: tuple[str, ...]) -> None:
        procs = [
            subprocess.Popen(
                [str(exe), "--root", str(root), *c], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for c in commands
        ]
        for proc in procs:
            _out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err

    together(("use", "A"), ("use", "B"))
    found = check_runtime(root)
    stack = found["comfyui"]
    assert sorted(stack) == ["global", "work__A", "work__B"] and stack[0] == "global"
    assert all(s == stack for s in found.values()), found  # each use switched every UI under the lock
    top_pack = stack[-1].removeprefix("work__")
    for ui in UIS:
        assert sha_of(lora_in_active(root, ui, "style.safetensors")) == shas[top_pack]

    assert_store_consistent(root)
    together(("back",), ("back",))
    assert check_runtime(root) == {ui: ["global"] for ui in UIS}
    assert_store_consistent(root)
