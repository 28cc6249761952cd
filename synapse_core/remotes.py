"""The contract of a remote: an object store that holds a copy of the library.

A remote is itself a content-addressed library: blobs under ``blobs/sha256/<2>/<sha256>``
and small pack records under ``packs/<Pack>/`` (pack.json, lock.json, previews). A plugin
returns :class:`RemoteKind` instances from the ``synapse_remotes`` hook; each opens URLs of
its schemes (``s3://``, ``file://``) as a :class:`Remote`. The core decides what to send and
fetch; a remote only moves bytes, and every byte it hands back is verified by the core
(through the same :class:`~synapse_core.sources.DownloadSink` as a source's download).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import attrs

if TYPE_CHECKING:
    from synapse_core.sources import DownloadSink

BLOB_PREFIX = "blobs/sha256/"
PACK_PREFIX = "packs/"
MAX_RECORD_BYTES = 16 * 1024 * 1024
"""A pack record (pack.json, lock.json, a preview) larger than this is refused."""


def blob_key(sha256: str) -> str:
    """The key of a blob on every remote."""
    return f"{BLOB_PREFIX}{sha256[:2]}/{sha256}"


@attrs.frozen
class RemoteSettings:
    """One remote as configured (``synapse remote add``): never a secret."""

    name: str
    url: str
    endpoint_url: str | None = None
    options: Mapping[str, str] = attrs.field(factory=dict)
    """Kind-specific settings (S3: region, checksum)."""


@attrs.frozen
class RemoteObject:
    """What a remote says about one object (a HEAD, or one entry of a listing)."""

    key: str
    size: int
    sha256: str | None = None
    """The sha256 the remote recorded with the object (its own metadata), if any."""


Progress = Callable[[int], None]


class Remote(ABC):
    """One opened remote. Keys are ``/``-separated and made by the core; methods raise
    :class:`~synapse_core.errors.SynapseError` with one line that never holds a secret."""

    settings: RemoteSettings

    @abstractmethod
    def check(self) -> None:
        """Raise unless the remote is reachable, the credentials work and its bucket or folder exists."""

    @abstractmethod
    def head(self, key: str) -> RemoteObject | None:
        """The object at ``key`` asked for directly (never from a listing), or None if absent."""

    @abstractmethod
    def upload_file(self, key: str, path: Path, sha256: str, size: int, progress: Progress) -> None:
        """Store the file's bytes at ``key``, verified (the bytes sent hash to ``sha256`` and the
        remote holds ``size`` bytes with the sha256 recorded), resuming an interrupted upload."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Store a small record at ``key``, replacing it."""

    @abstractmethod
    def get_bytes(self, key: str, limit: int = MAX_RECORD_BYTES) -> bytes | None:
        """A small record, or None if absent; one larger than ``limit`` is an error."""

    @abstractmethod
    def download(self, key: str, sink: DownloadSink) -> None:
        """Stream the object into ``sink`` from ``sink.offset`` (the core verifies it)."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[RemoteObject]:
        """Every object whose key starts with ``prefix`` (for du and finding packs, never for existence)."""

    def abandoned_uploads(self, idle_seconds: float, remove: bool) -> Sequence[RemoteObject]:
        """Unfinished uploads of blobs (what an interrupted push leaves, which a later push of the
        same blob resumes) that nothing has written to for ``idle_seconds``: each as its blob's key
        and the bytes it holds; removed when ``remove``. Only uploads under ``blobs/`` that this
        remote's own ``upload_file`` began are considered. Kinds that leave nothing behind keep this."""
        return []


class RemoteKind(ABC):
    """A kind of remote: the URL schemes it opens (``synapse_remotes`` hook)."""

    name: ClassVar[str]
    schemes: ClassVar[tuple[str, ...]]

    def problem(self, settings: RemoteSettings) -> str | None:
        """Why these settings cannot work (checked by ``remote add``, asks no network), or None."""
        return None

    @abstractmethod
    def open(self, settings: RemoteSettings) -> Remote:
        """A remote for these settings (cheap: connect lazily)."""
