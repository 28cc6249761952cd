"""Synapse Store plugin: the Forge adapter (folders, command-line-flag attach)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synapse_core import hookimpl

if TYPE_CHECKING:
    from synapse_core.ui import UIAdapter


@hookimpl
def synapse_ui_adapters() -> list[UIAdapter]:
    """The Forge adapter (imported only when the hook is called)."""
    from synapse_forge.adapter import ForgeAdapter

    return [ForgeAdapter()]
