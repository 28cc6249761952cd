"""The plan of ``synapse adopt``: hash what was found (in parallel, from the hash cache where a
file is unchanged), collapse duplicates, name one pack per distinct model file, and say what is
linked, what must be copied and what the library already has. Changes nothing but the cache."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path

import attrs

from synapse_core.adopt_scan import Found, Scan
from synapse_core.hashing import file_identity, hash_file
from synapse_core.identify import HashCacheFile
from synapse_core.kinds import AssetKind
from synapse_core.names import check_pack_name, sanitize_pack_name
from synapse_core.progress import NoProgress, Progress
from synapse_core.results import AdoptFile, AdoptPackPlan, AdoptPlan, AdoptSkip
from synapse_core.sources import ResolvedPack
from synapse_core.ui import FoundMetadata, UIAdapter

SAVE_EVERY_SECONDS = 20.0
"""While hashing, the hash cache is saved this often, so that a killed adopt resumes."""


class _Stopped(Exception):
    pass


@attrs.define
class Group:
    """The files of one sha256: one blob, and (unless the library has all its names) one pack."""

    sha256: str
    size: int
    files: list[Found]
    source: Found
    action: str
    """``link``, ``copy`` or ``present``."""
    pack: str | None = None
    resources: list[tuple[AssetKind, str]] = attrs.Factory(list)
    """(kind, expose) the new pack exposes."""
    metadata: FoundMetadata = attrs.Factory(FoundMetadata)
    identified: tuple[str, ResolvedPack] | None = None


@attrs.define
class Prepared:
    """A plan and what carrying it out needs."""

    plan: AdoptPlan
    scan: Scan
    groups: list[Group]
    sha_of: dict[tuple[int, int], str]
    created: list[str] = attrs.Factory(list)
    """Files the attach creates (undo removes them once they are empty again)."""


def hash_found(
    found: Sequence[Found],
    cache: HashCacheFile,
    save: Callable[[], None],
    progress: Progress | None = None,
    workers: int | None = None,
) -> tuple[dict[tuple[int, int], str], list[AdoptSkip], int, int]:
    """sha256 per (device, inode), hashing in parallel what the cache does not know. A file that
    changes while it is hashed is skipped. Ctrl-C stops within a read; what was hashed is kept."""
    progress = progress or NoProgress()
    shas: dict[tuple[int, int], str] = {}
    todo: dict[tuple[int, int], Found] = {}
    for item in found:
        known = cache.known(item.info)
        if known is not None:
            shas[item.identity] = known
        else:
            todo.setdefault(item.identity, item)
    skipped: list[AdoptSkip] = []
    if not todo:
        return shas, skipped, 0, 0
    total = sum(f.info.st_size for f in todo.values())
    label = f"hashing {len(todo)} files"
    progress.add_total(label, total)
    stop = threading.Event()

    def advance(n: int) -> None:
        if stop.is_set():
            raise _Stopped
        progress.advance(n)

    def one(item: Found) -> tuple[Found, str | None]:
        path = item.bytes_path
        sha, size = hash_file(path, advance)
        after = os.stat(path)
        return item, sha if file_identity(after) == file_identity(item.info) and size == item.info.st_size else None

    last_save = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1), thread_name_prefix="adopt-hash")
    try:
        futures: list[Future[tuple[Found, str | None]]] = [pool.submit(one, f) for f in todo.values()]
        for future in as_completed(futures):
            if time.monotonic() - last_save > SAVE_EVERY_SECONDS:
                save()
                last_save = time.monotonic()
            try:
                item, sha = future.result()
            except OSError as exc:
                skipped.append(AdoptSkip(path=str(exc.filename), reason=f"unreadable ({exc.strerror}); skipped"))
                continue
            if sha is None:
                reason = "it changed while it was hashed; adopt again when nothing writes to it"
                skipped.append(AdoptSkip(path=str(item.path), reason=reason))
                continue
            shas[item.identity] = sha
            cache.remember(item.info, sha)
    except BaseException:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        save()  # the next run resumes from what was hashed
        raise
    finally:
        pool.shutdown(wait=True)
        progress.finish(label)
    save()
    return shas, skipped, len(todo), total


def metadata_of(
    files: Sequence[Found], adapters: Mapping[str, UIAdapter]
) -> tuple[FoundMetadata, dict[str, list[str]]]:
    """What the sidecars of a group's files say (its own UI's reading first, then every UI's for a
    folder of models), and the sidecar files of each file."""
    fields: dict[str, object] = {}
    sidecars: dict[str, list[str]] = {}
    files_read: list[Path] = []
    previews: list[Path] = []
    configs: list[Path] = []
    for item in files:
        readers = [item.adapter] if item.adapter is not None else list(adapters.values())
        siblings = _siblings(item.path.parent)
        for reader in readers:
            found = reader.read_metadata(item.path, siblings)
            for path in found.files:
                if path not in files_read:
                    files_read.append(path)
                    sidecars.setdefault(str(item.path), []).append(path.name)
            previews += [p for p in found.previews if p not in previews]
            configs += [p for p in found.configs if p not in configs]
            words = list(fields.get("trigger_words", ()))  # type: ignore[call-overload]
            fields["trigger_words"] = tuple(words + [w for w in found.trigger_words if w not in words])
            for key in ("base_model", "description", "preferred_weight", "notes"):
                value = getattr(found, key)
                if value and key not in fields:
                    fields[key] = value
    meta = FoundMetadata(files=tuple(files_read), previews=tuple(previews), configs=tuple(configs), **fields)  # type: ignore[arg-type]
    return meta, sidecars


_LISTINGS: dict[str, frozenset[str]] = {}


def _siblings(folder: Path) -> frozenset[str]:
    """The names in ``folder`` (listed once per plan: see :func:`build_plan`)."""
    key = str(folder)
    if key not in _LISTINGS:
        try:
            _LISTINGS[key] = frozenset(os.listdir(folder))
        except OSError:
            _LISTINGS[key] = frozenset()
    return _LISTINGS[key]


def pack_name(source: Found, taken: set[str]) -> str:
    """A free pack name from the file's name (its folder's too, then a number, when taken)."""
    stem = source.expose.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    parent = source.expose.rsplit("/", 2)[-2] if "/" in source.expose else source.path.parent.name
    candidates = [stem, f"{parent}_{stem}"]
    for raw in candidates:
        name = sanitize_pack_name(raw)
        if name.lower() not in taken:
            return check_pack_name(name)
    base, n = sanitize_pack_name(stem), 2
    while f"{base}-{n}".lower() in taken:
        n += 1
    return check_pack_name(f"{base}-{n}")


def build_plan(
    paths: Sequence[str],
    scan: Scan,
    shas: dict[tuple[int, int], str],
    *,
    blob_device: int,
    has_blob: Callable[[str], bool],
    existing: Mapping[str, set[tuple[AssetKind, str]]],
    pack_names: set[str],
    adapters: Mapping[str, UIAdapter],
    keep_originals: bool,
) -> tuple[AdoptPlan, list[Group]]:
    """Group the hashed files by sha256 and decide each group's pack and action.
    ``existing``: sha256 -> (kind, expose) that packs already expose those bytes as."""
    plan = AdoptPlan(paths=list(paths), installs=scan.installs, skipped=scan.skipped, keep_originals=keep_originals)
    plan.warnings += scan.warnings
    by_sha: dict[str, list[Found]] = {}
    for item in scan.found:
        sha = shas.get(item.identity)
        if sha is not None:
            by_sha.setdefault(sha, []).append(item)
    _LISTINGS.clear()
    taken = {n.lower() for n in pack_names}
    groups = []
    shown: dict[tuple[AssetKind, str], str] = {}
    for sha, files in by_sha.items():
        present = has_blob(sha)
        linkable = [f for f in files if f.info.st_dev == blob_device]
        source = linkable[0] if linkable and not present else files[0]
        action = "present" if present else ("link" if linkable else "copy")
        wanted: list[tuple[AssetKind, str]] = []
        for item in files:
            if (item.kind, item.expose) not in wanted:
                wanted.append((item.kind, item.expose))
        new = [r for r in wanted if r not in existing.get(sha, set())]
        meta, sidecars = metadata_of(files, adapters) if new else (FoundMetadata(), {})
        group = Group(sha, source.info.st_size, files, source, action, resources=new, metadata=meta)
        if new:
            group.pack = pack_name(source, taken)
            taken.add(group.pack.lower())
        for kind, expose in new:
            other = shown.setdefault((kind, expose), sha)
            if other != sha:
                plan.warnings.append(
                    f"two different files are both {kind.value} {expose}: each view shows one of them "
                    f"('synapse use PACK' picks)"
                )
        groups.append(group)
        for item in files:
            same_inode = item.identity == source.identity
            file_action = action if same_inode or action == "present" else "duplicate"
            plan.files.append(
                AdoptFile(
                    path=str(item.path),
                    ui=item.ui,
                    kind=item.kind,
                    why=item.why,
                    expose=item.expose,
                    size=item.info.st_size,
                    sha256=sha,
                    pack=group.pack or "(already in the library)",
                    action=file_action,
                    same_as=None if same_inode else str(source.path),
                    sidecars=sidecars.get(str(item.path), []),
                )
            )
        size = source.info.st_size
        if action == "link":
            plan.link_bytes += size
        elif action == "copy":
            plan.copy_bytes += size
        else:
            plan.present_bytes += size
        if group.pack:
            plan.packs.append(
                AdoptPackPlan(
                    name=group.pack,
                    new=True,
                    kinds=sorted({k for k, _ in new}),
                    exposes=[e for _, e in new],
                )
            )
    plan.needs_copy = plan.copy_bytes > 0
    return plan, groups
