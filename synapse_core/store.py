"""The Store facade: everything Synapse does, as methods that return typed models.

``Store`` prints nothing and keeps no global state; the CLI and the HTTP API are
thin shells over it, and other programs embed it::

    from synapse_core import Store
    store = Store(root="~/.synapse")
    store.import_pack("/models/style.safetensors", name="Style")
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from synapse_core.blobs import BlobStore, IngestMode
from synapse_core.downloads import Fetcher
from synapse_core.errors import SynapseError
from synapse_core.history import HistoryEntry, StateHistory
from synapse_core.kinds import AssetKind
from synapse_core.layout import StoreLayout, StoreLock, resolve_root
from synapse_core.models import Config, Profile, Runtime, UIRuntime, UISets
from synapse_core.packs import PackService
from synapse_core.plugins import PluginRegistry
from synapse_core.progress import NoProgress, Progress
from synapse_core.results import (
    DoctorReport,
    DuReport,
    GcResult,
    ImportResult,
    InitResult,
    InstallResult,
    PackDetails,
    PackSummary,
    PackUsage,
    Problem,
    RemoveResult,
)
from synapse_core.sources import ImportRequest
from synapse_core.state import GLOBAL_PROFILE, StateFiles

log = logging.getLogger("synapse")


class Mutation:
    """A change in progress; its message becomes the state commit's message."""

    def __init__(self, message: str) -> None:
        self.message = message


