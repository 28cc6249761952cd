"""Finding packs: search local packs and sources, and identify local files by their hash."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from synapse_core.errors import InvalidInput, SynapseError
from synapse_core.identify import HashCacheFile
from synapse_core.kinds import AssetKind
from synapse_core.layout import StoreLock
from synapse_core.packs import PackService
from synapse_core.plugins import PluginRegistry
from synapse_core.results import Identified, PackSummary, RemoteHit, SearchResult
from synapse_core.sources import NotSupported, ResolvedPack, SearchQuery
from synapse_core.state import StateFiles

Matches = dict[str, tuple[str, ResolvedPack]]
"""sha256 -> (source name, the pack that source has for those bytes)."""


class Discovery:
    """Search and identify, over the store's packs and every source that can."""

    def __init__(self, files: StateFiles, packs: PackService, registry: Callable[[], PluginRegistry]) -> None:
        self.files = files
        self.packs = packs
        self._registry = registry

    def local(self, text: str, kind: AssetKind | str | None) -> list[PackSummary]:
        """Packs where every word of ``text`` is in the name, tags, trigger words, base model,
        creator or the name of one of the pack's files (as shown in views and as the source named it)."""
        needles = text.lower().split() or [""]
        found = []
        for name in self.files.pack_names():
            pack = self.files.pack(name)
            files = [r.expose for r in pack.resources] + [r.file_name for r in self.files.lock(name).resources.values()]
            words = [pack.name, *pack.tags, *pack.trigger_words, pack.base_model or "", pack.creator or "", *files]
            haystack = "\n".join(words).lower()
            if all(n in haystack for n in needles) and (kind is None or any(r.kind == kind for r in pack.resources)):
                found.append(self.packs.summary(name))
        return found

    def search(
        self, text: str, *, remote: bool, kind: AssetKind | str | None, base_model: str | None, limit: int
    ) -> SearchResult:
        """Local matches and, with ``remote``, what every searching source offers (one failing source is noted)."""
        hits: list[RemoteHit] = []
        errors: list[str] = []
        if remote:
            query = SearchQuery(text=text, kind=AssetKind(kind) if kind else None, base_model=base_model, limit=limit)
            for source in self._registry().sources.values():
                try:
                    found = source.search(query)
                except NotSupported:
                    continue
                except SynapseError as exc:
                    errors.append(f"{source.name}: {exc.message}")
                    continue
                hits += [RemoteHit(**{**attrs.asdict(h), "tags": list(h.tags)}) for h in found]
        return SearchResult(local=self.local(text, kind), remote=hits, errors=errors)

    def hash_files(self, paths: Sequence[Path], lock: StoreLock) -> list[tuple[Path, str, int]]:
        """Each file's sha256 and size, from the hash cache where the file is unchanged
        (hashing runs outside the store lock; only saving the cache takes it)."""
        cache = HashCacheFile(self.files.layout)
        files = []
        for path in paths:
            if not path.is_file():
                raise InvalidInput(f"{path}: no such file")
            files.append((path, *cache.sha256(path)))
        with lock.hold():
            cache.save()
        return files

    def match(self, shas: Sequence[str]) -> Matches:
        """Ask each source that can identify files about the hashes no earlier source knew."""
        matches: Matches = {}
        for source in self._registry().sources.values():
            missing = [s for s in shas if s not in matches]
            if not missing:
                break
            try:
                found = source.identify(missing)
            except NotSupported:
                continue
            matches.update({sha: (source.name, resolved) for sha, resolved in found.items()})
        return matches

    def identify(self, files: Sequence[tuple[Path, str, int]], refs: dict[str, list[str]]) -> list[Identified]:
        """What the sources know about hashed files, and which packs already hold them."""
        matches = self.match(sorted({sha for _, sha, _ in files}))
        out = []
        for path, sha, size in files:
            source, resolved = matches.get(sha, (None, None))
            out.append(
                Identified(
                    path=str(path),
                    sha256=sha,
                    size=size,
                    source=source,
                    name=resolved.pack.name if resolved else None,
                    ref=resolved.pack.source.url if resolved else None,
                    version_id=resolved.pack.source.version_id if resolved else None,
                    in_packs=refs.get(sha, []),
                )
            )
        return out

    def adopt_identity(self, name: str) -> list[str]:
        """Give a freshly imported local pack the metadata a source has for its files; returns warnings."""
        pack, lock = self.files.pack(name), self.files.lock(name)
        matches = self.match(sorted({r.sha256 for r in lock.resources.values()}))
        if not matches:
            guessed = [s.expose for s in pack.resources if s.kind == AssetKind.OTHER]
            hint = f"; {', '.join(guessed)} kept kind 'other' (pass --kind)" if guessed else ""
            return [f"{name}: no source knows these files; the pack keeps its local metadata{hint}"]
        for spec in pack.resources:
            match = matches.get(lock.resources[spec.id].sha256)
            if match is None:
                continue
            remote = match[1]
            pack.source, pack.base_model, pack.creator = remote.pack.source, remote.pack.base_model, remote.pack.creator
            pack.trigger_words, pack.tags, pack.description = (
                remote.pack.trigger_words,
                remote.pack.tags,
                remote.pack.description,
            )
            pack.policy = "pinned"
            target = remote.resources[0].target
            spec.kind = remote.resources[0].spec.kind
            lock.resources[spec.id] = lock.resources[spec.id].model_copy(
                update={
                    "url": target.url,
                    "version_id": target.version_id,
                    "file_id": target.file_id,
                    "hashes": dict(target.hashes),
                }
            )
        self.files.save_pack(pack, lock)
        return []
