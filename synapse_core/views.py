"""Views: per UI and profile, a tree laid out like that UI's root, kept current incrementally.

After a command changes state, :meth:`ViewService.sync` brings every stacked view of every
installed UI up to date, touching only what the change affects: the global view reads just
the packs that changed (each pack.json and lock.json once per command), decides again only
the names those packs offered, and applies the difference entry by entry, each change atomic.
Work profiles' views are planned from the global view's contenders in their own order, so
they read no pack at all. A view that does not exist yet is built in a staging folder and
renamed into place, so a UI never sees half of one.

Each tree records what Synapse placed in ``.synapse-view.json`` (its manifest: entries,
losers, sidecars, kept links) and ``.synapse-fingerprint`` (small: what it was planned from,
for the fast switching path). Anything else in a tree is foreign: the UI wrote it, and it is
kept (see :mod:`synapse_core.keep`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from synapse_core.errors import SynapseError
from synapse_core.layout import StoreLayout, is_inside, remove_leftover, write_bytes_atomic
from synapse_core.state import GLOBAL_PROFILE, ProfileData, Stacks, StateFiles
from synapse_core.viewmarks import (
    FINGERPRINT,
    MANIFEST,
    Fingerprint,
    _link_error,
    point_active,
    profile_stamp,
    read_fingerprint,
    view_is_current,
)
from synapse_core.viewplan import Offer, Plan, Record, make_plan, offer, same_relative_order, sidecar_paths
from synapse_core.viewtree import (
    LinkMode,
    Materializer,
    Placement,
    Tree,
)

if TYPE_CHECKING:
    from synapse_core.blobs import BlobStore
    from synapse_core.fscaps import Capabilities
    from synapse_core.plugins import PluginRegistry
    from synapse_core.ui import UIAdapter

MANIFEST_SCHEMA = 2
_ENCODER = json.JSONEncoder(ensure_ascii=False)
KEPT_DIR = ".kept"


def _sorted_sets(_instance: object, _field: object, value: object) -> object:
    """Sets as sorted lists: a frozenset's repr depends on PYTHONHASHSEED, a digest must not."""
    return sorted(value) if isinstance(value, set | frozenset) else value


def layout_digest(adapter: UIAdapter) -> str:
    """A digest of how an adapter lays a view out (its folders, extensions and keys)."""
    rows = sorted((k.value, repr(attrs.asdict(v, value_serializer=_sorted_sets))) for k, v in adapter.layout.items())
    return hashlib.blake2b(repr((type(adapter).__qualname__, rows)).encode(), digest_size=16).hexdigest()


def view_digest(layout: str, policy: str, order: Sequence[str], digests: Mapping[str, str], aliases: Any) -> str:
    """Everything a view's plan depends on except blob presence, as one digest."""
    parts = [layout, policy, json.dumps(aliases, sort_keys=True)] + [f"{p}\0{digests.get(p, '-')}" for p in order]
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()


