"""Lock files: a profile written down (``synapse export``) and reproduced elsewhere (``synapse sync``).

A lock file is small, human-readable TOML (written by tomli-w, deterministic: the same
profile gives the same bytes) with the profile's conflict policy and pack order and, for
every pack, its source and each file's sha256, size and exposed name. Sync imports what is
missing (the remotes' records when they hold the same files, else the lock file's own
description), fetches the blobs (remotes, then sources), writes the profile ``lock-<name>``
with exactly that order and policy, and switches the UIs to it: every view then shows the
same names with the same bytes as on the exporting machine. Other packs are never touched.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from synapse_core.errors import InvalidInput
from synapse_core.kinds import AssetKind
from synapse_core.models import (
    Alias,
    ConflictSettings,
    LockedResource,
    Pack,
    PackLock,
    Profile,
    ResourceSpec,
    SourceInfo,
)
from synapse_core.names import check_pack_name, is_sha256, problem_with_name
from synapse_core.state import StateFiles

LOCK_SCHEMA = 1
HEADER = "# Written by 'synapse export'; 'synapse sync FILE' reproduces these views on another machine.\n"
MAX_LOCK_BYTES = 16 * 1024 * 1024


def _clean(value: Any) -> Any:
    """Drop None (TOML has no null) and empty tables, recursively; sort table keys."""
    if isinstance(value, Mapping):
        items = {k: _clean(v) for k, v in sorted(value.items()) if v is not None}
        return {k: v for k, v in items.items() if v != {}}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def export(files: StateFiles, profile_name: str) -> bytes:
    """The lock file of a profile, as bytes."""
    import tomli_w

    found = files.profile_order(profile_name)
    if found is None:
        raise InvalidInput(f"no profile named '{profile_name}' (profiles: {', '.join(files.profile_names())})")
    data, order = found
    packs = []
    for name in order:
        pack, lock = files.pack(name), files.lock(name)
        entries = []
        for spec in pack.resources:
            locked = lock.resources.get(spec.id)
            if locked is None:
                continue
            entries.append(
                {
                    "resource": spec.id,
                    "kind": spec.kind.value,
                    "expose": spec.expose,
                    "file_name": locked.file_name,
                    "sha256": locked.sha256,
                    "size": locked.size,
                    "url": locked.url,
                    "version_id": locked.version_id,
                    "file_id": locked.file_id,
                    "prefer": dict(spec.prefer) or None,
                }
            )
        packs.append(
            {
                "name": name,
                "source": pack.source.model_dump(mode="json", exclude_none=True),
                "policy": pack.policy,
                "files": entries,
            }
        )
    document = _clean(
        {
            "schema_version": LOCK_SCHEMA,
            "profile": profile_name,
            "policy": data.policy,
            "order": order,
            "aliases": [dict(a) for a in data.aliases] or None,
        }
    )
    document["packs"] = [_clean(p) for p in packs]
    return (HEADER + tomli_w.dumps(document)).encode()


@attrs.frozen
class LockedPack:
    """One pack of a lock file, validated: the pack.json and lock.json it stands for."""

    pack: Pack
    lock: PackLock

    @property
    def files(self) -> dict[str, str]:
        """resource id -> sha256"""
        return {rid: r.sha256 for rid, r in self.lock.resources.items()}


@attrs.frozen
class LockFile:
    """A parsed, validated lock file."""

    profile: str
    policy: str
    order: list[str]
    packs: list[LockedPack]
    aliases: list[Alias]


def read(path: Path) -> LockFile:
    """Parse and check a lock file; a problem is one line naming the file and the entry."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_LOCK_BYTES:
        raise InvalidInput(f"{path} is larger than {MAX_LOCK_BYTES >> 20} MiB; is it a lock file?")
    try:
        data = tomllib.loads(raw.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"{path} is not a TOML lock file: {exc}") from None
    try:
        return _parse(data)
    except (KeyError, TypeError, ValueError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, KeyError):
            text = f"{exc.args[0]} is missing"
        raise InvalidInput(f"{path} is not a valid lock file: {text}") from None


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} is not a string")
    return value


def _parse(data: dict[str, Any]) -> LockFile:
    if data.get("schema_version") != LOCK_SCHEMA:
        raise ValueError(f"schema_version {data.get('schema_version')!r} is not {LOCK_SCHEMA}")
    profile = _str(data["profile"], "profile")
    if problem_with_name(profile) is not None:
        raise ValueError(f"the profile name {profile[:80]!r} cannot be a name")
    order = data["order"]
    if not isinstance(order, list) or not all(isinstance(n, str) for n in order):
        raise ValueError("order is not a list of pack names")
    packs = []
    for entry in data.get("packs", []):
        name = check_pack_name(_str(entry["name"], "a pack's name"))
        source = SourceInfo.model_validate(entry["source"])
        specs, locked = [], {}
        for item in entry.get("files", []):
            sha256 = _str(item["sha256"], f"{name}: sha256")
            if not is_sha256(sha256):
                raise ValueError(f"{name}: {sha256[:80]!r} is not a sha256")
            specs.append(
                ResourceSpec(
                    id=_str(item["resource"], f"{name}: resource"),
                    kind=AssetKind(item["kind"]),
                    expose=_str(item["expose"], f"{name}: expose"),
                    prefer=dict(item.get("prefer", {})),
                )
            )
            file_name = _str(item["file_name"], f"{name}: file_name")
            if problem_with_name(file_name) is not None:
                raise ValueError(f"{name}: the file name {file_name[:80]!r} cannot be a file name")
            locked[specs[-1].id] = LockedResource(
                sha256=sha256,
                size=item["size"],
                file_name=file_name,
                url=item.get("url"),
                version_id=item.get("version_id"),
                file_id=item.get("file_id"),
            )
        pack = Pack(name=name, source=source, policy=entry.get("policy", "pinned"), resources=specs)
        packs.append(LockedPack(pack=pack, lock=PackLock(resources=locked)))
    names = [p.pack.name for p in packs]
    if sorted(names) != sorted(set(order)) or len(order) != len(set(order)):
        raise ValueError("order does not list each pack of the file once")
    aliases = [Alias.model_validate(a) for a in data.get("aliases", [])]
    return LockFile(
        profile=profile, policy=_str(data["policy"], "policy"), order=list(order), packs=packs, aliases=aliases
    )


def synced_profile(lock: LockFile) -> Profile:
    """The profile sync writes: exactly the lock file's packs, order, policy and aliases."""
    return Profile(
        name=f"lock-{lock.profile}",
        packs=lock.order,
        conflicts=ConflictSettings(policy=lock.policy),
        aliases=lock.aliases,
    )
