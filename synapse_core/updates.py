"""Updates of packs that follow the latest version: plan (no side effects), then apply.

A resource is replaced by the newer version's file of the same kind that matches the
resource's recorded preferences (``prefer``: format, size, fp...). When several files
still match, the resource is ambiguous and nothing is applied until the user chooses
with ``--choose RESOURCE=FILE_ID``; the choice is recorded in ``prefer``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from synapse_core.downloads import target_problem
from synapse_core.errors import Conflict, InvalidInput, SynapseError
from synapse_core.kinds import AssetKind
from synapse_core.models import LockedResource, Pack, PackLock, ResourceSpec, utc_now
from synapse_core.packs import lock_entry
from synapse_core.plugins import PluginRegistry
from synapse_core.results import BaseChange, FileChoice, PackNote, PackUpdate, ResourceUpdate, UpdatePlan
from synapse_core.sources import NotSupported, UpdateInfo, VersionFile
from synapse_core.state import StateFiles

Choices = Mapping[tuple[str, str], str]
"""(pack, resource) -> chosen file id."""


class AmbiguousUpdate(Conflict):
    """An update needs the user's choice; carries the plan and the flags to pass."""

    code = "ambiguous_update"

    def __init__(self, plan: UpdatePlan, flags: list[str]) -> None:
        super().__init__(f"the update is ambiguous; pass {'; and '.join(flags)}")
        self.plan = plan
        self.flags = flags


class BaseChangeRefused(Conflict):
    """A named pack's new version changes its base model or kind, and the user did not allow it."""

    code = "base_change"


def describe(change: BaseChange) -> str:
    """'base model SD 1.5 -> SDXL 1.0', 'kind lora -> checkpoint', or both."""
    said = []
    if not _same_base(change.old_base_model, change.new_base_model):
        said.append(f"base model {change.old_base_model} -> {change.new_base_model}")
    if change.old_kinds != change.new_kinds:
        old, new = (",".join(k.value for k in kinds) for kinds in (change.old_kinds, change.new_kinds))
        said.append(f"kind {old} -> {new}")
    return " and ".join(said)


def _choice(file: VersionFile) -> FileChoice:
    return FileChoice(
        file_id=file.target.file_id,
        file_name=file.target.file_name,
        size=file.target.size,
        kind=file.kind,
        metadata=dict(file.metadata),
        primary=file.primary,
    )


def _matches(file: VersionFile, prefer: Mapping[str, str]) -> bool:
    return all(file.metadata.get(key, value).lower() == value.lower() for key, value in prefer.items())


def plan_resource(
    spec: ResourceSpec, old: LockedResource, info: UpdateInfo, chosen: str | None, retyped: bool = False
) -> ResourceUpdate:
    """How one resource moves to the newer version (``retyped``: the version holds no file of the
    pack's kinds, so its model files of any kind are the candidates)."""
    update = ResourceUpdate(resource=spec.id, old_file=old.file_name, old_version_id=old.version_id)
    if chosen is not None:
        picked = [f for f in info.files if f.target.file_id == chosen]
        if not picked:
            raise InvalidInput(f"--choose {spec.id}={chosen}: the new version has no file {chosen}")
        update.new = _choice(picked[0])
        return update
    same_kind = [f for f in info.files if (f.kind != AssetKind.OTHER if retyped else f.kind == spec.kind)]
    preferred = [f for f in same_kind if _matches(f, spec.prefer)]
    pool = preferred or same_kind
    if len(pool) == 1:
        update.new = _choice(pool[0])
    elif len(pool) > 1:
        update.ambiguous = True
        update.candidates = [_choice(f) for f in pool]
    return update