@attrs.define
class ViewRecord:
    """A view as its manifest records it: the plan, and what stands on disk."""

    ui: str
    profile: str
    policy: str
    layout: str
    order: list[str]
    digests: dict[str, str]
    missing: dict[str, list[str]]
    """Per pack: sha256s of resources left out because their blob is missing."""
    plan: Plan
    placements: dict[str, Placement]
    folders: list[str]
    blocked: dict[str, str]
    link_mode: str
    _offers: dict[str, Offer] | None = attrs.field(default=None, eq=False, repr=False)
    dirty: set[str] = attrs.field(factory=set, eq=False, repr=False)
    """Packs planned again by the command that made this record."""

    def offers(self) -> dict[str, Offer]:
        """What each pack offered this UI, rebuilt from the manifest (no pack is read; once)."""
        if self._offers is None:
            self._offers = self._rebuild_offers()
        return self._offers

    def _rebuild_offers(self) -> dict[str, Offer]:
        offers = {name: Offer([], [], list(self.missing.get(name, []))) for name in self.order}
        for record in self.plan.contenders():
            clean = {k: v for k, v in record.items() if k not in ("shadows", "by", "stat")}
            offers.setdefault(record["pack"], Offer([], [], [])).contenders.append(clean)
        for item in self.plan.left_out:
            if item["reason"] != "shadowed":
                offers.setdefault(item["pack"], Offer([], [], [])).left_out.append(item)
        return offers

    def to_json(self, fingerprint: str) -> bytes:
        """The manifest: one record per line, so it stays readable and diffable."""
        head = {"schema_version": MANIFEST_SCHEMA, "ui": self.ui, "profile": self.profile, "policy": self.policy}
        head |= {"fingerprint": fingerprint, "layout": self.layout, "link_mode": self.link_mode}
        entries = [
            {**e, "stat": list(self.placements[e["path"]].stat or ())} if self._stat(e["path"]) else e
            for e in self.plan.entries.values()
        ]
        sidecars = {
            rel: {"digest": p.sha256, **({"stat": list(p.stat)} if p.stat else {})}
            for rel, p in self.placements.items()
            if p.kind == "sidecar"
        }
        kept = {rel: p.target for rel, p in self.placements.items() if p.kind == "kept"}
        body = {
            "order": self.order,
            "digests": self.digests,
            "missing": {k: v for k, v in self.missing.items() if v},
            "folders": self.folders,
            "sidecars": sidecars,
            "kept": kept,
            "blocked": self.blocked,
        }
        encode = _ENCODER.encode
        lines = [encode(head)[:-1] + ", " + encode(body)[1:-1] + ', "entries": [']
        lines.append(",\n".join(map(encode, entries)))
        lines.append('], "losers": [')
        lines.append(",\n".join(map(encode, self.plan.losers)))
        lines.append('], "left_out": [')
        lines.append(",\n".join(map(encode, self.plan.left_out)))
        lines.append("]}")
        return ("\n".join(lines) + "\n").encode()

    def _stat(self, rel: str) -> bool:
        placement = self.placements.get(rel)
        return placement is not None and placement.kind == "entry" and placement.stat is not None


def read_record(tree: Path) -> ViewRecord | None:
    """A tree's manifest as a :class:`ViewRecord`, or None when there is none (or an old one)."""
    try:
        data = json.loads((tree / MANIFEST).read_bytes())
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("schema_version") == 1:
        return _record_of_v1(data)
    if not isinstance(data, dict) or data.get("schema_version") != MANIFEST_SCHEMA:
        return None
    try:
        placements: dict[str, Placement] = {}
        entries: dict[str, Record] = {}
        for entry in data["entries"]:
            stat = tuple(entry.pop("stat", ())) or None
            entries[entry["path"]] = entry
            placements[entry["path"]] = Placement("entry", entry["sha256"], stat=stat)
        for rel, side in data.get("sidecars", {}).items():
            placements[rel] = Placement("sidecar", side["digest"], stat=tuple(side.get("stat", ())) or None)
        for rel, unit in data.get("kept", {}).items():
            placements[rel] = Placement("kept", target=unit)
        plan = Plan(entries, list(data["losers"]), list(data["left_out"]))
        return ViewRecord(
            ui=data["ui"],
            profile=data["profile"],
            policy=data["policy"],
            layout=data["layout"],
            order=list(data["order"]),
            digests=dict(data["digests"]),
            missing={k: list(v) for k, v in data.get("missing", {}).items()},
            plan=plan,
            placements=placements,
            folders=list(data["folders"]),
            blocked=dict(data.get("blocked", {})),
            link_mode=str(data.get("link_mode", "symlink")),
        )
    except (KeyError, TypeError, AttributeError, ValueError):
        return None


def _record_of_v1(data: dict[str, Any]) -> ViewRecord | None:
    """A view made before manifests recorded contenders: what it placed (its links), so it is
    updated in place (no file of the UI's is lost), and nothing to plan from (it is replanned)."""
    try:
        entries = {e["path"]: {**e, "scope": "", "key": ""} for e in data["entries"]}
        placements = {path: Placement("entry", e["sha256"]) for path, e in entries.items()}
        return ViewRecord(
            ui=data["ui"],
            profile=data["profile"],
            policy=data["policy"],
            layout="",
            order=[],
            digests={},
            missing={},
            plan=Plan(entries, [], []),
            placements=placements,
            folders=[],
            blocked={},
            link_mode="symlink",
        )
    except (KeyError, TypeError, AttributeError):
        return None


@attrs.frozen
class PackInput:
    """A pack as the views need it: its digest, its resources and its metadata for sidecars."""

    digest: str
    resources: tuple[tuple[str, str, str, str | None], ...]
    """(resource id, kind, exposed name, sha256 or None)."""
    pack: Any
    lock: Any
    previews: tuple[Path, ...]
    """The pack's preview files (state/packs/<name>/resources/previews/), sorted."""


