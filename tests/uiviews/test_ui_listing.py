"""Every kind and extension, through each UI's own listing rule (tests/uiviews/listing.py):
a view holds exactly what its UI lists, and what it leaves out (a file type the UI does not
list) is reported by status as not shown (issue 16, items 5 and 6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from uiviews import listing
from uiviews.installs import comfy_install, webui_install

from synapse_core.kinds import AssetKind
from synapse_core.store import Store
from synapse_core.testing import write_safetensors

# one file per (kind, extension): the extensions the UIs differ on
SAMPLES: list[tuple[str, str]] = [
    ("checkpoint", "safetensors"),
    ("checkpoint", "ckpt"),
    ("checkpoint", "gguf"),
    ("lora", "safetensors"),
    ("lora", "pt"),
    ("embedding", "pt"),
    ("embedding", "safetensors"),
    ("vae", "safetensors"),
    ("vae", "pt"),
    ("vae", "bin"),
    ("controlnet", "safetensors"),
    ("controlnet", "pth"),
    ("upscaler", "pth"),
    ("upscaler", "safetensors"),
    ("hypernetwork", "pt"),
    ("text_encoder", "safetensors"),
    ("text_encoder", "gguf"),
    ("diffusion_model", "safetensors"),
    ("diffusion_model", "gguf"),
    *((kind.value, "safetensors") for kind in AssetKind if kind.value not in ("diffusers", "classifier", "other")),
    ("detection", "pt"),
    ("motion_module", "ckpt"),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """One store holding every sample, one pack each (built once: the listings only read it)."""
    from uiviews.kit import PLUGIN_ENV

    from synapse_core.testing import make_registry

    tmp = tmp_path_factory.mktemp("listing")
    store = Store(root=tmp / "store", registry=make_registry(entry_points=True, env=PLUGIN_ENV))
    store.init()
    for index, (kind, ext) in enumerate(dict.fromkeys(SAMPLES)):
        path = tmp / "src" / f"{kind}_{index}.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if ext == "safetensors":
            write_safetensors(path, {f"w{index}": (2, 2)})  # a header that tells no kind
        else:
            path.write_bytes(f"{kind} {index} {ext}".encode())
        store.import_pack(str(path), name=f"P{index:02d}", kind=kind)
    return store


def placed(store: Store, ui: str) -> dict[str, set[str]]:
    manifest = json.loads((store.layout.active_link(ui) / ".synapse-view.json").read_text())
    found: dict[str, set[str]] = {}
    for entry in manifest["entries"]:
        found.setdefault(entry["kind"], set()).add(entry["path"])
    return found


def flat(found: dict[str, set[str]]) -> set[str]:
    """Every path of a listing (kinds can share a folder: IP-Adapters in A1111's ControlNet list)."""
    return {path for paths in found.values() for path in paths}


@pytest.mark.parametrize(
    ("ui", "rule"),
    [("comfyui", listing.comfyui), ("a1111", listing.a1111), ("forge", listing.forge), ("sdnext", listing.sdnext)],
)
def test_each_view_holds_exactly_what_its_ui_lists(built: Store, ui: str, rule) -> None:
    view = built.layout.active_link(ui)
    assert flat(rule(view)) == flat(placed(built, ui))


@pytest.mark.parametrize(
    ("ui", "kind", "name", "why"),
    [
        ("a1111", "upscaler", "safetensors", "esrgan_model.py lists .pt/.pth only"),
        ("sdnext", "checkpoint", "ckpt", "sd_checkpoint.list_models: .safetensors only"),
        ("a1111", "checkpoint", "gguf", "only Forge lists .gguf checkpoints"),
        ("forge", "lora", "safetensors", None),
    ],
)
def test_status_reports_what_a_ui_does_not_list(built: Store, ui: str, kind: str, name: str, why: str | None) -> None:
    index = list(dict.fromkeys(SAMPLES)).index((kind, name))
    file_name = f"{kind}_{index}.{name}"
    [status] = [u for u in built.status().uis if u.ui == ui]
    hidden = [line for line in status.unsupported if file_name in line]
    assert bool(hidden) is (why is not None), (why, status.unsupported)


@pytest.mark.parametrize("variant", ["reforge", "forge_classic"])
def test_status_says_what_a_forge_variant_does_not_list(built: Store, variant: str, tmp_path: Path) -> None:
    install = webui_install(tmp_path / variant, variant)
    built.attach("forge", install)
    try:
        [status] = [u for u in built.status().uis if u.ui == "forge"]
        [attached] = [i for i in status.installs if i.path == str(install)]
        rule = listing.forge(built.layout.active_link("forge"), variant)
        listed, shown = flat(rule), flat(placed(built, "forge"))
        assert {line.split(": ")[0] for line in attached.not_listed} == shown - listed
        assert any(".gguf" in line for line in attached.not_listed)
    finally:
        built.attach("forge", install, detach=True)


def test_comfyui_without_comfyui_gguf_does_not_list_gguf(built: Store, tmp_path: Path) -> None:
    install = comfy_install(tmp_path / "ComfyUI")
    built.attach("comfyui", install)
    try:
        [status] = [u for u in built.status().uis if u.ui == "comfyui"]
        [attached] = status.installs
        rule = listing.comfyui(built.layout.active_link("comfyui"), gguf=False)
        listed, shown = flat(rule), flat(placed(built, "comfyui"))
        not_listed = {line.split(": ")[0] for line in attached.not_listed}
        # the fake install has no folder_paths keys and no custom nodes: the custom nodes' kinds are not listed
        assert shown - listed <= not_listed
        assert {p for p in not_listed if p.endswith(".gguf")} == {p for p in shown if p.endswith(".gguf")}
    finally:
        built.attach("comfyui", install, detach=True)
