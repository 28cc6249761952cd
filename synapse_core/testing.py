"""Helpers for tests of Synapse and of third-party plugins.

from synapse_core.testing import make_store, write_safetensors

def test_my_ui(tmp_path):
    store = make_store(tmp_path / "store", plugins=[("myui", my_plugin_module)])
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path

from synapse_core.plugins import PluginRegistry
from synapse_core.store import Store

CHROMIUM = "/usr/bin/chromium"
"""Debian's chromium, which the web page's browser tests and benchmark drive (``make system-deps``)."""
CHROMIUM_ARGS = (
    "--no-sandbox",  # needed as root
    "--disable-background-networking",  # the rest keeps it off the network and quick to start
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
)


def make_registry(
    plugins: Iterable[tuple[str, object]] = (), *, entry_points: bool = False, env: Mapping[str, str] | None = None
) -> PluginRegistry:
    """A registry with the built-ins, the given ``(name, plugin)`` pairs and, if asked, installed plugins."""
    return PluginRegistry.load(entry_points=entry_points, plugins=plugins, env=env or {})


def make_store(
    root: Path, plugins: Iterable[tuple[str, object]] = (), *, entry_points: bool = True, init: bool = True
) -> Store:
    """A Store at ``root`` (initialised unless ``init=False``)."""
    store = Store(root=root, registry=make_registry(plugins, entry_points=entry_points, env=dict(os.environ)))
    if init:
        store.init()
    return store


def write_safetensors(
    path: Path,
    tensors: Mapping[str, tuple[int, ...]],
    *,
    metadata: Mapping[str, str] | None = None,
    payload: bytes | None = None,
) -> Path:
    """Write a small but valid .safetensors file with F16 tensors of the given shapes.

    ``payload`` replaces the zero-filled tensor bytes (to make distinct files).
    """
    header: dict[str, object] = {}
    offset = 0
    for name, shape in tensors.items():
        count = 1
        for dim in shape:
            count *= dim
        header[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + 2 * count]}
        offset += 2 * count
    if metadata:
        header["__metadata__"] = dict(metadata)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    data = payload if payload is not None else bytes(offset)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def lora_file(path: Path, seed: int = 0) -> Path:
    """A tiny file the kind detector sees as a LoRA; ``seed`` makes its bytes distinct."""
    return write_safetensors(
        path,
        {"lora_unet_down_blocks_0.lora_down.weight": (4, 8), "lora_unet_down_blocks_0.lora_up.weight": (8, 4)},
        metadata={"ss_network_module": "networks.lora", "seed": str(seed)},
    )


def add_bare_packs(store: Store, count: int, *, preview: bytes | None = None, prefix: str = "bulk") -> list[str]:
    """Add ``count`` packs straight to state (one commit; no blobs, so their files are missing):
    large libraries for tests and benchmarks of listing them. Each gets ``preview`` as its image."""
    from synapse_core.kinds import AssetKind
    from synapse_core.layout import write_json
    from synapse_core.models import LockedResource, Pack, PackLock, PreviewIndex, PreviewInfo, ResourceSpec, SourceInfo

    names = []
    bases = ("SD 1.5", "SDXL 1.0", "Pony", "Flux.1 D")
    with store.mutation(f"add {count} bare packs"):
        global_profile = store.files.profile("global")
        for i in range(count):
            name = f"{prefix}_{i:05d}"
            file_name = f"{name}.safetensors"
            pack = Pack(
                name=name,
                source=SourceInfo(provider="local"),
                base_model=bases[i % len(bases)],
                tags=[f"tag{i % 7}"],
                trigger_words=[f"{name}_style"],
                resources=[ResourceSpec(id="main", kind=AssetKind.LORA, expose=file_name)],
            )
            sha = f"{i:064x}"
            lock = PackLock(resources={"main": LockedResource(sha256=sha, size=1000 + i, file_name=file_name)})
            store.files.save_pack(pack, lock)
            if preview is not None:
                folder = store.layout.previews_dir(name)
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "preview.png").write_bytes(preview)
                index = PreviewIndex(previews=[PreviewInfo(file="preview.png", nsfw="none")])
                write_json(store.layout.previews_index(name), index)
            global_profile.packs.append(name)
            names.append(name)
        store.files.save_profile(global_profile)
    return names