class ViewService:
    """Keeps every UI's views current, cheaply; builds, checks and removes them."""

    def __init__(
        self, layout: StoreLayout, files: StateFiles, blobs: BlobStore, registry: Callable[[], PluginRegistry]
    ) -> None:
        self.layout = layout
        self.files = files
        self.blobs = blobs
        self._registry = registry
        self._inputs: dict[str, PackInput | None] = {}
        self._records: dict[Path, ViewRecord | None] = {}
        self._modes: dict[str, tuple[LinkMode, bool]] = {}
        self._caps: Capabilities | None = None

    @property
    def registry(self) -> PluginRegistry:
        """The plugins (loaded on first use)."""
        return self._registry()

    def forget(self) -> None:
        """Drop what was read this command (state changed: read packs again)."""
        self._inputs.clear()
        self._records.clear()
        self._modes.clear()

    # -- link modes ---------------------------------------------------------------------------

    def _mode(self, ui: str) -> tuple[LinkMode, bool]:
        """The link mode of ``ui``'s views and whether ``active`` is a stable folder (no
        symlinks there, or copies: one tree whose entries are swapped one by one)."""
        if ui not in self._modes:
            try:
                config = self.files.config()
                setting = config.ui_link_modes.get(ui, config.link_mode)
            except SynapseError:
                setting = "symlink"
            caps = None
            if setting == "auto" or setting not in ("symlink", "copy"):
                caps = self.capabilities()
            mode: LinkMode = caps.best_mode() if setting == "auto" and caps else setting  # type: ignore[assignment]
            stable = mode == "copy" or (mode != "symlink" and caps is not None and not caps.symlink)
            self._modes[ui] = (mode, stable)
        return self._modes[ui]

    def require_writable(self) -> None:
        """Refuse, in one line and before a command changes anything, to write where the store
        cannot be written safely: a store folder reached through a symbolic link (writes and
        deletes would land where it points), or symlink-mode views on a file system without
        symlinks (a FAT or exFAT drive, say)."""
        uis = self.installed_uis()
        linked = self.layout.linked_folders(self.ui_folders(uis))
        if linked:
            raise SynapseError(
                f"{linked[0]} is reached through a symbolic link, and Synapse never writes or deletes through "
                "one inside the store; replace the link with a real folder (or remove it: Synapse recreates "
                "what belongs there), then run the command again"
            )
        if uis and any(self._mode(ui) == ("symlink", False) for ui in uis):
            from synapse_core.fscaps import check_symlinks

            check_symlinks(self.layout.views_dir)

    def ui_folders(self, uis: Iterable[str]) -> list[Path]:
        """The folders of data/views that Synapse writes for ``uis``."""
        folders = []
        for ui in uis:
            top = self.layout.views_dir / ui
            folders += [top, top / "profiles", self.kept_dir(ui), self.sidecar_dir(ui)]
        return folders

    def capabilities(self) -> Capabilities:
        """What the file system of data/views can do (probed once per ViewService)."""
        if self._caps is None:
            from synapse_core.fscaps import probe

            self._caps = probe(self.layout.views_dir, self.layout.blobs_dir)
        return self._caps

    def link_mode(self, ui: str) -> LinkMode:
        """How entries of ``ui``'s views are made."""
        return self._mode(ui)[0]

    def stable(self, ui: str) -> bool:
        """Whether ``active`` of ``ui`` is a stable folder rather than a link to a profile's tree."""
        return self._mode(ui)[1]

    def record(self, ui: str, tree: Path) -> ViewRecord | None:
        """A tree's manifest, read once per command (writes keep it current)."""
        if tree not in self._records:
            self._records[tree] = read_record(tree)
        return self._records[tree]

    # -- paths ------------------------------------------------------------------------------

    def tree_path(self, ui: str, profile: str) -> Path:
        """data/views/<ui>/profiles/<profile>, or ``active`` itself when it is a stable folder
        (it then shows the top of the stack, whatever ``profile`` is asked for)."""
        return self.layout.active_link(ui) if self.stable(ui) else self.layout.profile_view(ui, profile)

    def kept_dir(self, ui: str) -> Path:
        """Where files a UI wrote are kept, beside its trees (data/views/<ui>/profiles/.kept)."""
        return self.layout.views_dir / ui / "profiles" / KEPT_DIR

    def sidecar_dir(self, ui: str) -> Path:
        """data/views/<ui>/sidecars: sidecar files by content digest, hard-linked into trees."""
        return self.layout.views_dir / ui / "sidecars"

    def tree(self, ui: str, root: Path) -> Tree:
        """The :class:`Tree` at ``root`` for ``ui``."""
        depth = len(root.relative_to(self.layout.data).parts)
        materializer = Materializer(self.link_mode(ui), self.layout.blobs_dir)
        return Tree(root, depth, materializer, self.sidecar_dir(ui), self.kept_dir(ui))

    # -- inputs -----------------------------------------------------------------------------

    def pack_input(self, name: str) -> PackInput | None:
        """A pack's pack.json and lock.json, read once per command (None if it is gone)."""
        if name not in self._inputs:
            self._inputs[name] = self._read_pack(name)
        return self._inputs[name]

    def _read_pack(self, name: str) -> PackInput | None:
        from synapse_core.models import Pack, PackLock

        try:
            raw_pack = self.layout.pack_file(name).read_bytes()
        except FileNotFoundError:
            return None
        lock_path = self.layout.lock_file_of(name)
        raw_lock = lock_path.read_bytes() if lock_path.is_file() else b""
        pack = Pack.model_validate_json(raw_pack)
        lock = PackLock.model_validate_json(raw_lock) if raw_lock else PackLock()
        digest = hashlib.blake2b(raw_pack + b"\0" + raw_lock, digest_size=16).hexdigest()
        resources = tuple(
            (r.id, r.kind.value, r.expose, lock.resources[r.id].sha256 if r.id in lock.resources else None)
            for r in pack.resources
        )
        previews_dir = self.layout.previews_dir(name)
        previews = tuple(sorted(previews_dir.iterdir())) if previews_dir.is_dir() else ()
        return PackInput(digest, resources, pack, lock, previews)

    def _offer(self, ui: str, adapter: UIAdapter, name: str) -> tuple[Offer, str | None]:
        data = self.pack_input(name)
        if data is None:
            return Offer([], [], []), None
        result = offer(adapter, name, data.resources, self.blobs.has)
        for record in result.contenders:
            sidecars = self._sidecars(ui, adapter, data, record)
            if sidecars:
                record["sidecars"] = sidecars
        return result, data.digest

    def _sidecars(self, ui: str, adapter: UIAdapter, data: PackInput, record: Record) -> list[list[str]]:
        """The sidecars an adapter wants beside an entry, stored in the UI's sidecar store."""
        from synapse_core.ui import SidecarRequest

        locked = data.lock.resources.get(record["resource_id"])
        size = locked.size if locked is not None else None
        request = SidecarRequest.from_pack(data.pack, record["resource_id"], record["sha256"], size, data.previews)
        out = []
        for sidecar in adapter.sidecars(request):
            content = sidecar.content if sidecar.content is not None else Path(str(sidecar.source)).read_bytes()
            digest = hashlib.blake2b(content, digest_size=16).hexdigest()
            stored = self.sidecar_dir(ui) / digest
            if not stored.exists():
                write_bytes_atomic(stored, content, sync=False)
            out.append([sidecar.name, digest])
        return out

    # -- planning ---------------------------------------------------------------------------

    def _global_record(self, ui: str, adapter: UIAdapter, changed: Collection[str], verify: bool) -> ViewRecord:
        """Plan the global view of ``ui`` from its last record and the packs that changed (its
        ``dirty`` then names every pack planned again: changed, new, gone, or whose blob came)."""
        found = self.files.profile_order(GLOBAL_PROFILE)
        if found is None:
            raise SynapseError("the global profile is missing; run 'synapse doctor --fix'")
        profile, order = found
        policy = self.registry.policy(profile.policy)
        layout = layout_digest(adapter)
        previous = self.record(ui, self.tree_path(ui, GLOBAL_PROFILE))
        if previous is not None and (previous.layout != layout or previous.policy != profile.policy):
            previous = None
        offers = previous.offers() if previous is not None else {}
        digests = dict(previous.digests) if previous is not None else {}
        dirty = set(changed) | {p for p in order if p not in digests}
        if previous is not None:
            dirty |= {p for p, shas in previous.missing.items() if any(self.blobs.has(s) for s in shas)}
        if verify or previous is None:
            dirty = set(order)
        for name in order:
            if name in dirty:
                got, digest = self._offer(ui, adapter, name)
                offers[name] = got
                if digest is not None:
                    digests[name] = digest
        digests = {p: digests[p] for p in order if p in digests}
        incremental = (
            previous is not None
            and previous.profile == GLOBAL_PROFILE
            and same_relative_order(previous.order, order, dirty)
        )
        plan = make_plan(
            [c for p in order for c in offers.get(p, Offer([], [], [])).contenders],
            [o for p in order for o in offers.get(p, Offer([], [], [])).left_out],
            order,
            policy,
            previous=previous.plan if incremental and previous else None,
            changed=dirty,
        )
        missing = {p: offers[p].missing for p in order if p in offers and offers[p].missing}
        record = self._record(ui, GLOBAL_PROFILE, profile, layout, order, digests, missing, plan, adapter)
        record.dirty = dirty | ({p for p in previous.order if p not in order} if previous else set())
        return record

    def _derived_record(
        self,
        ui: str,
        adapter: UIAdapter,
        name: str,
        base: ViewRecord,
        changed: Collection[str] = (),
        base_before: str | None = None,
    ) -> ViewRecord | None:
        """Plan a profile's view from the global view's contenders in that profile's order.

        With ``changed`` and ``base_before`` (the global view's digest before this command),
        a view that was current then is decided again only for the names ``changed`` offered."""
        found = self.files.profile_order(name)
        if found is None:
            return None
        profile, order = found
        policy = self.registry.policy(profile.policy)
        offers = base.offers()
        aliases = self._alias_contenders(ui, profile, offers)
        previous = self.record(ui, self.tree_path(ui, name))
        fingerprint = read_fingerprint(self.tree_path(ui, name))
        incremental = (
            previous is not None
            and previous.profile == name
            and fingerprint is not None
            and base_before is not None
            and fingerprint.base == base_before
            and previous.layout == base.layout
            and previous.policy == profile.policy
            and same_relative_order(previous.order, order, changed)
        )
        plan = make_plan(
            [c for p in order for c in offers.get(p, Offer([], [], [])).contenders] + aliases,
            [o for p in order for o in offers.get(p, Offer([], [], [])).left_out],
            order,
            policy,
            previous=previous.plan if incremental and previous else None,
            changed=changed,
        )
        missing = {p: base.missing[p] for p in order if p in base.missing}
        digests = {p: base.digests[p] for p in order if p in base.digests}
        return self._record(ui, name, profile, base.layout, order, digests, missing, plan, adapter)

    def _alias_contenders(self, ui: str, profile: ProfileData, offers: Mapping[str, Offer]) -> list[Record]:
        """Extra names (``use --for``): each alias competes, last, for the name the workflow spells."""
        if not profile.aliases:
            return []
        adapter = self.registry.ui(ui)
        found = []
        for alias in profile.aliases:
            if alias.get("ui") != ui:
                continue
            source = next(
                (
                    c
                    for c in offers.get(alias["pack"], Offer([], [], [])).contenders
                    if c["resource_id"] == alias["resource_id"]
                ),
                None,
            )
            if source is None:
                continue
            made = offer(
                adapter,
                alias["pack"],
                [(alias["resource_id"], alias["kind"], alias["expose"], source["sha256"])],
                self.blobs.has,
            )
            for record in made.contenders:
                found.append({**record, "sidecars": source.get("sidecars", []), "alias": True})
        return found

    def _record(
        self,
        ui: str,
        name: str,
        profile: ProfileData,
        layout: str,
        order: list[str],
        digests: dict[str, str],
        missing: dict[str, list[str]],
        plan: Plan,
        adapter: UIAdapter,
    ) -> ViewRecord:
        folders = sorted({f.folder for kind in adapter.layout if (f := adapter.folder(kind)) is not None})
        placements, blocked = placements_of(plan, self.kept_units(ui), in_place=self.stable(ui))
        for rel in blocked:
            entry = plan.entries.get(rel)
            if entry is not None:
                detail = f"{entry['pack']}'s {rel} is shadowed by a file {adapter.display_name} wrote there"
                plan.left_out.append(
                    {"pack": entry["pack"], "resource_id": entry["resource_id"], "reason": "shadowed", "detail": detail}
                )
        return ViewRecord(
            ui=ui,
            profile=name,
            policy=profile.policy,
            layout=layout,
            order=order,
            digests=digests,
            missing=missing,
            plan=plan,
            placements=placements,
            folders=folders,
            blocked=blocked,
            link_mode=self.link_mode(ui),
        )

    # -- kept files (what UIs wrote) ---------------------------------------------------------

    def kept_units(self, ui: str) -> list[str]:
        """Paths (in every tree of ``ui``) of the files and folders the UI wrote, now kept."""
        try:
            data = json.loads((self.layout.views_dir / ui / "kept.json").read_bytes())
            units = data["units"]
            return [u for u in units if isinstance(u, str)]
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def save_kept_units(self, ui: str, units: Iterable[str]) -> None:
        """Record the kept units of ``ui`` (data/views/<ui>/kept.json)."""
        data = {"schema_version": 1, "units": sorted(set(units))}
        write_bytes_atomic(self.layout.views_dir / ui / "kept.json", (json.dumps(data, indent=2) + "\n").encode())

    # -- writing trees ----------------------------------------------------------------------

    def write(self, record: ViewRecord, base: str | None = None) -> None:
        """Make the tree of ``record`` hold exactly its placements (foreign files untouched)."""
        root = self.tree_path(record.ui, record.profile)
        previous = self.record(record.ui, root) if root.is_dir() else None
        try:
            if previous is not None and previous.link_mode != record.link_mode and not self.stable(record.ui):
                self._set_aside(root)  # another link mode: a new tree (the sweep kept what the UI wrote)
                previous = None
            if previous is None:
                self._build(root, record)
            else:
                tree = self.tree(record.ui, root)
                remake = previous.link_mode != record.link_mode
                blocked = tree.apply(previous.placements, record.placements, record.folders, remake=remake)
                for rel in blocked:
                    record.placements.pop(rel, None)
                record.blocked.update(blocked)
            self._finish(root, record, base)
            self._records[root] = record
        except OSError as exc:
            self._records.pop(root, None)
            raise _link_error(exc, root) from exc

    def _build(self, root: Path, record: ViewRecord) -> None:
        """A new tree: populated in staging at the same depth, then renamed into place."""
        root.parent.mkdir(parents=True, exist_ok=True)
        staging = root.parent / f".staging-{record.profile}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            tree = self.tree(record.ui, staging)
            tree.depth = len(root.relative_to(self.layout.data).parts)
            tree.populate(record.placements, record.folders)
            if root.exists():  # a tree without a valid manifest: nothing in it is ours to keep
                self._set_aside(root)
            os.rename(staging, root)
        finally:
            remove_leftover(self.layout.root, staging)

    def _set_aside(self, root: Path) -> None:
        """Move an old tree out of the way (trash, removed later), never deleting it in place."""
        trash = root.parent / f".trash-{root.name}-{uuid.uuid4().hex[:8]}"
        os.rename(root, trash)
        self._records.pop(root, None)

    def _finish(self, root: Path, record: ViewRecord, base: str | None) -> None:
        """Write the manifest (atomically) and the fingerprint, each only if it changed.

        The fingerprint records the folders' mtimes after every other write, and is rewritten
        in place (a rename would change the tree's own mtime again); a torn fingerprint only
        makes the view look stale, so it is rebuilt, never trusted."""
        tree = self.tree(record.ui, root)
        dirs: set[str] = set()
        for rel in [*record.placements, *(f"{folder}/." for folder in record.folders)]:
            parent = rel.rpartition("/")[0]
            while parent and parent not in dirs:
                dirs.add(parent)
                parent = parent.rpartition("/")[0]
        digest = view_digest(record.layout, record.policy, record.order, record.digests, self._aliases(record))
        manifest = record.to_json(digest)
        if _read(root / MANIFEST) != manifest:
            write_bytes_atomic(root / MANIFEST, manifest, sync=False)
        marks = root / FINGERPRINT
        if not marks.exists():
            marks.touch()
        missing = tuple(sorted({s for shas in record.missing.values() for s in shas}))
        stamp = profile_stamp(self.layout, record.profile)
        content = Fingerprint(digest, base, self.plugin_of(record.ui), stamp, missing, tree.dir_times(sorted(dirs)))
        data = content.to_json()
        if _read(marks) != data:
            with open(marks, "r+b") as handle:
                handle.truncate(0)
                handle.write(data)

    def _aliases(self, record: ViewRecord) -> list[list[str]]:
        return sorted([e["path"], e["pack"], e["resource_id"]] for e in record.plan.contenders() if e.get("alias"))

    def plugin_of(self, ui: str) -> str:
        """``<plugin>==<version>`` of the plugin that provides ``ui``'s adapter."""
        from synapse_core import __version__

        name = self.registry.provider_of("ui", ui) or "<builtin>"
        record = next((r for r in self.registry.records if r.name == name), None)
        if record is None or record.builtin:
            return f"<builtin>=={__version__}"
        return f"{name}=={record.version or '?'}"

    # -- the operations -----------------------------------------------------------------------

    def installed_uis(self) -> list[str]:
        """UIs with an installed adapter (those in runtime.json without one are left alone)."""
        return sorted(self.registry.ui_adapters)

    def sync(self, changed: Collection[str] = (), *, verify: bool = False) -> Stacks:
        """Bring every stacked view of every installed UI up to date after ``changed`` packs
        changed (``verify``: compare every pack with what the views were planned from)."""
        stacks = self.files.stacks()
        before = {ui: list(s) for ui, s in stacks.items()}
        for ui in self.installed_uis():
            stack = stacks.setdefault(ui, [GLOBAL_PROFILE])
            self.sync_ui(ui, stack, changed, verify=verify)
        if stacks != before or not self.layout.runtime_file.is_file():
            self.files.save_stacks(stacks)
        return stacks

    def sync_ui(self, ui: str, stack: Sequence[str], changed: Collection[str] = (), *, verify: bool = False) -> None:
        """Update the global view and every view on ``stack`` for one UI; point ``active``."""
        adapter = self.registry.ui(ui)
        before = None if verify else read_fingerprint(self.tree_path(ui, GLOBAL_PROFILE))
        base = self._global_record(ui, adapter, changed, verify)
        base_digest = self._digest_of(base)
        if self.stable(ui):  # one tree: it shows the top of the stack
            self._convert_to_stable(ui)
            top = stack[-1]
            record = base if top == GLOBAL_PROFILE else self._derived_record(ui, adapter, top, base, base.dirty)
            self.write(record or base, base=None if record is base or record is None else base_digest)
            return
        self.write(base)
        for name in dict.fromkeys(stack):
            if name != GLOBAL_PROFILE:
                derived = self._derived_record(ui, adapter, name, base, base.dirty, before.digest if before else None)
                if derived is not None:
                    self.write(derived, base=base_digest)
        self._convert_from_stable(ui)
        point_active(self.layout, ui, stack[-1])

    def _convert_to_stable(self, ui: str) -> None:
        """A store moved to a stable folder: ``active`` stops being a link (its trees stay until
        gc, which keeps what the UI wrote in them first)."""
        link = self.layout.active_link(ui)
        if link.is_symlink():
            link.unlink()
            self._records.pop(link, None)

    def _convert_from_stable(self, ui: str) -> None:
        """A store that can link again: a stable ``active`` folder is set aside (what the UI
        wrote in it was kept by the sweep) and becomes a link."""
        link = self.layout.active_link(ui)
        if link.is_dir() and not link.is_symlink():
            self._set_aside(link)

    def ensure(self, ui: str, profile: str) -> None:
        """Make the view of ``profile`` for ``ui`` current (building it if needed; in a stable
        folder: make ``active`` show it)."""
        if self.is_current(ui, profile):
            return
        if self.stable(ui):
            self.sync_ui(ui, [GLOBAL_PROFILE, profile] if profile != GLOBAL_PROFILE else [GLOBAL_PROFILE])
            return
        adapter = self.registry.ui(ui)
        base = self._global_record(ui, adapter, (), verify=False)
        if not self.is_current(ui, GLOBAL_PROFILE):
            self.write(base)
        if profile == GLOBAL_PROFILE:
            return
        derived = self._derived_record(ui, adapter, profile, base)
        if derived is None:
            raise SynapseError(f"profile '{profile}' is missing; run 'synapse doctor --fix'")
        self.write(derived, base=self._digest_of(base))

    def _digest_of(self, record: ViewRecord) -> str:
        return view_digest(record.layout, record.policy, record.order, record.digests, self._aliases(record))

    def is_current(self, ui: str, profile: str) -> bool:
        """Whether a view exists and was planned from what state says now, checked without
        reading any pack: the global view is kept current by every command, and a derived view
        is current when it was planned from the global view as it is and its profile file is
        unchanged (the same check the fast switching path makes)."""
        if self.stable(ui):
            record = self.record(ui, self.tree_path(ui, profile))
            fingerprint = read_fingerprint(self.tree_path(ui, profile))
            return (
                record is not None
                and record.profile == profile
                and fingerprint is not None
                and fingerprint.plugin == self.plugin_of(ui)
                and fingerprint.profile == profile_stamp(self.layout, profile)
                and not any(self.blobs.has(s) for s in fingerprint.missing)
            )
        return view_is_current(self.layout, ui, profile, self.plugin_of(ui), self.blobs.has)

    def check(self, ui: str, profile: str) -> list[str]:
        """Compare a view with what state says now, reading every pack: what is wrong with it,
        if anything (for doctor)."""
        root = self.tree_path(ui, profile)
        record = read_record(root)
        if record is None or read_fingerprint(root) is None:
            return ["missing"]
        if record.profile != profile:
            return [] if self.stable(ui) else [f"showing {record.profile}"]  # a stable folder shows only the top
        tree = self.tree(ui, root)
        wrong = [
            f"holding a dangling link {rel}" for rel, p in record.placements.items() if not _resolves(tree, rel, p)
        ]
        adapter = self.registry.ui(ui)
        base = self._global_record(ui, adapter, (), verify=True)
        expected = base if profile == GLOBAL_PROFILE else self._derived_record(ui, adapter, profile, base)
        if expected is None:
            return [*wrong, "of a profile that no longer exists"]
        want = {rel: (p.kind, p.sha256, p.target) for rel, p in expected.placements.items()}
        have = {rel: (p.kind, p.sha256, p.target) for rel, p in record.placements.items()}
        if want != have or record.order != expected.order or record.policy != expected.policy:
            wrong.append("out of date")
        return wrong

    def rebuild(self, ui: str, stack: Sequence[str]) -> None:
        """Recreate the views of ``stack`` from state and blobs alone (old trees set aside;
        a stable folder is brought in line entry by entry: the UI points at it)."""
        for name in dict.fromkeys([GLOBAL_PROFILE, *stack]):
            root = self.tree_path(ui, name)
            if root.exists() and not self.stable(ui):
                self._set_aside(root)
        self.forget()
        self.sync_ui(ui, stack, verify=True)

    def trees(self, ui: str) -> list[Path]:
        """Every tree of ``ui``: its profile trees and a stable ``active`` folder (not the kept
        area, staging or trash)."""
        top = self.layout.views_dir / ui / "profiles"
        found = []
        if top.is_dir() and is_inside(self.layout.root, top / "x"):
            found = sorted(p for p in top.iterdir() if not p.name.startswith(".") and p.is_dir() and not p.is_symlink())
        active = self.layout.active_link(ui)
        stable = active.is_dir() and not active.is_symlink() and is_inside(self.layout.root, active)
        return [*found, active] if stable else found

    def leftovers(self, ui: str) -> list[Path]:
        """Staging trees of killed commands and trees set aside."""
        found = []
        for top in (self.layout.views_dir / ui / "profiles", self.layout.views_dir / ui):
            if top.is_dir() and is_inside(self.layout.root, top / "x"):  # never what a link leads to
                found += [p for p in top.iterdir() if p.name.startswith((".staging-", ".trash-"))]
        return sorted(found)


