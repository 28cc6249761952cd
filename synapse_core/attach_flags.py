"""Generic helpers for attaching a UI: owned text regions and command-line flags.

Two jobs, both pure planning (nothing here writes a file):

* Editing one *owned region* of a text file (a marked block in a launcher
  script, one section of a YAML file) so that every other byte stays as it
  was, and removing the region restores the file exactly: :func:`lines_of`,
  :func:`insert_region`, :func:`replace_region`, :func:`remove_region`.
* Planning a "command-line flags" attach (:class:`FlagAttach`): each flag
  points one folder of the UI at the same folder inside the view. The flags
  are shown to the user and, for the launcher scripts that exist, appended to
  an environment variable inside one marked block.

Nothing here knows a particular UI: adapters pass their flags, folders,
variable name and script names.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path

import attrs

from synapse_core.errors import InvalidInput
from synapse_core.ui import AttachPlan, FileChange, KindFolder, Unsupported

# --------------------------------------------------------------------------- text regions


@attrs.frozen
class Line:
    """One line of a text: ``text[start:end]`` is its content, without the line break."""

    start: int
    end: int
    text: str


def lines_of(text: str) -> list[Line]:
    """The lines of ``text``; only ``\\n`` and ``\\r\\n`` end a line."""
    lines: list[Line] = []
    pos = 0
    while pos < len(text):
        brk = text.find("\n", pos)
        stop = len(text) if brk < 0 else brk
        end = stop - 1 if brk >= 0 and stop > pos and text[stop - 1] == "\r" else stop
        lines.append(Line(pos, end, text[pos:end]))
        pos = len(text) if brk < 0 else brk + 1
    return lines


def newline_of(text: str) -> str:
    """The line break a text uses: ``\\r\\n`` if it has any, else ``\\n``."""
    return "\r\n" if "\r\n" in text else "\n"


def insert_region(text: str, body: str, at: int | None, newline: str) -> str:
    """Insert ``body`` (lines joined by ``newline``, no final break) as whole lines.

    ``at`` is the start of the line to insert before, or None for the end. A
    text without a final line break keeps having none, so that
    :func:`remove_region` restores it exactly.
    """
    if at is not None:
        return text[:at] + body + newline + text[at:]
    if not text or text.endswith("\n"):
        return text + body + newline
    return text + newline + body


def replace_region(text: str, start: int, end: int, body: str) -> str:
    """Replace the lines spanning ``text[start:end]`` (line breaks excluded) by ``body``."""
    return text[:start] + body + text[end:]


def remove_region(text: str, start: int, end: int) -> str:
    """Remove the whole lines spanning ``text[start:end]``; the inverse of :func:`insert_region`."""
    if end < len(text):
        after = end + (2 if text.startswith("\r\n", end) else 1)
        return text[:start] + text[after:]
    head = text[:start]
    if head.endswith("\r\n"):
        return head[:-2]
    return head[:-1] if head.endswith("\n") else head


def read_text(path: Path) -> str | None:
    """The exact text of ``path`` (line breaks untouched), or None if it is not a file."""
    if not path.is_file():
        return None
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path} is not UTF-8 text ({exc.reason}); fix or move it; nothing was changed") from exc
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}; nothing was changed") from exc


# --------------------------------------------------------------------------- marked blocks


@attrs.frozen
class Marks:
    """The first and last line of a marked block, and how a comment line starts."""

    begin: str
    end: str
    comment: str


def find_block(text: str, marks: Marks, where: str) -> tuple[int, int] | None:
    """The span of the one marked block in ``text``, or None; a broken block is refused."""
    lines = lines_of(text)
    begins = [line for line in lines if line.text.strip() == marks.begin]
    ends = [line for line in lines if line.text.strip() == marks.end]
    if not begins and not ends:
        return None
    if len(begins) != 1 or len(ends) != 1 or ends[0].start < begins[0].start:
        raise InvalidInput(
            f"{where} has a broken synapse block (expected one '{marks.begin}' line, then one '{marks.end}' line);"
            " fix or move it; nothing was changed"
        )
    return begins[0].start, ends[0].end


def set_block(text: str, marks: Marks, lines: Sequence[str], where: str, before: re.Pattern[str] | None = None) -> str:
    """``text`` with its marked block set to ``lines``: replaced in place if present,
    else inserted before the first line matching ``before`` (or at the end)."""
    newline = newline_of(text)
    body = newline.join([marks.begin, *lines, marks.end])
    span = find_block(text, marks, where)
    if span is not None:
        return replace_region(text, span[0], span[1], body)
    at = None
    if before is not None:
        at = next((line.start for line in lines_of(text) if before.search(line.text)), None)
    return insert_region(text, body, at, newline)


def drop_block(text: str, marks: Marks, where: str) -> str:
    """``text`` without its marked block (unchanged if it has none)."""
    span = find_block(text, marks, where)
    return text if span is None else remove_region(text, span[0], span[1])


# --------------------------------------------------------------------------- command-line flags


class Dialect(StrEnum):
    """The shell a launcher script is written for."""

    SH = "sh"
    BAT = "bat"


_NOTICE = "Managed by Synapse Store: 'synapse attach' rewrites and 'synapse detach' removes this block."
MARKS: Mapping[Dialect, Marks] = {
    Dialect.SH: Marks("# >>> synapse >>>", "# <<< synapse <<<", "# "),
    # No < > | & in cmd.exe comment lines: keep the batch markers free of shell metacharacters.
    Dialect.BAT: Marks("rem === synapse begin ===", "rem === synapse end ===", "rem "),
}


def sh_word(value: str) -> str:
    """``value`` quoted for a POSIX shell (and for Python's ``shlex.split``)."""
    return shlex.quote(value)


def bat_word(value: str) -> str:
    """``value`` quoted for a cmd.exe ``set`` line whose value Python later splits with
    ``shlex.split``: forward slashes (so no backslash escapes), double quotes, ``%`` doubled."""
    return '"' + value.replace("\\", "/").replace("%", "%%") + '"'


def _sh_in_double_quotes(value: str) -> str:
    return re.sub(r'([\\"$`])', r"\\\1", value)


def sh_append_line(env_var: str, args: str) -> str:
    """An sh line appending ``args`` (already shlex-quoted) to ``env_var``."""
    return f'export {env_var}="${env_var} {_sh_in_double_quotes(args)}"'


def bat_append_line(env_var: str, args: str) -> str:
    """A cmd.exe line appending ``args`` (already quoted with :func:`bat_word`) to ``env_var``."""
    return f"set {env_var}=%{env_var}% {args}"


_QUOTE: Mapping[Dialect, Callable[[str], str]] = {Dialect.SH: sh_word, Dialect.BAT: bat_word}
_APPEND: Mapping[Dialect, Callable[[str, str], str]] = {Dialect.SH: sh_append_line, Dialect.BAT: bat_append_line}


@attrs.frozen
class FlagTarget:
    """One flag pointing one UI folder at the same folder inside the view."""

    flag: str
    folder: str
    """Posix path inside the view (and inside the UI's root), e.g. ``models/Lora``."""
    adds: bool
    """True if the UI searches this folder as well as its own; False if it replaces its own."""

    def argument(self, view: Path, dialect: Dialect) -> str:
        """``--flag <quoted path>`` for ``dialect``."""
        return f"{self.flag} {_QUOTE[dialect](str(view / self.folder))}"


def targets_from_layout(
    entries: Iterable[KindFolder | Unsupported], adds: Iterable[str] = ()
) -> tuple[FlagTarget, ...]:
    """The flag targets of a layout's KindFolders whose ``attach_key`` is a flag, in
    layout order, one per flag. ``adds`` names the flags that add rather than replace."""
    adding = set(adds)
    folders: dict[str, str] = {}
    for entry in entries:
        if isinstance(entry, KindFolder) and entry.attach_key and entry.attach_key.startswith("--"):
            known = folders.setdefault(entry.attach_key, entry.folder)
            if known != entry.folder:
                raise ValueError(f"flag {entry.attach_key} points at both {known} and {entry.folder}")
    return tuple(FlagTarget(flag, folder, flag in adding) for flag, folder in folders.items())


@attrs.frozen
class LaunchScript:
    """A script the UI's launcher runs first, in which Synapse owns one marked block."""

    name: str
    """File name inside the install, e.g. ``webui-user.sh``."""
    dialect: Dialect
    before: str | None = None
    """Regex of the line the block must come before (e.g. the line that starts the UI);
    None: at the end of the script."""


@attrs.frozen
class FlagAttach:
    """Everything a command-line-flag attach needs to know about one UI."""

    ui: str
    display_name: str
    env_var: str
    """The environment variable the UI appends to its command line, e.g. ``COMMANDLINE_ARGS``."""
    targets: tuple[FlagTarget, ...]
    scripts: tuple[LaunchScript, ...] = ()
    notes: tuple[str, ...] = ()
    """Extra lines for the instructions (caveats, alternatives)."""

    def plan_attach(self, install: Path, view: Path) -> AttachPlan:
        """Flags to show, and each existing launcher script with its block set.

        A script that does not exist is not created: which launcher the user runs
        (sh, bat, a third-party launcher) is unknown, and a file nobody reads would
        only pretend the install is attached. The instructions say so instead.
        """
        if "\n" in str(view) or "\r" in str(view):
            raise InvalidInput(f"the view path {str(view)!r} contains a line break; no launcher can pass it")
        changes = [change for script in self.scripts if (change := self._set_script(install, view, script))]
        return AttachPlan(self.ui, install, view, self.attach_instructions(install, view, changes), tuple(changes))

    def _set_script(self, install: Path, view: Path, script: LaunchScript) -> FileChange | None:
        path = install / script.name
        text = read_text(path)
        if text is None:
            return None
        before = re.compile(script.before, re.IGNORECASE) if script.before else None
        new = set_block(text, MARKS[script.dialect], self.block_lines(view, script.dialect), str(path), before)
        return None if new == text else FileChange(path, new, f"set the synapse block ({self.env_var} flags)")

    def plan_detach(self, install: Path, view: Path) -> AttachPlan:
        """Each launcher script that has a synapse block, without it."""
        changes = []
        for script in self.scripts:
            path = install / script.name
            text = read_text(path)
            if text is None:
                continue
            new = drop_block(text, MARKS[script.dialect], str(path))
            if new != text:
                changes.append(FileChange(path, new, "removed the synapse block"))
        flags = " ".join(target.flag for target in self.targets)
        if not self.scripts:
            text = f"Synapse changed no file in {install}; start {self.display_name} without {flags} again."
        else:
            done = ", ".join(change.path.name for change in changes) or "no launcher script has a synapse block"
            text = f"Detach {self.display_name} at {install}: {done}.\nIf you passed the flags by hand, remove {flags}."
        return AttachPlan(self.ui, install, view, text, tuple(changes))

    def block_lines(self, view: Path, dialect: Dialect) -> list[str]:
        """The lines inside the marked block: a notice, then one line per flag."""
        comment = MARKS[dialect].comment + _NOTICE
        return [comment, *(_APPEND[dialect](self.env_var, t.argument(view, dialect)) for t in self.targets)]

    def flag_lines(self, view: Path) -> list[str]:
        """One line per flag, saying whether it adds a folder or replaces the UI's own."""
        width = max((len(t.argument(view, Dialect.SH)) for t in self.targets), default=0)
        return [f"  {t.argument(view, Dialect.SH):<{width}}  # {_effect(t)}" for t in self.targets]

    def attach_instructions(self, install: Path, view: Path, changes: Sequence[FileChange]) -> str:
        """What to show for an attach: the flags, what was written, how to do it by hand."""
        parts = [f"Point {self.display_name} at the Synapse view {view} with these command-line flags:", ""]
        parts += self.flag_lines(view)
        parts += ["", self._written(install, changes), "By hand, pass the flags to the launcher, or:"]
        for dialect in Dialect:
            args = " ".join(t.argument(view, dialect) for t in self.targets)
            parts.append(f"  {_APPEND[dialect](self.env_var, args)}")
        parts += ["", *self.notes] if self.notes else []
        return "\n".join(parts)

    def _written(self, install: Path, changes: Sequence[FileChange]) -> str:
        if changes:
            names = " and ".join(change.path.name for change in changes)
            return (
                f"Synapse sets one marked block in {names}, appending them to {self.env_var}; the rest stays as it is."
            )
        names = " / ".join(script.name for script in self.scripts)
        if not names:
            return f"Synapse changes no file in {install}."
        if any((install / script.name).is_file() for script in self.scripts):
            return "The synapse block already holds these flags; nothing to change."
        return f"No {names} in {install}, so Synapse changes no file: add the flags to however you start it."


def _effect(target: FlagTarget) -> str:
    if target.adds:
        return f"searched in addition to the UI's own {target.folder}"
    return f"replaces the UI's own {target.folder}"
