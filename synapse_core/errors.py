"""One family of user-facing errors.

Every error a user can cause derives from :class:`SynapseError`; its message is a
single line that names what was wrong and what to do. The CLI prints it and exits
with :attr:`SynapseError.exit_code`; the HTTP API maps :attr:`code` to a status.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from pathlib import Path


class SynapseError(Exception):
    """A problem the user can fix; the message is shown as one line."""

    exit_code: int = 1
    code: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotInitialised(SynapseError):
    """The store root has no store yet."""

    code = "not_initialised"


class InvalidInput(SynapseError):
    """A name, path, kind or option given by the user is not acceptable."""

    code = "invalid_input"
    exit_code = 2


class NotFound(SynapseError):
    """A pack, profile, UI, source or policy of that name does not exist."""

    code = "not_found"


class Conflict(SynapseError):
    """The request clashes with what exists (a taken name, an ambiguous choice)."""

    code = "conflict"


class StateFileInvalid(SynapseError):
    """A file under the store does not parse or validate."""

    code = "state_invalid"


class Interrupted(SynapseError):
    """The user pressed Ctrl-C before anything changed (exit 130, as a shell reports SIGINT)."""

    exit_code = 130
    code = "interrupted"


class IntegrityError(SynapseError):
    """Bytes did not match the hash or size they were promised to have."""

    code = "integrity"


class SourceError(SynapseError):
    """A source (a plugin) failed to answer or answered with an error."""

    code = "source_failed"


class PluginError(SynapseError):
    """A plugin broke its contract; the message names the plugin."""

    code = "plugin_failed"


def unknown_name(what: str, name: str, known: Iterable[str]) -> NotFound:
    """A NotFound for ``name`` that lists close or all known names."""
    import difflib

    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3)
    if close:
        hint = f"did you mean {', '.join(close)}?"
    elif known:
        hint = f"known: {', '.join(known)}"
    else:
        hint = f"there are no {what}s yet"
    return NotFound(f"unknown {what} '{name}': {hint}")


class UpstreamGone(SourceError):
    """The source no longer offers the pack: ``upstream`` is 'removed' or 'archived'.

    Raised by sources; the core keeps the pack's metadata and records the state.
    """

    code = "upstream_gone"

    def __init__(self, message: str, upstream: str = "removed") -> None:
        super().__init__(message)
        self.upstream = upstream


def disk_error(exc: OSError, doing: str) -> SynapseError:
    """An OSError met while writing into the store, as one line that says what to do
    (``doing``: e.g. "storing style.safetensors")."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return SynapseError(f"the disk is full while {doing}; free some space and try again (nothing was kept)")
    elsewhere = "or choose a store elsewhere with --root or SYNAPSE_ROOT"
    where = _existing(exc.filename) if exc.filename else "the store"
    if exc.errno == errno.EROFS:
        return SynapseError(
            f"{where} is on a read-only file system ({doing}); nothing was changed: mount it read-write {elsewhere}"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return SynapseError(
            f"permission denied on {where} ({doing}); nothing was changed: "
            f"give this user write access to the store (chown or chmod) {elsewhere}"
        )
    return SynapseError(f"{doing} failed: {exc.strerror or exc}")


def _existing(filename: str | bytes | int) -> str:
    """The path an error names, or its nearest folder that exists (not a temp that never was)."""
    path = Path(os.fsdecode(filename)) if not isinstance(filename, int) else Path(str(filename))
    while not os.path.lexists(path) and path.parent != path:
        path = path.parent
    return str(path)


UNWRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
"""errnos of a store that cannot be written (read-only mount, another user's folder)."""
