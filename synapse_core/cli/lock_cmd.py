"""Lock-file commands: export, sync."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from synapse_core.cli.output import emit, json_option, state


@click.command()
@click.argument("profile", default="global")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here (default: stdout).")
@click.pass_context
def export(ctx: click.Context, profile: str, output: Path | None) -> None:
    """Write PROFILE (default global) as a lock file: its packs, their files' sha256s, sizes and names,
    the conflict policy and the order."""
    data = state(ctx).store(True).export_lock(profile)
    if output is None:
        sys.stdout.buffer.write(data)
        return
    from synapse_core.layout import write_bytes_atomic

    write_bytes_atomic(output.absolute(), data)
    click.echo(f"wrote {output}", err=True)


@click.command()
@click.argument("lockfile", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--ui", "uis", multiple=True, help="Switch only this UI (repeatable; default: the default UI set).")
@click.option("--ui-set", help="Switch the UIs of this set.")
@json_option
@click.pass_context
def sync(ctx: click.Context, lockfile: Path, uis: tuple[str, ...], ui_set: str | None, as_json: bool) -> None:
    """Reproduce LOCKFILE here: import missing packs, fetch their files (remotes, then sources) and
    switch the UIs to its profile. Never deletes other packs; refuses with a list when a file is found nowhere."""
    result = state(ctx).store(as_json).sync(lockfile, uis=uis, ui_set=ui_set)

    def human() -> None:
        if result.imported:
            click.echo(f"imported {', '.join(result.imported)}")
        if result.fetched:
            click.echo(f"fetched {len(result.fetched)} file(s), {len(result.from_remotes)} from remotes")
        for warning in result.warnings:
            click.echo(f"warning: {warning}", err=True)
        for ui, stack in result.uis.items():
            click.echo(f"{ui}: {stack[-1]}")
        click.echo(f"views now show {result.profile}")

    emit(result, as_json, human)
