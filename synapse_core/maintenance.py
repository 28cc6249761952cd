"""Housekeeping and the doctor's checks: garbage, disk use, and every invariant of the store."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from functools import partial

from synapse_core import activation
from synapse_core.activation import GLOBAL_PROFILE
from synapse_core.blobs import BlobStore
from synapse_core.errors import SynapseError
from synapse_core.profiles import ProfileService
from synapse_core.results import DuReport, PackUsage, Problem
from synapse_core.state import StateFiles
from synapse_core.views import ViewBuilder

Garbage = list[tuple[str, int]]


class Maintenance:
    """gc, du and doctor over one store; the caller holds the store lock."""

    def __init__(self, files: StateFiles, blobs: BlobStore, profiles: ProfileService, views: ViewBuilder) -> None:
        self.files = files
        self.layout = files.layout
        self.blobs = blobs
        self.profiles = profiles
        self.views = views

    def referenced_blobs(self) -> dict[str, list[str]]:
        """Each sha256 any lock references, with the packs that reference it."""
        refs: dict[str, list[str]] = {}
        for name in self.files.pack_names():
            for res in self.files.lock(name).resources.values():
                refs.setdefault(res.sha256, [])
                if name not in refs[res.sha256]:
                    refs[res.sha256].append(name)
        return refs

    def garbage(self) -> Garbage:
        """Blobs no lock references, with their sizes."""
        referenced = self.referenced_blobs()
        return [(sha, size) for sha, size in self.blobs.iter_blobs() if sha not in referenced]

    def remove_garbage(self, garbage: Garbage) -> None:
        """Delete unreferenced blobs, the views that could link to them, and stale temps."""
        self.profiles.prune_unstacked_views()  # no UI stacks them, and they may link to what goes next
        for sha, _ in garbage:
            self.blobs.remove(sha)
        self.blobs.clean_temps()

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
        return DuReport(
            packs=usage,
            store_bytes=sum(sizes.values()),
            referenced_bytes=unique,
            saved_by_dedup=with_duplicates - unique,
        )

    def check(self, *, verify_blobs: bool, fix: bool, rebuild_views: bool) -> tuple[list[str], list[Problem]]:
        """The checks run and the problems found (fixed ones marked so)."""
        checks = ["state files validate", "locked blobs present", "views and active links agree with runtime"]
        problems = self._reset_runtime() if fix else []
        problems += self.state_file_problems()
        refs = self.referenced_blobs() if not any(not p.fixed for p in problems) else {}
        if verify_blobs:
            checks.append("blob names match their bytes")
            problems += self._verify_blobs(refs, fix)
        for sha, packs in sorted(refs.items()):  # after the verification: a quarantined blob is missing now
            if not self.blobs.has(sha):
                message = f"blob {sha[:12]}… of {', '.join(packs)} is missing; run 'synapse install {packs[0]}'"
                problems.append(Problem(check="locked blobs present", message=message))
        if rebuild_views:
            shutil.rmtree(self.layout.views_dir, ignore_errors=True)
        if not any(p.check == "state files validate" for p in problems):
            problems += self._check_views(fix or rebuild_views)
        return checks, problems

    def _reset_runtime(self) -> list[Problem]:
        """An invalid data/runtime.json (which UI shows which profile) is rebuildable: every UI
        goes back to 'global'."""
        try:
            self.files.runtime()
            return []
        except SynapseError as exc:
            activation.write_stacks(self.layout, {ui: [GLOBAL_PROFILE] for ui in self.profiles.installed_uis()})
            message = f"{exc.message.split('; ')[0]}; reset: every UI shows 'global' again"
            return [Problem(check="state files validate", message=message, fixed=True)]

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
        return problems

    def _check_views(self, fix: bool) -> list[Problem]:
        problems = []
        stacks = activation.read_stacks(self.layout)
        for ui in self.profiles.installed_uis():
            stack = stacks.get(ui, [GLOBAL_PROFILE])
            target = activation.active_target(self.layout, ui)
            if target != f"profiles/{stack[-1]}":
                message = f"{ui}: active points at {target}, the stack's top is {stack[-1]}"
                problems.append(Problem(check="active", message=message))
            for profile in self.profiles.stacked_profiles(stacks, ui):
                if activation.read_fingerprint(self.layout, ui, profile) is None:
                    problems.append(Problem(check="views", message=f"{ui}: the view of '{profile}' is missing"))
                elif not self.profiles.is_current(ui, profile):
                    problems.append(Problem(check="views", message=f"{ui}: the view of '{profile}' is out of date"))
        for view in sorted(self.layout.views_dir.glob("*/profiles/*")):
            ui = view.parent.parent.name
            for link in self.views.dangling_links(ui, view.name):
                problems.append(Problem(check="views", message=f"{ui}/{view.name}: dangling link {link}"))
        if fix:
            self.profiles.prune_unstacked_views()
            self.profiles.refresh_views(force=bool(problems))
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