class UpdateService:
    """Asks sources about newer versions and turns their answers into a plan or new state."""

    def __init__(self, files: StateFiles, registry: PluginRegistry) -> None:
        self.files = files
        self.registry = registry

    def check(self, packs: Sequence[Pack]) -> dict[str, UpdateInfo]:
        """One batch question per source; a failing source fails only its packs."""
        by_source: dict[str, list[Pack]] = {}
        for pack in packs:
            by_source.setdefault(pack.source.provider, []).append(pack)
        answers: dict[str, UpdateInfo] = {}
        for provider, group in by_source.items():
            try:
                answers.update(self.registry.source(provider).check_updates(group))
            except NotSupported:
                answers.update({p.name: UpdateInfo(status="current") for p in group})
            except SynapseError as exc:
                answers.update({p.name: UpdateInfo(status="failed", message=exc.message) for p in group})
            except Exception as exc:  # a broken plugin fails its packs, not the command
                reason = f"source '{provider}' failed: {type(exc).__name__}: {exc}"
                answers.update({p.name: UpdateInfo(status="failed", message=reason) for p in group})
        for name, info in answers.items():
            problem = next((p for f in info.files if (p := target_problem(f.target))), None)
            if problem is not None:
                answers[name] = UpdateInfo(
                    status="failed", message=f"the source answered with unusable data: {problem}"
                )
        return answers

    def plan(self, packs: Sequence[Pack], answers: Mapping[str, UpdateInfo], choices: Choices) -> UpdatePlan:
        """The plan for ``packs`` from the sources' answers; no side effects."""
        plan = UpdatePlan()
        for pack in packs:
            if pack.policy != "follow_latest":
                plan.pinned.append(pack.name)
                continue
            info = answers.get(pack.name) or UpdateInfo(status="failed", message="the source gave no answer")
            self._place(plan, pack, info, choices)
        return plan

    def _place(self, plan: UpdatePlan, pack: Pack, info: UpdateInfo, choices: Choices) -> None:
        note = PackNote(pack=pack.name, message=info.message or info.status)
        if info.status == "current":
            plan.current.append(pack.name)
        elif info.status == "unavailable":
            plan.unavailable.append(note)
        elif info.status in ("removed", "archived"):
            plan.removed.append(note)
        elif info.status == "failed":
            plan.failed.append(note)
        else:
            lock = self.files.lock(pack.name)
            kinds = {spec.kind for spec in pack.resources}
            models = {f.kind for f in info.files if f.kind != AssetKind.OTHER}
            retyped = bool(models) and not models & kinds
            resources = [
                plan_resource(
                    spec,
                    lock.resources[spec.id],
                    info,
                    choices.get((pack.name, spec.id)),
                    retyped and spec.kind != AssetKind.OTHER,
                )
                for spec in pack.resources
                if spec.id in lock.resources
            ]
            plan.updates.append(
                PackUpdate(
                    pack=pack.name,
                    source=pack.source.provider,
                    current_version_id=pack.source.version_id,
                    latest_version_id=info.latest_version_id,
                    latest_version_name=info.latest_version_name,
                    resources=resources,
                    base_change=base_change(pack, info, resources),
                )
            )

    def apply(self, update: PackUpdate, info: UpdateInfo) -> tuple[Pack, PackLock]:
        """Write the new pack.json and lock.json of one pack; choices become preferences."""
        pack, lock = self.files.pack(update.pack), self.files.lock(update.pack)
        files = {f.target.file_id: f for f in info.files}
        for change in update.resources:
            if change.new is None:
                continue
            new = files[change.new.file_id]
            spec = pack.resource(change.resource)
            assert spec is not None
            spec.prefer = {**spec.prefer, **new.metadata}
            spec.kind = new.kind  # differs only in an update allowed to change kind
            lock.resources[change.resource] = lock_entry(new.target)
        pack.source.version_id = info.latest_version_id
        pack.source.version_name = info.latest_version_name
        pack.base_model = info.base_model or pack.base_model
        pack.trigger_words = list(info.trigger_words) or pack.trigger_words
        lock.resolved_at = utc_now()
        self.files.save_pack(pack, lock)
        return pack, lock


def _same_base(old: str | None, new: str | None) -> bool:
    """Unknown on either side is no change that can be told."""
    return old is None or new is None or old.strip().casefold() == new.strip().casefold()


def base_change(pack: Pack, info: UpdateInfo, resources: Sequence[ResourceUpdate]) -> BaseChange | None:
    """How the new version differs from the pack in base model or kind, if it does."""
    old: dict[str, AssetKind] = {spec.id: spec.kind for spec in pack.resources}
    new: dict[str, set[AssetKind]] = {}
    for r in resources:
        if r.new is not None:
            new[r.resource] = {r.new.kind}
        elif r.ambiguous:
            new[r.resource] = {c.kind for c in r.candidates}
        else:
            new[r.resource] = {old[r.resource]}  # kept
    if _same_base(pack.base_model, info.base_model) and all(old[r] in kinds for r, kinds in new.items()):
        return None
    return BaseChange(
        old_base_model=pack.base_model,
        new_base_model=info.base_model,
        old_kinds=sorted({old[r] for r in new}),
        new_kinds=sorted(set().union(*new.values())),
    )


def choose_flags(plan: UpdatePlan) -> list[str]:
    """For each ambiguous resource, the exact flags to pick from: '--choose main=102 or --choose main=103'."""
    several = len(plan.updates) > 1
    flags = []
    for update in plan.updates:
        for resource in update.resources:
            if resource.ambiguous:
                prefix = f"{update.pack}:" if several else ""
                options = [f"--choose {prefix}{resource.resource}={c.file_id}" for c in resource.candidates]
                flags.append(" or ".join(options))
    return flags


def parse_choices(values: Sequence[str], packs: Sequence[str]) -> dict[tuple[str, str], str]:
    """--choose RESOURCE=FILE_ID (one pack) or PACK:RESOURCE=FILE_ID."""
    choices: dict[tuple[str, str], str] = {}
    for value in values:
        left, sep, file_id = value.partition("=")
        if not sep or not left or not file_id.strip():
            raise InvalidInput(f"--choose takes RESOURCE=FILE_ID or PACK:RESOURCE=FILE_ID, got {value!r}")
        pack, colon, resource = left.rpartition(":")
        if not colon:
            if len(packs) != 1:
                raise InvalidInput(f"--choose {value}: name the pack too (PACK:{left}={file_id})")
            pack = packs[0]
        choices[(pack, resource)] = file_id.strip()
    return choices