class Store:
    """One Synapse store: state, blobs, views and the plugins that know UIs and sources."""

    def __init__(
        self,
        root: Path | str | None = None,
        *,
        registry: PluginRegistry | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.layout = StoreLayout(resolve_root(root))
        self.registry = registry if registry is not None else PluginRegistry.load(warn=log.warning)
        self.files = StateFiles(self.layout)
        self.blobs = BlobStore(self.layout)
        self.history = StateHistory(self.layout.state)
        self.lock = StoreLock(self.layout.lock_file)
        self.progress: Progress = progress or NoProgress()
        self.fetcher = Fetcher(self.blobs, self.progress, self._parallel_downloads())
        self.packs = PackService(self.files, self.blobs, self.registry, self.fetcher)

    def _parallel_downloads(self) -> int:
        try:
            return self.files.config().parallel_downloads if self.layout.is_initialised() else 3
        except SynapseError:
            return 3

    @contextmanager
    def mutation(self, message: str) -> Iterator[Mutation]:
        """Hold the store lock; commit state once at the end, or roll state back on error."""
        with self.lock.hold():
            self.layout.require_initialised()
            if not self.history.is_clean():
                self.history.commit("record manual edits")
            change = Mutation(message)
            try:
                yield change
            except BaseException:
                self.history.discard_changes()
                raise
            self.history.commit(change.message)

    # -- store -----------------------------------------------------------------

    def init(self) -> InitResult:
        """Create the store (idempotent): folders, config, UI sets, the global profile, history."""
        created = not self.layout.is_initialised()
        with self.lock.hold():
            for folder in (self.layout.packs_dir, self.layout.profiles_dir, self.layout.blobs_dir, self.layout.tmp_dir):
                folder.mkdir(parents=True, exist_ok=True)
            uis = sorted(self.registry.ui_adapters)
            if not self.layout.ui_sets_file.is_file():
                self.files.save_ui_sets(UISets(sets={"all": uis, "default": uis}))
            if not self.files.has_profile(GLOBAL_PROFILE):
                self.files.save_profile(Profile(name=GLOBAL_PROFILE))
            runtime = self.files.runtime() if self.layout.runtime_file.is_file() else Runtime()
            for ui in uis:
                runtime.ui.setdefault(ui, UIRuntime())
            self.files.save_runtime(runtime)
            if not self.layout.config_file.is_file():
                self.files.save_config(Config())
            self.history.init()
            self.history.commit("init store")
        return InitResult(root=str(self.layout.root), created=created, history=self.history.enabled, uis=uis)

    def history_log(self, limit: int = 50) -> list[HistoryEntry]:
        """State changes, newest first."""
        self.layout.require_initialised()
        return self.history.log(limit)

    # -- packs -----------------------------------------------------------------

    def list_packs(self) -> list[PackSummary]:
        """Every pack, by name."""
        self.layout.require_initialised()
        return [self.packs.summary(name) for name in self.files.pack_names()]

    def show(self, name: str) -> PackDetails:
        """Everything about one pack."""
        self.layout.require_initialised()
        return self.packs.details(name)

    def import_pack(
        self,
        ref: str,
        *,
        name: str | None = None,
        kind: AssetKind | str | None = None,
        mode: IngestMode = "copy",
        policy: str | None = None,
        file_ids: tuple[str, ...] = (),
        all_files: bool = False,
        prefer: Mapping[str, str] | None = None,
        sync: bool = False,
    ) -> ImportResult:
        """Import a reference (a path, a URL a source knows) as a new pack."""
        self.layout.require_initialised()
        request = ImportRequest(
            ref=ref,
            name=name,
            kind=AssetKind(kind) if kind else None,
            policy=policy,
            file_ids=file_ids,
            all_files=all_files,
            prefer=dict(prefer or {}),
        )
        source, resolved = self.packs.resolve(request)
        with self.mutation(f"import pack {resolved.pack.name}"):
            result = self.packs.import_resolved(source, resolved, mode, sync)
            self._add_to_global(resolved.pack.name)
            self._packs_changed()
        return result

    def install(self, name: str) -> InstallResult:
        """Make every blob of a pack present (from its source)."""
        with self.mutation(f"install {name}"):
            result = self.packs.install(name)
            self._packs_changed()
        return result

    def remove(self, name: str) -> RemoveResult:
        """Remove a pack from state and from every profile; its blobs stay until gc."""
        with self.mutation(f"remove pack {name}"):
            self.files.pack(name)  # raises NotFound with close names
            self.files.delete_pack(name)
            changed = []
            for profile_name in self.files.profile_names():
                profile = self.files.profile(profile_name)
                if name in profile.packs:
                    profile.packs.remove(name)
                    self.files.save_profile(profile)
                    changed.append(profile_name)
            self._packs_changed()
        return RemoveResult(pack=name, profiles_changed=changed)

    def _add_to_global(self, name: str) -> None:
        profile = self.files.profile(GLOBAL_PROFILE)
        if name not in profile.packs:
            profile.packs.append(name)
            self.files.save_profile(profile)

    def _packs_changed(self) -> None:
        """Called inside a mutation after packs or blobs changed (views hook in here)."""

    # -- maintenance -------------------------------------------------------------

    def referenced_blobs(self) -> dict[str, list[str]]:
        """Each sha256 any lock references, with the packs that reference it."""
        refs: dict[str, list[str]] = {}
        for name in self.files.pack_names():
            for res in self.files.lock(name).resources.values():
                refs.setdefault(res.sha256, [])
                if name not in refs[res.sha256]:
                    refs[res.sha256].append(name)
        return refs

    def gc(self, dry_run: bool = False) -> GcResult:
        """Remove blobs no lock references (and stale temps); report count and bytes."""
        with self.mutation("gc"):
            referenced = self.referenced_blobs()
            garbage = [(sha, size) for sha, size in self.blobs.iter_blobs() if sha not in referenced]
            if not dry_run:
                for sha, _ in garbage:
                    self.blobs.remove(sha)
                self.blobs.clean_temps()
        return GcResult(
            dry_run=dry_run, blobs=len(garbage), bytes=sum(s for _, s in garbage), removed=[s for s, _ in garbage]
        )

    def du(self) -> DuReport:
        """Bytes per pack, bytes shared between packs, and what dedup saved."""
        self.layout.require_initialised()
        refs = self.referenced_blobs()
        sizes = dict(self.blobs.iter_blobs())
        usage = []
        for name in self.files.pack_names():
            shas = {r.sha256: r.size for r in self.files.lock(name).resources.values()}
            usage.append(
                PackUsage(
                    pack=name,
                    bytes=sum(shas.values()),
                    shared_bytes=sum(size for sha, size in shas.items() if len(refs[sha]) > 1),
                )
            )
        unique = sum(sizes.get(sha, 0) for sha in refs)
        with_duplicates = sum(sizes.get(sha, 0) * len(packs) for sha, packs in refs.items())
        return DuReport(
            packs=usage,
            store_bytes=sum(sizes.values()),
            referenced_bytes=unique,
            saved_by_dedup=with_duplicates - unique,
        )

    def doctor(self, *, verify_blobs: bool = False, fix: bool = False) -> DoctorReport:
        """Check the store's invariants; with ``fix``, repair what can be repaired."""
        self.layout.require_initialised()
        checks = ["state files validate", "locked blobs present"]
        problems: list[Problem] = []
        with self.lock.hold():
            problems += self._check_state_files()
            refs = self.referenced_blobs() if not problems else {}
            for sha, packs in sorted(refs.items()):
                if not self.blobs.has(sha):
                    problems.append(
                        Problem(
                            check="locked blobs present",
                            message=f"blob {sha[:12]}… of {', '.join(packs)} is missing; run 'synapse install {packs[0]}'",
                        )
                    )
            if verify_blobs:
                checks.append("blob names match their bytes")
                problems += self._verify_blobs(refs, fix)
        if not self.history.enabled:
            problems.append(Problem(check="history", message="state history is off (git is not installed)"))
        failures = [f"{r.name}: {r.reason}" for r in self.registry.records if r.status == "failed"]
        return DoctorReport(checks=checks, problems=problems, history=self.history.enabled, plugin_failures=failures)

    def _check_state_files(self) -> list[Problem]:
        problems = []
        readers = [self.files.config, self.files.ui_sets, self.files.runtime]
        readers += [lambda n=n: self.files.pack(n) for n in self.files.pack_names()]
        readers += [lambda n=n: self.files.lock(n) for n in self.files.pack_names()]
        readers += [lambda n=n: self.files.profile(n) for n in self.files.profile_names()]
        for read in readers:
            try:
                read()
            except SynapseError as exc:
                problems.append(Problem(check="state files validate", message=exc.message))
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
