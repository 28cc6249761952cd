"""kill -9 at every step: each mutating command is killed at its N-th filesystem or git call
(tests/crashpoints/sitecustomize.py), then the store must keep the invariants of
docs/architecture.md: doctor runs without a traceback, ``doctor --fix`` leaves it healthy,
every file validates, the committed state is the one before or the one after the command,
no file of the user's is lost or left read-only, and the command can simply be run again.

A sample of points runs in ``make test``; ``SYNAPSE_CRASH_SWEEP=all`` (``make audit``) kills
at every point. ``SYNAPSE_CRASH_SWEEP=N`` takes N points spread over each command.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from synapse_core.store import Store
from synapse_core.testing import lora_file, make_registry

SYNAPSE = Path(sys.executable).parent / "synapse"
HOOK = Path(__file__).parent / "crashpoints"
UIS = ("a1111", "comfyui")
PLUGIN_ENV = {"SYNAPSE_LOAD_PLUGINS": ",".join(UIS)}
DEFAULT_POINTS = 4

pytestmark = pytest.mark.slow


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class World:
    """A store and the user's files, under one folder that is copied to replay each point."""

    top: Path
    root: Path = field(init=False)
    files: Path = field(init=False)

    def __post_init__(self) -> None:
        self.root, self.files = self.top / "store", self.top / "files"

    def store(self) -> Store:
        return Store(root=self.root, registry=make_registry(entry_points=True, env=PLUGIN_ENV))

    def lora(self, name: str, seed: int) -> Path:
        return lora_file(self.files / f"{name}.safetensors", seed=seed)


def run(
    world: World, *args: str, crash_at: int = 0, count_file: Path | None = None, crash_label: str = ""
) -> subprocess.CompletedProcess[str]:
    """The real CLI on the world's store, in a session of its own (the hook kills its process group)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNAPSE_")}
    env.update(PLUGIN_ENV)
    env["PYTHONPATH"] = os.pathsep.join([str(HOOK), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if crash_at:
        env["SYNAPSE_CRASH_AT"] = str(crash_at)
    if crash_label:
        env["SYNAPSE_CRASH_LABEL"] = crash_label
    if count_file is not None:
        env["SYNAPSE_CRASH_COUNT"] = str(count_file)
    return subprocess.run(
        [str(SYNAPSE), "--root", str(world.root), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=world.top,
        timeout=120,
        check=False,
        start_new_session=True,
    )


def snapshot(world: World) -> dict[str, object]:
    """What the user sees of the store: every state file (lock times left out), the stacks, the blobs."""
    state, data = world.root / "state", world.root / "data"
    if not (state / "config.json").is_file():
        return {"store": False}  # not a store yet: `store init` again finishes it
    files: dict[str, object] = {}
    for path in sorted(state.rglob("*.json")):
        if ".git" not in path.parts:
            content = json.loads(path.read_text())
            content.pop("resolved_at", None)
            files[str(path.relative_to(state))] = content
    runtime = data / "runtime.json"
    stacks = json.loads(runtime.read_text())["ui"] if runtime.is_file() else {}
    blobs = sorted(p.name for p in (data / "blobs").rglob("*") if p.is_file())
    return {"store": True, "files": files, "stacks": stacks, "blobs": blobs}


def _difference(now: dict[str, object], before: dict[str, object], after: dict[str, object]) -> str:
    """What differs from both ``before`` and ``after``, key by key (state files one by one)."""
    lines = []
    for key in sorted(set(now) | set(before) | set(after)):
        values = [d.get(key) for d in (now, before, after)]
        if key == "files":
            names = set().union(*(v for v in values if isinstance(v, dict)))
            for name in sorted(names):
                got, was, will = (v.get(name) if isinstance(v, dict) else None for v in values)
                if got not in (was, will):
                    lines.append(f"{name}: now {got}, before {was}, after {will}")
        elif values[0] not in values[1:]:
            lines.append(f"{key}: now {values[0]}, before {values[1]}, after {values[2]}")
        else:
            lines.append(f"{key}: as {'before' if values[0] == values[1] else 'after'}")
    return "\n".join(lines)


@dataclass
class Scenario:
    """A store to start from, a command to kill, and what the user's files must still be."""

    name: str
    setup: Callable[[World], None]
    argv: Callable[[World], list[str]]
    user_files: Callable[[World], dict[Path, str]] = lambda world: {}
    """Files of the user's that must keep these bytes (and stay writable) unless the command
    took effect; ``moves``: then they may be gone (the store holds their bytes)."""
    moves: bool = False
    missing_before: bool = False
    """The store starts with a blob missing (which doctor reports until the command ran)."""


