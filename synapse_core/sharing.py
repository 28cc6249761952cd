"""Remotes: configure them, push packs to one, pull packs and blobs from them.

A remote mirrors the library's own layout (see :mod:`synapse_core.remotes`). Push sends the
blobs a remote lacks (asked one by one with a HEAD), then each pack's records, pack.json
last, so a pack record on a remote always has its blobs there. Everything fetched from a
remote goes through the core's sink (``PartialDownload``): verified by sha256 before it is
published, resumable after an interruption.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from synapse_core.blobs import BlobStore, Ingested
from synapse_core.downloads import Fetcher
from synapse_core.errors import Conflict, InvalidInput, NotFound, SourceError, StateFileInvalid, SynapseError
from synapse_core.layout import write_bytes_atomic
from synapse_core.models import Config, Pack, PackLock, RemoteConfig
from synapse_core.names import check_pack_name, is_sha256, problem_with_name
from synapse_core.plugins import PluginRegistry
from synapse_core.progress import Progress
from synapse_core.remotes import BLOB_PREFIX, PACK_PREFIX, Remote, RemoteSettings, blob_key
from synapse_core.results import PullResult, PushResult, RemoteInfo, RemotePruneResult, RemoteUsage
from synapse_core.sources import FetchTarget, ImportRequest, ResolvedPack, Source
from synapse_core.state import StateFiles

RECORDS = ("lock.json", "pack.json")
"""A pack's records in the order push writes them (pack.json last: the pack is complete)."""


class RemoteSource(Source):
    """A remote seen as a source of bytes, so its downloads go through the core's Fetcher."""

    name = "remote"
    display_name = "remote"

    def __init__(self, remote: Remote) -> None:
        self.remote = remote

    def can_handle(self, ref: str) -> bool:
        return False

    def resolve(self, request: ImportRequest) -> ResolvedPack:
        raise SourceError("a remote resolves no references")

    def fetch(self, pack: Pack, target: FetchTarget, sink: object) -> None:
        assert target.sha256 is not None
        self.remote.download(blob_key(target.sha256), sink)  # type: ignore[arg-type]


def settings_of(name: str, config: RemoteConfig) -> RemoteSettings:
    """The plugin-facing settings of a configured remote."""
    return RemoteSettings(name=name, url=config.url, endpoint_url=config.endpoint_url, options=dict(config.options))


