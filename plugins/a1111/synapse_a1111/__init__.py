"""Synapse Store plugin: the AUTOMATIC1111 adapter (folders, command-line-flag attach)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synapse_core import hookimpl

if TYPE_CHECKING:
    from synapse_core.ui import UIAdapter


@hookimpl
def synapse_ui_adapters() -> list[UIAdapter]:
    """The AUTOMATIC1111 adapter (imported only when the hook is called)."""
    from synapse_a1111.adapter import A1111Adapter

    return [A1111Adapter()]
