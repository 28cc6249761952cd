"""The mutation marker: data/.mutation says a command is changing the store, and whose it is.

A command writes it before it changes state and removes it when it is done. Finding one means
a command is running (on a file system where the lock does nothing) or was killed. Recovery
acts only when the marker's owner is gone: a process of this host that no longer runs (or a
new process with the same pid). A marker from another host is never rolled back silently.

The marker's ``phase`` tells recovery what to do: ``state`` (the command had not committed:
throw its state changes away) or ``views`` (state was committed; only the views may lag:
check them against state).

A command that switches UIs once state is committed (``use``) says so in ``then`` before its
commit: ``{"use": PROFILE, "uis": [UI, ...]}``. Recovery finishes the switch when PROFILE is in
the committed state (the command got past its commit), so state, runtime.json and ``active``
end as the command would have left them; otherwise state was rolled back to before it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from typing import Literal

import attrs

from synapse_core.errors import SynapseError
from synapse_core.names import problem_with_name

Phase = Literal["state", "views"]


@attrs.frozen
class Switch:
    """``then`` of a marker: switch ``uis`` to ``profile`` (pushed on their stacks)."""

    profile: str
    uis: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        """As written in data/.mutation."""
        return {"use": self.profile, "uis": list(self.uis)}

    @classmethod
    def from_json(cls, data: object) -> Switch | None:
        """A valid ``then``, else None (a marker is never trusted to name a path)."""
        if not isinstance(data, dict):
            return None
        profile, uis = data.get("use"), data.get("uis")
        if not isinstance(profile, str) or problem_with_name(profile) is not None:
            return None
        if not isinstance(uis, list) or not all(isinstance(u, str) and problem_with_name(u) is None for u in uis):
            return None
        return cls(profile, tuple(uis))


def _start_time(pid: int) -> str | None:
    """A process's start time (Linux: clock ticks since boot), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


@attrs.frozen
class MarkerInfo:
    """What a marker says."""

    command: str
    pid: int | None = None
    host: str | None = None
    started: str | None = None
    phase: Phase = "state"
    then: Switch | None = None
    """The switch the command makes once state is committed (see the module's docstring)."""

    def owner_gone(self) -> bool:
        """Whether the command that wrote the marker is certainly not running any more."""
        if self.pid is None:
            return True  # a marker of an older version: its command ended long ago
        if self.host != socket.gethostname():
            return False
        if self.pid == os.getpid():
            return False
        if not _alive(self.pid):
            return True
        return self.started is not None and _start_time(self.pid) != self.started  # the pid was reused

    def describe(self) -> str:
        """``'install X' (pid N on host H)``"""
        owner = f" (pid {self.pid} on {self.host})" if self.pid else ""
        return f"'{self.command}'{owner}"


class Marker:
    """data/.mutation"""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> MarkerInfo | None:
        """The marker, or None when no command is changing the store."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SynapseError(f"cannot read {self.path}: {exc.strerror}") from exc
        try:
            data = json.loads(raw)
            phase = data.get("phase", "state")
            return MarkerInfo(
                command=str(data["command"]),
                pid=int(data["pid"]),
                host=str(data["host"]),
                started=data.get("started"),
                phase=phase if phase in ("state", "views") else "state",
                then=Switch.from_json(data.get("then")),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return MarkerInfo(command=raw.decode(errors="replace").strip() or "a command")

    def write(self, command: str, phase: Phase = "state", then: Switch | None = None) -> None:
        """Say that this process is changing the store (only a killed process must be detected:
        no fsync needed)."""
        data: dict[str, object] = {
            "command": command,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": _start_time(os.getpid()),
            "phase": phase,
        }
        if then is not None:
            data["then"] = then.to_json()
        temp = self.path.with_name(f".mutation.{os.getpid()}.tmp")
        try:
            temp.write_text(json.dumps(data))
            os.replace(temp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink()
            if exc.errno == 28:
                raise SynapseError(
                    f"the disk is full (cannot write {self.path}); free some space and try again"
                ) from exc
            raise SynapseError(f"cannot write {self.path}: {exc.strerror}; check the store's permissions") from exc

    def remove(self) -> None:
        """The command is done."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
