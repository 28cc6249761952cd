"""Each model a file names, against the UI's active view, the library and the sources.

In that order, the first that answers decides the status:

1. ``present``: the UI's active view has it under exactly the name the file spells (and, when the
   file gives a hash, with those bytes; infotext names a file by hash, so there any name will do);
2. ``in_library``: a pack has the bytes, matched by hash when the file gives one, else by name
   (the exact path, then the bare file name, within the kind);
3. ``findable``: the file's URL or source reference resolves through the source that claims it
   (``registry.source_for``), or a source that looks files up by hash (``Source.lookup_hash``)
   knows the hash; a draft whose bytes the library already has is ``in_library``;
4. ``unresolvable``, with why.

Nothing is downloaded here; drafts are kept so that ``install --for`` fetches exactly what was shown.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence
from typing import Literal

import attrs

from synapse_core.errors import SynapseError
from synapse_core.kinds import AssetKind
from synapse_core.sources import ImportRequest, NotSupported, ResolvedPack, ResolvedResource, Source
from synapse_core.state import GLOBAL_PROFILE
from synapse_core.store import Store
from synapse_core.workflows.derived_hashes import DerivedHashIndex
from synapse_core.workflows.refs import HashClaim, ModelRef, ParsedFile, as_looked_up, normalise_name
from synapse_core.workflows.report import LibraryMatch, ModelNeed, NeedsReport, SourceOffer

_KNOWN_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pt2", ".pth", ".bin", ".gguf", ".sft", ".onnx")


@attrs.frozen
class LibraryFile:
    """One resource of one pack, with what its lock says."""

    pack: str
    resource_id: str
    kind: AssetKind
    expose: str
    sha256: str
    size: int
    hashes: dict[str, str]
    installed: bool

    def match(self, matched_by: Literal["hash", "name", "source hash"]) -> LibraryMatch:
        """This file as a report's library match."""
        return LibraryMatch(
            pack=self.pack,
            resource_id=self.resource_id,
            kind=self.kind,
            expose=self.expose,
            sha256=self.sha256,
            size=self.size,
            installed=self.installed,
            matched_by=matched_by,
        )


@attrs.define
class Draft:
    """A source's pack draft for one model, restricted to the one file that is it."""

    source: Source
    resolved: ResolvedPack


@attrs.define
class Resolution:
    """A report and, for each findable model (by its index), the draft ``install --for`` imports."""

    report: NeedsReport
    drafts: dict[int, Draft] = attrs.Factory(dict)
    refs: list[list[ModelRef]] = attrs.Factory(list)
    """The references of each model, by the model's index (``use --for`` places them)."""


def stem(name: str) -> str:
    """A file name without its folder and model extension (how infotext names files)."""
    base = posixpath.basename(normalise_name(name))
    return base[: -len(suffix)] if (suffix := _suffix(base)) else base


def _suffix(name: str) -> str:
    lowered = name.lower()
    return next((s for s in _KNOWN_SUFFIXES if lowered.endswith(s)), "")


def group_refs(refs: Iterable[ModelRef]) -> list[list[ModelRef]]:
    """References to the same model (same folder or kinds, same normalised name) together, in file order."""
    groups: dict[tuple[str, str], list[ModelRef]] = {}
    for ref in refs:
        groups.setdefault(ref.key(), []).append(ref)
    return list(groups.values())


