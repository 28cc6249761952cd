"""Packs: import from a source, install their blobs, list, show and remove them."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import attrs

from synapse_core.blobs import BlobStore, Ingested, IngestMode
from synapse_core.downloads import Fetcher, target_problem
from synapse_core.errors import Conflict, InvalidInput, PluginError, SourceError, SynapseError
from synapse_core.layout import write_json
from synapse_core.models import LockedResource, Pack, PackLock, PreviewIndex, PreviewInfo
from synapse_core.names import check_pack_name, sanitize_file_name, sanitize_pack_name
from synapse_core.plugins import PluginRegistry
from synapse_core.results import (
    ImportResult,
    InstallResult,
    PackDetails,
    PackSummary,
    ResourceStatus,
)
from synapse_core.sources import (
    MAX_DESCRIPTION_CHARS,
    MAX_PREVIEW_BYTES,
    FetchTarget,
    ImportRequest,
    PreviewImage,
    ResolvedPack,
    ResolvedResource,
    Source,
)
from synapse_core.state import StateFiles

MAX_PREVIEWS = 4


class PackService:
    """Turns references into packs and keeps their blobs present."""

    def __init__(self, files: StateFiles, blobs: BlobStore, registry: PluginRegistry, fetcher: Fetcher) -> None:
        self.files = files
        self.blobs = blobs
        self.registry = registry
        self.fetcher = fetcher

    def resolve(self, request: ImportRequest) -> tuple[Source, ResolvedPack]:
        """Ask the source that understands the reference for a pack draft (no state change)."""
        if os.path.lexists(request.ref) and self.files.layout.holds(Path(request.ref)):
            raise self._inside_the_store(request.ref)
        source = self.registry.source_for(request.ref)
        try:
            resolved = source.resolve(request)
        except SynapseError:
            raise
        except Exception as exc:  # a plugin's bug (or a ValidationError of what it built) is one line
            raise PluginError(f"source '{source.name}' failed to resolve {request.ref}: {type(exc).__name__}") from exc
        for resource in resolved.resources:
            problem = target_problem(resource.target)
            if problem is not None:
                raise SourceError(f"{source.display_name} answered with unusable data: {problem}; nothing was stored")
            local = source.local_path(resolved.pack, resource.target)
            if local is not None and self.files.layout.holds(local):
                raise self._inside_the_store(str(local))
        name = check_pack_name(resolved.pack.name if request.name is None else request.name)
        self.check_name_free(name)
        resolved.pack.name = name
        return source, resolved

    def resolve_each(self, request: ImportRequest) -> tuple[Source, list[ResolvedPack]]:
        """A folder as one pack per model file (no state change): each keeps its path inside
        the folder as its exposed name (``styles/ink.safetensors``), so workflows and prompts
        that name it keep working. Pack names come from the file names (with their folder where
        two files share one); a name already taken is an error naming it."""
        folder = Path(request.ref).expanduser().absolute()
        if not folder.is_dir():
            raise InvalidInput(f"--each takes a folder; {request.ref} is not one")
        source, whole = self.resolve(attrs.evolve(request, name=request.name or "batch"))
        stems = [res.spec.expose.rsplit(".", 1)[0] for res in whole.resources]
        stem_count = Counter(stems)
        base_count = Counter(stem.rsplit("/", 1)[-1] for stem in stems)
        resolved: list[ResolvedPack] = []
        for res, stem in zip(whole.resources, stems, strict=True):
            base = stem.rsplit("/", 1)[-1]
            raw = base if stem_count[stem] == 1 and base_count[base] == 1 else stem
            name = check_pack_name(sanitize_pack_name(raw.replace("/", "_")))
            self.check_name_free(name)
            spec = res.spec.model_copy(update={"id": "main"})
            pack = whole.pack.model_copy(update={"name": name, "resources": [spec]}, deep=True)
            pack.source = pack.source.model_copy(
                update={
                    "url": res.target.url,
                    "metadata": {**pack.source.metadata, "path": str(folder / res.spec.expose)},
                }
            )
            notes = () if resolved else whole.notes  # said once, with the first pack
            resolved.append(
                ResolvedPack(pack=pack, resources=(ResolvedResource(spec=spec, target=res.target),), notes=notes)
            )
        taken = Counter(r.pack.name for r in resolved)
        doubled = sorted(n for n, count in taken.items() if count > 1)
        if doubled:
            raise InvalidInput(f"{request.ref}: several files would become the pack {doubled[0]}; rename one")
        return source, resolved

    def _inside_the_store(self, path: str) -> InvalidInput:
        root = self.files.layout.root
        return InvalidInput(
            f"{path} is inside the store ({root}), whose blobs and views are its own; import from outside it"
        )

    def mark_upstream(self, name: str, upstream: str) -> None:
        """Record whether the source still serves a pack ('ok', 'removed', 'archived'); its metadata stays."""
        pack = self.files.pack(name)
        if pack.upstream != upstream:
            pack.upstream = upstream  # type: ignore[assignment]
            self.files.save_pack(pack)

    def check_name_free(self, name: str) -> None:
        """Refuse a pack name that is taken."""
        if self.files.has_pack(name):
            raise Conflict(f"a pack named '{name}' already exists; choose another with --name or remove it first")

    def import_resolved(
        self,
        source: Source,
        resolved: ResolvedPack,
        mode: IngestMode = "copy",
        sync: bool = False,
        fetched: dict[int, Ingested] | None = None,
    ) -> ImportResult:
        """Write the pack: fetch what must be hashed now (or everything with ``sync``), then state.
        ``fetched``: its files were fetched already (a batch: see :meth:`import_many`)."""
        pack = resolved.pack
        jobs = [r for r in resolved.resources if sync or r.target.sha256 is None or source.local_path(pack, r.target)]
        if fetched is None:
            fetched = self._fetch_all(source, [(pack, r.target) for r in jobs], mode)
        lock = PackLock()
        for resource in resolved.resources:
            ingested = fetched.get(id(resource.target))
            lock.resources[resource.spec.id] = lock_entry(resource.target, ingested)
        warnings = list(resolved.notes)
        if pack.description and len(pack.description) > MAX_DESCRIPTION_CHARS:
            warnings.append(f"the description ({len(pack.description)} characters) was cut to {MAX_DESCRIPTION_CHARS}")
            pack.description = pack.description[:MAX_DESCRIPTION_CHARS]
        if mode != "copy" and not any(source.local_path(pack, r.target) for r in resolved.resources):
            warnings.append(f"--{mode} applies to local files only; {source.name} files are downloaded")
        for resource in jobs:
            if resource.target.sha256 is None and source.name != "local":
                warnings.append(f"{resource.target.file_name}: the source gave no sha256; kept the hash computed here")
        self.files.save_pack(pack, lock)
        previews = self._save_previews(source, pack, resolved.previews, warnings)
        return ImportResult(
            pack=pack.name,
            source=source.name,
            resources=self.resource_status(pack, lock),
            bytes_written=sum(i.size for i in fetched.values() if i.created),
            previews=previews,
            warnings=warnings,
        )

    def delete_moved(self, source: Source, resolved: ResolvedPack) -> list[str]:
        """Finish a ``--move`` import once it is committed: delete the originals, whose bytes
        the store now holds; returns a warning for each that could not be deleted.

        Right before each deletion the blob is checked again (present, and the original's own
        inode or a blob that still hashes to its name): correctness must not depend on the lock,
        which does nothing on some network file systems."""
        warnings = []
        lock = self.files.lock(resolved.pack.name)
        for resource in resolved.resources:
            try:
                path = source.local_path(resolved.pack, resource.target)
            except SynapseError:
                continue  # already gone
            if path is None:
                continue
            locked = lock.resources.get(resource.spec.id)
            try:
                problem = self._unsafe_to_delete(path, locked.sha256 if locked else None, resource.target.size)
                if problem is None:
                    path.unlink()
                    continue
            except FileNotFoundError:
                continue  # the store's inode already: the mutation finished the move
            except OSError as exc:
                problem = exc.strerror or str(exc)
            warnings.append(f"{path} was imported but not deleted: {problem}")
        return warnings

    def _unsafe_to_delete(self, path: Path, sha256: str | None, size: int | None) -> str | None:
        """Why deleting a moved original could lose data now, or None."""
        if sha256 is None or not self.blobs.has(sha256):
            return "its copy in the store is missing (was it removed meanwhile?)"
        st = path.stat()
        if st.st_size != size:
            return "it changed during the import"
        if os.stat(self.blobs.path(sha256)).st_ino != st.st_ino and not self.blobs.verify(sha256):
            return "its copy in the store does not match it"
        return None

    def import_many(
        self, source: Source, resolved: list[ResolvedPack], mode: IngestMode = "copy"
    ) -> list[ImportResult]:
        """Write several packs of local files, fetching all their files at once (in parallel)."""
        jobs = [(r.pack, res.target) for r in resolved for res in r.resources]
        fetched = self._fetch_all(source, jobs, mode)
        return [
            self.import_resolved(
                source,
                r,
                mode,
                fetched={id(x.target): fetched[id(x.target)] for x in r.resources if id(x.target) in fetched},
            )
            for r in resolved
        ]

    def _fetch_all(self, source: Source, jobs: list[tuple[Pack, FetchTarget]], mode: IngestMode) -> dict[int, Ingested]:
        """Fetch targets in parallel; on any failure remove the blobs this call created."""
        results = self.fetcher.fetch_many([(source, pack, t) for pack, t in jobs], mode)
        errors = [r for r in results if isinstance(r, SynapseError)]
        done = {id(t): r for (_p, t), r in zip(jobs, results, strict=True) if isinstance(r, Ingested)}
        if errors:
            for ingested in done.values():
                if ingested.created:
                    self.blobs.discard(ingested)
            raise errors[0]
        return done

    def _save_previews(
        self, source: Source, pack: Pack, previews: tuple[PreviewImage, ...], warnings: list[str]
    ) -> int:
        if not previews:
            return 0
        folder = self.files.layout.previews_dir(pack.name)
        saved: dict[str, PreviewInfo] = {}
        for preview in previews[:MAX_PREVIEWS]:
            try:
                data = source.fetch_preview(preview)
                if len(data) > MAX_PREVIEW_BYTES:
                    warnings.append(f"preview {preview.file_name} skipped: larger than {MAX_PREVIEW_BYTES >> 20} MiB")
                    continue
                folder.mkdir(parents=True, exist_ok=True)
                file = sanitize_file_name(preview.file_name)
                (folder / file).write_bytes(data)
                saved[file] = PreviewInfo(file=file, nsfw=preview.nsfw, width=preview.width, height=preview.height)
            except Exception as exc:  # a preview never fails an import
                warnings.append(f"preview {preview.file_name} skipped: {exc}")
        if saved:
            write_json(self.files.layout.previews_index(pack.name), PreviewIndex(previews=list(saved.values())))
        return len(saved)

    def install(self, name: str, mode: IngestMode = "copy") -> InstallResult:
        """Make every blob of a pack present, fetching the missing ones."""
        pack, lock = self.files.pack(name), self.files.lock(name)
        source = self.registry.source(pack.source.provider)
        missing = {rid: res for rid, res in lock.resources.items() if not self.blobs.has(res.sha256)}
        targets = [FetchTarget.from_locked(res) for res in missing.values()]
        fetched = self._fetch_all(source, [(pack, t) for t in targets], mode)
        present = sorted(set(lock.resources) - set(missing))
        return InstallResult(
            pack=name,
            fetched=sorted(missing),
            present=present,
            bytes_written=sum(i.size for i in fetched.values() if i.created),
        )

    def missing_blobs(self, name: str) -> list[str]:
        """File names of a pack's resources whose blob is not present."""
        lock = self.files.lock(name)
        return sorted(res.file_name for res in lock.resources.values() if not self.blobs.has(res.sha256))

    def resource_status(self, pack: Pack, lock: PackLock) -> list[ResourceStatus]:
        """Each resource of a pack with its lock entry and presence."""
        out = []
        for spec in pack.resources:
            locked = lock.resources.get(spec.id)
            out.append(
                ResourceStatus(
                    id=spec.id,
                    kind=spec.kind,
                    expose=spec.expose,
                    sha256=locked.sha256 if locked else None,
                    size=locked.size if locked else None,
                    installed=bool(locked and self.blobs.has(locked.sha256)),
                )
            )
        return out

    def summary(self, name: str) -> PackSummary:
        """One line about a pack."""
        pack, lock = self.files.pack(name), self.files.lock(name)
        status = self.resource_status(pack, lock)
        return PackSummary(
            name=pack.name,
            provider=pack.source.provider,
            kinds=sorted({r.kind for r in pack.resources}),
            resources=len(pack.resources),
            size=sum(r.size or 0 for r in status),
            installed=all(r.installed for r in status),
            policy=pack.policy,
            upstream=pack.upstream,
        )

    def details(self, name: str) -> PackDetails:
        """Everything about a pack."""
        pack, lock = self.files.pack(name), self.files.lock(name)
        folder = self.files.layout.previews_dir(name)
        previews = sorted(str(p) for p in folder.iterdir()) if folder.is_dir() else []
        return PackDetails(pack=pack, lock=lock, resources=self.resource_status(pack, lock), previews=previews)


def lock_entry(target: FetchTarget, ingested: Ingested | None = None) -> LockedResource:
    """The lock.json entry of a target: its hash and size as fetched, else as the source gave them."""
    sha256 = ingested.sha256 if ingested else target.sha256
    size = ingested.size if ingested else target.size
    if sha256 is None or size is None:
        raise SourceError(f"{target.file_name}: the source gave no sha256 or size and nothing was fetched")
    return LockedResource(
        sha256=sha256,
        size=size,
        file_name=target.file_name,
        url=target.url,
        version_id=target.version_id,
        file_id=target.file_id,
        hashes=dict(target.hashes),
    )