class RemoteService:
    """Configured remotes and the transfers between the library and them."""

    def __init__(
        self, files: StateFiles, blobs: BlobStore, registry: PluginRegistry, fetcher: Fetcher, progress: Progress
    ) -> None:
        self.files = files
        self.blobs = blobs
        self.registry = registry
        self.fetcher = fetcher
        self.progress = progress

    # -- configuration -----------------------------------------------------------------

    def add(self, name: str, url: str, endpoint_url: str | None, options: dict[str, str], default: bool) -> Config:
        """Record a remote (checked by its kind, without asking the network)."""
        problem = problem_with_name(name)
        if problem is not None:
            raise InvalidInput(f"{name!r} cannot be a remote name: {problem}")
        config = self.files.config()
        if name in config.remotes:
            raise Conflict(f"a remote named '{name}' exists; remove it first ('synapse remote remove {name}')")
        if "@" in url.split("://", 1)[-1].split("/", 1)[0] or "?" in url:
            raise InvalidInput(f"{name}: give the URL without credentials or a query; keys come from the environment")
        remote = RemoteConfig(url=url.rstrip("/") if not url.endswith(":///") else url, endpoint_url=endpoint_url)
        remote.options = options
        kind = self.registry.remote_kind(url)
        found = kind.problem(settings_of(name, remote))
        if found is not None:
            raise InvalidInput(found)
        config.remotes[name] = remote
        if default or config.default_remote is None:
            config.default_remote = name
        self.files.save_config(config)
        return config

    def remove(self, name: str) -> Config:
        """Forget a remote (nothing on it is touched)."""
        config = self.files.config()
        if name not in config.remotes:
            raise NotFound(f"no remote named '{name}' (remotes: {', '.join(config.remotes) or 'none'})")
        del config.remotes[name]
        if config.default_remote == name:
            config.default_remote = next(iter(config.remotes), None)
        self.files.save_config(config)
        return config

    def set_order(self, steps: Sequence[str]) -> Config:
        """Where ``install`` looks first: ``remotes`` and ``source``, in order."""
        bad = [s for s in steps if s not in ("remotes", "source")]
        if bad or not steps or len(set(steps)) != len(steps):
            raise InvalidInput("the order lists 'remotes' and 'source', each once, e.g. 'remotes source'")
        config = self.files.config()
        config.fetch_order = list(steps)  # type: ignore[arg-type]
        self.files.save_config(config)
        return config

    def infos(self) -> list[RemoteInfo]:
        """Every remote as ``remote list`` shows it."""
        config = self.files.config()
        return [
            RemoteInfo(name=n, url=r.url, endpoint_url=r.endpoint_url, default=n == config.default_remote)
            for n, r in config.remotes.items()
        ]

    def open(self, name: str | None = None) -> Remote:
        """The named remote, else the default one."""
        config = self.files.config()
        if not config.remotes:
            raise NotFound("no remote is configured; add one with 'synapse remote add NAME URL'")
        chosen = name or config.default_remote or next(iter(config.remotes))
        if chosen not in config.remotes:
            raise NotFound(f"no remote named '{chosen}' (remotes: {', '.join(config.remotes)})")
        settings = settings_of(chosen, config.remotes[chosen])
        return self.registry.remote_kind(settings.url).open(settings)

    def all(self) -> list[Remote]:
        """Every configured remote, the default first."""
        config = self.files.config()
        names = sorted(config.remotes, key=lambda n: n != config.default_remote)
        return [self.open(n) for n in names]

    # -- push --------------------------------------------------------------------------

    def push(self, names: Sequence[str], remote_name: str | None, parallel: int) -> PushResult:
        """Send packs' blobs the remote lacks, then their records."""
        remote = self.open(remote_name)
        remote.check()
        packs = list(names) or self.files.pack_names()
        blobs: dict[str, int] = {}
        for name in packs:
            for res in self.files.lock(name).resources.values():
                blobs[res.sha256] = res.size
        absent = sorted(s for s in blobs if not self.blobs.has(s))
        if absent:
            owners = [n for n in packs if any(r.sha256 in absent for r in self.files.lock(n).resources.values())]
            raise NotFound(
                f"{len(absent)} file(s) are not in this library (packs {', '.join(owners)}); "
                "run 'synapse install' for them first"
            )
        sent: list[str] = []
        sent_bytes = 0

        def one(sha256: str) -> tuple[str, int]:
            found = remote.head(blob_key(sha256))
            if found is not None and found.size == blobs[sha256] and found.sha256 in (None, sha256):
                return sha256, 0
            label = f"{sha256[:12]}… → {remote.settings.name}"
            self.progress.add_total(label, blobs[sha256])
            try:
                remote.upload_file(
                    blob_key(sha256), self.blobs.path(sha256), sha256, blobs[sha256], self.progress.advance
                )
            finally:
                self.progress.finish(label)
            return sha256, blobs[sha256]

        errors: list[SynapseError] = []
        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            for future in [pool.submit(one, s) for s in sorted(blobs)]:
                try:
                    sha256, size = future.result()
                except SynapseError as exc:
                    errors.append(exc)
                    continue
                if size:
                    sent.append(sha256)
                    sent_bytes += size
        if errors:
            raise errors[0]
        for name in packs:
            self._push_records(remote, name)
        return PushResult(
            remote=remote.settings.name, packs=packs, uploaded=len(sent), bytes_uploaded=sent_bytes, blobs=len(blobs)
        )

    def _push_records(self, remote: Remote, name: str) -> None:
        folder = self.files.layout.pack_dir(name)
        resources = folder / "resources"
        if resources.is_dir():
            for path in sorted(p for p in resources.rglob("*") if p.is_file() and not p.is_symlink()):
                remote.put_bytes(f"{PACK_PREFIX}{name}/{path.relative_to(folder).as_posix()}", path.read_bytes())
        for record in RECORDS:
            path = folder / record
            if path.is_file():
                remote.put_bytes(f"{PACK_PREFIX}{name}/{record}", path.read_bytes())

    # -- pull --------------------------------------------------------------------------

    def remote_packs(self, remote: Remote) -> list[str]:
        """The packs a remote has records of (from its listing: records, never blobs)."""
        found = set()
        for obj in remote.list(PACK_PREFIX):
            parts = obj.key[len(PACK_PREFIX) :].split("/")
            if len(parts) == 2 and parts[1] == "pack.json" and problem_with_name(parts[0]) is None:
                found.add(parts[0])
        return sorted(found)

    def read_pack(self, remote: Remote, name: str) -> tuple[bytes, bytes, Pack, PackLock]:
        """A pack's records on a remote, validated like the store's own files."""
        check_pack_name(name)
        raw_pack = remote.get_bytes(f"{PACK_PREFIX}{name}/pack.json")
        if raw_pack is None:
            raise NotFound(f"remote '{remote.settings.name}' has no pack named '{name}'")
        raw_lock = remote.get_bytes(f"{PACK_PREFIX}{name}/lock.json") or b"{}"
        where = f"remote '{remote.settings.name}': the records of {name}"
        try:
            pack = Pack.model_validate_json(raw_pack)
            lock = PackLock.model_validate_json(raw_lock)
        except ValueError as exc:
            raise StateFileInvalid(f"{where} are invalid ({str(exc).splitlines()[0]}); nothing was pulled") from None
        if pack.name != name:
            raise StateFileInvalid(f"{where} name another pack ({pack.name[:80]!r}); nothing was pulled")
        for res in lock.resources.values():
            if problem_with_name(res.file_name) is not None:
                raise StateFileInvalid(f"{where} hold an unusable file name {res.file_name[:80]!r}; nothing was pulled")
        return raw_pack, raw_lock, pack, lock

    def pull(self, names: Sequence[str], remote_name: str | None) -> PullResult:
        """Bring packs (their records if they are new here) and their blobs from a remote.
        Runs inside the caller's mutation: a failure leaves no pack and no blob behind."""
        remote = self.open(remote_name)
        remote.check()
        wanted = list(names) or self.remote_packs(remote)
        new: list[str] = []
        jobs: list[tuple[Source, Pack, FetchTarget]] = []
        writes: list[tuple[str, bytes, bytes]] = []
        source = RemoteSource(remote)
        for name in wanted:
            raw_pack, raw_lock, pack, lock = self.read_pack(remote, name)
            if self.files.has_pack(name):
                mine = {r.sha256 for r in self.files.lock(name).resources.values()}
                if mine != {r.sha256 for r in lock.resources.values()}:
                    raise Conflict(
                        f"a different pack named '{name}' is in this library; remove or rename it to pull the remote's"
                    )
            else:
                new.append(name)
                writes.append((name, raw_pack, raw_lock))
            jobs += [(source, pack, FetchTarget.from_locked(r)) for r in lock.resources.values()]
        jobs = [j for j in jobs if not self.blobs.has(j[2].sha256 or "")]
        results = self.fetcher.fetch_many(jobs)
        errors = [r for r in results if isinstance(r, SynapseError)]
        if errors:
            raise errors[0]
        for name, raw_pack, raw_lock in writes:
            self._write_records(remote, name, raw_pack, raw_lock)
        got = [r for r in results if isinstance(r, Ingested)]
        return PullResult(
            remote=remote.settings.name,
            packs=wanted,
            new_packs=new,
            downloaded=len(got),
            bytes_downloaded=sum(i.size for i in got if i.created),
        )

    def _write_records(self, remote: Remote, name: str, raw_pack: bytes, raw_lock: bytes) -> None:
        layout = self.files.layout
        folder = layout.pack_dir(name)
        prefix = f"{PACK_PREFIX}{name}/resources/"
        for obj in remote.list(prefix):
            relative = obj.key[len(prefix) :]
            parts = relative.split("/")
            if len(parts) > 2 or any(problem_with_name(p) is not None for p in parts):
                continue  # not a name this store writes: never a path
            data = remote.get_bytes(obj.key)
            if data is not None:
                write_bytes_atomic(folder.joinpath("resources", *parts), data, sync=layout.durable)
        write_bytes_atomic(layout.lock_file_of(name), raw_lock, sync=layout.durable)
        write_bytes_atomic(layout.pack_file(name), raw_pack, sync=layout.durable)
        self.files.touch_pack(name)

    def matching_records(self, name: str, files: dict[str, str]) -> tuple[Remote, bytes, bytes] | None:
        """A remote's records of a pack whose files are exactly ``files`` (resource id -> sha256),
        so a synced pack gets the same pack.json, lock.json and previews as where it was exported."""
        if not self.files.config().remotes:
            return None
        for remote in self.all():
            try:
                raw_pack, raw_lock, _, lock = self.read_pack(remote, name)
            except SynapseError:
                continue
            if {rid: r.sha256 for rid, r in lock.resources.items()} == files:
                return remote, raw_pack, raw_lock
        return None

    def write_records(self, remote: Remote, name: str, raw_pack: bytes, raw_lock: bytes) -> None:
        """Write a pack's records as the remote has them (checked by :meth:`read_pack`)."""
        self._write_records(remote, name, raw_pack, raw_lock)

    def fetch_missing(self, pack: Pack, lock: PackLock) -> tuple[list[str], int, list[str]]:
        """Fetch a pack's missing blobs from the remotes (default first): the resource ids
        fetched, the bytes written, and a warning for each remote that failed (a remote that
        simply lacks a file is not one)."""
        fetched: list[str] = []
        written = 0
        warnings: list[str] = []
        for remote in self.all():
            missing = {rid: r for rid, r in lock.resources.items() if not self.blobs.has(r.sha256)}
            if not missing:
                break
            try:
                present = {rid: r for rid, r in missing.items() if remote.head(blob_key(r.sha256)) is not None}
            except SynapseError as exc:
                warnings.append(exc.message)
                continue
            source = RemoteSource(remote)
            ids = list(present)
            results = self.fetcher.fetch_many([(source, pack, FetchTarget.from_locked(present[i])) for i in ids])
            for rid, result in zip(ids, results, strict=True):
                if isinstance(result, SynapseError):
                    warnings.append(result.message)
                else:
                    fetched.append(rid)
                    written += result.size if result.created else 0
        return fetched, written, warnings

    def prune(self, remote_name: str | None, idle: timedelta, dry_run: bool) -> RemotePruneResult:
        """Remove the unfinished uploads on a remote that nothing has written to for ``idle``."""
        remote = self.open(remote_name)
        remote.check()
        found = remote.abandoned_uploads(idle.total_seconds(), remove=not dry_run)
        return RemotePruneResult(
            remote=remote.settings.name,
            uploads=[o.key for o in found],
            bytes=sum(o.size for o in found),
            dry_run=dry_run,
        )

    # -- du and doctor -----------------------------------------------------------------

    def usage(self) -> list[RemoteUsage]:
        """What each remote holds: blobs, their bytes, packs, and how many of ours it lacks."""
        ours: dict[str, int] = {}
        for name in self.files.pack_names():
            for res in self.files.lock(name).resources.values():
                ours[res.sha256] = res.size
        out = []
        for remote in self.all():
            blobs: dict[str, int] = {}
            for obj in remote.list(BLOB_PREFIX):
                sha256 = obj.key.rsplit("/", 1)[-1]
                if is_sha256(sha256) and obj.key == blob_key(sha256):
                    blobs[sha256] = obj.size
            out.append(
                RemoteUsage(
                    remote=remote.settings.name,
                    url=remote.settings.url,
                    blobs=len(blobs),
                    bytes=sum(blobs.values()),
                    packs=len(self.remote_packs(remote)),
                    missing_here=len(set(ours) - set(blobs)),
                )
            )
        return out

    def problems(self, verify: bool) -> list[tuple[str, str]]:
        """What doctor finds on each remote: unreachable, credentials, a pack record whose blob
        is not there, with ``verify`` a blob whose bytes do not hash to its name."""
        found: list[tuple[str, str]] = []
        try:
            remotes = self.all()
        except SynapseError as exc:
            return [("remotes", exc.message)]
        for remote in remotes:
            label = f"remote '{remote.settings.name}'"
            try:
                remote.check()
                for name in self.remote_packs(remote):
                    _, _, _, lock = self.read_pack(remote, name)
                    for res in lock.resources.values():
                        obj = remote.head(blob_key(res.sha256))
                        if obj is None or obj.size != res.size:
                            what = "is missing" if obj is None else f"has {obj.size} bytes, not {res.size}"
                            found.append(("remotes", f"{label}: {name}'s {res.file_name} ({res.sha256[:12]}…) {what}"))
                        elif verify and _remote_sha256(remote, res.sha256) != res.sha256:
                            found.append(
                                ("remotes", f"{label}: blobs/…/{res.sha256[:12]}… does not hash to its name ({name})")
                            )
            except SynapseError as exc:
                found.append(
                    ("remotes", exc.message if exc.message.startswith("remote") else f"{label}: {exc.message}")
                )
        return found


class _HashingSink:
    """A sink that only hashes (doctor reads a remote blob without storing it)."""

    offset = 0
    validator = None

    def __init__(self) -> None:
        self.digest = hashlib.sha256()

    def begin(self, total: int | None, validator: str | None = None) -> None:
        pass

    def write(self, chunk: bytes) -> None:
        self.digest.update(chunk)

    def receive(self, readinto: object) -> None:
        buf = bytearray(1024 * 1024)
        while n := readinto(memoryview(buf)):  # type: ignore[operator]
            self.digest.update(memoryview(buf)[:n])

    def restart(self) -> None:
        self.digest = hashlib.sha256()


def _remote_sha256(remote: Remote, sha256: str) -> str:
    sink = _HashingSink()
    with contextlib.suppress(NotFound):
        remote.download(blob_key(sha256), sink)
    return sink.digest.hexdigest()
