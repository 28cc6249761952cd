"""The built-in conflict policies: last_wins (default), first_wins, error."""

from __future__ import annotations

from collections.abc import Sequence

from synapse_core.conflicts import ConflictPolicy, Contender
from synapse_core.errors import Conflict
from synapse_core.hookspecs import hookimpl


class LastWins(ConflictPolicy):
    """The pack listed last in the profile wins; work profiles rely on this."""

    name = "last_wins"
    description = "the pack later in the profile wins"

    def choose(self, key: str, contenders: Sequence[Contender]) -> int:
        return len(contenders) - 1


class FirstWins(ConflictPolicy):
    """The pack listed first in the profile wins."""

    name = "first_wins"
    description = "the pack earlier in the profile wins"

    def choose(self, key: str, contenders: Sequence[Contender]) -> int:
        return 0


class RefuseConflicts(ConflictPolicy):
    """Any two packs exposing the same name is an error, unless the bytes are identical."""

    name = "error"
    description = "a name exposed by two packs is an error"

    def choose(self, key: str, contenders: Sequence[Contender]) -> int:
        if len({c.sha256 for c in contenders}) == 1:
            return len(contenders) - 1
        packs = ", ".join(c.pack for c in contenders)
        raise Conflict(f"'{key}' is exposed by several packs ({packs}); remove one or use another conflict policy")


@hookimpl
def synapse_conflict_policies() -> list[ConflictPolicy]:
    return [LastWins(), FirstWins(), RefuseConflicts()]
