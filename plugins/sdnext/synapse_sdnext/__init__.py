"""Synapse Store plugin: the SD.Next adapter (folders, --models-dir attach)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synapse_core import hookimpl

if TYPE_CHECKING:
    from synapse_core.ui import UIAdapter


@hookimpl
def synapse_ui_adapters() -> list[UIAdapter]:
    """The SD.Next adapter (imported only when the hook is called)."""
    from synapse_sdnext.adapter import SDNextAdapter

    return [SDNextAdapter()]
