"""Sharp edges with Civitai packs (issue 11, item 3): search by creator and file name, and updates
that change a pack's base model or kind, run as users run them against the fake Civitai."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from civitai_checks import blob, failed, ok, pack_files
from test_updates_cli import state_head, view_target

from synapse_civitai.fake_server import FakeCivitai, FakeFile


def test_local_search_finds_a_pack_by_creator_base_model_and_file_name(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any]
) -> None:
    ok(synapse("import", "civitai:424242@909001", "--name", "Lantern"))
    ok(synapse("import", "civitai:515151", "--name", "Ink"))
    for query in ("lantern_maker", "paper_lantern_v1", "SD 1.5 lantern"):
        assert [p["name"] for p in ok(synapse("search", query, "--json"))["local"]] == ["Lantern"], query
    assert [p["name"] for p in ok(synapse("search", "sumi_artist", "--json"))["local"]] == ["Ink"]


def test_an_update_to_another_base_model_is_flagged_and_held_back_unless_allowed(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any], add_model: Callable[..., FakeFile]
) -> None:
    add_model(790001, 791001, 792001, name="Base Lora", file_name="base_v1.safetensors")
    add_model(790002, 791011, 792011, name="Plain Lora", file_name="plain_v1.safetensors")
    ok(synapse("import", "civitai:790001", "--name", "Base", "--follow", "--sync"))
    ok(synapse("import", "civitai:790002", "--name", "Plain", "--follow", "--sync"))
    fake.add_version(
        790001, 791002, name="v2 XL", base_model="SDXL 1.0", files=[FakeFile(792002, "base_xl.safetensors", size=3000)]
    )
    fake.add_version(790002, 791012, name="v2", files=[FakeFile(792012, "plain_v2.safetensors", size=3000)])

    plan = {u["pack"]: u for u in ok(synapse("check-updates", "--json"))["updates"]}
    assert plan["Base"]["base_change"] == {
        "old_base_model": "SD 1.5",
        "new_base_model": "SDXL 1.0",
        "old_kinds": ["lora"],
        "new_kinds": ["lora"],
    }
    assert plan["Plain"]["base_change"] is None
    assert "changes the base model SD 1.5 -> SDXL 1.0" in ok(synapse("check-updates"))

    before = state_head(root)
    line = failed(synapse("update", "Base"))
    assert "SD 1.5 -> SDXL 1.0" in line and "--allow-base-change" in line and "Traceback" not in line, line
    assert len(line.strip().splitlines()) == 1
    assert state_head(root) == before

    applied = ok(synapse("update", "--all", "--json"))
    assert (applied["applied"], applied["held_back"]) == (["Plain"], ["Base"])
    pack, lock = pack_files(root, "Base")
    assert (pack["source"]["version_id"], pack["base_model"]) == ("791001", "SD 1.5")
    assert [r["file_id"] for r in lock["resources"].values()] == ["792001"]
    said = ok(synapse("update", "--all"))
    assert "Base: not updated" in said and "--allow-base-change" in said, said

    ok(synapse("update", "Base", "--allow-base-change", "--sync"))
    pack, lock = pack_files(root, "Base")
    assert (pack["source"]["version_id"], pack["base_model"]) == ("791002", "SDXL 1.0")
    exposed = view_target(root, "comfyui", "models/loras/base_v1.safetensors")
    assert exposed == blob(root, fake.file_sha256(792002)).resolve()


def test_an_update_to_another_kind_is_flagged_and_applied_only_when_allowed(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any], add_model: Callable[..., FakeFile]
) -> None:
    add_model(790021, 791021, 792021, name="Kind Lora", file_name="kind_v1.safetensors")
    ok(synapse("import", "civitai:790021", "--name", "Kind", "--follow", "--sync"))
    fake.add_version(790021, 791022, name="v2", files=[FakeFile(792022, "kind_vae.safetensors", size=3000, type="VAE")])
    [update] = ok(synapse("check-updates", "--json"))["updates"]
    change = update["base_change"]
    assert (change["old_kinds"], change["new_kinds"]) == (["lora"], ["vae"])
    assert "changes the kind lora -> vae" in ok(synapse("check-updates"))
    assert "kind lora -> vae" in failed(synapse("update", "Kind"))
    assert ok(synapse("update", "--all", "--json"))["held_back"] == ["Kind"]
    ok(synapse("update", "Kind", "--allow-base-change", "--sync"))
    pack, _ = pack_files(root, "Kind")
    assert [r["kind"] for r in pack["resources"]] == ["vae"]
    assert (
        view_target(root, "comfyui", "models/vae/kind_v1.safetensors") == blob(root, fake.file_sha256(792022)).resolve()
    )
