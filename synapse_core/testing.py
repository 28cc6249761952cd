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
