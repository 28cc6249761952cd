"""The Civitai API token: from CIVITAI_API_TOKEN, or the user's credentials file.

The file is TOML in the user's config folder (never under the store root), mode 0600.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import tomli_w

from synapse_core.errors import InvalidInput

TOKEN_ENV = "CIVITAI_API_TOKEN"


def credentials_file() -> Path:
    """$XDG_CONFIG_HOME/synapse/credentials.toml (default ~/.config/...)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / "synapse" / "credentials.toml"


def load_token() -> str | None:
    """The token to use, if any: the environment wins over the file."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    try:
        data = tomllib.loads(credentials_file().read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    value = data.get("civitai", {}).get("token")
    return value.strip() if isinstance(value, str) and value.strip() else None


def save_token(token: str) -> Path:
    """Write the token to the credentials file, readable by the user only."""
    token = token.strip()
    if not token or any(c.isspace() for c in token):
        raise InvalidInput("that is not a Civitai API key (it is empty or contains spaces)")
    path = credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data: dict[str, dict[str, str]] = {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        data = {}
    data.setdefault("civitai", {})["token"] = token
    temp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(tomli_w.dumps(data).encode())
    os.replace(temp, path)
    return path


def forget_token() -> bool:
    """Remove the token from the credentials file; True if there was one."""
    path = credentials_file()
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return False
    if "token" not in data.get("civitai", {}):
        return False
    del data["civitai"]["token"]
    path.write_bytes(tomli_w.dumps(data).encode())
    return True


def redact(text: str, token: str | None) -> str:
    """``text`` with the token (if any) replaced, for messages and logs."""
    return text.replace(token, "***") if token else text
