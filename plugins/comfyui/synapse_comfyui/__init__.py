"""Synapse Store plugin: the ComfyUI adapter (folders, extra_model_paths.yaml attach)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synapse_core import hookimpl

if TYPE_CHECKING:
    from synapse_core.ui import UIAdapter
    from synapse_core.workflows.nodes import WorkflowNodes


@hookimpl
def synapse_ui_adapters() -> list[UIAdapter]:
    """The ComfyUI adapter (imported only when the hook is called)."""
    from synapse_comfyui.adapter import ComfyUIAdapter

    return [ComfyUIAdapter()]


@hookimpl
def synapse_workflow_nodes() -> list[WorkflowNodes]:
    """The node types of ComfyUI workflows that load models (read by ``synapse needs``)."""
    from synapse_comfyui.workflow_nodes import workflow_nodes

    return [workflow_nodes()]
