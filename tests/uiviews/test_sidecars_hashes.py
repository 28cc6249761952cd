"""Previews, trigger words and true hashes reach the UIs (issue 16, items 1 and 2).

Sidecars are checked by plain instantiation of each adapter and read back with each UI's own
rule; hashes through the real CLI (use/back on attached installs), read back with each UI's
modules/hashes.py sha256_from_cache, reproduced below."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path

import diskcache
import pytest
from uiviews.installs import sdnext_install, webui_install

from synapse_a1111.adapter import A1111Adapter
from synapse_comfyui.adapter import ComfyUIAdapter
from synapse_core.kinds import AssetKind
from synapse_core.store import Store
from synapse_core.testing import lora_file, write_safetensors
from synapse_core.ui import Sidecar, SidecarRequest
from synapse_forge.adapter import ForgeAdapter
from synapse_sdnext.adapter import SDNextAdapter

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def request(tmp_path: Path, kind: AssetKind = AssetKind.LORA, base_model: str | None = "SDXL 1.0") -> SidecarRequest:
    previews = tmp_path / "previews"
    previews.mkdir(exist_ok=True)
    (previews / "0-clip.mp4").write_bytes(b"video")  # a UI shows no video as a card
    (previews / "1-cover.png").write_bytes(PNG)
    return SidecarRequest(
        kind=kind,
        expose="styles/ink.safetensors",
        sha256="ab" * 32,
        size=123,
        pack="InkWash",
        trigger_words=("inkwash", "sumi-e"),
        base_model=base_model,
        description="<p>Ink wash painting</p>",
        creator="painter",
        tags=("style", "ink"),
        previews=(previews / "0-clip.mp4", previews / "1-cover.png"),
    )


def by_name(sidecars: list[Sidecar]) -> dict[str, bytes]:
    return {s.name: s.content if s.content is not None else Path(str(s.source)).read_bytes() for s in sidecars}


@pytest.mark.parametrize("adapter", [A1111Adapter(), ForgeAdapter()], ids=["a1111", "forge"])
def test_a1111_family_cards_get_the_preview_and_the_user_metadata(tmp_path: Path, adapter) -> None:
    files = by_name(adapter.sidecars(request(tmp_path)))
    assert set(files) == {"ink.preview.png", "ink.json"} and files["ink.preview.png"] == PNG
    # modules/extra_networks.py get_user_metadata: json.load of <basename>.json; Lora/ui_extra_networks_lora.py
    # create_item: "activation text" goes into the prompt, "sd version" must name a network.SdVersion member
    metadata = json.loads(files["ink.json"])
    assert metadata["activation text"] == "inkwash, sumi-e"
    assert metadata["sd version"] in {"Unknown", "SD1", "SD2", "SDXL", "Flux"} and metadata["sd version"] == "SDXL"
    assert metadata["description"] == "<p>Ink wash painting</p>"
    # ui_extra_networks_lora.py: float(user_metadata.get('preferred weight', 0.0)) must not fail
    float(metadata.get("preferred weight", 0.0))


def test_forge_knows_flux_and_a1111_leaves_it_to_its_heuristics(tmp_path: Path) -> None:
    flux = request(tmp_path, base_model="Flux.1 D")
    assert json.loads(by_name(ForgeAdapter().sidecars(flux))["ink.json"])["sd version"] == "Flux"
    assert "sd version" not in json.loads(by_name(A1111Adapter().sidecars(flux))["ink.json"])


def test_no_json_for_a_pack_with_nothing_to_say_and_none_beside_an_upscaler(tmp_path: Path) -> None:
    bare = SidecarRequest(kind=AssetKind.LORA, expose="x.safetensors", sha256="cd" * 32, size=1, pack="X")
    assert A1111Adapter().sidecars(bare) == [] and SDNextAdapter().sidecars(bare) == []
    assert A1111Adapter().sidecars(request(tmp_path, AssetKind.UPSCALER)) == []


def test_sdnext_reads_the_json_as_a_civitai_model(tmp_path: Path) -> None:
    files = by_name(SDNextAdapter().sidecars(request(tmp_path)))
    assert set(files) == {"ink.preview.png", "ink.json"}
    info = json.loads(files["ink.json"])
    # ui_extra_networks.py find_version: the version whose file hashes start with the item's hash
    versions = info["modelVersions"]
    current = ("ab" * 32)[:8].upper()
    [version] = [v for v in versions for f in v["files"] if any(h.startswith(current) for h in f["hashes"].values())]
    assert version["trainedWords"] == ["inkwash", "sumi-e"] and version["baseModel"] == "SDXL 1.0"
    assert info["tags"] == ["style", "ink"]
    # no json beside a VAE: sd_vae.refresh_vae_list takes models/VAE/**/*.json for diffusers VAEs
    assert set(by_name(SDNextAdapter().sidecars(request(tmp_path, AssetKind.VAE)))) == {"ink.preview.png"}


def test_comfyui_previews_match_get_model_previews(tmp_path: Path) -> None:
    [preview] = ComfyUIAdapter().sidecars(request(tmp_path))
    # app/model_manager.py get_model_previews: glob(<base>.*), images whose base is <base> or <base>.preview
    base = "ink"
    assert os.path.splitext(preview.name)[0] in (base, f"{base}.preview")
    assert ComfyUIAdapter().sidecars(request(tmp_path, AssetKind.IPADAPTER)) == []  # a custom node's folder


def test_the_views_carry_the_preview_and_the_trigger_words(store: Store, root: Path, tmp_path: Path) -> None:
    store.import_pack(str(lora_file(tmp_path / "src" / "ink.safetensors")), name="InkWash")
    previews = store.layout.previews_dir("InkWash")
    previews.mkdir(parents=True)
    (previews / "cover.png").write_bytes(PNG)
    with store.mutation("give the pack its metadata"):
        pack = store.files.pack("InkWash")
        pack.trigger_words, pack.base_model = ["inkwash"], "SD 1.5"
        store.files.save_pack(pack)
    a1111 = store.layout.active_link("a1111") / "models" / "Lora"
    assert (a1111 / "ink.preview.png").read_bytes() == PNG
    assert json.loads((a1111 / "ink.json").read_text())["activation text"] == "inkwash"
    comfy = store.layout.active_link("comfyui") / "models" / "loras" / "ink.preview.png"
    assert comfy.read_bytes() == PNG and not comfy.is_symlink()  # a real file: ComfyUI serves it
    sdnext = json.loads((store.layout.active_link("sdnext") / "models/Lora/ink.json").read_text())
    assert sdnext["modelVersions"][0]["trainedWords"] == ["inkwash"]


# --------------------------------------------------------------------------- true hashes


def sha256_from_cache(cache: Mapping, filename: Path, title: str, use_addnet_hash: bool = False) -> str | None:
    """modules/hashes.py sha256_from_cache (A1111 45b8a499, Forge dfdcbab6, reForge; SD.Next
    058a7f0c the same with the store name): the cached sha256 unless the file is newer."""
    hashes = cache.get("hashes-addnet" if use_addnet_hash else "hashes", {})
    ondisk_mtime = os.path.getmtime(filename)
    if title not in hashes:
        return None
    cached_sha256 = hashes[title].get("sha256", None)
    if ondisk_mtime > hashes[title].get("mtime", 0) or not cached_sha256:
        return None
    return str(cached_sha256)


def checkpoint(path: Path, seed: int) -> Path:
    return write_safetensors(path, {"model.diffusion_model.w": (2, 2), "first_stage_model.v": (2, seed + 1)})


def two_versions(store: Store, tmp_path: Path) -> tuple[str, str]:
    """Two packs exposing the same checkpoint name, the older one imported second: its blob is older."""
    newer = checkpoint(tmp_path / "a" / "base.safetensors", 1)
    older = checkpoint(tmp_path / "b" / "base.safetensors", 2)
    store.import_pack(str(newer), name="Newer")
    store.import_pack(str(older), name="Older")
    return tuple(hashlib.sha256(p.read_bytes()).hexdigest() for p in (newer, older))  # type: ignore[return-value]


def test_a1111_shows_the_hash_of_the_bytes_it_loads_after_use_and_back(store: Store, cli, tmp_path: Path) -> None:
    newer, older = two_versions(store, tmp_path)
    install = webui_install(tmp_path / "webui", "a1111")  # modules/cache.py of v1.8: cache.json
    cli("attach", "a1111", install)
    view_file = store.layout.active_link("a1111") / "models" / "Stable-diffusion" / "base.safetensors"

    def shown() -> str | None:
        return sha256_from_cache(
            json.loads((install / "cache.json").read_text()), view_file, "checkpoint/base.safetensors"
        )

    # what A1111 itself cached while "Older" was active (mtime: now, later than either blob)
    cli("use", "Newer", "--ui", "a1111")
    assert shown() == newer
    cache = json.loads((install / "cache.json").read_text())
    cache["hashes"]["checkpoint/base.safetensors"] = {"mtime": time.time(), "sha256": older}  # a stale entry
    (install / "cache.json").write_text(json.dumps(cache))
    assert shown() == older  # without Synapse, A1111 would keep naming the wrong file
    cli("back", "--ui", "a1111")
    assert shown() == older  # global: Older wins (imported last)
    cli("use", "Newer", "--ui", "a1111")
    assert shown() == newer


def test_forge_diskcache_gets_the_true_hash_and_a_stale_addnet_hash_goes(store: Store, cli, tmp_path: Path) -> None:
    store.import_pack(str(lora_file(tmp_path / "a" / "ink.safetensors", seed=1)), name="InkA")
    store.import_pack(str(lora_file(tmp_path / "b" / "ink.safetensors", seed=2)), name="InkB")
    install = webui_install(tmp_path / "forge", "forge")
    (install / "modules" / "cache.py").write_text("import diskcache\n")  # modules/cache.py since 1.10: diskcache
    stale = diskcache.Cache(str(install / "cache" / "hashes-addnet"))
    stale["lora/ink"] = {"mtime": time.time() + 3600, "sha256": "0" * 64}  # what Forge hashed before a switch
    stale.close()
    cli("attach", "forge", install)
    cli("use", "InkA", "--ui", "forge")
    caches = {name: diskcache.Cache(str(install / "cache" / name)) for name in ("hashes", "hashes-addnet")}
    view_file = store.layout.active_link("forge") / "models" / "Lora" / "ink.safetensors"
    expected = hashlib.sha256(view_file.read_bytes()).hexdigest()
    assert sha256_from_cache(caches, view_file, "lora/ink") == expected
    # Lora/network.py uses the addnet hash of a .safetensors: the stale one is gone, Forge computes it again
    assert sha256_from_cache(caches, view_file, "lora/ink", use_addnet_hash=True) is None
    for cache in caches.values():
        cache.close()


def test_sdnext_data_cache_json_names_the_loaded_bytes(store: Store, cli, tmp_path: Path) -> None:
    newer, older = two_versions(store, tmp_path)
    install = sdnext_install(tmp_path / "sdnext")
    cli("attach", "sdnext", install)
    view_file = store.layout.active_link("sdnext") / "models" / "Stable-diffusion" / "base.safetensors"
    for command, expected in ((("use", "Newer"), newer), (("back",), older)):
        cli(*command, "--ui", "sdnext")
        cache = json.loads((install / "data" / "cache.json").read_text())
        # sd_checkpoint.py CheckpointInfo: f"checkpoint/{relname}", relname without its extension
        assert sha256_from_cache(cache, view_file, "checkpoint/base") == expected
