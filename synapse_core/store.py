"""The Store facade: everything Synapse does, as methods that return typed models.

``Store`` prints nothing and keeps no global state; the CLI and the HTTP API are
thin shells over it, and other programs embed it::

    from synapse_core import Store
    store = Store(root="~/.synapse")
    store.import_pack("/models/style.safetensors", name="Style")
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from synapse_core import installs, recovery
from synapse_core.blobs import BlobStore, IngestMode
from synapse_core.discovery import Discovery
from synapse_core.downloads import Fetcher
from synapse_core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    SourceError,
    StateFileInvalid,
    SynapseError,
    UpstreamGone,
)
from synapse_core.hashing import HashAhead
from synapse_core.history import HistoryEntry, StateHistory
from synapse_core.keep import Keeper, take_in
from synapse_core.kinds import AssetKind
from synapse_core.layout import (
    StoreLayout,
    StoreLock,
    read_model,
    resolve_root,
    write_all_or_nothing,
    write_json,
)
from synapse_core.maintenance import Maintenance
from synapse_core.marker import Marker, Switch
from synapse_core.migration import STORE_SCHEMA, migrate_files, needs_migration
from synapse_core.models import Config, Pack, Profile, UISets, UpdateCheck, UpdateChecks, utc_now
from synapse_core.names import check_pack_name
from synapse_core.packs import PackService
from synapse_core.plugins import PluginRegistry
from synapse_core.profiles import ProfileService
from synapse_core.progress import NoProgress, Progress
from synapse_core.recovery import Recovery
from synapse_core.results import (
    AdoptPlan,
    AdoptResult,
    AdoptUndoResult,
    AttachResult,
    BatchImportResult,
    DoctorReport,
    DuReport,
    GcResult,
    Identified,
    ImportResult,
    InitResult,
    InstallResult,
    PackDetails,
    PackSummary,
    Problem,
    ProfileInfo,
    PullResult,
    PushResult,
    RemoteInfo,
    RemotePruneResult,
    RemoteUsage,
    RemoveResult,
    SearchResult,
    StatusReport,
    SwitchResult,
    SyncResult,
    UIStatus,
    UpdatePlan,
    UpdateResult,
)
from synapse_core.sharing import RemoteService
from synapse_core.sources import ImportRequest, ResolvedPack, Source, UpdateInfo
from synapse_core.state import GLOBAL_PROFILE, StateFiles
from synapse_core.switching import Switcher, installed_plugins, record_plugins
from synapse_core.updates import (
    AmbiguousUpdate,
    BaseChangeRefused,
    UpdateService,
    choose_flags,
    describe,
    parse_choices,
)
from synapse_core.views import ViewService, discard_leftovers

if TYPE_CHECKING:
    from synapse_core.adoption import Adoption

log = logging.getLogger("synapse")


def _check_choices(choices: Mapping[tuple[str, str], str], plan: UpdatePlan) -> None:
    """Every --choose must name a resource of a pack in the plan."""
    known = {(u.pack, r.resource) for u in plan.updates for r in u.resources}
    for pack, resource in choices:
        if (pack, resource) not in known:
            listed = ", ".join(f"{p}:{r}" for p, r in sorted(known)) or "nothing is updatable"
            raise InvalidInput(f"--choose {pack}:{resource}: not in the update plan ({listed})")


def _upstream_changes(packs: Sequence[Pack], answers: Mapping[str, UpdateInfo]) -> dict[str, str]:
    """Packs whose source now says they are gone (removed, archived) or served again, as install records."""
    changes: dict[str, str] = {}
    for pack in packs:
        info = answers.get(pack.name)
        if info is None or info.status == "failed":
            continue
        status = info.status if info.status in ("removed", "archived") else "ok"
        if status != pack.upstream:
            changes[pack.name] = status
    return changes


class Mutation:
    """A change in progress; its message becomes the state commit's message."""

    def __init__(self, message: str) -> None:
        self.message = message
        self.notes: list[str] = []
        """What the command did on the side (files UIs wrote that were kept), for its result."""
        self.after: list[Callable[[], None]] = []
        """Steps to run once state is committed and the views are current (still under the lock)."""
        self.then: Switch | None = None
        """The switch ``after`` makes, recorded in the marker before the commit so that recovery
        can finish it when the command is killed past its commit."""


