"""Views: what each UI sees in data/views/<ui>/, laid out like that UI, with conflicts keyed
the way that UI keys files, as relative symlinks into data/blobs (issue 4)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from uiviews.kit import LORA_FOLDER, PLUGIN_ENV, UIS, blob, manifest, sha_of

from synapse_core.store import Store
from synapse_core.testing import lora_file
from synapse_core.ui import KindFolder


def view_dir(root: Path, ui: str, profile: str = "global") -> Path:
    return root / "data" / "views" / ui / "profiles" / profile


def links(top: Path) -> dict[str, str]:
    """{path relative to ``top``: readlink} of every symlink under ``top`` (not following links)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                found[path.relative_to(top).as_posix()] = os.readlink(path)
    return found


def check_view(root: Path, ui: str, profile: str) -> dict:
    """The view's links are exactly its manifest's entries, each a relative link to an existing
    file (never a directory) named by the sha256 of its bytes; returns the manifest."""
    data = manifest(root, ui, profile)
    top = view_dir(root, ui, profile)
    found = links(top)
    assert sorted(found) == sorted(e["path"] for e in data["entries"]), f"{ui}/{profile}: links != manifest"
    for entry in data["entries"]:
        link = top / entry["path"]
        assert not found[entry["path"]].startswith("/"), f"{link} is an absolute link"
        assert link.is_file(), f"{link} dangles or is not a file"
        assert Path(os.path.realpath(link)) == blob(root, entry["sha256"]).resolve()
    return data


def import_file(store: Store, path: Path, name: str, kind: str | None = None, force: bool = False) -> None:
    store.import_pack(str(path), name=name, kind=kind, force_kind=force)


# -- conflicts ------------------------------------------------------------------------------------------------------


def test_later_import_wins_in_global_and_the_earlier_is_reported_shadowed(store: Store, cli, tmp_path: Path):
    earlier = lora_file(tmp_path / "src" / "e" / "style.safetensors", seed=1)
    later = lora_file(tmp_path / "src" / "l" / "style.safetensors", seed=2)
    assert sha_of(earlier) != sha_of(later)
    import_file(store, earlier, "Earlier")
    import_file(store, later, "Later")
    root = store.layout.root

    status = json.loads(cli("status", "--json").stdout)
    by_ui = {u["ui"]: u for u in status["uis"]}
    assert sorted(by_ui) == list(UIS)
    for ui in UIS:
        data = check_view(root, ui, "global")
        path = f"{LORA_FOLDER[ui]}/style.safetensors"
        [entry] = [e for e in data["entries"] if e["path"] == path]
        assert (entry["pack"], entry["sha256"], entry["shadows"]) == ("Later", sha_of(later), ["Earlier"])
        shadowed = [o for o in data["left_out"] if o["reason"] == "shadowed"]
        assert [(o["pack"], o["resource_id"]) for o in shadowed] == [("Earlier", "main")]
        assert os.path.realpath(view_dir(root, ui) / path) == str(blob(root, sha_of(later)).resolve())
        # the active link shows the same file
        assert sha_of(root / "data" / "views" / ui / "active" / path) == sha_of(later)
        assert by_ui[ui]["active"] == "global" and by_ui[ui]["entries"] == 1
        assert len(by_ui[ui]["shadowed"]) == 1 and "Later" in by_ui[ui]["shadowed"][0]
        assert by_ui[ui]["missing"] == [] and by_ui[ui]["unsupported"] == []


def test_status_names_both_packs_of_a_conflict(store: Store, cli, tmp_path: Path):
    import_file(store, lora_file(tmp_path / "src" / "e" / "style.safetensors", seed=1), "Earlier")
    import_file(store, lora_file(tmp_path / "src" / "l" / "style.safetensors", seed=2), "Later")
    status = json.loads(cli("status", "--json").stdout)
    for ui in status["uis"]:
        [line] = ui["shadowed"]
        assert "Earlier" in line and "Later" in line, line


def test_a_conflict_between_identical_files_says_so(store: Store, tmp_path: Path):
    same = lora_file(tmp_path / "src" / "e" / "style.safetensors", seed=1)
    other = lora_file(tmp_path / "src" / "o" / "style.safetensors", seed=2)
    import_file(store, other, "Other")
    import_file(store, same, "Original")
    import_file(store, same, "Copy")  # the winner under last_wins
    details = {o["pack"]: o["detail"] for o in manifest(store.layout.root, "comfyui")["left_out"]}
    assert details["Original"].endswith("shadowed by Copy (models/loras: 'style.safetensors') (the same bytes)")
    assert details["Other"].endswith("shadowed by Copy (models/loras: 'style.safetensors')")


