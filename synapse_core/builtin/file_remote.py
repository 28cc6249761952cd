"""The built-in ``file://`` remote: a shared folder (a NAS mount, a USB disk) laid out like a remote.

Built in because it needs nothing beyond the standard library and is what a second machine
on the same network mounts anyway; object stores (``s3://``) are a plugin of their own.
Uploads go to ``<root>/tmp/<sha256>.upload`` (kept across an interruption, resumed from its
end once its bytes are checked), are hashed as they are written, flushed, then renamed into
place: nothing partial is ever visible under ``blobs/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlparse

from synapse_core.errors import IntegrityError, InvalidInput, NotFound, SynapseError
from synapse_core.hookspecs import hookimpl
from synapse_core.names import is_sha256
from synapse_core.remotes import (
    MAX_RECORD_BYTES,
    Progress,
    Remote,
    RemoteKind,
    RemoteObject,
    RemoteSettings,
    blob_key,
)
from synapse_core.sources import DownloadSink

CHUNK = 4 * 1024 * 1024


def _root_of(url: str) -> Path:
    parsed = urlparse(url)
    if parsed.netloc not in ("", "localhost"):
        raise InvalidInput(
            f"{url}: a file:// remote is a folder on this machine (file:///path), not on {parsed.netloc}"
        )
    return Path(unquote(parsed.path))


def _check_key(key: str) -> None:
    parts = key.split("/")
    if key.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in key or "\0" in key:
        raise SynapseError(f"{key!r} is not a key a remote can hold")


class FileRemote(Remote):
    """A remote in a folder; keys are paths below it."""

    def __init__(self, settings: RemoteSettings) -> None:
        self.settings = settings
        self.root = _root_of(settings.url)

    def _path(self, key: str) -> Path:
        _check_key(key)
        return self.root.joinpath(*key.split("/"))

    def check(self) -> None:
        if not self.root.is_dir():
            raise NotFound(f"remote '{self.settings.name}': the folder {self.root} does not exist (is it mounted?)")
        if not os.access(self.root, os.R_OK | os.X_OK):
            raise SynapseError(f"remote '{self.settings.name}': {self.root} cannot be read")

    def head(self, key: str) -> RemoteObject | None:
        try:
            info = self._path(key).stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SynapseError(f"remote '{self.settings.name}': cannot read {key}: {exc.strerror}") from exc
        return RemoteObject(key=key, size=info.st_size)

    def upload_file(self, key: str, path: Path, sha256: str, size: int, progress: Progress) -> None:
        self.check()
        final = self._path(key)
        tmp = self.root / "tmp"
        part = tmp / f"{sha256}.upload"
        try:
            tmp.mkdir(exist_ok=True)
            with open(part, "ab+") as out, open(path, "rb") as src:
                kept = out.seek(0, os.SEEK_END)
                digest = _same_prefix(src, out, kept) if 0 < kept <= size else None
                if digest is None:  # nothing kept, or bytes of something else: start again
                    out.truncate(0)
                    digest, kept = hashlib.sha256(), 0
                src.seek(kept)
                out.seek(kept)
                progress(kept)
                while chunk := src.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    progress(len(chunk))
                out.flush()
                os.fsync(out.fileno())
                written = out.tell()
            if written != size or digest.hexdigest() != sha256:
                part.unlink(missing_ok=True)
                raise IntegrityError(f"{path} no longer hashes to {sha256[:12]}…; nothing was uploaded")
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(part, final)
        except OSError as exc:
            raise SynapseError(f"remote '{self.settings.name}': cannot write {key}: {exc.strerror}") from exc

    def put_bytes(self, key: str, data: bytes) -> None:
        final = self._path(key)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            temp = final.parent / f".{final.name}.{uuid.uuid4().hex[:12]}.tmp"
            with open(temp, "xb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, final)
        except OSError as exc:
            raise SynapseError(f"remote '{self.settings.name}': cannot write {key}: {exc.strerror}") from exc

    def get_bytes(self, key: str, limit: int = MAX_RECORD_BYTES) -> bytes | None:
        try:
            with open(self._path(key), "rb") as src:
                data = src.read(limit + 1)
        except (FileNotFoundError, IsADirectoryError):
            return None
        except OSError as exc:
            raise SynapseError(f"remote '{self.settings.name}': cannot read {key}: {exc.strerror}") from exc
        if len(data) > limit:
            raise SynapseError(f"remote '{self.settings.name}': {key} is larger than {limit} bytes; refused")
        return data

    def download(self, key: str, sink: DownloadSink) -> None:
        try:
            with open(self._path(key), "rb", buffering=0) as src:
                size = os.fstat(src.fileno()).st_size
                offset = sink.offset if sink.offset <= size else 0
                if offset != sink.offset:
                    sink.restart()
                sink.begin(size)
                src.seek(offset)
                sink.receive(src.readinto)
        except FileNotFoundError:
            raise NotFound(f"remote '{self.settings.name}' has no {key}") from None
        except OSError as exc:
            raise SynapseError(f"remote '{self.settings.name}': cannot read {key}: {exc.strerror}") from exc

    def list(self, prefix: str) -> Iterator[RemoteObject]:
        base = self.root
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "tmp"]
            for name in filenames:
                if name.startswith("."):
                    continue
                path = Path(dirpath) / name
                key = path.relative_to(base).as_posix()
                if key.startswith(prefix):
                    with contextlib.suppress(OSError):
                        yield RemoteObject(key=key, size=path.lstat().st_size)

    def abandoned_uploads(self, idle_seconds: float, remove: bool) -> Sequence[RemoteObject]:
        tmp = self.root / "tmp"
        if not tmp.is_dir() or tmp.is_symlink():
            return []
        found = []
        now = time.time()
        for entry in sorted(os.scandir(tmp), key=lambda e: e.name):
            sha256, dot, ext = entry.name.partition(".")
            if ext != "upload" or not dot or not is_sha256(sha256) or not entry.is_file(follow_symlinks=False):
                continue  # not an upload this remote began: never touched
            info = entry.stat(follow_symlinks=False)
            if now - info.st_mtime < idle_seconds:
                continue  # written to lately: a push may be running
            if remove:
                try:
                    os.unlink(entry.path)
                except FileNotFoundError:
                    continue  # finished or removed meanwhile
                except OSError as exc:
                    raise SynapseError(
                        f"remote '{self.settings.name}': cannot remove {entry.path}: {exc.strerror}"
                    ) from exc
            found.append(RemoteObject(key=blob_key(sha256), size=info.st_size))
        return found


def _same_prefix(src: BinaryIO, out: BinaryIO, kept: int) -> Any:
    """The sha256 of the first ``kept`` bytes if the kept upload holds exactly those bytes, else None."""
    src.seek(0)
    out.seek(0)
    digest = hashlib.sha256()
    while kept:
        chunk = src.read(min(CHUNK, kept))
        if not chunk or out.read(len(chunk)) != chunk:
            return None
        digest.update(chunk)
        kept -= len(chunk)
    return digest


class FileRemoteKind(RemoteKind):
    """Opens ``file:///path`` remotes."""

    name = "file"
    schemes = ("file",)

    def problem(self, settings: RemoteSettings) -> str | None:
        try:
            root = _root_of(settings.url)
        except InvalidInput as exc:
            return exc.message
        if not root.is_absolute() or str(root) == "/":
            return f"{settings.url}: give an absolute folder, e.g. file:///mnt/nas/synapse"
        if settings.endpoint_url:
            return "--endpoint-url is for object stores, not file:// remotes"
        return None

    def open(self, settings: RemoteSettings) -> Remote:
        return FileRemote(settings)


@hookimpl
def synapse_remotes() -> list[RemoteKind]:
    """The file:// remote."""
    return [FileRemoteKind()]
