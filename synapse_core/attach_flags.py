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

import ast
import contextlib
import json
import os
import re
import shlex
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from enum import StrEnum
from pathlib import Path

import attrs

from synapse_core.errors import InvalidInput
from synapse_core.kinds import AssetKind
from synapse_core.ui import AttachPlan, FileChange, KindFolder, ModelFolder, Unsupported

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


def read_json_object(path: Path) -> dict[str, object]:
    """A JSON file's top-level object, or {} when it is missing, unreadable or not an object
    (UIs treat a broken settings file as defaults, and so do we)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_text(path: Path) -> str | None:
    """The exact text of ``path`` (line breaks untouched), or None if it is not a file.

    A symlinked file is written where it points (the link stays), so a link must lead
    somewhere: a loop, or a link into a folder that does not exist, is refused (attach would
    otherwise create folders wherever a dangling link points)."""
    if path.is_symlink():
        try:
            target = Path(os.path.realpath(path, strict=False))
            os.stat(path)  # a loop: ELOOP
        except FileNotFoundError:
            pass
        except (OSError, RuntimeError) as exc:
            raise InvalidInput(
                f"{path} is a symbolic link loop ({exc}); fix or remove it; nothing was changed"
            ) from exc
        if not target.parent.is_dir():
            raise InvalidInput(
                f"{path} is a symbolic link to {target}, whose folder does not exist; "
                "fix or remove the link; nothing was changed"
            )
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


# --------------------------------------------------------------------------- flags a parser defines

_PARSER_NAMES = frozenset({"parser", "args_parser"})


def argparse_flags(path: Path, root: Path | None = None) -> frozenset[str]:
    """The long options (``--x``) that the ``add_argument`` calls of a Python file define.

    With ``root``, the modules the file takes its parser from (``from a.b import parser``,
    ``from a import args_parser``, resolved inside ``root``) count too, one level deep.
    Read, never run. Raise :class:`InvalidInput` if the file cannot be read or parsed.
    """
    tree = _python_tree(path)
    flags = set(_add_argument_flags(tree))
    if root is not None:
        for module in _parser_modules(tree):
            found = root.joinpath(*module.split(".")).with_suffix(".py")
            if found.is_file():
                flags |= _add_argument_flags(_python_tree(found))
    return frozenset(flags)


def _python_tree(path: Path) -> ast.Module:
    try:
        return ast.parse(path.read_bytes(), filename=str(path))
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from exc
    except (SyntaxError, ValueError) as exc:
        raise InvalidInput(f"{path} is not Python that can be read ({exc})") from exc


def _add_argument_flags(tree: ast.Module) -> set[str]:
    flags: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("--"):
                    flags.add(arg.value)
    return flags


def _parser_modules(tree: ast.Module) -> list[str]:
    """Modules a file imports its parser from: ``from m import parser`` gives ``m``,
    ``from m import args_parser`` gives ``m.args_parser``."""
    modules = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if alias.name == "parser":
                    modules.append(node.module)
                elif alias.name in _PARSER_NAMES:
                    modules.append(f"{node.module}.{alias.name}")
    return modules


def preload_flags(folders: Iterable[Path]) -> frozenset[str]:
    """The flags the ``preload.py`` of each extension folder defines; a preload that cannot be
    read or parsed defines none (the UI reports it and starts without it)."""
    flags: set[str] = set()
    for folder in folders:
        preload = folder / "preload.py"
        if preload.is_file():
            try:
                flags |= argparse_flags(preload)
            except InvalidInput:
                continue
    return frozenset(flags)


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


def count_model_files(folder: Path, extensions: frozenset[str]) -> int:
    """Files under ``folder`` (symlinked ones included, symlinked folders not entered) with
    one of ``extensions``; preview images (``x.preview.png``) are not models."""
    if folder.is_symlink() or not folder.is_dir():
        return 0
    count = 0
    for _dirpath, _dirs, files in os.walk(folder):
        for name in files:
            stem, suffix = os.path.splitext(name)
            if suffix.lower() in extensions and not stem.lower().endswith(".preview"):
                count += 1
    return count


def count_model_folders(folder: Path, markers: Iterable[str]) -> int:
    """Folders directly inside ``folder`` that hold one of ``markers`` (a diffusers model's
    model_index.json, a Hugging Face cache entry's snapshots/)."""
    try:
        children = [child for child in folder.iterdir() if child.is_dir()]
    except OSError:
        return 0
    return sum(1 for child in children if any((child / marker).exists() for marker in markers))


@attrs.frozen
class ExtensionParser:
    """A launcher whose argument parser is one Python file plus the ``preload(parser)`` of
    extension folders: which long options does an install's parser accept?

    Every folder under ``builtin_dirs`` is preloaded; those under ``extension_dirs`` unless a
    JSON settings file lists them in ``disabled_key``, sets ``disable_all_key`` to anything but
    ``"none"``, or the user passes one of ``disabling_flags``.
    """

    parser_file: str
    builtin_dirs: tuple[str, ...]
    extension_dirs: tuple[str, ...]
    settings_file: str
    disabled_key: str
    disable_all_key: str
    disabling_flags: tuple[str, ...]

    def defined_flags(self, install: Path, user_flags: Iterable[str] = ()) -> frozenset[str]:
        """The flags ``install`` accepts; ``user_flags`` are those its launcher passes anyway.
        Raise :class:`InvalidInput` if the parser file cannot be read."""
        try:
            flags = set(argparse_flags(install / self.parser_file, install))
        except InvalidInput as exc:
            raise InvalidInput(f"{exc.message}; cannot tell which flags this install accepts") from exc
        flags |= preload_flags(_subfolders(install, self.builtin_dirs))
        flags |= preload_flags(self.enabled_extensions(install, user_flags))
        return frozenset(flags)

    def enabled_extensions(self, install: Path, user_flags: Iterable[str] = ()) -> list[Path]:
        """The extension folders whose preload runs at the next start."""
        settings = read_json_object(install / self.settings_file)
        if settings.get(self.disable_all_key, "none") != "none" or set(user_flags) & set(self.disabling_flags):
            return []
        disabled = settings.get(self.disabled_key, [])
        off = {str(name) for name in disabled} if isinstance(disabled, list) else set()
        return [folder for folder in _subfolders(install, self.extension_dirs) if folder.name not in off]


def _subfolders(install: Path, parents: Iterable[str]) -> list[Path]:
    """The folders directly inside each of ``parents`` (inside ``install``), sorted by name."""
    found = []
    for parent in parents:
        with contextlib.suppress(OSError):
            found += sorted(p for p in (install / parent).iterdir() if p.is_dir())
    return found


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


def bat_call_pattern(script: str) -> str:
    """A regex for the cmd.exe line that runs batch file ``script``, in all its usual forms:
    ``x.bat``, ``call x.bat``, ``call .\\x.bat``, ``call "%~dp0x.bat"``, any case, with arguments."""
    return r'^\s*@?(?:call\s+)?"?(?:%~dp0[\\/]?|\.[\\/])?' + re.escape(script) + r'"?(?:\s|$)'


_COMMENT: Mapping[Dialect, re.Pattern[str]] = {
    Dialect.SH: re.compile(r"^\s*#"),
    Dialect.BAT: re.compile(r"^\s*(?:@?rem(?:\s|$)|::)", re.IGNORECASE),
}


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
        if new == text:
            return None
        return FileChange(path, new, f"set the synapse block ({self.env_var} flags{self._flag_changes(text, script)})")

    def _flag_changes(self, text: str, script: LaunchScript) -> str:
        """What a rewrite changes in an existing block's flags: ``; adds --x; drops --y``."""
        span = find_block(text, MARKS[script.dialect], script.name)
        if span is None:
            return ""
        old = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", text[span[0] : span[1]]))
        new = {target.flag for target in self.targets}
        parts = [f"adds {' '.join(sorted(new - old))}"] if new - old else []
        parts += [f"drops {' '.join(sorted(old - new))}"] if old - new else []
        return "".join(f"; {part}" for part in parts)

    def user_flags(self, install: Path, flags: Iterable[str]) -> dict[str, list[str]]:
        """Which of ``flags`` the user's own lines of the launcher scripts pass (comments and
        the synapse block aside): flag -> the scripts that pass it."""
        patterns = {flag: re.compile(rf"(?<![\w-]){re.escape(flag)}(?![\w-])") for flag in flags}
        found: dict[str, list[str]] = {}
        for script, line in self._user_lines(install):
            for flag, pattern in patterns.items():
                if pattern.search(line) and script not in found.get(flag, []):
                    found.setdefault(flag, []).append(script)
        return found

    def user_flag_values(self, install: Path, flags: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
        """The values the user's own lines of the launcher scripts give ``flags`` (comments and the
        synapse block aside): flag -> (value, script) pairs, in script order."""
        wanted = "|".join(re.escape(flag) for flag in flags)
        pattern = re.compile(rf"(?<![\w-])({wanted})(?:=|\s+)(?:\\?\"([^\"\\]*)\\?\"|'([^']*)'|([^\s\"']+))")
        found: dict[str, list[tuple[str, str]]] = {}
        if not wanted:
            return found
        for script, line in self._user_lines(install):
            for match in pattern.finditer(line):
                value = next(v for v in match.groups()[1:] if v is not None)
                found.setdefault(match.group(1), []).append((value, script))
        return found

    def _user_lines(self, install: Path) -> Iterator[tuple[str, str]]:
        """(script name, line) of every line the user wrote in the launcher scripts: the synapse
        block and comments left out."""
        for script in self.scripts:
            text = read_text(install / script.name)
            if text is None:
                continue
            span = find_block(text, MARKS[script.dialect], str(install / script.name))
            if span is not None:
                text = remove_region(text, span[0], span[1])
            for line in lines_of(text):
                if not _COMMENT[script.dialect].match(line.text):
                    yield script.name, line.text

    def model_folders(self, install: Path, layout: Layout, display_name: str) -> list[ModelFolder]:
        """The install's own folders of ``layout`` and the folders the user's flags name (a relative
        value is taken from the install), each once, for ``synapse adopt``."""
        found = []
        seen: set[tuple[AssetKind, str]] = set()
        by_flag: dict[str, list[AssetKind]] = {}
        for kind, entry in layout.items():
            if isinstance(entry, KindFolder) and not entry.folders:
                if entry.attach_key:
                    by_flag.setdefault(entry.attach_key, []).append(kind)
                path = install / entry.folder
                if path.is_dir() and (kind, str(path)) not in seen:
                    seen.add((kind, str(path)))
                    found.append(ModelFolder(kind, path, f"{display_name}'s {entry.folder} folder ({entry.source})"))
        for flag, values in self.user_flag_values(install, by_flag).items():
            for value, script in values:
                path = Path(os.path.expanduser(value))
                path = path if path.is_absolute() else install / path
                for kind in by_flag[flag][:1]:  # a flag shared by kinds (ControlNet, IP-Adapter): the first
                    if path.is_dir() and (kind, str(path)) not in seen:
                        seen.add((kind, str(path)))
                        found.append(ModelFolder(kind, path, f"{flag} in {script}"))
        return found

    def conflicts(self, install: Path, own: Mapping[str, Sequence[tuple[str, frozenset[str]]]]) -> list[str]:
        """What this attach would hide: model files in the install's own folders that a replacing
        flag takes the place of (``own``: flag -> (folder inside the install, extensions the UI
        lists there)), and flags the user passes themselves, which the block would override."""
        found = []
        for target in self.targets:
            if target.adds:
                continue
            for folder, extensions in own.get(target.flag, ()):
                count = count_model_files(install / folder, extensions)
                if count:
                    files = "file" if count == 1 else "files"
                    found.append(f"{count} model {files} in {install / folder} (which {target.flag} replaces)")
        for flag, scripts in self.user_flags(install, [t.flag for t in self.targets]).items():
            found.append(f"your own {flag} in {' and '.join(scripts)} (the synapse block would override it)")
        return found

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


# --------------------------------------------------------------------------- layouts and flags

Layout = Mapping[AssetKind, KindFolder | Unsupported]


def own_folders(layout: Layout) -> dict[str, list[tuple[str, frozenset[str]]]]:
    """For each flag of a layout, the install's own folders it points elsewhere (a view mirrors
    the UI's root, so they are the layout's folders) and the extensions listed there."""
    own: dict[str, list[tuple[str, frozenset[str]]]] = {}
    for entry in layout.values():
        if isinstance(entry, KindFolder) and entry.attach_key:
            folders = own.setdefault(entry.attach_key, [])
            if all(folder != entry.folder for folder, _ in folders):
                folders.append((entry.folder, entry.extensions))
    return own


def attached_layout(layout: Layout, flags: Iterable[str]) -> dict[AssetKind, KindFolder | Unsupported]:
    """The layout as an install that was given only ``flags`` lists it."""
    given = set(flags)
    return {
        kind: entry
        if not isinstance(entry, KindFolder) or not entry.attach_key or entry.attach_key in given
        else Unsupported(f"not attached: this install's parser does not define {entry.attach_key}")
        for kind, entry in layout.items()
    }


def not_defined_note(layout: Layout, flag: str, parser_file: str) -> str:
    """The instructions' line for a flag left out because the install's parser lacks it."""
    kinds = ", ".join(k.value for k, e in layout.items() if isinstance(e, KindFolder) and e.attach_key == flag)
    return (
        f"Not attached: {kinds} ({flag}): this install's parser does not define it"
        f" ({parser_file}, extensions' preload.py); attach again once it does."
    )


@attrs.frozen
class HiddenFolders:
    """A UI setting that, when false, makes the UI skip every file under a folder whose name
    starts with a dot (anywhere in the path)."""

    settings_file: str
    option: str
    label: str
    kinds: str
    """What the UI then does not list, for the message."""
    source: str


def hidden_folder_warnings(install: Path, view: Path, display_name: str, hidden: HiddenFolders) -> list[str]:
    """One warning when the view's path has a dot-folder and the install's setting is off."""
    settings = read_json_object(install / hidden.settings_file)
    if settings.get(hidden.option, True) is not False or "/." not in view.absolute().as_posix():
        return []
    return [
        f"{display_name} at {install} does not list {hidden.kinds} from {view}: the path has a hidden folder"
        f" and its setting '{hidden.label}' ({hidden.option}) is off ({hidden.source}); turn it on, or move"
        " the store to a path without a folder that starts with a dot"
    ]


def resolves_paths(path: Path, name: str) -> bool:
    """Whether the function ``name`` defined in Python file ``path`` (a parser's ``type=`` for
    folder flags) resolves symlinks (``.resolve()``, ``realpath``): a UI doing that keeps the
    profile it started with instead of following ``active``. False if the file is unreadable."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(
        line.lstrip().startswith(name) and (".resolve()" in line or "realpath" in line) for line in text.splitlines()
    )
