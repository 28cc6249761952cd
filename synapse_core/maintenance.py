"""Housekeeping and the doctor's checks: garbage, disk use, and every invariant of the store."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import partial

from synapse_core.blobs import BlobStore
from synapse_core.errors import SynapseError
from synapse_core.keep import Keeper
from synapse_core.layout import remove_leftover
from synapse_core.results import DuReport, Notice, PackUsage, Problem
from synapse_core.state import GLOBAL_PROFILE, StateFiles
from synapse_core.viewmarks import active_target
from synapse_core.views import ViewService, discard_leftovers

Garbage = list[tuple[str, int]]
GC_GRACE_SECONDS = 6 * 3600
"""Unreferenced blobs younger than this stay (a command without the lock may be about to use one)."""


class Maintenance:
    """gc, du and doctor over one store; the caller holds the store lock."""

    def __init__(self, files: StateFiles, blobs: BlobStore, views: ViewService, keeper: Keeper) -> None:
        self.files = files
        self.layout = files.layout
        self.blobs = blobs
        self.views = views
        self.keeper = keeper

    def referenced_blobs(self) -> dict[str, list[str]]:
        """Each sha256 any lock references, with the packs that reference it."""
        refs: dict[str, list[str]] = {}
        for name in self.files.pack_names():
            for res in self.files.lock(name).resources.values():
                refs.setdefault(res.sha256, [])
                if name not in refs[res.sha256]:
                    refs[res.sha256].append(name)
        return refs

    def garbage(self, grace: float = GC_GRACE_SECONDS) -> tuple[Garbage, Garbage]:
        """Blobs no lock references, with their sizes: those unreferenced for longer than ``grace``
        seconds, and the younger ones that stay (one may belong to a command that runs without the
        lock, as on NFS)."""
        referenced = self.referenced_blobs()
        now = time.time()
        old: Garbage = []
        young: Garbage = []
        for sha, size in self.blobs.iter_blobs():
            if sha in referenced:
                continue
            try:
                changed = os.lstat(self.blobs.path(sha)).st_ctime
            except OSError:
                continue
            (young if now - changed < grace else old).append((sha, size))
        return old, young

    def remove_garbage(self, garbage: Garbage, grace: float = GC_GRACE_SECONDS) -> list[str]:
        """Delete unreferenced blobs, the views no UI stacks (they may link to what goes; files
        UIs wrote in them are kept first), and stale temps. Returns what was kept on the way."""
        uis = self.views.installed_uis()
        kept = self.keeper.sweep(uis, full=True)
        stacks = self.files.stacks()
        for ui in uis:
            keep = set() if self.views.stable(ui) else {GLOBAL_PROFILE, *stacks.get(ui, [])}
            for tree in self.views.trees(ui):
                if tree.parent.name == "profiles" and tree.name not in keep:  # never a stable active folder
                    remove_leftover(self.layout.root, tree)
            discard_leftovers(self.layout.root, self.views.leftovers(ui))
        for sha, _ in garbage:
            self.blobs.remove(sha)
        self.blobs.clean_temps(grace)
        return kept.kept + kept.problems

    def du(self) -> DuReport:
        """Bytes per pack, bytes shared between packs, and what dedup saved."""
        refs = self.referenced_blobs()
        sizes = dict(self.blobs.iter_blobs())
        usage = []
        for name in self.files.pack_names():
            shas = {r.sha256: r.size for r in self.files.lock(name).resources.values()}
            shared = sum(size for sha, size in shas.items() if len(refs[sha]) > 1)
            usage.append(PackUsage(pack=name, bytes=sum(shas.values()), shared_bytes=shared))
        unique = sum(sizes.get(sha, 0) for sha in refs)
        with_duplicates = sum(sizes.get(sha, 0) * len(packs) for sha, packs in refs.items())
        temps = self.blobs.stale_temps()
        return DuReport(
            packs=usage,
            store_bytes=sum(sizes.values()),
            referenced_bytes=unique,
            unreferenced_bytes=sum(size for sha, size in sizes.items() if sha not in refs),
            saved_by_dedup=with_duplicates - unique,
            temps=len(temps),
            temp_bytes=sum(size for _, size, _ in temps),
        )

    def temp_notices(self) -> list[Notice]:
        """Temps killed commands left in data/tmp: gc removes them past its grace period."""
        temps = self.blobs.stale_temps()
        if not temps:
            return []
        size = sum(s for _, s, _ in temps)
        message = (
            f"{len(temps)} temp file(s), {size} bytes, in {self.layout.tmp_dir} were left by killed commands; "
            f"'synapse gc' removes them once they are {GC_GRACE_SECONDS // 3600} h old ('synapse gc --now': at once)"
        )
        return [Notice(check="no leftovers of killed commands", message=message)]

    def check(
        self, *, verify_blobs: bool, fix: bool, rebuild_views: bool
    ) -> tuple[list[str], list[Problem], list[Notice]]:
        """The checks run, the problems found (fixed ones marked so) and the notices."""
        checks = [
            "no store folder reached through a link",
            "state files validate",
            "locked blobs present",
            "views and active links agree with runtime",
        ]
        problems = self._linked_folders()
        problems += self._reset_runtime() if fix else []
        problems += self.state_file_problems()
        refs = self.referenced_blobs() if not any(not p.fixed for p in problems) else {}
        if verify_blobs:
            checks.append("blob names match their bytes")
            problems += self._verify_blobs(refs, fix)
        notices = []
        set_aside = self._quarantined()
        for sha, packs in sorted(refs.items()):  # after the verification: a quarantined blob is missing now
            if self.blobs.has(sha):
                continue
            install = f"run 'synapse install {packs[0]}'"
            if sha in set_aside:  # it was here and was corrupt: a loss, not a download still to do
                message = f"blob {sha[:12]}… of {', '.join(packs)} is missing; {install}"
                problems.append(Problem(check="locked blobs present", message=message))
            else:  # a view never links a missing blob, so one that vanished shows up in the views check
                message = f"blob {sha[:12]}… of {', '.join(packs)} is not downloaded yet; {install}"
                notices.append(Notice(check="locked blobs present", message=message))
        if not any(p.check == "state files validate" and not p.fixed for p in problems):
            problems += self._check_views(fix, rebuild_views)
        return checks, problems, notices

    def _quarantined(self) -> set[str]:
        """The sha256s of blobs doctor set aside as corrupt (data/quarantine/<sha256>.<time>)."""
        try:
            return {entry.name.split(".")[0] for entry in os.scandir(self.layout.quarantine_dir)}
        except OSError:
            return set()

    def _reset_runtime(self) -> list[Problem]:
        """An invalid data/runtime.json (which UI shows which profile) is rebuildable: every UI
        goes back to 'global'."""
        try:
            self.files.runtime()
            return []
        except SynapseError as exc:
            self.files.save_stacks({ui: [GLOBAL_PROFILE] for ui in self.views.installed_uis()})
            message = f"{exc.message.split('; ')[0]}; reset: every UI shows 'global' again"
            return [Problem(check="state files validate", message=message, fixed=True)]

    def _linked_folders(self) -> list[Problem]:
        """Store folders a symbolic link leads to (every command refuses to run until they are
        real folders again: doctor --fix cannot repair them either)."""
        linked = self.layout.linked_folders(self.views.ui_folders(self.views.installed_uis()))
        return [
            Problem(
                check="no store folder reached through a link",
                message=f"{path} is reached through a symbolic link; replace it with a real folder "
                "(or remove it: Synapse recreates what belongs there)",
            )
            for path in linked
        ]

    def state_file_problems(self) -> list[Problem]:
        """Every state file that does not parse or validate."""
        problems = []
        readers: list[Callable[[], object]] = [self.files.config, self.files.ui_sets, self.files.runtime]
        readers += [partial(self.files.pack, n) for n in self.files.pack_names()]
        readers += [partial(self.files.lock, n) for n in self.files.pack_names()]
        readers += [partial(self.files.profile, n) for n in self.files.profile_names()]
        for read in readers:
            try:
                read()
            except SynapseError as exc:
                problems.append(Problem(check="state files validate", message=exc.message))
        if not self.files.has_profile(GLOBAL_PROFILE):
            problems.append(Problem(check="state files validate", message="the global profile is missing"))
        return problems

    def _check_views(self, fix: bool, rebuild: bool) -> list[Problem]:
        problems = []
        stacks = self.files.stacks()
        for ui in self.views.installed_uis():
            stack = stacks.get(ui, [GLOBAL_PROFILE])
            gone = [p for p in stack if not self.files.has_profile(p)]
            if gone:
                problems.append(Problem(check="active", message=f"{ui}: the stack names missing profiles {gone}"))
            if self.views.stable(ui):
                record = self.views.record(ui, self.layout.active_link(ui))
                shown = record.profile if record is not None else None
                if shown != stack[-1]:
                    message = f"{ui}: the active folder shows {shown}, the stack's top is {stack[-1]}"
                    problems.append(Problem(check="active", message=message))
            elif (target := active_target(self.layout, ui)) != f"profiles/{stack[-1]}":
                message = f"{ui}: active points at {target}, the stack's top is {stack[-1]}"
                problems.append(Problem(check="active", message=message))
            for profile in dict.fromkeys([GLOBAL_PROFILE, *stack]):
                if profile in gone:
                    continue
                for wrong in self.views.check(ui, profile):
                    problems.append(Problem(check="views", message=f"{ui}: the view of '{profile}' is {wrong}"))
            for leftover in self.views.leftovers(ui):
                problems.append(
                    Problem(check="views", message=f"{ui}: a tree left by a killed command: {leftover.name}")
                )
        if fix or rebuild:
            for ui in self.views.installed_uis():
                stack = [p for p in stacks.get(ui, [GLOBAL_PROFILE]) if self.files.has_profile(p)] or [GLOBAL_PROFILE]
                stacks[ui] = stack
                if rebuild or any(ui in p.message for p in problems):
                    self.views.rebuild(ui, stack)
                discard_leftovers(self.layout.root, self.views.leftovers(ui))
            self.files.save_stacks(stacks)
            for problem in problems:
                problem.fixed = True
        return problems

    def _verify_blobs(self, refs: dict[str, list[str]], fix: bool) -> list[Problem]:
        problems = []
        for sha, _size in list(self.blobs.iter_blobs()):
            if self.blobs.verify(sha):
                continue
            users = ", ".join(refs.get(sha, [])) or "no pack"
            problem = Problem(check="blob names match their bytes", message=f"blob {sha[:12]}… ({users}) is corrupt")
            if fix:
                moved = self.blobs.quarantine(sha)
                problem.fixed = True
                problem.message += f"; moved to {moved}, run 'synapse install' for {users}"
            problems.append(problem)
        return problems
