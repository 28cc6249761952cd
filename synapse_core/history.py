"""state/ as a git repository: one commit per command that changes state."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Collection
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from synapse_core.errors import SynapseError

_GIT_IDENTITY = ["-c", "user.name=synapse", "-c", "user.email=synapse@localhost", "-c", "commit.gpgsign=false"]


class HistoryEntry(BaseModel):
    """One commit of state/."""

    commit: str
    date: datetime
    message: str


class StateHistory:
    """Commits, lists and rolls back state/. Without git it does nothing and says so."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.git = shutil.which("git")

    @property
    def enabled(self) -> bool:
        """Whether git is installed and state/ is a repository."""
        return self.git is not None and (self.state_dir / ".git").exists()

    def _run(self, *args: str, check: bool = True, allow: str | None = None) -> str:
        """git's stdout; a failure raises unless ``check`` is off or its output contains ``allow``."""
        assert self.git is not None
        result = subprocess.run(
            [self.git, *_GIT_IDENTITY, "-C", str(self.state_dir), *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0 and not (allow and allow in result.stdout + result.stderr):
            detail = (result.stderr.strip().splitlines() or ["no message"])[-1]
            if any(s in result.stderr for s in ("No space left", "Out of diskspace", "Disk quota exceeded")):
                raise SynapseError(
                    f"the disk is full (git cannot write {self.state_dir}); free some space and try again"
                )
            raise SynapseError(f"git {args[0]} in {self.state_dir} failed: {detail}; run 'synapse doctor'")
        return result.stdout + result.stderr if allow else result.stdout

    def init(self) -> None:
        """Make state/ a repository (idempotent); temp files are never versioned."""
        if self.git is not None and not (self.state_dir / ".git").exists():
            self._run("init", "-q", "-b", "main")
        ignore = self.state_dir / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*.tmp\n")

    def stale_locks(self) -> list[Path]:
        """Lock files a killed git left in state/.git (index, HEAD, config, refs)."""
        git_dir = self.state_dir / ".git"
        if not git_dir.is_dir():
            return []
        found = [git_dir / f"{name}.lock" for name in ("index", "HEAD", "config", "packed-refs")]
        found = [p for p in found if p.is_file()]
        refs = git_dir / "refs"
        return found + (sorted(p for p in refs.rglob("*.lock") if p.is_file()) if refs.is_dir() else [])

    def _index_broken(self) -> str | None:
        """git's complaint when the index cannot be read, else None."""
        if not self.enabled or not (self.state_dir / ".git" / "index").exists():
            return None
        result = subprocess.run(
            [str(self.git), "-C", str(self.state_dir), "ls-files", "--stage"], capture_output=True, text=True
        )
        return (result.stderr.strip().splitlines() or ["unreadable"])[-1] if result.returncode != 0 else None

    def problems(self) -> list[str]:
        """What a killed git left: stale lock files, an index it cannot read."""
        found = [f"stale lock {p.relative_to(self.state_dir)}" for p in self.stale_locks()]
        broken = self._index_broken()
        return found + ([f"the index is broken ({broken})"] if broken else [])

    def recover(self) -> None:
        """Remove the lock files a killed git left behind and rebuild an index it left broken
        (call only under the store lock, when no git of ours can be running)."""
        for lock in self.stale_locks():
            lock.unlink(missing_ok=True)
        if self._index_broken() is not None:
            (self.state_dir / ".git" / "index").unlink()
            if self._run("rev-parse", "--verify", "-q", "HEAD", check=False).strip():
                self._run("reset", "-q")  # the index from HEAD; the files are left as they are

    def changed_paths(self) -> list[str]:
        """Paths under state/ with uncommitted changes (relative, posix)."""
        if not self.enabled:
            return []
        out = self._run("status", "--porcelain", "-z", "--untracked-files=all")
        paths = []
        entries = out.split("\0")
        index = 0
        while index < len(entries):
            entry = entries[index]
            index += 1
            if len(entry) < 4:
                continue
            paths.append(entry[3:])
            if entry[0] in "RC":  # a rename also names its source
                index += 1
        return paths

    def is_clean(self) -> bool:
        """Whether state/ has no uncommitted change."""
        return not self.changed_paths()

    def commit(self, message: str, paths: Collection[Path] | None = None) -> bool:
        """Commit what changed under state/; True if a commit was made.

        ``paths`` (files or folders under state/): stage only those, so a commit costs what
        changed, not what the store holds; None stages everything."""
        if not self.enabled:
            return False
        if paths is None:
            self._run("add", "-A")
        else:
            relative = sorted({str(p.relative_to(self.state_dir)) for p in paths})
            gone = [p for p in relative if not (self.state_dir / p).exists()]
            if gone:  # a path deleted again before it was ever committed is not git's to stage
                tracked = set(self._run("ls-files", "--", *gone).splitlines())
                relative = [p for p in relative if p not in gone or any(t.startswith(p) for t in tracked)]
            if not relative:
                return False
            self._run("add", "-A", "--", *relative)
        output = self._run("commit", "-q", "-m", message, allow="nothing to commit")
        return "nothing to commit" not in output

    def discard_changes(self) -> None:
        """Throw away uncommitted changes (after a failed command)."""
        if self.enabled and self._run("rev-parse", "--verify", "-q", "HEAD", check=False).strip():
            self._run("reset", "-q", "--hard")
            self._run("clean", "-q", "-fdx")  # -x: also the ignored temp files of a killed command

    def log(self, limit: int = 50) -> list[HistoryEntry]:
        """The newest commits first."""
        if not self.enabled or not self._run("rev-parse", "--verify", "-q", "HEAD", check=False).strip():
            return []
        out = self._run("log", f"-{limit}", "--format=%H%x1f%cI%x1f%s")
        entries = []
        for line in out.splitlines():
            commit, date, message = line.split("\x1f", 2)
            entries.append(HistoryEntry(commit=commit[:12], date=datetime.fromisoformat(date), message=message))
        return entries