def _two_packs(world: World) -> None:
    store = world.store()
    store.init()
    store.import_pack(str(world.lora("a", 1)), name="A")
    store.import_pack(str(world.lora("b", 2)), name="B")


def _new_file(world: World) -> None:
    _two_packs(world)
    world.lora("c", 3)


def _used(world: World) -> None:
    _two_packs(world)
    world.store().use("A")


def _garbage(world: World) -> None:
    _two_packs(world)
    world.store().remove("B")


def _blob_missing(world: World) -> None:
    _two_packs(world)
    store = world.store()
    sha = store.files.lock("A").resources["main"].sha256
    store.blobs.path(sha).unlink()


def _comfyui_install(world: World) -> None:
    _two_packs(world)
    install = world.top / "ComfyUI"
    install.mkdir()
    (install / "main.py").write_text("")
    (install / "folder_paths.py").write_text("")


def _c_file(world: World) -> dict[Path, str]:
    path = world.files / "c.safetensors"
    return {path: _sha(path)} if path.exists() else {}


SCENARIOS = [
    Scenario("init", lambda world: None, lambda world: ["store", "init"]),
    Scenario("import", _new_file, lambda world: ["import", str(world.files / "c.safetensors"), "--name", "C"]),
    Scenario(
        "import --move",
        _new_file,
        lambda world: ["import", str(world.files / "c.safetensors"), "--move"],
        _c_file,
        moves=True,
    ),
    Scenario(
        "import --link", _new_file, lambda world: ["import", str(world.files / "c.safetensors"), "--link"], _c_file
    ),
    Scenario("remove", _two_packs, lambda world: ["remove", "A"]),
    Scenario("use", _two_packs, lambda world: ["use", "A"]),
    Scenario("back", _used, lambda world: ["back"]),
    Scenario("gc", _garbage, lambda world: ["gc", "--now"]),
    Scenario("install", _blob_missing, lambda world: ["install", "A"], missing_before=True),
    Scenario("pack policy", _two_packs, lambda world: ["pack", "policy", "A", "follow_latest"]),
    Scenario("attach", _comfyui_install, lambda world: ["attach", "comfyui", str(world.top / "ComfyUI")]),
]


def points(total: int) -> list[int]:
    """The crash points to try out of ``total`` counted calls."""
    sweep = os.environ.get("SYNAPSE_CRASH_SWEEP", "")
    if sweep == "all":
        return list(range(1, total + 1))
    wanted = int(sweep) if sweep.isdigit() else DEFAULT_POINTS
    if total <= wanted:
        return list(range(1, total + 1))
    return sorted({1 + round(i * (total - 1) / (wanted - 1)) for i in range(wanted)})


def check_after_kill(
    world: World,
    scenario: Scenario,
    before: dict[str, object],
    after: dict[str, object],
    assert_store_consistent: Callable[..., None],
) -> None:
    """The invariants after a kill, then recovery by doctor --fix, then the command again."""

    def ok(result: subprocess.CompletedProcess[str], what: str) -> None:
        assert "Traceback" not in result.stderr, f"{what}:\n{result.stderr}"

    files_before = scenario.user_files(world)
    if before["store"]:
        report = run(world, "doctor", "--json")
        ok(report, "doctor after the kill")
        fixed = run(world, "doctor", "--fix", "--json")
        ok(fixed, "doctor --fix")
        healthy = run(world, "doctor", "--json")
        problems = json.loads(healthy.stdout)["problems"] if healthy.stdout.startswith("{") else [None]
        expected = scenario.missing_before and all(p and p["check"] == "locked blobs present" for p in problems)
        assert healthy.returncode == 0 or expected, (
            f"doctor after --fix is not healthy:\n{healthy.stdout}{healthy.stderr}"
        )
        assert_store_consistent(world.root, allow_temps_in_tmp=True)
    now = snapshot(world)
    if not before["store"] and now != after:
        now = before  # a killed `store init` is finished by running it again
    assert now in (before, after), "state is neither before nor after:\n" + _difference(now, before, after)
    for path, sha in files_before.items():
        if now == after and scenario.moves and not path.exists():
            continue
        assert path.is_file() and _sha(path) == sha, f"{path} was lost"
        if now == before:
            assert _user_file_writable(path), f"{path} was left read-only"
    if now == before:
        again = run(world, *scenario.argv(world))
        ok(again, "the command again")
        assert again.returncode == 0, f"the command again failed:\n{again.stderr}"
        assert snapshot(world) == after
        assert_store_consistent(world.root, allow_temps_in_tmp=True)


