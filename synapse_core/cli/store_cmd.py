"""`synapse store ...`: create the store."""

from __future__ import annotations

import click

from synapse_core.cli.output import emit, json_option, state


@click.group()
def store() -> None:
    """Create and inspect the store itself."""


@store.command()
@json_option
@click.pass_context
def init(ctx: click.Context, as_json: bool) -> None:
    """Create the store at --root (idempotent)."""
    result = state(ctx).store(as_json).init()

    def human() -> None:
        verb = "created" if result.created else "already present:"
        click.echo(f"store {verb} {result.root}")
        click.echo(f"UIs: {', '.join(result.uis) or 'none installed'}")
        if not result.history:
            click.echo("state history is off (git is not installed)")

    emit(result, as_json, human)
