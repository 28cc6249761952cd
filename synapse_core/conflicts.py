"""The contract of a conflict policy: which of several same-named entries a UI sees."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import attrs


@attrs.frozen
class Contender:
    """One entry competing for a name in a view, in profile order."""

    pack: str
    resource_id: str
    path: str
    """The entry's path inside the view, e.g. ``models/Lora/style.safetensors``."""
    sha256: str


class ConflictPolicy(ABC):
    """Chooses the winner among contenders for one name.

    Return the index of the winning contender; every other contender is
    reported as shadowed. Raise :class:`synapse_core.errors.Conflict` to refuse
    (the built-in ``error`` policy does). Contenders arrive in profile order:
    the pack listed later in the profile comes later.
    """

    name: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def choose(self, key: str, contenders: Sequence[Contender]) -> int:
        """The index in ``contenders`` of the entry the UI should see under ``key``."""