class Store:
    """One Synapse store: state, blobs, views and the plugins that know UIs and sources."""

    def __init__(
        self,
        root: Path | str | None = None,
        *,
        registry: PluginRegistry | None = None,
        progress: Progress | None = None,
        hash_ahead: HashAhead | None = None,
    ) -> None:
        """``hash_ahead`` hands over local files already being hashed (see :mod:`synapse_core.hashing`)."""
        self.layout = StoreLayout(resolve_root(root))
        self._registry = registry
        self.files = StateFiles(self.layout)
        self.blobs = BlobStore(self.layout, hash_ahead)
        self.history = StateHistory(self.layout.state)
        self.lock = StoreLock(self.layout.lock_file)
        self.progress: Progress = progress or NoProgress()
        self.fetcher = Fetcher(self.blobs, self.progress, self._parallel_downloads())
        self.views = ViewService(self.layout, self.files, self.blobs, lambda: self.registry)
        self.keeper = Keeper(self.views)
        self.switcher = Switcher(self.layout, self.files, self.lock, self.views, lambda: self.registry.ui_adapters)
        self.profiles = ProfileService(self.files)
        self.marker = Marker(self.layout.mutation_marker)
        if needs_migration(self.layout):
            self._migrate()

    def _migrate(self) -> None:
        """Bring a store written by older code to the current schema: under the lock, marked
        (a killed migration is rolled back and done again), one state commit."""
        with self.lock.hold():
            self.history.recover()
            if not needs_migration(self.layout):  # another process did it while we waited
                return
            found = self.marker.read()
            if found is not None and not found.owner_gone():
                raise Conflict(
                    f"another synapse command, {found.describe()}, is changing the store; wait for it to end"
                )
            if found is not None and found.phase == "state":
                self.history.discard_changes()
            message = f"migrate the store to schema {STORE_SCHEMA}"
            self.marker.write(message)
            written = migrate_files(self.layout)
            self.history.commit(message, written)
            if found is None:  # a killed command's marker stays for its own recovery
                self.marker.remove()

    @property
    def registry(self) -> PluginRegistry:
        """The plugins; loaded from entry points on first use unless one was given."""
        if self._registry is None:
            self._registry = PluginRegistry.load(warn=log.warning)
        return self._registry

    @property
    def packs(self) -> PackService:
        """Import, install, list and show packs."""
        return PackService(self.files, self.blobs, self.registry, self.fetcher)

    def _parallel_downloads(self) -> int:
        try:
            return self.files.config().parallel_downloads if self.layout.is_initialised() else 3
        except SynapseError:
            return 3

    @contextmanager
    def mutation(self, message: str, *, force_recover: bool = False) -> Iterator[Mutation]:
        """Hold the store lock; commit state once at the end (or roll it back on error), then
        bring the views up to date with what changed.

        Before the command runs: a command that was killed is recovered (its uncommitted state
        thrown away, the views checked), hand edits of state/ are validated and committed on
        their own, and files UIs wrote into their views are kept (model files taken into the
        library). The marker data/.mutation says, while this runs, whose command it is.
        """
        self.layout.require_initialised()
        with self.lock.hold():
            self.views.require_writable()  # before anything changes (recovery too)
            verify = self._recover(force=force_recover)
            manual = self._record_hand_edits()
            self.marker.write(message)
            self.files.touched = set()
            change = Mutation(message)
            self.blobs.new.open = True
            try:
                change.notes += self._keep_what_uis_wrote()
                yield change
                self._register_new_uis()
                if change.then is not None:
                    self.marker.write(message, then=change.then)
                self.history.commit(change.message, self.files.touched)
            except BaseException as exc:
                self.files.touched = None
                try:
                    self.history.discard_changes()
                    self.blobs.roll_back_new(set(self.referenced_blobs()))
                except SynapseError as failed:  # the marker stays: the next command or doctor --fix retries
                    raise SynapseError(
                        f"{exc}; rolling '{message}' back failed too ({failed.message.split('; ')[0]}); "
                        "'synapse doctor --fix' rolls it back once that is fixed"
                    ) from exc
                self.marker.remove()
                raise
            finally:
                self.blobs.new.open = False
            self.blobs.new.clear()  # committed: its blobs are kept
            changed = self.files.touched_packs() | manual
            self.files.touched = None
            self.marker.write(message, phase="views", then=change.then)
            self._sync_views(changed, verify=verify)
            for step in change.after:
                step()
            self.marker.remove()

    def _recover(self, *, force: bool = False) -> bool:
        """Recover from a killed command; True when the views must be checked against state.
        ``force``: whatever the marker's owner (the user says it is gone: doctor --fix)."""
        self.history.recover()
        found = self.marker.read()
        if found is None:
            self.recovery.remove_leftovers()
            return self.adoption.recover()
        if not force and not found.owner_gone():
            raise Conflict(
                f"another synapse command, {found.describe()}, is changing the store; wait for it to end "
                "(if it is gone, run 'synapse doctor --fix')"
            )
        if found.phase == "state":
            self.history.discard_changes()
        # its new blobs that no pack kept go, the user files they shared get their mode back
        self.blobs.roll_back_new(set(self.referenced_blobs()), of_dead=True)
        self.recovery.remove_leftovers()
        self.adoption.recover()
        if found.then is not None:
            self._finish_switch(found.then)
        return True

    def _finish_switch(self, switch: Switch) -> None:
        """Make the switch a killed command had committed to (its profile is in the committed
        state): the UIs land on it as if the command had ended. Before its commit, the profile
        was rolled back with the rest and nothing is switched."""
        if not self.files.has_profile(switch.profile):
            return
        uis = [ui for ui in switch.uis if ui in self.registry.ui_adapters]
        if not uis:
            return
        try:
            self.switcher.use_named(switch.profile, uis)
        except SynapseError as exc:  # doctor reports what is left; the command can be run again
            log.warning("could not finish switching %s to '%s': %s", ", ".join(uis), switch.profile, exc)

    def _settle(self) -> None:
        """Before a read: a command that was killed is recovered as the next mutation would
        (its uncommitted state thrown away, a committed switch finished, the views checked), so
        a read never shows what was never committed. A read never fails because of it; a
        marker whose owner may still run is left alone, and doctor reports rather than settles."""
        try:
            found = self.marker.read()
            if found is None or not found.owner_gone():
                return
            with self.lock.hold():
                found = self.marker.read()
                if found is None or not found.owner_gone():
                    return
                self.views.require_writable()
                verify = self._recover()
                self.marker.write(found.command, phase="views")  # killed now: the views are checked again
                self._sync_views(set(), verify=verify)
                self.marker.remove()
        except SynapseError as exc:
            log.debug("not recovered before reading: %s", exc)

    def _record_hand_edits(self) -> set[str]:
        """Commit hand edits of state/ (validated first); returns the packs they touched."""
        changed = self.history.changed_paths()
        if not changed:
            return set()
        problems = self.maintenance.state_file_problems()
        if problems:
            raise StateFileInvalid(problems[0].message)
        self.history.commit("record manual edits")
        parts = [Path(p).parts for p in changed]
        return {p[1] for p in parts if len(p) > 1 and p[0] == "packs"}

    def _keep_what_uis_wrote(self, *, full: bool = False) -> list[str]:
        """Keep files UIs wrote into their views; model files become ``saved-<ui>`` packs."""
        report = self.keeper.sweep(self.views.installed_uis(), full=full)
        notes = [f"kept {line} (a file the UI wrote)" for line in report.kept] + report.problems
        if report.captures:
            written, skipped = take_in(report.captures, self.blobs, self.files)
            if written:
                self.profiles.add(written, always_last=True)
            notes += [f"took {c.ui}: {c.path.name} into pack saved-{c.ui}" for c in report.captures]
            notes += skipped
        return notes

    def _register_new_uis(self) -> None:
        """A UI plugin installed after init joins the 'all' set, and 'default' unless the user
        changed it (it still equals 'all')."""
        uis = sorted(self.registry.ui_adapters)
        sets = self.files.ui_sets()
        everything = sets.sets.get("all", [])
        new = [ui for ui in uis if ui not in everything]
        if not new:
            return
        if sorted(sets.sets.get("default", [])) == sorted(everything):
            sets.sets["default"] = sorted({*sets.sets.get("default", []), *new})
        sets.sets["all"] = sorted({*everything, *new})
        self.files.save_ui_sets(sets)

    def _sync_views(self, changed: set[str], *, verify: bool = False) -> None:
        """Bring the views up to date (state is committed); note the plugins they were made with."""
        self.views.forget()
        stacks = self.views.sync(changed, verify=verify)
        self.profiles.prune_work_profiles(stacks)
        for ui in self.views.installed_uis():
            discard_leftovers(self.layout.root, self.views.leftovers(ui))
        record_plugins(self.layout, installed_plugins())

    # -- store -----------------------------------------------------------------

    def init(self, *, link_mode: str | None = None) -> InitResult:
        """Create the store (idempotent): folders, config, UI sets, the global profile, history.

        ``link_mode`` (default ``auto`` for a new store): how views are made; ``auto`` probes
        the file system of data/views once and records what it picked."""
        from synapse_core.fscaps import probe

        created = not self.layout.is_initialised()
        caps = probe(self.layout.views_dir, self.layout.blobs_dir)
        config = self.files.config() if not created else Config()
        chosen = link_mode or ("auto" if created else config.link_mode)
        mode = caps.best_mode() if chosen == "auto" else chosen
        abilities = ", ".join(k for k in ("symlink", "hardlink", "reflink") if getattr(caps, k))
        reason = (
            f"auto: the {caps.filesystem} file system of {self.layout.views_dir} can "
            + (abilities or "make no links, so views are copies")
            if chosen == "auto"
            else "chosen"
        )
        if mode == "symlink" and not caps.symlink:
            from synapse_core.fscaps import check_symlinks

            check_symlinks(self.layout.views_dir)  # raises the clear error
        with self.lock.hold():
            self.recovery.remove_leftovers()
            for folder in (self.layout.packs_dir, self.layout.profiles_dir, self.layout.blobs_dir, self.layout.tmp_dir):
                folder.mkdir(parents=True, exist_ok=True)
            uis = sorted(self.registry.ui_adapters)
            if not self.layout.ui_sets_file.is_file():
                self.files.save_ui_sets(UISets(sets={"all": uis, "default": uis}))
            if not self.files.has_profile(GLOBAL_PROFILE):
                self.files.save_profile(Profile(name=GLOBAL_PROFILE))
            if created or config.link_mode != mode:
                config.link_mode = mode  # type: ignore[assignment]
                self.files.save_config(config)
            self.history.init()
            self.history.commit("init store")
            self.views.forget()
            self._sync_views(set(), verify=not created)
        return InitResult(
            root=str(self.layout.root),
            created=created,
            history=self.history.enabled,
            uis=uis,
            link_mode=mode,
            link_mode_reason=reason,
        )

    def history_log(self, limit: int = 50) -> list[HistoryEntry]:
        """State changes, newest first."""
        self.layout.require_initialised()
        return self.history.log(limit)

    # -- packs -----------------------------------------------------------------

    def list_packs(self) -> list[PackSummary]:
        """Every pack, by name."""
        self.layout.require_initialised()
        self._settle()
        return [self.packs.summary(name) for name in self.files.pack_names()]

    def show(self, name: str) -> PackDetails:
        """Everything about one pack."""
        self.layout.require_initialised()
        self._settle()
        return self.packs.details(name)

    def import_pack(
        self,
        ref: str,
        *,
        name: str | None = None,
        kind: AssetKind | str | None = None,
        force_kind: bool = False,
        mode: IngestMode = "copy",
        policy: str | None = None,
        file_ids: tuple[str, ...] = (),
        all_files: bool = False,
        prefer: Mapping[str, str] | None = None,
        sync: bool = False,
        identify: bool = False,
        video_previews: bool = False,
    ) -> ImportResult:
        """Import a reference (a path, a URL a source knows) as a new pack.

        With ``identify``, a local file's pack takes the metadata a source has for its bytes.
        """
        self.layout.require_initialised()
        request = ImportRequest(
            ref=ref,
            name=name,
            kind=AssetKind(kind) if kind else None,
            force_kind=force_kind,
            kind_fallback=AssetKind.OTHER if identify else None,
            policy=policy,
            file_ids=file_ids,
            all_files=all_files,
            prefer=dict(prefer or {}),
            video_previews=video_previews,
        )
        source, resolved = self.packs.resolve(request)
        with self.mutation(f"import pack {resolved.pack.name}"):
            self.packs.check_name_free(resolved.pack.name)  # again, under the lock: another import may have won
            result = self.packs.import_resolved(source, resolved, mode, sync)
            if identify:
                result.warnings += self.discovery.adopt_identity(resolved.pack.name)
                name = resolved.pack.name
                result.resources = self.packs.resource_status(self.files.pack(name), self.files.lock(name))
            self.profiles.add([resolved.pack.name])
        if mode == "move":
            result.warnings += self.packs.delete_moved(source, resolved)
        return result

    def import_each(
        self,
        folder: str,
        *,
        kind: AssetKind | str | None = None,
        force_kind: bool = False,
        mode: IngestMode = "copy",
        policy: str | None = None,
    ) -> BatchImportResult:
        """Import a folder as one pack per model file, keeping each file's path inside the folder
        as its exposed name; one state commit and one view update for all of them."""
        self.layout.require_initialised()
        request = ImportRequest(
            ref=folder, kind=AssetKind(kind) if kind else None, force_kind=force_kind, policy=policy
        )
        source, resolved = self.packs.resolve_each(request)
        names = [r.pack.name for r in resolved]
        with self.mutation(f"import {len(resolved)} packs from {folder}"):
            for name in names:
                self.packs.check_name_free(name)  # again, under the lock
            with self.batch():
                results = self.packs.import_many(source, resolved, mode)
                self.profiles.add(names)
        warnings = [w for r in results for w in r.warnings]
        if mode == "move":
            for item in resolved:
                warnings += self.packs.delete_moved(source, item)
        return BatchImportResult(packs=results, warnings=warnings)

    # -- adopt ------------------------------------------------------------------------

    @property
    def adoption(self) -> Adoption:
        """Adopt existing installs and folders; undo; finish what a killed adopt left."""
        from synapse_core.adoption import Adoption

        return Adoption(self)

    def adopt(
        self,
        paths: Sequence[str],
        *,
        dry_run: bool = False,
        identify: bool = False,
        copy: bool = False,
        keep_originals: bool = False,
        show_plan: Callable[[AdoptPlan], None] | None = None,
    ) -> AdoptResult:
        """Take UI installs and folders of models into the library: a plan first (``show_plan``
        sees it before any change), then one pack per distinct model file, the originals removed
        once their bytes are blobs (unless ``keep_originals``), and the installs attached."""
        self.layout.require_initialised()
        with self.lock.hold():
            self._recover_adopts()
        prepared = self.adoption.prepare(paths, identify=identify, keep_originals=keep_originals)
        if show_plan is not None:
            show_plan(prepared.plan)
        if dry_run:
            return AdoptResult(plan=prepared.plan, dry_run=True)
        return self.adoption.adopt(prepared, copy=copy, keep_originals=keep_originals)

    def adopt_undo(self, path: str) -> AdoptUndoResult:
        """Put back every file an adopt of ``path`` took, detach its installs, remove its packs."""
        self.layout.require_initialised()
        return self.adoption.undo(path)

    def _recover_adopts(self) -> None:
        """Before planning: a killed command (an adopt's import, say) is recovered first."""
        self._recover()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Write many files without an fsync each, then flush once (before the state commit)."""
        self.layout.durable = False
        try:
            yield
            self.layout.sync()
        finally:
            self.layout.durable = True

    def import_resolved(self, source: Source, resolved: ResolvedPack, *, sync: bool = False) -> ImportResult:
        """Import a pack draft a source has already resolved (``install --for`` shows the drafts
        it will download before it fetches them)."""
        self.layout.require_initialised()
        check_pack_name(resolved.pack.name)
        with self.mutation(f"import pack {resolved.pack.name}"):
            self.packs.check_name_free(resolved.pack.name)
            result = self.packs.import_resolved(source, resolved, "copy", sync)
            self.profiles.add([resolved.pack.name])
        return result

    def install(self, name: str) -> InstallResult:
        """Make every blob of a pack present: from the remotes, then its source (``fetch_order``
        in config.json says which first).

        When the source says the pack is gone, its metadata is kept and the pack is
        marked ``upstream: removed`` (or ``archived``) before the error is raised.
        """
        try:
            with self.mutation(f"install {name}"):
                return self._install(name)
        except UpstreamGone as gone:
            with self.mutation(f"mark {name} {gone.upstream} upstream"):
                self.packs.mark_upstream(name, gone.upstream)
            raise

    def _install(self, name: str) -> InstallResult:
        config = self.files.config()
        pack, lock = self.files.pack(name), self.files.lock(name)
        steps = config.fetch_order if config.remotes else ["source"]
        from_remotes: list[str] = []
        written = 0
        warnings: list[str] = []
        before = sorted(rid for rid, r in lock.resources.items() if not self.blobs.has(r.sha256))
        for index, step in enumerate(steps):
            if not any(not self.blobs.has(r.sha256) for r in lock.resources.values()):
                break
            if step == "remotes":
                got, size, problems = self.remotes.fetch_missing(pack, lock)
                from_remotes += got
                written += size
                warnings += problems
                continue
            try:
                result = self.packs.install(name)
            except SynapseError:
                if "remotes" not in steps[index + 1 :]:
                    raise
                continue  # the remotes come next
            written += result.bytes_written
            if result.fetched:  # the source serves it (again)
                self.packs.mark_upstream(name, "ok")
        still = sorted(res.file_name for res in lock.resources.values() if not self.blobs.has(res.sha256))
        if still:
            why = "".join(f"; {w}" for w in warnings)
            raise NotFound(f"{name}: {', '.join(still)} found on no remote and not at the source{why}")
        return InstallResult(
            pack=name,
            fetched=before,
            present=sorted(set(lock.resources) - set(before)),
            bytes_written=written,
            from_remotes=sorted(from_remotes),
            warnings=warnings,
        )

    # -- remotes -----------------------------------------------------------------------

    @property
    def remotes(self) -> RemoteService:
        """Configured remotes, push, pull and what install fetches from them."""
        return RemoteService(self.files, self.blobs, self.registry, self.fetcher, self.progress)

    def remote_add(
        self,
        name: str,
        url: str,
        *,
        endpoint_url: str | None = None,
        options: Mapping[str, str] | None = None,
        default: bool = False,
    ) -> list[RemoteInfo]:
        """Add a remote (``s3://BUCKET/PREFIX``, ``file:///folder``); no credentials are stored."""
        with self.mutation(f"remote add {name}"):
            self.remotes.add(name, url, endpoint_url, dict(options or {}), default)
        return self.remotes.infos()

    def remote_remove(self, name: str) -> list[RemoteInfo]:
        """Forget a remote; nothing on it is touched."""
        with self.mutation(f"remote remove {name}"):
            self.remotes.remove(name)
        return self.remotes.infos()

    def remote_order(self, steps: Sequence[str]) -> list[str]:
        """Set where install looks first (``remotes``, ``source``)."""
        with self.mutation("remote order " + " ".join(steps)):
            return list(self.remotes.set_order(steps).fetch_order)

    def remote_list(self) -> list[RemoteInfo]:
        """Every configured remote."""
        self.layout.require_initialised()
        return self.remotes.infos()

    def push(self, names: Sequence[str] = (), *, remote: str | None = None) -> PushResult:
        """Upload the packs' blobs a remote lacks (every pack when none is named), then their records."""
        self.layout.require_initialised()
        for name in names:
            self.files.pack(name)  # a NotFound naming close names
        with self.lock.hold():
            return self.remotes.push(names, remote, self._parallel_downloads())

    def pull(self, names: Sequence[str] = (), *, remote: str | None = None) -> PullResult:
        """Bring packs (every pack the remote has when none is named) and their blobs from a remote."""
        with self.mutation(f"pull {' '.join(names) or 'all packs'}"):
            result = self.remotes.pull(names, remote)
            self.profiles.add(result.new_packs)
        return result

    def remote_prune(
        self, name: str | None = None, *, older_than: timedelta = timedelta(days=1), dry_run: bool = False
    ) -> RemotePruneResult:
        """Remove unfinished uploads an interrupted push left on a remote (default: the default
        remote) that nothing has written to for ``older_than``. A push from this store holds the
        store's lock, so none runs meanwhile; one from another machine keeps writing to its upload."""
        self.layout.require_initialised()
        with self.lock.hold():
            return self.remotes.prune(name, older_than, dry_run)

    def remote_du(self) -> list[RemoteUsage]:
        """What each remote holds."""
        self.layout.require_initialised()
        return self.remotes.usage()

    # -- lock files --------------------------------------------------------------------

    def export_lock(self, profile: str = GLOBAL_PROFILE) -> bytes:
        """A profile as a lock file (deterministic TOML)."""
        from synapse_core import lockfile

        self.layout.require_initialised()
        return lockfile.export(self.files, profile)

    def sync(self, path: Path, *, uis: Sequence[str] = (), ui_set: str | None = None) -> SyncResult:
        """Reproduce a lock file's profile: import its missing packs, fetch their files (remotes,
        then sources), write ``lock-<profile>`` and switch the UIs to it. A file found nowhere
        refuses the whole sync with the list; other packs are never touched."""
        from synapse_core import lockfile

        self.layout.require_initialised()
        lock = lockfile.read(path)
        self.registry.policy(lock.policy)  # a policy this store knows, before anything changes
        result = SyncResult(profile=f"lock-{lock.profile}", imported=[], fetched=[], from_remotes=[])
        with self.mutation(f"sync {path.name}") as change:
            chosen = self.switcher.choose(uis, ui_set)
            clashes = [
                item.pack.name
                for item in lock.packs
                if self.files.has_pack(item.pack.name)
                and {rid: r.sha256 for rid, r in self.files.lock(item.pack.name).resources.items()} != item.files
            ]
            if clashes:
                raise Conflict(
                    f"{path.name}: the packs {', '.join(clashes)} here hold other files than the lock file says; "
                    "rename or remove them, then sync again (nothing was changed)"
                )
            for item in lock.packs:
                name = item.pack.name
                if self.files.has_pack(name):
                    continue
                records = self.remotes.matching_records(name, item.files)
                if records is not None:
                    self.remotes.write_records(records[0], name, records[1], records[2])
                else:
                    self.files.save_pack(item.pack, item.lock)
                result.imported.append(name)
            self.profiles.add(result.imported)
            missing = []
            for item in lock.packs:
                name = item.pack.name
                if all(self.blobs.has(sha256) for sha256 in item.files.values()):
                    continue
                try:
                    installed = self._install(name)
                except SynapseError as exc:
                    absent = [r.file_name for r in item.lock.resources.values() if not self.blobs.has(r.sha256)]
                    reason = " ".join(exc.message.split())[:300]
                    missing.append(f"{name} ({', '.join(absent)}: {reason})")
                    continue
                result.fetched += [f"{name}:{rid}" for rid in installed.fetched]
                result.from_remotes += [f"{name}:{rid}" for rid in installed.from_remotes]
                result.warnings += installed.warnings
            if missing:
                raise NotFound(f"{path.name}: files found nowhere, nothing was changed: {'; '.join(missing)}")
            profile = lockfile.synced_profile(lock)
            self.files.save_profile(profile)
            change.then = Switch(profile.name, tuple(chosen))

            def switch() -> None:
                result.uis = self.switcher.use_named(profile.name, uis, ui_set) or {}

            change.after.append(switch)
        return result

    # -- updates -----------------------------------------------------------------------

    def update_checks(self) -> UpdateChecks:
        """When each pack was last checked for updates and what was found (asks no source)."""
        path = self.layout.update_checks_file
        return read_model(path, UpdateChecks) if path.is_file() else UpdateChecks()

    def check_updates(self, names: Sequence[str] = (), *, max_age: timedelta | None = None) -> UpdatePlan:
        """Ask the sources about newer versions; records when each pack was checked."""
        self.layout.require_initialised()
        packs = [self.files.pack(n) for n in (names or self.files.pack_names())]
        checks = self.update_checks()
        now = utc_now()
        recent = {
            name
            for name, check in checks.packs.items()
            if max_age is not None and check.status != "failed" and now - check.last_checked < max_age
        }
        due = [p for p in packs if p.name not in recent]
        service = UpdateService(self.files, self.registry)
        answers = service.check([p for p in due if p.policy == "follow_latest"])
        plan = service.plan(due, answers, {})
        plan.skipped_recent = sorted(p.name for p in packs if p.name in recent)
        with self.lock.hold():  # read again: another check may have written meanwhile, keep its entries
            checks = self.update_checks()
            for name, info in answers.items():
                checks.packs[name] = UpdateCheck(
                    last_checked=now, status=info.status, latest_version_id=info.latest_version_id
                )
            write_json(self.layout.update_checks_file, checks)
        return plan

    def update(
        self,
        names: Sequence[str] = (),
        *,
        all_packs: bool = False,
        dry_run: bool = False,
        choose: Sequence[str] = (),
        sync: bool = False,
        allow_base_change: bool = False,
    ) -> UpdateResult:
        """Move packs to their newest version: plan, refuse if ambiguous, apply, optionally download.
        A new version for another base model or of another kind keeps the exposed name, so it would
        silently give workflows another architecture: it is held back unless ``allow_base_change``
        (a pack named in ``names`` is refused, ``all_packs`` applies the others)."""
        self.layout.require_initialised()
        if names and all_packs:
            raise InvalidInput("name the packs to update or pass --all, not both")
        if not names and not all_packs:
            raise InvalidInput("name the packs to update, or pass --all")
        packs = [self.files.pack(n) for n in (names or self.files.pack_names())]
        pinned = [p.name for p in packs if p.policy != "follow_latest"]
        if names and pinned:
            raise InvalidInput(
                f"{', '.join(pinned)} is pinned; 'synapse pack policy {pinned[0]} follow_latest' makes it follow"
            )
        choices = parse_choices(choose, [p.name for p in packs])
        service = UpdateService(self.files, self.registry)
        following = [p for p in packs if p.policy == "follow_latest"]
        answers = service.check(following)
        plan = service.plan(packs, answers, choices)
        _check_choices(choices, plan)
        if names and plan.failed:
            raise SourceError("; ".join(f"{n.pack}: {n.message}" for n in plan.failed))
        held = [] if allow_base_change else [u for u in plan.updates if u.base_change is not None]
        if names and held and not dry_run:
            first = held[0]
            assert first.base_change is not None
            raise BaseChangeRefused(
                f"{first.pack}: version {first.latest_version_id} changes the {describe(first.base_change)}, "
                "and its files would take the old names, so workflows would load another model; "
                "pass --allow-base-change to update anyway (nothing was changed)"
            )
        updates = [u for u in plan.updates if u not in held]
        if any(u.ambiguous for u in updates) and not dry_run:
            raise AmbiguousUpdate(plan, choose_flags(plan))
        upstream = _upstream_changes(following, answers)
        held_back = [u.pack for u in held]
        if dry_run or not (updates or upstream):
            return UpdateResult(plan=plan, applied=[], dry_run=dry_run, held_back=held_back)
        applied = [u.pack for u in updates]
        installed: list[str] = []
        summary = ", ".join(f"{u.pack} {u.current_version_id} -> {u.latest_version_id}" for u in updates)
        with self.mutation(f"update {summary}" if summary else f"mark {', '.join(upstream)} upstream"):
            for name, status in upstream.items():
                self.packs.mark_upstream(name, status)
            for update in updates:
                service.apply(update, answers[update.pack])
            if sync:
                for name in applied:
                    if self.packs.missing_blobs(name):
                        self.packs.install(name)
                        installed.append(name)
        return UpdateResult(plan=plan, applied=applied, dry_run=False, installed=installed, held_back=held_back)

    def set_policy(self, name: str, policy: str) -> Pack:
        """Make a pack follow the latest version or stay pinned."""
        if policy not in ("follow_latest", "pinned"):
            raise InvalidInput(f"unknown policy {policy!r}: use follow_latest or pinned")
        with self.mutation(f"policy {name} {policy}"):
            pack = self.files.pack(name)
            pack.policy = policy  # type: ignore[assignment]
            self.files.save_pack(pack)
        return pack

    # -- search and identify ---------------------------------------------------------

    @property
    def discovery(self) -> Discovery:
        """Search and identify."""
        return Discovery(self.files, self.packs, lambda: self.registry)

    def search(
        self,
        text: str,
        *,
        remote: bool = False,
        kind: AssetKind | str | None = None,
        base_model: str | None = None,
        limit: int = 20,
    ) -> SearchResult:
        """Local packs whose name, tags or trigger words match; with ``remote``, every source that searches."""
        self.layout.require_initialised()
        return self.discovery.search(text, remote=remote, kind=kind, base_model=base_model, limit=limit)

    def identify(self, paths: Sequence[Path]) -> list[Identified]:
        """Hash local files (reusing known hashes) and look them up in every source that can."""
        self.layout.require_initialised()
        files = self.discovery.hash_files(paths, self.lock)
        return self.discovery.identify(files, self.referenced_blobs())

    def remove(self, name: str) -> RemoveResult:
        """Remove a pack from state and from every profile; its blobs stay until gc. A UI using
        the pack's work profile goes back off it (its stack and ``active`` fixed together)."""
        with self.mutation(f"remove pack {name}"):
            self.files.pack(name)  # raises NotFound with close names
            self.files.delete_pack(name)
            changed = self.profiles.remove_pack(name)
            stacks = self.files.stacks()
            moved = {ui: [p for p in s if self.files.has_profile(p)] for ui, s in stacks.items()}
            moved = {ui: s or [GLOBAL_PROFILE] for ui, s in moved.items() if s != stacks[ui]}
            if moved:
                self.files.save_stacks({**stacks, **moved})
        return RemoveResult(pack=name, profiles_changed=changed, switched_back=moved)

    # -- profiles, use and back ------------------------------------------------------

    def use(self, pack: str, *, uis: Sequence[str] = (), ui_set: str | None = None, sync: bool = False) -> SwitchResult:
        """Switch UIs to work__<pack>, where that pack wins every conflict."""
        light = Switcher(self.layout, self.files, self.lock)
        current = None if sync else light.use(pack, uis, ui_set)
        if current is not None:
            self.record_ui_hashes(current)
            return SwitchResult(uis=current)
        result = SwitchResult(uis={})
        with self.mutation(f"use {pack}") as change:
            name = self.switcher.use_profile(pack)  # validates the pack, writes work__<pack> if needed
            change.then = Switch(name, tuple(self.switcher.choose(uis, ui_set)))  # unknown UIs: refused here
            missing = self.packs.missing_blobs(pack)
            if missing and not sync:
                raise InvalidInput(
                    f"pack '{pack}' has files that are not installed ({', '.join(missing)}); "
                    f"run 'synapse install {pack}' or pass --sync"
                )
            if missing:
                result.installed = self.packs.install(pack).fetched

            def switch() -> None:
                result.uis = self.switcher.use(pack, uis, ui_set) or {}

            change.after.append(switch)
        self.record_ui_hashes(result.uis)
        return result

    def use_profile(self, profile: Profile, *, uis: Sequence[str] = (), ui_set: str | None = None) -> SwitchResult:
        """Write ``profile`` (one this command owns: ``use --for FILE`` writes a workflow's) and
        switch the chosen UIs to it, pushed on their stacks like ``use``."""
        result = SwitchResult(uis={})
        with self.mutation(f"use {profile.name}") as change:
            change.then = Switch(profile.name, tuple(self.switcher.choose(uis, ui_set)))  # unknown UIs: refused
            self.files.save_profile(profile)

            def switch() -> None:
                result.uis = self.switcher.use_named(profile.name, uis, ui_set) or {}

            change.after.append(switch)
        return result

    def back(self, *, uis: Sequence[str] = (), ui_set: str | None = None) -> SwitchResult:
        """Pop the profile stack of each chosen UI and switch back (UIs on global stay)."""
        stacks = Switcher(self.layout, self.files, self.lock).back(uis, ui_set)
        if stacks is not None:
            self.record_ui_hashes(stacks)
            return SwitchResult(uis=stacks)
        result = SwitchResult(uis={})
        with self.mutation("back") as change:
            self.switcher.choose(uis, ui_set)

            def switch() -> None:
                result.uis = self.switcher.back(uis, ui_set) or {}

            change.after.append(switch)
        self.record_ui_hashes(result.uis)
        return result

    def record_ui_hashes(self, uis: Collection[str]) -> int:
        """Give each attached install of ``uis`` the true sha256s of its active view in its own
        hash cache (after a switch; see ``UIAdapter.record_hashes``). Cheap when none is attached."""
        from synapse_core.attached import attached_uis

        chosen = attached_uis(self.layout.config_file, uis)
        if not chosen:
            return 0
        return installs.record_ui_hashes(self.files.config(), self.registry, self.layout, chosen)

    def list_profiles(self) -> list[ProfileInfo]:
        """Every profile with the UIs it is active or stacked in."""
        self.layout.require_initialised()
        self._settle()
        stacks = self.files.stacks()
        return [self.profiles.info(name, stacks) for name in self.files.profile_names()]

    def show_profile(self, name: str) -> ProfileInfo:
        """One profile."""
        self.layout.require_initialised()
        self._settle()
        return self.profiles.info(name, self.files.stacks())

    def status(self) -> StatusReport:
        """Each UI's stack, active view, shadowed entries and missing blobs; store totals."""
        from synapse_core.views import read_record

        self.layout.require_initialised()
        self._settle()
        uis = []
        config = self.files.config()
        for ui, stack in sorted(self.files.stacks().items()):
            top = stack[-1]
            record = read_record(self.views.tree_path(ui, top))
            left = record.plan.left_out if record else []
            entries = list(record.plan.entries.values()) if record else []
            uis.append(
                UIStatus(
                    ui=ui,
                    stack=stack,
                    active=top,
                    view=str(self.layout.active_link(ui)),
                    entries=len(record.plan.entries) if record else 0,
                    shadowed=[o["detail"] for o in left if o["reason"] == "shadowed"],
                    missing=[o["detail"] for o in left if o["reason"] == "missing_blob"],
                    unsupported=[o["detail"] for o in left if o["reason"] not in ("shadowed", "missing_blob")],
                    kept=self.views.kept_units(ui),
                    installs=installs.install_statuses(ui, config, self.registry, entries),
                )
            )
        blobs = list(self.blobs.iter_blobs())
        return StatusReport(
            root=str(self.layout.root),
            uis=uis,
            packs=len(self.files.pack_names()),
            blobs=len(blobs),
            bytes=sum(size for _, size in blobs),
        )

    # -- attach ----------------------------------------------------------------------

    def attach(
        self,
        ui: str,
        install: Path,
        *,
        print_only: bool = False,
        detach: bool = False,
        force: bool = False,
        link_mode: str | None = None,
    ) -> AttachResult:
        """Point a UI install at its ``active`` view (or undo it); only what attach owns changes.

        Attach stops when it would hide models from the UI (``UIAdapter.attach_conflicts``)
        unless ``force``. ``link_mode``: how this UI's views are made from now on."""
        self.layout.require_initialised()
        adapter = self.registry.ui(ui)
        install = install.expanduser().absolute()
        if not install.is_dir() or not adapter.looks_like_install(install):
            raise InvalidInput(installs.not_an_install(adapter, install, self.registry))
        view = self.layout.active_link(ui)
        if not detach and not force:
            installs.refuse_conflicts(adapter, install, view)
        plan = adapter.plan_detach(install, view) if detach else adapter.plan_attach(install, view)
        changed: list[str] = []
        if not print_only:
            with self.mutation(f"{'detach' if detach else 'attach'} {ui} {install}"):
                # a symlinked config file keeps its link: write where it points
                write_all_or_nothing([(c.path.resolve(), c.content.encode()) for c in plan.changes])
                changed = [f"{change.path}: {change.summary}" for change in plan.changes]
                config = self.files.config()
                known = config.ui_installs.setdefault(ui, [])
                if detach and str(install) in known:
                    known.remove(str(install))
                elif not detach and str(install) not in known:
                    known.append(str(install))
                if link_mode is not None and not detach:
                    config.ui_link_modes[ui] = link_mode  # type: ignore[assignment]
                self.files.save_config(config)
                self.views.forget()  # the link mode may have changed: the views follow it
        return AttachResult(
            ui=ui,
            install=str(install),
            view=str(view),
            instructions=plan.instructions,
            changed=changed,
            printed_only=print_only,
        )

    # -- maintenance -------------------------------------------------------------

    @property
    def recovery(self) -> Recovery:
        """What killed commands leave (temps, git locks), the caches, the global profile: doctor's checks."""
        return Recovery(self.files, self.history)

    @property
    def maintenance(self) -> Maintenance:
        """gc, du and the doctor's checks."""
        return Maintenance(self.files, self.blobs, self.views, self.keeper)

    def referenced_blobs(self) -> dict[str, list[str]]:
        """Each sha256 any lock references, with the packs that reference it."""
        return self.maintenance.referenced_blobs()

    def gc(self, dry_run: bool = False, *, now: bool = False) -> GcResult:
        """Remove blobs no lock references and stale temps, past a grace period (``now``: none);
        report count and bytes."""
        from synapse_core.maintenance import GC_GRACE_SECONDS

        grace = 0.0 if now else GC_GRACE_SECONDS
        with self.mutation("gc") as change:
            garbage, young = self.maintenance.garbage(grace)
            if not dry_run:
                change.notes += self.maintenance.remove_garbage(garbage, grace)
        return GcResult(
            dry_run=dry_run,
            blobs=len(garbage),
            bytes=sum(s for _, s in garbage),
            removed=[s for s, _ in garbage],
            kept_blobs=len(young),
            kept_bytes=sum(s for _, s in young),
            grace_hours=grace / 3600,
        )

    def du(self) -> DuReport:
        """Bytes per pack, bytes shared between packs, and what dedup saved."""
        self.layout.require_initialised()
        self._settle()
        return self.maintenance.du()

    def _interrupted_command(self) -> list[Problem]:
        """A command killed mid-way leaves its marker (and, before its commit, uncommitted
        state); the next command recovers, and doctor says so."""
        found = self.marker.read()
        if found is None:
            return []
        if found.phase == "views":
            message = f"{found.describe()} stopped after saving state; its views may lag behind"
        elif found.owner_gone():
            message = f"{found.describe()} was interrupted; its changes are not kept"
        else:
            message = f"{found.describe()} is still running (or ran on another host)"
        return [Problem(check="no interrupted command", message=message + "; 'synapse doctor --fix' repairs it")]

    def _install_problems(self, fix: bool) -> list[Problem]:
        """Attached installs that are gone or whose attach is stale (``fix``: repaired)."""
        try:
            if not fix:
                return installs.install_problems(self.files.config(), self.registry, self.layout, fix=False)
            with self.mutation("doctor: attached installs"):
                config = self.files.config()
                problems = installs.install_problems(config, self.registry, self.layout, fix=True)
                self.files.save_config(config)
                return problems
        except StateFileInvalid:
            return []  # the state-file check reports it

    def _remote_problems(self, verify: bool) -> list[Problem]:
        try:
            if not self.files.config().remotes:
                return []
        except SynapseError:
            return []  # the state-file check reports it
        return [Problem(check=c, message=m) for c, m in self.remotes.problems(verify)]

    def doctor(self, *, verify_blobs: bool = False, fix: bool = False, rebuild_views: bool = False) -> DoctorReport:
        """Check the store's invariants; with ``fix``, repair what can be repaired.

        ``rebuild_views`` recreates every view from state and blobs alone (files UIs wrote are
        kept first).
        """
        self.layout.require_initialised()
        notes: list[str] = []
        with self.lock.hold():
            interrupted = self._interrupted_command() + self.recovery.check(fix=False)
            if not (fix or rebuild_views):
                checks, problems, notices = self.maintenance.check(
                    verify_blobs=verify_blobs, fix=False, rebuild_views=False
                )
                problems += self._install_problems(False)
        if fix or rebuild_views:
            with self.lock.hold():
                self.recovery.repair()  # before the mutation, which needs git, valid caches, the global profile
            with self.mutation("doctor --fix", force_recover=True) as change:
                change.notes += self._keep_what_uis_wrote(full=True)
                checks, problems, notices = self.maintenance.check(
                    verify_blobs=verify_blobs, fix=True, rebuild_views=rebuild_views
                )
                notes = change.notes
            problems += self._install_problems(True)
            for problem in interrupted:
                problem.fixed = True
        remote_problems = self._remote_problems(verify_blobs)
        checks = ["no interrupted command", *recovery.CHECKS, *checks, installs.CHECK]
        if self.files.config().remotes:
            checks.append("remotes (reachable, credentials, their packs' blobs present)")
        problems = interrupted + problems + remote_problems
        failures = [f"{r.name}: {r.reason}" for r in self.registry.records if r.status == "failed"]
        return DoctorReport(
            checks=checks,
            problems=problems,
            notices=notices + self.maintenance.temp_notices(),
            history=self.history.enabled,
            plugin_failures=failures,
            kept=self.keeper.kept(self.views.installed_uis()),
            notes=notes,
        )
