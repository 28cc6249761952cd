"""Secrets of source plugins (API tokens), kept outside every store.

One TOML file in the user's config folder, ``$XDG_CONFIG_HOME/synapse/credentials.toml``
(default ``~/.config/...``), mode 0600, with a table per plugin: ``[<section>] token = "..."``.
Never under a store root, never in config.json, never printed.
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from synapse_core.errors import InvalidInput


def credentials_file() -> Path:
    """$XDG_CONFIG_HOME/synapse/credentials.toml (default ~/.config/...)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / "synapse" / "credentials.toml"


def _read() -> dict[str, Any]:
    try:
        return tomllib.loads(credentials_file().read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def _write(data: dict[str, Any]) -> Path:
    """Replace the file atomically; it is created readable by the user only."""
    path = credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(tomli_w.dumps(data).encode())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return path


def load_secret(section: str) -> str | None:
    """The token stored for ``section``, if any."""
    table = _read().get(section)
    value = table.get("token") if isinstance(table, dict) else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def save_secret(section: str, token: str, what: str) -> Path:
    """Store ``token`` for ``section``; ``what`` names it in the error ("a Civitai API key")."""
    token = token.strip()
    if not token or any(c.isspace() for c in token):
        raise InvalidInput(f"that is not {what} (it is empty or contains spaces)")
    data = _read()
    table = data.get(section)
    data[section] = {**(table if isinstance(table, dict) else {}), "token": token}
    return _write(data)


def forget_secret(section: str) -> bool:
    """Remove the token of ``section``; True if there was one."""
    data = _read()
    table = data.get(section)
    if not isinstance(table, dict) or "token" not in table:
        return False
    del table["token"]
    _write(data)
    return True


def redact(text: str, token: str | None) -> str:
    """``text`` with the token (if any) replaced, for messages and logs."""
    return text.replace(token, "***") if token else text
