"""Validation of names that become file or folder names (packs, profiles, exposed files)."""

from __future__ import annotations

import re
import unicodedata

from synapse_core.errors import InvalidInput

_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{n}" for p in ("COM", "LPT") for n in range(1, 10)}
_FORBIDDEN_CHARS = set('/\\<>:"|?*')
# control, format (zero-width, bidi overrides), surrogate, private-use, unassigned, line/paragraph separators
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
MAX_NAME_LENGTH = 120
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# names of printable ASCII only need no per-character Unicode lookup (the usual case, checked thousands of times)
_PRINTABLE_ASCII = re.compile(r"[ -~]*")


def is_invisible(char: str) -> bool:
    """Whether a character shows nothing, or changes how its neighbours show (U+200B, U+202E)."""
    return unicodedata.category(char) in _INVISIBLE_CATEGORIES


def is_sha256(value: object) -> bool:
    """Whether ``value`` is a sha256 as the store names blobs: 64 lower-case hex digits."""
    return isinstance(value, str) and SHA256_HEX.fullmatch(value) is not None


def problem_with_name(name: str) -> str | None:
    """Why ``name`` cannot be a single path component on every filesystem, or None."""
    if not name or not name.strip():
        return "it is empty"
    if name in (".", "..") or ".." in name:
        return "it contains '..'"
    bad = _FORBIDDEN_CHARS.intersection(name)
    if bad:
        return f"it contains {' '.join(repr(c) for c in sorted(bad))}"
    if not _PRINTABLE_ASCII.fullmatch(name) and any(is_invisible(c) for c in name):
        return "it contains invisible or control characters (such as U+200B or U+202E)"
    if name.split(".")[0].upper().rstrip() in _WINDOWS_RESERVED:
        return "it is a name Windows reserves"
    if name[-1] in ". " or name[0] == " ":
        return "it starts with a space or ends with a dot or space"
    if len(name) > MAX_NAME_LENGTH:
        return f"it is longer than {MAX_NAME_LENGTH} characters"
    return None


def problem_with_relative_path(path: str) -> str | None:
    """Why ``path`` ('name' or 'folder/name') cannot be a relative path inside a folder, or None."""
    if path.startswith("/"):
        return "it is an absolute path"
    for part in path.split("/"):
        problem = problem_with_name(part)
        if problem is not None:
            return problem
    return None


def check_pack_name(name: str) -> str:
    """Return ``name`` if it is a valid pack name, else raise InvalidInput."""
    problem = problem_with_name(name)
    if problem is None and name.startswith("work__"):
        problem = "the prefix 'work__' is reserved for work profiles"
    if problem is None and name.startswith("."):
        problem = "it starts with a dot (a hidden folder, and one that git's history of state/ leaves out: '.git')"
    if problem is not None:
        raise InvalidInput(f"invalid pack name {name!r}: {problem}; choose another with --name")
    return name


def sanitize_file_name(raw: str, fallback: str = "file") -> str:
    """Make ``raw`` a safe single file name: no separators, no control characters,
    no Windows-reserved names or trailing dots; unicode letters are kept."""
    name = unicodedata.normalize("NFC", raw)
    name = name.replace("/", "_").replace("\\", "_")
    name = "".join("_" if c in _FORBIDDEN_CHARS or unicodedata.category(c) == "Cc" else c for c in name)
    name = "".join(c for c in name if not is_invisible(c))
    name = re.sub(r"\.{2,}", ".", name).strip(" .")
    stem, dot, ext = name.partition(".")
    if stem.rstrip().upper() in _WINDOWS_RESERVED:
        name = f"{stem.rstrip()}_{dot}{ext}"
    if not name:
        return fallback
    return _fit(name, MAX_FILE_NAME_BYTES)


MAX_FILE_NAME_BYTES = 200


def _fit(name: str, limit: int) -> str:
    """Shorten the stem (never the extension) until the UTF-8 name fits ``limit`` bytes."""
    stem, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
    suffix = f"{dot}{ext}" if len(ext) <= 16 else ""
    stem = stem if suffix else name
    while len((stem + suffix).encode()) > limit:
        stem = stem[:-1]
    return (stem.rstrip(" .") or "file") + suffix


def sanitize_pack_name(raw: str) -> str:
    """A pack name derived from free text such as a model's title."""
    name = re.sub(r"[^\w.\- ]+", "", unicodedata.normalize("NFC", raw)).strip()
    name = re.sub(r"\s+", "_", name).strip("._")
    if name.startswith("work__"):
        name = name[len("work__") :]
    return name[:MAX_NAME_LENGTH] or "pack"
