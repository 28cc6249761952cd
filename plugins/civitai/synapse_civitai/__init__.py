"""Synapse Store plugin: Civitai as a source of packs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synapse_core import hookimpl

if TYPE_CHECKING:
    import click

    from synapse_core.sources import Source


@hookimpl
def synapse_sources() -> list[Source]:
    from synapse_civitai.source import CivitaiSource

    return [CivitaiSource()]


@hookimpl
def synapse_register_commands(cli: click.Group) -> None:
    from synapse_civitai.commands import civitai

    cli.add_command(civitai)