def test_a1111_family_key_loras_by_stem_comfyui_by_relative_path(store: Store, cli, tmp_path: Path):
    # two folder packs: a/x.safetensors and b/x.safetensors (exposed with their sub-folder)
    a = lora_file(tmp_path / "src" / "A" / "a" / "x.safetensors", seed=3)
    b = lora_file(tmp_path / "src" / "B" / "b" / "x.safetensors", seed=4)
    import_file(store, tmp_path / "src" / "A", "A")
    import_file(store, tmp_path / "src" / "B", "B")
    root = store.layout.root
    status = {u["ui"]: u for u in json.loads(cli("status", "--json").stdout)["uis"]}

    comfy = check_view(root, "comfyui", "global")
    assert {e["path"]: e["sha256"] for e in comfy["entries"]} == {
        "models/loras/a/x.safetensors": sha_of(a),
        "models/loras/b/x.safetensors": sha_of(b),
    }
    assert comfy["left_out"] == [] and status["comfyui"]["shadowed"] == []

    for ui in ("a1111", "forge", "sdnext"):
        data = check_view(root, ui, "global")
        assert [(e["path"], e["pack"], e["shadows"]) for e in data["entries"]] == [
            ("models/Lora/b/x.safetensors", "B", ["A"])
        ], ui
        assert [(o["pack"], o["reason"]) for o in data["left_out"]] == [("A", "shadowed")]
        assert not (view_dir(root, ui) / "models/Lora/a/x.safetensors").exists()
        assert len(status[ui]["shadowed"]) == 1, ui


def test_forge_lists_vaes_and_text_encoders_together_so_their_names_conflict(store: Store, tmp_path: Path):
    vae = tmp_path / "src" / "v" / "ae.safetensors"
    encoder = tmp_path / "src" / "t" / "ae.safetensors"
    for seed, path in enumerate((vae, encoder)):
        path.parent.mkdir(parents=True)
        path.write_bytes(bytes([seed]) * 1000)
    import_file(store, vae, "Vae", kind="vae")
    import_file(store, encoder, "Encoder", kind="text_encoder")
    root = store.layout.root

    forge = check_view(root, "forge", "global")
    assert [(e["path"], e["pack"], e["shadows"]) for e in forge["entries"]] == [
        ("models/text_encoder/ae.safetensors", "Encoder", ["Vae"])
    ]
    [shadowed] = forge["left_out"]
    assert (shadowed["pack"], shadowed["reason"]) == ("Vae", "shadowed")
    assert "models/VAE + models/text_encoder" in shadowed["detail"]
    assert not (view_dir(root, "forge") / "models/VAE/ae.safetensors").exists()
    # ComfyUI keeps VAEs and text encoders apart: both are seen
    comfy = check_view(root, "comfyui", "global")
    assert sorted(e["pack"] for e in comfy["entries"]) == ["Encoder", "Vae"] and comfy["left_out"] == []


# -- relative links, a movable root ------------------------------------------------------------------------------


def test_views_are_relative_links_and_the_root_can_be_moved(
    store: Store, tmp_path: Path, synapse_cli, assert_store_consistent
):
    import_file(store, lora_file(tmp_path / "src" / "e" / "style.safetensors", seed=1), "Earlier")
    import_file(store, lora_file(tmp_path / "src" / "l" / "style.safetensors", seed=2), "Later")
    store.use("Earlier", uis=["comfyui", "a1111"])
    old_root = store.layout.root
    before = links(old_root / "data" / "views")
    blob_links = {p: t for p, t in before.items() if "/profiles/" in p}
    assert blob_links, "no view links were made"
    assert all(not target.startswith("/") for target in before.values()), before
    assert {before[f"{ui}/active"] for ui in UIS} == {"profiles/global", "profiles/work__Earlier"}

    new_root = tmp_path / "elsewhere" / "moved-store"
    new_root.parent.mkdir()
    shutil.move(old_root, new_root)
    assert not old_root.exists()

    after = links(new_root / "data" / "views")
    assert after == before
    for rel in blob_links:
        target = Path(os.path.realpath(new_root / "data" / "views" / rel))
        assert target.is_file() and target.is_relative_to(new_root.resolve() / "data" / "blobs"), rel
        assert sha_of(target) == target.name
    for ui in UIS:
        for profile in ("global", "work__Earlier") if ui in ("comfyui", "a1111") else ("global",):
            check_view(new_root, ui, profile)
    # the CLI on the moved root: healthy, reports paths under the new root, and switches
    env = PLUGIN_ENV
    doctor = synapse_cli("doctor", root=new_root, env=env)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    status = json.loads(synapse_cli("status", "--json", root=new_root, env=env).stdout)
    assert {u["view"] for u in status["uis"]} == {str(new_root / "data" / "views" / ui / "active") for ui in UIS}
    back = synapse_cli("back", "--ui", "comfyui", root=new_root, env=env)
    assert back.returncode == 0, back.stderr
    assert os.readlink(new_root / "data" / "views" / "comfyui" / "active") == "profiles/global"
    assert (new_root / "data/views/comfyui/active/models/loras/style.safetensors").is_file()
    assert_store_consistent(new_root)


