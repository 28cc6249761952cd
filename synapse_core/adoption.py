"""``synapse adopt``: existing UI installs and model folders into the library, nothing lost.

Plan (adopt_scan, adopt_plan) -> one mutation that writes one pack per distinct model file
(hard links: no bytes written; copies only with ``--copy``), their sidecars as pack data and the
installs' attach records, journaled (adopt_journal) -> once committed and the views are current,
the originals are removed (same inode, or a verified copy) and the installs attached.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synapse_core import adopt_journal as journal
from synapse_core.adopt_plan import Group, Prepared, build_plan, hash_found
from synapse_core.adopt_scan import Scanner
from synapse_core.errors import InvalidInput, NotFound, SynapseError
from synapse_core.identify import HashCacheFile
from synapse_core.kinds import AssetKind
from synapse_core.layout import remove_dead_temps, write_all_or_nothing, write_json
from synapse_core.models import Pack, PreviewIndex, PreviewInfo, ResourceSpec, SourceInfo
from synapse_core.names import sanitize_file_name
from synapse_core.results import AdoptInstall, AdoptPlan, AdoptResult, AdoptUndoResult
from synapse_core.sources import MAX_PREVIEW_BYTES, FetchTarget, ResolvedPack, ResolvedResource
from synapse_core.state import GLOBAL_PROFILE

if TYPE_CHECKING:
    from synapse_core.store import Store

MAX_PREVIEWS = 4


class Adoption:
    """Adopt, undo, and finish what a killed adopt left."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.layout = store.layout

    # -- plan ---------------------------------------------------------------------------

    def prepare(self, paths: Sequence[str], *, identify: bool, keep_originals: bool) -> Prepared:
        """Scan, hash (outside the lock; the cache is saved under it) and plan."""
        store = self.store
        paths = [os.path.abspath(os.path.expanduser(p)) for p in paths]
        config = store.files.config()
        adapters = store.registry.ui_adapters
        scan = Scanner(adapters, self.layout.root, config.ui_installs).run([Path(p) for p in paths])
        cache = HashCacheFile(self.layout)

        def save() -> None:
            with store.lock.hold():
                cache.save()

        shas, unreadable, hashed, hashed_bytes = hash_found(scan.found, cache, save, store.progress)
        scan.skipped += unreadable
        existing: dict[str, set[tuple[AssetKind, str]]] = {}
        wanted = set(shas.values())
        names = store.files.pack_names()
        for name in names:  # the names packs already expose these bytes by
            lock = store.files.lock(name)
            if not any(r.sha256 in wanted for r in lock.resources.values()):
                continue
            for spec in store.files.pack(name).resources:
                locked = lock.resources.get(spec.id)
                if locked is not None and locked.sha256 in wanted:
                    existing.setdefault(locked.sha256, set()).add((spec.kind, spec.expose))
        self.layout.blobs_dir.mkdir(parents=True, exist_ok=True)
        plan, groups = build_plan(
            paths,
            scan,
            shas,
            blob_device=os.stat(self.layout.blobs_dir).st_dev,
            has_blob=store.blobs.has,
            existing=existing,
            pack_names=set(names),
            adapters=adapters,
            keep_originals=keep_originals,
        )
        plan.hashed_files, plan.hashed_bytes = hashed, hashed_bytes
        if identify:
            self._identify(plan, groups)
        created = []
        for install in scan.installs:  # an attach that cannot be written stops the adopt before any change
            adapter = adapters[install.ui]
            attach = adapter.plan_attach(Path(install.path), self.layout.active_link(install.ui))
            created += [str(c.path) for c in attach.changes if not os.path.lexists(c.path)]
        if keep_originals and scan.installs:
            plan.warnings.append(
                "--keep-originals: the UIs' own copies stay where they are, so a UI may list a model twice"
                " (its own file and the view's) and its own file wins where names clash"
            )
        return Prepared(plan, scan, groups, shas, created)

    def _identify(self, plan: AdoptPlan, groups: list[Group]) -> None:
        """Ask every source that identifies by hash, in batches, about the new packs' bytes."""
        new = [g for g in groups if g.pack]
        try:
            matches = self.store.discovery.match(sorted({g.sha256 for g in new}))
        except SynapseError as exc:
            plan.warnings.append(f"--identify: {exc.message}; the packs keep what their files say")
            return
        by_name = {p.name: p for p in plan.packs}
        for group in new:
            match = matches.get(group.sha256)
            if match is None or group.pack is None:
                continue
            group.identified = match
            by_name[group.pack].identified = match[0]

    # -- adopt --------------------------------------------------------------------------

    def adopt(
        self,
        prepared: Prepared,
        *,
        copy: bool,
        keep_originals: bool,
    ) -> AdoptResult:
        """Carry the plan out: one state commit and one view update, then the take-over."""
        plan = prepared.plan
        if plan.needs_copy and not copy:
            raise InvalidInput(
                f"{sum(1 for f in plan.files if f.action == 'copy')} files ({plan.copy_bytes} bytes) are on another "
                "file system than the store, where no hard link can reach; pass --copy to copy them "
                "(their originals go only once each copy is verified); nothing was changed"
            )
        result = AdoptResult(plan=plan, dry_run=False)
        groups = prepared.groups
        if not groups and not prepared.scan.installs:
            return result
        store = self.store
        entries = [
            journal.record(f.name, f.path, f.link, f.info, prepared.sha_of[f.identity]) for g in groups for f in g.files
        ]
        new_packs = [g.pack for g in groups if g.pack]
        if not new_packs and not plan.installs and keep_originals:
            return result  # the library has every file under its name already: nothing to do
        with store.mutation(f"adopt {' '.join(plan.paths)}") as change:
            for name in new_packs:
                store.packs.check_name_free(name)
            config = store.files.config()
            for install in plan.installs:
                if install.path in config.ui_installs.get(install.ui, []):
                    raise InvalidInput(f"{install.path} was attached meanwhile; nothing was changed")
            path = journal.new_journal(
                self.layout,
                {
                    "phase": "planned",
                    "paths": plan.paths,
                    "keep_originals": keep_originals,
                    "packs": new_packs,
                    "installs": [i.model_dump() for i in plan.installs],
                    "created": prepared.created,
                    "files": entries,
                },
            )
            result.journal = str(path)
            store.blobs.known = {
                (f.info.st_dev, f.info.st_ino, f.info.st_size, f.info.st_mtime_ns): g.sha256
                for g in groups
                for f in g.files
            }
            source = store.registry.source("local")
            with store.batch():
                for mode in ("move", "copy"):
                    chosen = [g for g in groups if g.pack and (g.action == "copy") == (mode == "copy")]
                    resolved = [self._resolved(g) for g in chosen]
                    if resolved:
                        store.packs.import_many(source, resolved, mode)
                    for group in chosen:
                        self._pack_data(group)
                # bytes the library has under other names, and files of packs already there: linked
                # or copied only when a new pack needs them (import_many fetched those)
                store.profiles.add(new_packs)
                for install in plan.installs:
                    known = config.ui_installs.setdefault(install.ui, [])
                    if install.path not in known:
                        known.append(install.path)
                store.files.save_config(config)
                store.views.forget()
            result.packs = new_packs
            data = json.loads(path.read_text())

            def take_over() -> None:
                journal.set_phase(path, data, "taking_over")
                result.removed, result.warnings = self.finish(path, data)
                result.attached = plan.installs

            change.after.append(take_over)
        store.blobs.known = {}
        return result

    def _resolved(self, group: Group) -> ResolvedPack:
        """The pack draft of one group (its local file; a source's metadata with ``--identify``)."""
        assert group.pack is not None
        src = group.source
        url = src.bytes_path.as_uri()
        specs, targets = [], []
        for index, (kind, expose) in enumerate(group.resources):
            rid = "main" if index == 0 else expose.rsplit(".", 1)[0].replace("/", "__")
            spec = ResourceSpec(id=rid, kind=kind, expose=expose)
            specs.append(spec)
            targets.append(
                ResolvedResource(
                    spec=spec,
                    target=FetchTarget(
                        file_name=sanitize_file_name(expose.rsplit("/", 1)[-1]),
                        url=url,
                        sha256=group.sha256,
                        size=group.size,
                    ),
                )
            )
        meta = group.metadata
        pack = Pack(
            name=group.pack,
            source=SourceInfo(provider="local", url=url, metadata={"path": str(src.path)}),
            policy="pinned",
            trigger_words=list(meta.trigger_words),
            base_model=meta.base_model,
            description=meta.description,
            preferred_weight=meta.preferred_weight,
            notes=meta.notes,
            resources=specs,
        )
        if group.identified is not None:
            remote = group.identified[1].pack
            pack.source = remote.source
            pack.base_model = remote.base_model or pack.base_model
            pack.creator = remote.creator
            pack.trigger_words = remote.trigger_words or pack.trigger_words
            pack.tags = remote.tags
            pack.description = remote.description or pack.description
        return ResolvedPack(pack=pack, resources=tuple(targets))

    def _pack_data(self, group: Group) -> None:
        """Previews and configs found beside the files become the pack's own data; a source's ids
        (``--identify``) go into the lock."""
        assert group.pack is not None
        files = self.store.files
        folder = self.layout.previews_dir(group.pack)
        saved: list[PreviewInfo] = []
        for preview in group.metadata.previews[:MAX_PREVIEWS]:
            with contextlib.suppress(OSError):
                if preview.stat().st_size > MAX_PREVIEW_BYTES:
                    continue
                folder.mkdir(parents=True, exist_ok=True)
                name = sanitize_file_name(preview.name)
                (folder / name).write_bytes(preview.read_bytes())
                saved.append(PreviewInfo(file=name))
        if saved:
            write_json(self.layout.previews_index(group.pack), PreviewIndex(previews=saved))
        for config in group.metadata.configs[:2]:
            with contextlib.suppress(OSError):
                if config.stat().st_size <= MAX_PREVIEW_BYTES:
                    target = folder.parent / "configs" / sanitize_file_name(config.name)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(config.read_bytes())
        if group.identified is not None:
            lock = files.lock(group.pack)
            remote = group.identified[1].resources[0].target
            for rid, entry in lock.resources.items():
                lock.resources[rid] = entry.model_copy(
                    update={"version_id": remote.version_id, "file_id": remote.file_id, "hashes": dict(remote.hashes)}
                )
            files.save_pack(files.pack(group.pack), lock)

    # -- take-over, recovery --------------------------------------------------------------

    def finish(self, path: Path, data: dict[str, Any]) -> tuple[int, list[str]]:
        """The committed adopt's take-over (unless it keeps the originals) and attach; repeatable."""
        removed, warnings = 0, []
        if not data.get("keep_originals"):
            over = journal.TakeOver(self.store.blobs.path, self.store.blobs.verify, data["files"])
            for entry in data["files"]:
                existed = os.path.lexists(entry["name"])
                why = over.remove(entry)
                if why is not None:
                    warnings.append(why)
                elif existed:
                    removed += 1
            journal.sync_folders(data["files"])
        for install in data["installs"]:
            adapter = self.store.registry.ui_adapters.get(install["ui"])
            if adapter is None:
                continue
            plan = adapter.plan_attach(Path(install["path"]), self.layout.active_link(install["ui"]))
            write_all_or_nothing([(c.path.resolve(), c.content.encode()) for c in plan.changes])
        journal.set_phase(path, data, "done")
        return removed, warnings

    def recover(self) -> bool:
        """Finish or forget what killed adopts left (the lock is held, state is at HEAD). True
        when state changed (an undo's packs were removed): the views must be checked."""
        changed = False
        for path, data in journal.journals(self.layout):
            self._remove_temps(data)
            phase = data.get("phase")
            if phase == "planned":
                if all(self.store.files.has_pack(p) for p in data["packs"]) and self._attached(data):
                    journal.set_phase(path, data, "taking_over")
                    phase = "taking_over"
                else:
                    path.unlink(missing_ok=True)  # rolled back: the store's recovery gave the originals their mode
                    continue
            if phase == "taking_over":
                self.finish(path, data)
            elif phase == "undoing":
                changed |= self._undo_steps(path, data)
        return changed

    def _remove_temps(self, data: dict[str, Any]) -> None:
        """Temps a killed attach, detach or undo left beside the files it was writing."""
        for install in data["installs"]:
            folder = Path(install["path"])
            names = {p.name for p in folder.iterdir() if p.is_file()} if folder.is_dir() else set()
            remove_dead_temps(folder, names | {Path(c).name for c in data.get("created", [])})
        folders: dict[Path, set[str]] = {}
        for entry in data["files"]:
            name = Path(entry["name"])
            folders.setdefault(name.parent, set()).add(name.name[:40])
        for folder, names in folders.items():
            remove_dead_temps(folder, names)

    def _attached(self, data: dict[str, Any]) -> bool:
        config = self.store.files.config()
        return all(i["path"] in config.ui_installs.get(i["ui"], []) for i in data["installs"])

    # -- undo -----------------------------------------------------------------------------

    def undo(self, target: str) -> AdoptUndoResult:
        """Put every original of the adopt that took ``target`` back, detach, remove its packs."""
        wanted = os.path.abspath(os.path.expanduser(target))
        found = [(p, d) for p, d in journal.journals(self.layout) if wanted in d.get("paths", [])]
        if not found:
            raise NotFound(f"no adopt of {wanted} is recorded in this store (see data/adopt/); nothing was changed")
        path, data = found[-1]
        result = AdoptUndoResult(restored=0)
        result.packs_removed = list(data["packs"])
        result.detached = [AdoptInstall(**i) for i in data["installs"]]
        store = self.store
        with store.mutation(f"adopt --undo {wanted}") as change:
            journal.set_phase(path, data, "undoing")
            result.restored = self._restore(data)
            self._detach(data)
            self._drop_state(data)

            def after() -> None:
                self._release(data)
                path.unlink(missing_ok=True)

            change.after.append(after)
        return result

    def _undo_steps(self, path: Path, data: dict[str, Any]) -> bool:
        """Recovery of an undo: every step again, state committed here."""
        self._restore(data)
        self._detach(data)
        self._drop_state(data)
        self.store.history.commit("adopt --undo (finished after an interruption)")
        self._release(data)
        path.unlink(missing_ok=True)
        return True

    def _link_back(self, data: dict[str, Any]) -> set[tuple[int, int]]:
        """Inodes of blobs that are an original's own and that no other pack references."""
        others: set[str] = set()
        for sha, names in self.store.referenced_blobs().items():
            if any(n not in data["packs"] for n in names):
                others.add(sha)
        back = set()
        for entry in data["files"]:
            with contextlib.suppress(OSError):
                blob = os.stat(self.store.blobs.path(entry["sha256"]))
                if (blob.st_dev, blob.st_ino) == (entry["dev"], entry["ino"]) and entry["sha256"] not in others:
                    back.add((blob.st_dev, blob.st_ino))
        return back

    def _restore(self, data: dict[str, Any]) -> int:
        back = self._link_back(data)
        restored = 0
        for entry in data["files"]:
            blob = self.store.blobs.path(entry["sha256"])
            if not os.path.lexists(entry["name"]) and not blob.is_file():
                raise SynapseError(f"cannot put {entry['name']} back: its blob {entry['sha256'][:12]}… is missing")
            restored += journal.restore(entry, blob, (entry["dev"], entry["ino"]) in back)
        journal.sync_folders(data["files"])
        return restored

    def _detach(self, data: dict[str, Any]) -> None:
        for install in data["installs"]:
            adapter = self.store.registry.ui_adapters.get(install["ui"])
            if adapter is not None and Path(install["path"]).is_dir():
                plan = adapter.plan_detach(Path(install["path"]), self.layout.active_link(install["ui"]))
                write_all_or_nothing([(c.path.resolve(), c.content.encode()) for c in plan.changes])
                for change in plan.changes:  # a file the attach created, empty again (in JSON or YAML too), goes
                    if str(change.path) in data.get("created", []) and change.content.strip() in ("", "{}"):
                        change.path.unlink(missing_ok=True)

    def _drop_state(self, data: dict[str, Any]) -> None:
        files = self.store.files
        config = files.config()
        for install in data["installs"]:
            known = config.ui_installs.get(install["ui"], [])
            if install["path"] in known:
                known.remove(install["path"])
        files.save_config(config)
        for name in data["packs"]:
            if files.has_pack(name):
                files.delete_pack(name)
                self.store.profiles.remove_pack(name)
        stacks = files.stacks()
        moved = {ui: [p for p in s if files.has_profile(p)] or [GLOBAL_PROFILE] for ui, s in stacks.items()}
        if moved != stacks:
            files.save_stacks(moved)

    def _release(self, data: dict[str, Any]) -> None:
        """The blobs that were the originals' own inodes leave the library; the originals get their mode."""
        referenced = self.store.referenced_blobs()
        for entry in data["files"]:
            sha = entry["sha256"]
            blob = self.store.blobs.path(sha)
            with contextlib.suppress(OSError):
                info = os.stat(blob)
                ours = sha not in referenced and (info.st_dev, info.st_ino) == (entry["dev"], entry["ino"])
                if ours and os.path.lexists(entry["name"]):  # the original's name holds the inode: the blob's goes
                    blob.unlink()
        for entry in data["files"]:
            try:
                info = os.stat(self.store.blobs.path(entry["sha256"]))
                shared = (info.st_dev, info.st_ino) == (entry["dev"], entry["ino"])
            except OSError:
                shared = False
            if not shared:  # a blob keeps its read-only mode
                journal.restore_mode(entry)
