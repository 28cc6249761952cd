"""``use --for FILE``: a profile in which every name the file spells shows the right bytes.

The profile ``work__<file stem>`` is derived from global with the packs the file needs moved to
the end (they win every conflict), plus one :class:`~synapse_core.models.Alias` per model whose
library name is not the one the file spells: the alias puts the same blob, in that UI's view of
that profile only, at exactly the path the workflow names (``sub/x.safetensors``), or, for names a
UI matches by stem (infotext LoRAs, ComfyUI embeddings), under that stem with the file's extension.
"""

from __future__ import annotations

import posixpath
from pathlib import PurePath

import attrs

from synapse_core.errors import InvalidInput
from synapse_core.models import Alias, ConflictSettings, Profile
from synapse_core.names import problem_with_name, sanitize_file_name
from synapse_core.state import GLOBAL_PROFILE, WORK_PREFIX
from synapse_core.store import Store
from synapse_core.workflows.refs import ModelRef, as_looked_up, name_problem
from synapse_core.workflows.resolve import Resolution, stem


@attrs.define
class WorkflowProfile:
    """The profile ``use --for`` writes, and what it could not place."""

    profile: Profile
    warnings: list[str] = attrs.Factory(list)


def profile_name(store: Store, label: str) -> str:
    """``work__<file stem>``; ``work__<stem>-workflow`` when a pack has the stem's name (its own
    work profile is ``work__<pack>``)."""
    raw = PurePath(label.replace("\\", "/")).stem or "workflow"
    base = sanitize_file_name(raw, "workflow")[:80]
    name = f"{WORK_PREFIX}{base}"
    if store.files.has_pack(base) or problem_with_name(name) is not None:
        name = f"{WORK_PREFIX}{base}-workflow"
    return name


def plan_profile(store: Store, resolution: Resolution, ui: str) -> WorkflowProfile:
    """The workflow's profile for ``ui``; InvalidInput when a library file is not installed yet.
    Models the library does not have are warnings: the profile shows the others."""
    report = resolution.report
    adapter = store.registry.ui(ui)
    fetch = [m.name for m in report.models if m.library is not None and not m.library.installed]
    if fetch:
        raise InvalidInput(
            f"{len(fetch)} model(s) are not in the library yet ({', '.join(fetch[:3])}"
            f"{', ...' if len(fetch) > 3 else ''}); run 'synapse install --for {report.file}' first"
        )
    top: list[str] = []
    aliases: list[Alias] = []
    warnings: list[str] = []
    for need, refs in zip(report.models, resolution.refs, strict=True):
        match = need.library
        if match is None:
            hint = f"; 'synapse install --for {report.file}' may fetch it" if need.url or need.hashes else ""
            warnings.append(f"{need.name} is not in the library{hint}")
            continue
        if match.pack not in top:
            top.append(match.pack)
        ref = refs[0]
        kind = ref.kinds[0] if len(ref.kinds) == 1 else match.kind
        folder = adapter.folder(kind)
        if folder is None:
            warnings.append(f"{need.name}: {adapter.display_name} has no folder for {kind.value}")
            continue
        expose = _spelled(ref, match.expose)
        if expose != match.expose or kind != match.kind:
            alias = Alias(ui=ui, kind=kind, expose=expose, pack=match.pack, resource_id=match.resource_id)
            if alias not in aliases:
                aliases.append(alias)
    if not top:
        raise InvalidInput(
            f"{report.file}: none of its {len(report.models)} model(s) is in the library;"
            f" run 'synapse install --for {report.file}' first"
        )
    name = profile_name(store, report.file)
    profile = Profile(
        name=name, base=GLOBAL_PROFILE, top=top, aliases=aliases, conflicts=ConflictSettings(policy="last_wins")
    )
    return WorkflowProfile(profile, warnings)


def _spelled(ref: ModelRef, expose: str) -> str:
    """The path the UI looks for: the workflow's own path, or (matched by stem) the stem it names
    with the library file's extension, beside the library's own name. A name that is only a hash
    (``[31e35c80fc]``) or no safe file name keeps the library's name."""
    if ref.match == "path":
        return as_looked_up(ref.name)
    if stem(expose) == stem(ref.name) or ref.name.startswith("[") or name_problem(ref.name) or "/" in ref.name:
        return expose
    extension = posixpath.splitext(expose)[1]
    return posixpath.join(posixpath.dirname(expose), f"{stem(ref.name)}{extension}")
