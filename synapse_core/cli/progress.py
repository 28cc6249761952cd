"""Progress on a terminal: one line with bytes, speed and ETA, redrawn on stderr."""

from __future__ import annotations

import sys
import threading
import time

from synapse_core.cli.output import human_size


class TerminalProgress:
    """Aggregates every running transfer into one status line (thread-safe)."""

    def __init__(self, interval: float = 0.2) -> None:
        self._lock = threading.Lock()
        self._done = 0
        self._total = 0
        self._unknown = False
        self._active: set[str] = set()
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._interval = interval

    def add_total(self, label: str, total: int | None) -> None:
        with self._lock:
            self._active.add(label)
            if total is None:
                self._unknown = True
            else:
                self._total += total

    def advance(self, n: int) -> None:
        with self._lock:
            self._done += n
            now = time.monotonic()
            if now - self._last_draw >= self._interval:
                self._last_draw = now
                self._draw(now)

    def finish(self, label: str) -> None:
        with self._lock:
            self._active.discard(label)
            if not self._active:
                self._draw(time.monotonic())
                sys.stderr.write("\n")
                sys.stderr.flush()

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-6)
        speed = self._done / elapsed
        total = "?" if self._unknown else human_size(self._total)
        eta = ""
        if not self._unknown and speed > 0 and self._total >= self._done:
            eta = f" ETA {int((self._total - self._done) / speed)}s"
        names = ", ".join(sorted(self._active))[:40]
        line = f"{human_size(self._done)} / {total}  {human_size(int(speed))}/s{eta}  {names}"
        sys.stderr.write("\r\x1b[K" + line)
        sys.stderr.flush()