def _resolves(tree: Tree, rel: str, placement: Placement) -> bool:
    """Whether a placed file can be opened (a link whose blob or kept file is gone cannot)."""
    return placement.kind == "kept" or os.path.exists(tree.path(rel))


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def placements_of(
    plan: Plan, kept_units: Sequence[str], *, in_place: bool = False
) -> tuple[dict[str, Placement], dict[str, str]]:
    """What Synapse places in a tree: kept links first (the UI's files win), then each entry and
    its sidecars. Returns the placements and the entries a kept file stands in the way of.
    ``in_place``: the kept files stand in the tree itself (a stable folder): no links to them."""
    placements: dict[str, Placement] = {} if in_place else {u: Placement("kept", target=u) for u in kept_units}
    taken = set(kept_units)
    kept_prefixes = tuple(f"{unit}/" for unit in kept_units)
    blocked: dict[str, str] = {}
    with_sidecars = []
    for rel, entry in plan.entries.items():
        if rel in taken or (kept_prefixes and rel.startswith(kept_prefixes)):
            blocked[rel] = "a file the UI wrote"
            continue
        placements[rel] = Placement("entry", entry["sha256"])
        if "sidecars" in entry:
            with_sidecars.append(entry)
    for entry in with_sidecars:  # after every entry: a sidecar never takes a model's place
        for rel, (_name, digest) in zip(sidecar_paths(entry), entry["sidecars"], strict=True):
            if rel not in placements and rel not in taken and not (kept_prefixes and rel.startswith(kept_prefixes)):
                placements[rel] = Placement("sidecar", digest)
    return placements, blocked


def discard_leftovers(root: Path, paths: Iterable[Path]) -> None:
    """Delete staging trees of killed commands and trees set aside (links never followed)."""
    for path in paths:
        with contextlib.suppress(OSError):
            remove_leftover(root, path)
