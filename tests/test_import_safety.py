"""Local imports that go wrong leave the user's files and the store as they were (audit findings)."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path
from typing import Any

import attrs
import pytest
from conftest import sha256_of
from test_store_core import Harness

from synapse_core.builtin.local_source import LocalFileSource
from synapse_core.errors import Conflict, SynapseError
from synapse_core.sources import ImportRequest, ResolvedPack
from synapse_core.store import Store
from synapse_core.testing import lora_file, make_registry


@pytest.fixture
def cli(store: Store, synapse_cli: Any, assert_store_consistent: Any, temp_files: Any, check_blobs: Any) -> Harness:
    checks = {"consistent": assert_store_consistent, "temps": temp_files, "blobs": check_blobs, "sha": sha256_of}
    return Harness(store.layout.root, synapse_cli, checks)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_name_taken_while_the_import_waited_for_the_lock_is_refused_and_the_moved_file_kept(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    mine = lora_file(tmp_path / "in" / "mine.safetensors", seed=1)
    rival_file = lora_file(tmp_path / "in" / "rival.safetensors", seed=2)
    store = Store(root=root, registry=make_registry())
    store.init()
    rival = Store(root=root, registry=make_registry())
    outcome: list[BaseException | None] = []

    def import_mine() -> None:
        try:
            store.import_pack(str(mine), name="P", mode="move")
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    with rival.lock.hold():  # another process is in the middle of a command
        waiting = threading.Thread(target=import_mine)
        waiting.start()
        time.sleep(1.0)  # mine has checked the name (free) and now waits for the lock
        assert not outcome, "the import must be waiting for the lock"
        # what the other process does meanwhile: it imports a pack named P
        source, resolved = rival.packs.resolve(ImportRequest(ref=str(rival_file), name="P"))
        rival.packs.import_resolved(source, resolved)
        rival.history.commit("import pack P")
    waiting.join(timeout=30)
    assert isinstance(outcome[0], Conflict), outcome
    assert mine.is_file(), "the loser of the race keeps its file"
    assert [r.sha256 for r in store.files.lock("P").resources.values()] == [sha256_of(rival_file)]


def _plugin(source: LocalFileSource) -> Any:
    from synapse_core.hookspecs import hookimpl

    class Plugin:
        @hookimpl
        def synapse_sources(self) -> list[Any]:
            return [source]

    return Plugin()


class VanishingSource(LocalFileSource):
    """A local source after whose resolve one file disappears, so its fetch fails late."""

    name = "vanishing"

    def __init__(self, doomed: Path) -> None:
        self.doomed = doomed

    def can_handle(self, ref: str) -> bool:
        return ref.startswith("vanish:")

    def resolve(self, request: ImportRequest) -> ResolvedPack:
        resolved = super().resolve(attrs.evolve(request, ref=request.ref.removeprefix("vanish:")))
        self.doomed.unlink()
        return resolved


@pytest.mark.parametrize("mode", ["link", "move"])
def test_a_failed_link_or_move_gives_the_originals_back_as_they_were(tmp_path: Path, mode: str) -> None:
    folder = tmp_path / "in"
    first, doomed = lora_file(folder / "a.safetensors", seed=1), lora_file(folder / "b.safetensors", seed=2)
    first.chmod(0o640)
    store = Store(root=tmp_path / "store", registry=make_registry([("vanishing", _plugin(VanishingSource(doomed)))]))
    store.init()
    with pytest.raises(SynapseError, match=r"b\.safetensors of pack 'P' is gone"):
        store.import_pack(f"vanish:{folder}", name="P", kind="lora", mode=mode)  # type: ignore[arg-type]
    assert first.is_file() and mode_of(first) == 0o640, "the original is back as it was"
    assert first.stat().st_nlink == 1, "no blob shares it any more"
    assert not store.files.has_pack("P")


def test_a_fifo_in_a_folder_is_one_line(cli: Harness, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    lora_file(folder / "a.safetensors", seed=1)
    os.mkfifo(folder / "c.safetensors")
    assert "c.safetensors is not a regular file" in cli.fails_cleanly("import", folder, "--move", "--kind", "lora")
    assert "is neither a regular file nor a folder" in cli.fails_cleanly("import", folder / "c.safetensors")


def test_an_unreadable_file_in_a_folder_is_one_line_and_leaves_no_blob(cli: Harness, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    lora_file(folder / "a.safetensors", seed=1)
    locked = lora_file(folder / "b.safetensors", seed=2)
    locked.chmod(0)
    if os.access(locked, os.R_OK):
        pytest.skip("running as root: every file is readable")
    line = cli.fails_cleanly("import", folder, "--kind", "lora")
    assert "cannot read" in line and "b.safetensors" in line
    assert cli.blobs() == frozenset()


def test_broken_links_and_clashing_names_in_a_folder_are_one_line(cli: Harness, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    lora_file(broken / "ok.safetensors", seed=1)
    (broken / "gone.safetensors").symlink_to(tmp_path / "nowhere.safetensors")
    assert "gone.safetensors is a broken symbolic link" in cli.fails_cleanly("import", broken, "--kind", "lora")

    clash = tmp_path / "clash"
    lora_file(clash / "x:y.safetensors", seed=2)
    lora_file(clash / "x_y.safetensors", seed=3)
    line = cli.fails_cleanly("import", clash)
    assert "would both be shown as x_y.safetensors" in line


def test_a_linked_symlink_stores_the_files_bytes_and_move_refuses_it(cli: Harness, tmp_path: Path) -> None:
    target = lora_file(tmp_path / "real" / "t.safetensors", seed=4)
    link = tmp_path / "l.safetensors"
    link.symlink_to(target)
    cli.ok("import", link, "--link", "--name", "Linked")
    blob = cli.blob(sha256_of(target))
    assert blob.is_file() and not blob.is_symlink()
    assert sha256_of(blob) == sha256_of(target)
    other = tmp_path / "m.safetensors"
    other.symlink_to(lora_file(tmp_path / "real" / "u.safetensors", seed=5))
    assert "symbolic link" in cli.fails_cleanly("import", other, "--move", "--name", "Moved")
    assert other.is_symlink() and other.resolve().is_file()


def test_an_empty_file_is_refused(cli: Harness, tmp_path: Path) -> None:
    empty = tmp_path / "empty.safetensors"
    empty.touch()
    assert "is empty (0 bytes)" in cli.fails_cleanly("import", empty, "--kind", "lora")
