"""Crash points: loaded by a CLI subprocess whose PYTHONPATH starts with this folder.

Counts every call that changes the filesystem or runs a program (rename, replace, link,
symlink, unlink, rmdir, mkdir, chmod, fsync, write, truncate, copy_file_range, an open for
writing, renameat2 through ctypes, a subprocess) and, at the N-th, kills the process and
its children with SIGKILL *before* the call is made: exactly what `kill -9` at that moment
leaves behind.

* ``SYNAPSE_CRASH_AT=N``: kill at the N-th counted call.
* ``SYNAPSE_CRASH_LABEL=TEXT``: kill at the first counted call whose label contains TEXT
  (where N varies between runs, as it does with threads, a label still names one moment).
* ``SYNAPSE_CRASH_COUNT=FILE``: at exit, write how many calls were counted (and each one's
  label, one a line) to FILE, so a test knows how many points a command has.

Without either variable nothing is changed. Threads share one counter (a download pool makes
the order of its calls vary a little between runs; the tests accept a run that is not killed).
"""

from __future__ import annotations

import atexit
import builtins
import ctypes
import io
import os
import signal
import subprocess
import threading
from typing import Any

_AT = int(os.environ.get("SYNAPSE_CRASH_AT") or 0)
_COUNT_FILE = os.environ.get("SYNAPSE_CRASH_COUNT")
_LABEL = os.environ.get("SYNAPSE_CRASH_LABEL")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_lock = threading.Lock()
_calls: list[str] = []


def _point(label: str) -> None:
    with _lock:
        _calls.append(label)
        number = len(_calls)
    if number == _AT or (_LABEL and _LABEL in label):
        os.killpg(os.getpgid(0), signal.SIGKILL)  # the CLI runs in a session of its own: only it and its children


def _counted(label: str, function: Any) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        _point(f"{label} {args[0] if args else ''}")
        return function(*args, **kwargs)

    call.__wrapped__ = function  # type: ignore[attr-defined]
    return call


def _writes(mode: object) -> bool:
    return isinstance(mode, str) and any(c in mode for c in "wax+")


def _install() -> None:
    for name in (
        "rename",
        "replace",
        "link",
        "symlink",
        "unlink",
        "remove",
        "rmdir",
        "mkdir",
        "chmod",
        "fsync",
        "write",
        "truncate",
        "ftruncate",
        "copy_file_range",
    ):
        setattr(os, name, _counted(f"os.{name}", getattr(os, name)))

    real_os_open = os.open

    def os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & _WRITE_FLAGS:
            _point(f"os.open {path}")
        return real_os_open(path, flags, *args, **kwargs)

    os.open = os_open

    real_open = io.open

    def open_(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if _writes(mode):
            _point(f"open {file} {mode}")
        return real_open(file, mode, *args, **kwargs)

    io.open = builtins.open = open_  # type: ignore[assignment]

    class CountedPopen(subprocess.Popen):  # type: ignore[type-arg]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            _point(f"subprocess {' '.join(map(str, args)) if isinstance(args, list | tuple) else args}")
            super().__init__(args, *rest, **kwargs)

    subprocess.Popen = CountedPopen  # type: ignore[misc]

    real_getitem = ctypes.CDLL.__getitem__

    def getitem(self: ctypes.CDLL, name: Any) -> Any:
        function = real_getitem(self, name)
        return _counted(f"ctypes.{name}", function) if name in ("renameat2", "renameat") else function

    ctypes.CDLL.__getitem__ = getitem  # type: ignore[assignment,method-assign]

    if _COUNT_FILE:
        count_file = _COUNT_FILE

        def report() -> None:
            with real_open(count_file, "w") as handle:
                handle.write("".join(f"{label}\n" for label in _calls))

        atexit.register(report)


if _AT or _COUNT_FILE or _LABEL:
    _install()