class Resolver:
    """Gives each model of a parsed file its status in one store."""

    def __init__(self, store: Store, *, offline: bool = False) -> None:
        self.store = store
        self.offline = offline
        self.derived = DerivedHashIndex(store.blobs)
        self.library = list(self._library())

    def _library(self) -> Iterable[LibraryFile]:
        files = self.store.files
        for name in files.pack_names():
            pack, lock = files.pack(name), files.lock(name)
            for spec in pack.resources:
                locked = lock.resources.get(spec.id)
                if locked is None:
                    continue
                yield LibraryFile(
                    pack=name,
                    resource_id=spec.id,
                    kind=spec.kind,
                    expose=spec.expose,
                    sha256=locked.sha256,
                    size=locked.size,
                    hashes={k.lower(): v.lower() for k, v in locked.hashes.items()},
                    installed=self.store.blobs.has(locked.sha256),
                )

    # -- the report --------------------------------------------------------------------------

    def resolve(self, label: str, container: str, parsed: ParsedFile) -> Resolution:
        """The report of one file."""
        ui, profile, view = self._active_view(parsed.ui)
        report = NeedsReport(
            file=label, container=container, format=parsed.format, ui=ui, profile=profile, problems=parsed.problems
        )
        resolution = Resolution(report)
        for index, refs in enumerate(group_refs(parsed.refs)):
            need, draft = self._need(refs, ui, view)
            report.models.append(need)
            resolution.refs.append(refs)
            if draft is not None:
                resolution.drafts[index] = draft
        self.derived.save()
        return resolution

    def _active_view(self, ui: str | None) -> tuple[str | None, str | None, dict[str, LibraryFile]]:
        """The UI, its active profile, and what its view shows: path inside the view -> file."""
        if ui is None:
            return None, None, {}
        from synapse_core.views import read_record

        self.store.registry.ui(ui)  # an unknown UI is an error naming the known ones
        profile = self.store.files.stacks().get(ui, [GLOBAL_PROFILE])[-1]
        record = read_record(self.store.views.tree_path(ui, profile))
        by_resource = {(f.pack, f.resource_id): f for f in self.library}
        shown: dict[str, LibraryFile] = {}
        for path, entry in record.plan.entries.items() if record else ():
            found = by_resource.get((entry["pack"], entry["resource_id"]))
            if found is not None:
                shown[path] = found
        return ui, profile, shown

    def _need(
        self, refs: Sequence[ModelRef], ui: str | None, view: dict[str, LibraryFile]
    ) -> tuple[ModelNeed, Draft | None]:
        first = refs[0]
        claims = list(dict.fromkeys(c for r in refs for c in r.hashes))
        url = next((r.url for r in refs if r.url), None)
        source_ref = next((r.source_ref for r in refs if r.source_ref), None)
        need = ModelNeed(
            name=first.name,
            folder=first.folder,
            kinds=list(first.kinds),
            used_by=[r.where for r in refs],
            hashes={c.label: c.value for c in claims},
            url=url,
            status="unresolvable",
            detail="",
        )
        if ui is not None and self._present(need, first, claims, ui, view):
            return need, None
        if self._in_library(need, first, claims):
            return need, None
        if self.offline:
            need.detail = "not in the library; sources were not asked (--offline)"
            return need, None
        draft = self._from_sources(need, first, claims, url or source_ref)
        return need, draft

    # -- 1. the active view ---------------------------------------------------------------------

    def _view_folders(self, ui: str, ref: ModelRef) -> list[str]:
        """The folders of the view where the UI looks for a model of the reference's kinds."""
        adapter = self.store.registry.ui(ui)
        return [f.folder for k in ref.kinds if (f := adapter.folder(k)) is not None]

    def _present(
        self, need: ModelNeed, ref: ModelRef, claims: list[HashClaim], ui: str, view: dict[str, LibraryFile]
    ) -> bool:
        folders = self._view_folders(ui, ref)
        if not folders:
            return False
        shown = [(path, f) for path, f in view.items() if any(path.startswith(folder + "/") for folder in folders)]
        named = [(path, f) for path, f in shown if self._name_matches(ref, _inside(path, folders))]
        if claims and ref.match == "stem":  # infotext: the UI finds the file by its hash
            hashed = [(path, f) for path, f in shown if self._claims_match(claims, f)]
            if hashed:
                path, found = ((named and [p for p in named if p in hashed]) or hashed)[0]
                need.status, need.library = "present", found.match("hash")
                need.detail = f"in {ui}'s view as {_inside(path, folders)}"
                return True
            return False
        if ref.match == "path":  # the UI compares exact strings
            exact = [(path, f) for path, f in named if _inside(path, folders) == as_looked_up(ref.name)]
            if named and not exact:
                need.detail = f"{ui}'s view has {_inside(named[0][0], folders)}, not the name as spelled"
            named = exact
        if not named:
            return False
        path, found = named[0]
        if claims and not self._claims_match(claims, found):
            need.detail = f"{ui}'s view has {_inside(path, folders)} with other bytes than the file's hash"
            return False
        need.status, need.library = "present", found.match("hash" if claims else "name")
        need.detail = f"in {ui}'s view ({path})"
        return True

    # -- 2. the library -------------------------------------------------------------------------

    def _candidates(self, ref: ModelRef) -> list[LibraryFile]:
        return [f for f in self.library if not ref.kinds or f.kind in ref.kinds]

    def _in_library(self, need: ModelNeed, ref: ModelRef, claims: list[HashClaim]) -> bool:
        candidates = self._candidates(ref)
        how: Literal["hash", "name"]
        if claims:
            found = [f for f in candidates if self._claims_match(claims, f)]
            how = "hash"
        else:
            found = [f for f in candidates if self._name_matches(ref, f.expose)]
            if not found and ref.match == "path":
                base = posixpath.basename(normalise_name(ref.name))
                found = [f for f in candidates if posixpath.basename(f.expose) == base]
            how = "name"
        if not found:
            return False
        distinct = {f.sha256: f for f in found}
        if len(distinct) > 1:
            packs = ", ".join(sorted(f"{f.pack} ({f.expose})" for f in distinct.values()))
            need.status = "unresolvable"
            need.detail = (
                f"ambiguous: {len(distinct)} different files match by {how}: {packs}; "
                "remove all but one, or 'synapse use' the right pack"
            )
            return True
        best = min(found, key=lambda f: (not f.installed, f.pack))
        need.status, need.library = "in_library", best.match(how)
        state = "" if best.installed else ", not installed"
        need.detail = f"in pack {best.pack} as {best.expose}{state}"
        return True

    def _name_matches(self, ref: ModelRef, expose: str) -> bool:
        if ref.match == "stem":
            return stem(expose) == stem(ref.name)
        return normalise_name(expose) == normalise_name(ref.name)

    def _claims_match(self, claims: Sequence[HashClaim], file: LibraryFile) -> bool:
        return any(self._claim_matches(claim, file) for claim in claims)

    def _claim_matches(self, claim: HashClaim, file: LibraryFile) -> bool:
        value = claim.value
        for form in claim.forms:
            if form == "sha256" and file.sha256 == value:
                return True
            if form == "sha256_prefix" and file.sha256.startswith(value):
                return True
            if form in ("autov1", "autov3"):
                recorded = file.hashes.get(form)
                if recorded is not None and recorded[: len(value)] == value:
                    return True
                computable = form == "autov1" or file.expose.lower().endswith(".safetensors")
                if recorded is None and computable and self.derived.get(file.sha256, form) == value:
                    return True
        return False

    # -- 3. the sources -------------------------------------------------------------------------

    def _from_sources(self, need: ModelNeed, ref: ModelRef, claims: list[HashClaim], where: str | None) -> Draft | None:
        if where is not None:
            return self._from_reference(need, ref, claims, where)
        if claims:
            return self._from_hashes(need, ref, claims)
        need.detail = "the file gives only the name (no URL or hash) and no library file has it"
        return None

    def _from_reference(self, need: ModelNeed, ref: ModelRef, claims: list[HashClaim], where: str) -> Draft | None:
        registry = self.store.registry
        try:
            source = registry.source_for(where)
            resolved = source.resolve(ImportRequest(ref=where))
        except SynapseError as exc:
            need.detail = f"{_shown(where)}: {exc.message}"
            return None
        chosen = _pick(resolved, ref)
        if chosen is None:
            need.detail = f"{_shown(where)}: the source lists no file"
            return None
        sha = chosen.target.sha256
        if claims and sha is not None and not any(_draft_matches(c, chosen) for c in claims):
            need.detail = f"{_shown(where)}: the source's file has sha256 {sha[:12]}..., not the hash the file gives"
            return None
        return self._offer(need, source, resolved, chosen, where)

    def _from_hashes(self, need: ModelNeed, ref: ModelRef, claims: list[HashClaim]) -> Draft | None:
        asked, failures = [], []
        for source in self.store.registry.sources.values():
            for claim in claims:
                try:
                    resolved = source.lookup_hash(claim.value)
                except NotSupported:
                    break
                except SynapseError as exc:
                    failures.append(f"{source.name}: {exc.message}")
                    break
                asked.append(source.name)
                if resolved is None:
                    continue
                chosen = next((r for r in resolved.resources if _draft_matches(claim, r)), None)
                if chosen is not None:
                    return self._offer(need, source, resolved, chosen, f"hash:{claim.value}")
        values = ", ".join(f"{c.value} ({c.label})" for c in claims)
        if failures:
            need.detail = f"no library file has hash {values}; " + "; ".join(failures)
        elif not asked:
            need.detail = f"no library file has hash {values}, and no installed source looks files up by hash"
        else:
            hint = ""
            if any("sha256_prefix" in c.forms and len(c.value) == 12 for c in claims):
                hint = (
                    " (a 12-hex hash that starts the file's SHA-256, as recent Forge writes, is indexed by no source)"
                )
            need.detail = f"hash {values} matches no library file and no file of {', '.join(sorted(set(asked)))}{hint}"
        return None

    def _offer(
        self, need: ModelNeed, source: Source, resolved: ResolvedPack, chosen: ResolvedResource, asked: str
    ) -> Draft | None:
        target = chosen.target
        if target.sha256 is not None:
            have = [f for f in self.library if f.sha256 == target.sha256]
            if have:
                best = min(have, key=lambda f: (not f.installed, f.pack))
                need.status, need.library = "in_library", best.match("source hash")
                need.detail = f"{source.name} names bytes pack {best.pack} has as {best.expose}"
                return None
        pack = resolved.pack.model_copy(update={"resources": [chosen.spec]})
        draft = Draft(source, attrs.evolve(resolved, pack=pack, resources=(chosen,)))
        need.status = "findable"
        need.offer = SourceOffer(
            source=source.name,
            ref=asked,
            pack=resolved.pack.name,
            file_name=target.file_name,
            size=target.size,
            sha256=target.sha256,
        )
        need.detail = f"on {source.display_name}: {target.file_name}"
        return draft


def _inside(path: str, folders: Sequence[str]) -> str:
    folder = next(f for f in folders if path.startswith(f + "/"))
    return path[len(folder) + 1 :]


def _pick(resolved: ResolvedPack, ref: ModelRef) -> ResolvedResource | None:
    """The resource of a draft that is the model: the one with the file name the workflow spells."""
    if not resolved.resources:
        return None
    base = posixpath.basename(normalise_name(ref.name))
    return next((r for r in resolved.resources if r.target.file_name == base), resolved.resources[0])


def _draft_matches(claim: HashClaim, resource: ResolvedResource) -> bool:
    target = resource.target
    values = {v.lower() for v in target.hashes.values()} | ({target.sha256} if target.sha256 else set())
    if claim.value in values:
        return True
    return "sha256_prefix" in claim.forms and target.sha256 is not None and target.sha256.startswith(claim.value)


def _shown(ref: str) -> str:
    """A reference for a message, without a query string (which may hold a token)."""
    return ref.split("?", 1)[0] if "://" in ref else ref
