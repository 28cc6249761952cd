"""Synapse Store plugin: the ComfyUI adapter (folders, extra_model_paths.yaml attach)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synapse_core import hookimpl

if TYPE_CHECKING:
    from synapse_core.ui import UIAdapter


@hookimpl
def synapse_ui_adapters() -> list[UIAdapter]:
    """The ComfyUI adapter (imported only when the hook is called)."""
    from synapse_comfyui.adapter import ComfyUIAdapter

    return [ComfyUIAdapter()]
