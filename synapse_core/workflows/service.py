"""``needs``, ``install --for``: read a file, report its models, fetch what is findable."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import attrs

from synapse_core.errors import InvalidInput
from synapse_core.sources import ResolvedPack
from synapse_core.store import Store
from synapse_core.workflows.containers import MAX_FILE_BYTES
from synapse_core.workflows.read import read_file
from synapse_core.workflows.refs import ModelRef, ParsedFile, normalise_name
from synapse_core.workflows.report import InstallForResult, InstallItem
from synapse_core.workflows.resolve import Draft, Resolution, Resolver


def read_path(path: Path) -> bytes:
    """A file's bytes, or InvalidInput saying why it cannot be read."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise InvalidInput(f"{path}: not a file; give a workflow (.json) or an image")
        if size > MAX_FILE_BYTES:
            raise InvalidInput(
                f"{path}: larger than {MAX_FILE_BYTES >> 20} MiB; not a workflow or an image Synapse reads"
            )
        return path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file") from None
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot be read ({exc.strerror})") from exc


class Workflows:
    """What a workflow or image needs from one store, and getting it."""

    def __init__(self, store: Store, *, offline: bool = False) -> None:
        self.store = store
        self.offline = offline

    def needs(self, data: bytes, label: str, ui: str | None = None) -> Resolution:
        """The report of one file (no download); InvalidInput when the file names nothing readable."""
        self.store.layout.require_initialised()
        found = read_file(data, label, self.store.registry.graph_vocabularies, ui)
        return Resolver(self.store, offline=self.offline).resolve(label, found.container, found.parsed)

    @staticmethod
    def plan(resolution: Resolution) -> list[InstallItem]:
        """What ``install --for`` would do: each download (with its size) and each pack to install.
        The same bytes named twice are downloaded once; a pack is installed once."""
        items: dict[str, InstallItem] = {}
        for index, need in enumerate(resolution.report.models):
            offer, match = need.offer, need.library
            if need.status == "findable" and offer is not None and index in resolution.drafts:
                item = InstallItem(
                    name=need.name, action="download", pack=offer.pack, source=offer.source, size=offer.size
                )
                items.setdefault(offer.sha256 or f"name:{need.name}", item)
            elif need.status == "in_library" and match is not None and not match.installed:
                item = InstallItem(name=need.name, action="install", pack=match.pack, source="library", size=match.size)
                items.setdefault(f"pack:{match.pack}", item)
        return list(items.values())

    def install(self, resolution: Resolution, accepted: Collection[str] | None = None) -> InstallForResult:
        """Fetch the planned items (only those whose model name is in ``accepted``, when given)."""
        planned = self.plan(resolution)
        todo = [item for item in planned if accepted is None or item.name in accepted]
        drafts = {
            need.name: (resolution.drafts.get(i), resolution.refs[i]) for i, need in enumerate(resolution.report.models)
        }
        done: list[InstallItem] = []
        written = 0
        for item in todo:
            if item.action == "install":
                written += self.store.install(item.pack).bytes_written
            else:
                draft, refs = drafts[item.name]
                assert draft is not None
                resolved = self._for_import(draft, refs)
                result = self.store.import_resolved(draft.source, resolved, sync=True)
                written += result.bytes_written
                item = item.model_copy(update={"pack": result.pack})
            done.append(item)
        label = resolution.report.file
        after = Resolver(self.store, offline=True).resolve(
            label, resolution.report.container, _parsed_again(resolution)
        )
        return InstallForResult(file=label, planned=planned, done=done, bytes_written=written, report=after.report)

    def _for_import(self, draft: Draft, refs: list[ModelRef]) -> ResolvedPack:
        """The draft as it is imported: a free pack name, and for a node-graph name the kind and
        path the workflow spells (so the file lands where the workflow looks for it)."""
        resolved = draft.resolved
        ref = refs[0]
        spec = resolved.resources[0].spec
        if ref.folder is not None and ref.kinds and ref.match == "path":
            spec = spec.model_copy(update={"kind": ref.kinds[0], "expose": normalise_name(ref.name)})
        pack = resolved.pack.model_copy(update={"name": self._free_name(resolved.pack.name), "resources": [spec]})
        resource = attrs.evolve(resolved.resources[0], spec=spec)
        return attrs.evolve(resolved, pack=pack, resources=(resource,))

    def _free_name(self, name: str) -> str:
        files = self.store.files
        if not files.has_pack(name):
            return name
        return next(f"{name}_{n}" for n in range(2, 10_000) if not files.has_pack(f"{name}_{n}"))


def _parsed_again(resolution: Resolution) -> ParsedFile:
    """The references read before, to report them again after an install."""
    report = resolution.report
    return ParsedFile(
        format=report.format,
        ui=report.ui,
        refs=[ref for refs in resolution.refs for ref in refs],
        problems=list(report.problems),
    )
