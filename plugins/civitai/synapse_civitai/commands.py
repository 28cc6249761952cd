"""`synapse civitai ...` commands."""

from __future__ import annotations

import click


@click.group()
def civitai() -> None:
    """Civitai account and look-ups."""
