"""`synapse store ...`: create the store."""

from __future__ import annotations

import click

from synapse_core.cli.output import emit, json_option, state


@click.group()
def store() -> None:
    """Create and inspect the store itself."""


LINK_MODES = ("auto", "symlink", "hardlink", "reflink", "copy")


@store.command()
@click.option(
    "--link-mode",
    type=click.Choice(LINK_MODES),
    help="How views are made (default: auto, which probes the file system once and says what it chose).",
)
@json_option
@click.pass_context
def init(ctx: click.Context, link_mode: str | None, as_json: bool) -> None:
    """Create the store at --root (idempotent)."""
    result = state(ctx).store(as_json).init(link_mode=link_mode)

    def human() -> None:
        verb = "created" if result.created else "already present:"
        click.echo(f"store {verb} {result.root}")
        click.echo(f"UIs: {', '.join(result.uis) or 'none installed'}")
        click.echo(f"views: {result.link_mode} ({result.link_mode_reason})")
        if not result.history:
            click.echo("state history is off (git is not installed)")

    emit(result, as_json, human)
