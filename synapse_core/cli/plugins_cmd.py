"""`synapse plugins`: what is installed, what it contributes, and what failed."""

from __future__ import annotations

import click

from synapse_core.cli.output import emit, json_option, state


@click.command()
@json_option
@click.option("--all", "show_all", is_flag=True, help="Include the built-in plugins.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool, show_all: bool) -> None:
    """List plugins: distribution, version, hooks, contributions and load status."""
    registry = state(ctx).registry
    root = ctx.find_root().command
    if isinstance(root, click.Group):
        root.list_commands(ctx)  # loads plugin commands, which count as contributions
    records = [r for r in registry.records if show_all or not r.builtin]

    def human() -> None:
        if not records:
            click.echo("no plugins installed")
        for r in records:
            origin = "built-in" if r.builtin else f"{r.distribution or '?'} {r.version or ''}".strip()
            gives = "; ".join(f"{k}: {', '.join(_named(k, v, r.variants))}" for k, v in sorted(r.contributes.items()))
            gives = gives or "nothing"
            click.echo(f"{r.name:<18} {r.status:<8} {origin:<24} {gives}")
            if r.reason:
                click.echo(f"{'':<18} reason: {r.reason}")

    emit(records, as_json, human)


def _named(category: str, names: list[str], variants: dict[str, list[str]]) -> list[str]:
    """UI names with the forks their adapter also serves: ``forge (also reForge, Forge Classic)``."""
    if category != "ui":
        return names
    return [f"{n} (also {', '.join(variants[n])})" if n in variants else n for n in names]
