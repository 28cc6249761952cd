"""What killed commands leave besides their marker, and the doctor's checks of it.

A command killed mid-way can leave temps and staging trees named after its pid, and git lock
files or a broken git index in state/.git; the rebuildable caches may be corrupt and the
global profile deleted by hand. :class:`Recovery` lists and repairs these (the marker itself
and the rollback of state and of new blobs are the mutation's: see ``Store._recover``). Every
method is called under the store lock, when no command of ours can be writing.
"""

from __future__ import annotations

from collections.abc import Callable

from synapse_core.errors import SynapseError
from synapse_core.history import StateHistory
from synapse_core.layout import StoreLayout, read_model, remove_leftover
from synapse_core.models import HashCache, Profile, UpdateChecks
from synapse_core.results import Problem
from synapse_core.state import GLOBAL_PROFILE, StateFiles

CHECKS = ["no leftovers of killed commands", "state history usable", "caches valid"]


class Recovery:
    """Lists and repairs what killed commands, hand edits and broken caches leave behind."""

    def __init__(self, files: StateFiles, history: StateHistory) -> None:
        self.files = files
        self.layout: StoreLayout = files.layout
        self.history = history

    def remove_leftovers(self) -> int:
        """Delete the temps and staging trees of processes that are gone; return how many."""
        leftovers = self.layout.leftovers()
        for path in leftovers:
            remove_leftover(self.layout.root, path)
        return len(leftovers)

    def check(self, fix: bool) -> list[Problem]:
        """The problems of :data:`CHECKS` (``fix``: repaired and marked so)."""
        return self._leftovers(fix) + self._history(fix) + self._caches(fix)

    def repair(self) -> None:
        """Repair everything :meth:`check` finds, and recreate a missing global profile (with
        every pack), which the state-file check reports and without which no command runs."""
        self.check(fix=True)
        if not self.files.has_profile(GLOBAL_PROFILE):
            self.files.save_profile(Profile(name=GLOBAL_PROFILE, packs=self.files.pack_names()))

    def _leftovers(self, fix: bool) -> list[Problem]:
        found = self.layout.leftovers()
        if not found:
            return []
        names = ", ".join(str(p.relative_to(self.layout.root)) for p in found[:3]) + (", ..." if found[3:] else "")
        problem = Problem(check=CHECKS[0], message=f"{len(found)} left by killed commands: {names}")
        return [self._repair(problem, fix, self.remove_leftovers, "removes them")]

    def _history(self, fix: bool) -> list[Problem]:
        found = self.history.problems()
        if not found:
            return []
        problem = Problem(check=CHECKS[1], message="state/.git: " + "; ".join(found))
        return [self._repair(problem, fix, self.history.recover, "repairs it")]

    def _caches(self, fix: bool) -> list[Problem]:
        problems = []
        for path, model in ((self.layout.update_checks_file, UpdateChecks), (self.layout.hash_cache_file, HashCache)):
            try:
                if path.is_file() or path.is_symlink():
                    read_model(path, model)
            except (SynapseError, OSError) as exc:
                reason = exc.message.split("; ")[0] if isinstance(exc, SynapseError) else str(exc)
                problem = Problem(check=CHECKS[2], message=f"{reason} (a cache, rebuilt when needed)")
                problems.append(self._repair(problem, fix, path.unlink, "deletes it"))
        return problems

    @staticmethod
    def _repair(problem: Problem, fix: bool, repair: Callable[[], object], what: str) -> Problem:
        if fix:
            repair()
            problem.fixed = True
        else:
            problem.message += f"; 'synapse doctor --fix' {what}"
        return problem
