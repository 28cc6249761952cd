"""Synapse Store: one content-addressed model library, a view per UI.

Embed it with ``from synapse_core import Store``. Plugins import ``hookimpl``
from here. Importing this package is cheap: the store machinery loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synapse_core.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["Store", "__version__", "hookimpl"]

if TYPE_CHECKING:
    from synapse_core.store import Store


def __getattr__(name: str) -> Any:
    if name == "Store":
        from synapse_core.store import Store

        return Store
    raise AttributeError(name)
