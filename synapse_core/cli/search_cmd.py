"""`synapse search` and `synapse identify`."""

from __future__ import annotations

from pathlib import Path

import click

from synapse_core.cli.output import emit, human_size, json_option, state
from synapse_core.kinds import AssetKind


@click.command()
@click.argument("query")
@click.option("--remote", is_flag=True, help="Also ask every source that can search (e.g. Civitai).")
@click.option("--type", "kind", type=click.Choice([k.value for k in AssetKind]), help="Only this kind.")
@click.option("--base-model", help="Only this base model (remote search), e.g. 'SDXL 1.0'.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500), help="Remote results per source.")
@json_option
@click.pass_context
def search(
    ctx: click.Context, query: str, remote: bool, kind: str | None, base_model: str | None, limit: int, as_json: bool
) -> None:
    """Find packs by name, file names, tags, trigger words, base model and creator (every word of
    QUERY must match); --remote searches sources too."""
    result = state(ctx).store(as_json).search(query, remote=remote, kind=kind, base_model=base_model, limit=limit)

    def human() -> None:
        for p in result.local:
            click.echo(f"local   {p.name:<32} {','.join(k.value for k in p.kinds)}")
        for hit in result.remote:
            base = f" [{hit.base_model}]" if hit.base_model else ""
            click.echo(f"{hit.source:<7} {hit.name:<32} {hit.kind.value}{base}  synapse import {hit.ref}")
        for error in result.errors:
            click.echo(f"warning: {error}", err=True)
        if not result.local and not result.remote:
            click.echo("nothing found" + ("" if remote else " locally (add --remote to ask sources)"))

    emit(result, as_json, human)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@json_option
@click.pass_context
def identify(ctx: click.Context, paths: tuple[Path, ...], as_json: bool) -> None:
    """Hash local model files and look them up by hash in every source."""
    found = state(ctx).store(as_json).identify(list(paths))

    def human() -> None:
        for item in found:
            where = f"{item.source}: {item.name} ({item.ref})" if item.source else "unknown to every source"
            packs = f"  in packs: {', '.join(item.in_packs)}" if item.in_packs else ""
            click.echo(f"{item.path}  {human_size(item.size)}  sha256 {item.sha256[:12]}  {where}{packs}")

    emit(found, as_json, human)
