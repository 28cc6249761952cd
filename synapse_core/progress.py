"""Progress of long work, reported to whoever is watching (a terminal, an API job)."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives byte counts of long work; implementations must be thread-safe."""

    def add_total(self, label: str, total: int | None) -> None:
        """A new piece of work of ``total`` bytes (None when unknown) has started."""

    def advance(self, n: int) -> None:
        """``n`` more bytes are done."""

    def finish(self, label: str) -> None:
        """A piece of work has ended (successfully or not)."""


class NoProgress:
    """Progress that nobody watches."""

    def add_total(self, label: str, total: int | None) -> None:
        """Ignored."""

    def advance(self, n: int) -> None:
        """Ignored."""

    def finish(self, label: str) -> None:
        """Ignored."""
