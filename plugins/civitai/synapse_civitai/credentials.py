"""The Civitai API token: from CIVITAI_API_TOKEN, or the user's credentials file (synapse_core.credentials)."""

from __future__ import annotations

import os
from pathlib import Path

from synapse_core.credentials import credentials_file, forget_secret, load_secret, redact, save_secret

__all__ = ["TOKEN_ENV", "credentials_file", "forget_token", "load_token", "redact", "save_token"]

TOKEN_ENV = "CIVITAI_API_TOKEN"
SECTION = "civitai"


def load_token() -> str | None:
    """The token to use, if any: the environment wins over the file."""
    return os.environ.get(TOKEN_ENV, "").strip() or load_secret(SECTION)


def save_token(token: str) -> Path:
    """Write the token to the credentials file, readable by the user only."""
    return save_secret(SECTION, token, "a Civitai API key")


def forget_token() -> bool:
    """Remove the token from the credentials file; True if there was one."""
    return forget_secret(SECTION)