# -- what a UI cannot see is reported, not dropped silently --------------------------------------------------------


def test_every_kind_folder_exists_in_an_empty_view(store: Store):
    root = store.layout.root
    for ui in UIS:
        adapter = store.registry.ui(ui)
        folders = {e.folder for e in adapter.layout.values() if isinstance(e, KindFolder)}
        assert folders
        for folder in folders:
            path = view_dir(root, ui) / folder
            assert path.is_dir() and not path.is_symlink(), f"{ui}: {folder}"
        assert links(view_dir(root, ui)) == {}


def test_unsupported_kinds_and_unlisted_extensions_are_reported(store: Store, cli, tmp_path: Path):
    ckpt = tmp_path / "src" / "old.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"PK\x03\x04 pretend pickle checkpoint " + os.urandom(32))
    other = tmp_path / "src" / "notes.bin"
    other.write_bytes(b"not a model anybody can load " + os.urandom(16))
    import_file(store, ckpt, "OldCkpt", kind="checkpoint")
    import_file(store, other, "Misc", kind="other")
    root = store.layout.root
    status = {u["ui"]: u for u in json.loads(cli("status", "--json").stdout)["uis"]}

    # A1111 lists .ckpt checkpoints; SD.Next lists only .safetensors ones
    a1111 = check_view(root, "a1111", "global")
    assert [(e["path"], e["sha256"]) for e in a1111["entries"]] == [("models/Stable-diffusion/old.ckpt", sha_of(ckpt))]
    sdnext = check_view(root, "sdnext", "global")
    assert sdnext["entries"] == []
    reasons = {(o["pack"], o["reason"]) for o in sdnext["left_out"]}
    assert ("OldCkpt", "extension_not_listed") in reasons
    assert any("old.ckpt" in line for line in status["sdnext"]["unsupported"]), status["sdnext"]
    assert not any("old.ckpt" in line for line in status["a1111"]["unsupported"])

    # no UI has a folder for 'other': left out and reported everywhere, linked nowhere
    for ui in UIS:
        data = check_view(root, ui, "global")
        assert ("Misc", "unsupported_kind") in {(o["pack"], o["reason"]) for o in data["left_out"]}, ui
        assert sha_of(other) not in {e["sha256"] for e in data["entries"]}
        assert len(status[ui]["unsupported"]) == (2 if ui == "sdnext" else 1), status[ui]


def test_sdnext_lists_controlnets_only_at_the_top_of_its_folder(store: Store, cli, tmp_path: Path):
    cn = lora_file(tmp_path / "src" / "CN" / "sub" / "cn.safetensors", seed=9)
    import_file(store, tmp_path / "src" / "CN", "CN", kind="controlnet", force=True)  # a LoRA's header
    root = store.layout.root
    comfy = check_view(root, "comfyui", "global")
    assert [(e["path"], e["sha256"]) for e in comfy["entries"]] == [
        ("models/controlnet/sub/cn.safetensors", sha_of(cn))
    ]
    sdnext = check_view(root, "sdnext", "global")
    assert sdnext["entries"] == []
    assert [(o["pack"], o["reason"]) for o in sdnext["left_out"]] == [("CN", "subfolder_not_listed")]
    status = {u["ui"]: u for u in json.loads(cli("status", "--json").stdout)["uis"]}
    assert len(status["sdnext"]["unsupported"]) == 1 and status["comfyui"]["unsupported"] == []