def _user_file_writable(path: Path) -> bool:
    return bool(stat.S_IMODE(path.stat().st_mode) & 0o200)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_kill_at_every_step_keeps_the_store_consistent(
    scenario: Scenario, tmp_path: Path, assert_store_consistent: Callable[..., None]
) -> None:
    world = World(tmp_path / "world")
    world.top.mkdir()
    scenario.setup(world)
    template = tmp_path / "template"
    shutil.copytree(world.top, template, symlinks=True)
    before = snapshot(world)
    count_file = tmp_path / "calls.txt"
    done = run(world, *scenario.argv(world), count_file=count_file)
    assert done.returncode == 0, done.stderr
    after = snapshot(world)
    assert after != before, "the command changed nothing"
    calls = count_file.read_text().splitlines()
    failures = []
    for point in points(len(calls)):
        shutil.rmtree(world.top)
        shutil.copytree(template, world.top, symlinks=True)
        killed = run(world, *scenario.argv(world), crash_at=point)
        if killed.returncode != -9:
            continue  # the calls' order varied (threads) and the command ended first
        try:
            check_after_kill(world, scenario, before, after, assert_store_consistent)
        except AssertionError as exc:
            failures.append(f"killed before call {point} ({calls[point - 1]}): {exc}")
    assert not failures, f"{len(failures)} of {len(calls)} points fail:\n" + "\n\n".join(failures)


def _kill_at(world: World, argv: list[str], label: str) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` killed just before its first counted call whose label contains ``label``
    (by label, not by number: the number of calls before it varies with the hashing threads)."""
    killed = run(world, *argv, crash_label=label)
    assert killed.returncode == -9, killed.stderr
    return killed


def test_5_use_killed_before_its_commit_recovers_runtime_views_and_state(
    tmp_path: Path, assert_store_consistent: Callable[..., None]
) -> None:
    world = World(tmp_path / "world")
    world.top.mkdir()
    _two_packs(world)
    before = snapshot(world)
    _kill_at(world, ["use", "A"], " commit ")
    for command in (("doctor", "--json"), ("doctor", "--fix", "--json")):
        result = run(world, *command)
        assert "Traceback" not in result.stderr, result.stderr
    healthy = run(world, "doctor", "--json")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert snapshot(world)["stacks"] in (before["stacks"], {ui: {"stack": ["global", "work__A"]} for ui in UIS})
    assert_store_consistent(world.root, allow_temps_in_tmp=True)
    assert run(world, "use", "A").returncode == 0


READS: dict[str, tuple[tuple[str, ...], Callable[[Any], object]]] = {
    # each read, and what it shows of the packs: it must be what the last commit holds
    "list": (("list", "--json"), lambda out: [p["name"] for p in out]),
    "profiles": (("profiles", "--json"), lambda out: next(i["packs"] for i in out if i["name"] == "global")),
    "profile show": (("profile", "show", "global", "--json"), lambda out: out["packs"]),
    "status": (("status", "--json"), lambda out: out["packs"]),
    "du": (("du", "--json"), lambda out: [p["pack"] for p in out["packs"]]),
}
READ_EXPECTED = {"list": ["A", "B"], "profiles": ["A", "B"], "profile show": ["A", "B"], "status": 2, "du": ["A", "B"]}


@pytest.mark.parametrize("read", [*READS, "show"])
def test_24_reads_do_not_show_an_import_killed_before_its_commit(tmp_path: Path, read: str) -> None:
    world = World(tmp_path / "world")
    world.top.mkdir()
    _new_file(world)
    _kill_at(world, ["import", str(world.files / "c.safetensors"), "--name", "C"], " commit ")
    assert (world.root / "state" / "packs" / "C").is_dir(), "the killed import left its uncommitted pack"
    if read == "show":
        shown = run(world, "show", "C")
        assert "Traceback" not in shown.stderr and shown.returncode != 0, shown.stdout + shown.stderr
    else:
        argv, packs = READS[read]
        result = run(world, *argv)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        assert packs(json.loads(result.stdout)) == READ_EXPECTED[read]
    assert not (world.root / "data" / ".mutation").exists(), "the read recovered the killed command"
    assert run(world, "doctor", "--json").returncode == 0
