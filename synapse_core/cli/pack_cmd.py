"""Pack commands: import, list, show, install, remove."""

from __future__ import annotations

import os
from pathlib import Path

import click

from synapse_core.cli.output import emit, human_size, json_option, state
from synapse_core.errors import InvalidInput
from synapse_core.hashing import HashAhead
from synapse_core.kinds import AssetKind


def _prefs(values: tuple[str, ...]) -> dict[str, str]:
    prefs = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key or not val:
            raise InvalidInput(f"--prefer takes KEY=VALUE (e.g. fp=fp16), got {value!r}")
        prefs[key] = val
    return prefs


def _at_most_one(**flags: bool) -> str | None:
    """The one flag given, if any; two of them are a usage error (click would keep the last)."""
    given = [name for name, on in flags.items() if on]
    if len(given) > 1:
        raise click.UsageError(f"--{given[0]} and --{given[1]} cannot be used together")
    return given[0] if given else None


@click.command("import")
@click.argument("ref")
@click.option("--name", help="Pack name (default: from the file, folder or model name).")
@click.option(
    "--kind", type=click.Choice([k.value for k in AssetKind]), help="What the file is, when it can't be told."
)
@click.option(
    "--force-kind",
    type=click.Choice([k.value for k in AssetKind]),
    help="Store it as this kind even when its header shows another.",
)
@click.option("--link", is_flag=True, help="Hard-link or reflink local files instead of copying.")
@click.option("--move", is_flag=True, help="Move local files into the store.")
@click.option("--pin", is_flag=True, help="Never update this pack.")
@click.option("--follow", is_flag=True, help="Follow the latest version.")
@click.option("--file", "file_ids", multiple=True, help="Take this file of the version (source's file id).")
@click.option("--all-files", is_flag=True, help="Take every file of the version.")
@click.option("--prefer", multiple=True, help="File preference KEY=VALUE, e.g. fp=fp16 or format=SafeTensor.")
@click.option("--sync", is_flag=True, help="Download every file now.")
@click.option("--identify", is_flag=True, help="Give a local file the metadata a source has for its hash.")
@click.option("--video-previews", is_flag=True, help="Keep video previews too (default: images only).")
@click.option("--each", is_flag=True, help="A folder as one pack per model file (subfolders kept in the names).")
@json_option
@click.pass_context
def import_(
    ctx: click.Context,
    ref: str,
    name: str | None,
    kind: str | None,
    force_kind: str | None,
    link: bool,
    move: bool,
    pin: bool,
    follow: bool,
    file_ids: tuple[str, ...],
    all_files: bool,
    prefer: tuple[str, ...],
    sync: bool,
    identify: bool,
    video_previews: bool,
    each: bool,
    as_json: bool,
) -> None:
    """Import REF (a file, a folder, or a URL a source plugin knows) as a pack."""
    mode = {"link": "link", "move": "move", None: "copy"}[_at_most_one(link=link, move=move)]
    policy = {"pin": "pinned", "follow": "follow_latest", None: None}[_at_most_one(pin=pin, follow=follow)]
    if kind and force_kind:
        raise click.UsageError("--kind and --force-kind cannot be used together")
    kind, forced = force_kind or kind, force_kind is not None
    if each:
        if name or file_ids or all_files or prefer or sync or identify:
            raise click.UsageError("--each takes only --kind/--force-kind, --link/--move and --pin/--follow")
        batch = (
            state(ctx)
            .store(as_json)
            .import_each(
                ref,
                kind=kind,
                force_kind=forced,
                mode=mode,  # type: ignore[arg-type]
                policy=policy,
            )
        )

        def said() -> None:
            click.echo(f"imported {len(batch.packs)} packs from {ref}")
            for warning in batch.warnings:
                click.echo(f"warning: {warning}", err=True)

        emit(batch, as_json, said)
        return
    # a big file's hashing is most of an import: start it now, while the store loads
    ahead = HashAhead([ref]) if os.path.isfile(ref) else None
    result = (
        state(ctx)
        .store(as_json, hash_ahead=ahead)
        .import_pack(
            ref,
            name=name,
            kind=kind,
            force_kind=forced,
            mode=mode,  # type: ignore[arg-type]
            policy=policy,
            file_ids=file_ids,
            all_files=all_files,
            prefer=_prefs(prefer),
            sync=sync,
            identify=identify,
            video_previews=video_previews,
        )
    )

    def human() -> None:
        click.echo(f"imported {result.pack} from {result.source}: {len(result.resources)} resource(s)")
        for res in result.resources:
            mark = "" if res.installed else "  (not downloaded: run 'synapse install')"
            click.echo(f"  {res.kind.value:<14} {res.expose}{mark}")
        for warning in result.warnings:
            click.echo(f"warning: {warning}", err=True)

    emit(result, as_json, human)


@click.command("list")
@json_option
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List packs."""
    packs = state(ctx).store(as_json).list_packs()

    def human() -> None:
        if not packs:
            click.echo("no packs yet: synapse import PATH|URL")
        for p in packs:
            kinds = ",".join(k.value for k in p.kinds)
            flag = "" if p.installed else "  [not installed]"
            click.echo(f"{p.name:<28} {kinds:<16} {human_size(p.size):>10}  {p.provider}{flag}")

    emit(packs, as_json, human)


@click.command()
@click.argument("pack")
@json_option
@click.pass_context
def show(ctx: click.Context, pack: str, as_json: bool) -> None:
    """Show a pack: source, metadata, resources and what is installed."""
    details = state(ctx).store(as_json).show(pack)

    def human() -> None:
        p = details.pack
        click.echo(f"{p.name}  ({p.source.provider}, {p.policy}, upstream {p.upstream})")
        if p.source.url:
            click.echo(f"  source: {p.source.url}")
        for label, value in (("base model", p.base_model), ("creator", p.creator)):
            if value:
                click.echo(f"  {label}: {value}")
        if p.trigger_words:
            click.echo(f"  trigger words: {', '.join(p.trigger_words)}")
        if p.tags:
            click.echo(f"  tags: {', '.join(p.tags)}")
        for res in details.resources:
            have = "installed" if res.installed else "missing"
            size = human_size(res.size) if res.size is not None else "?"
            click.echo(f"  {res.id}: {res.kind.value} {res.expose} {size} {have} sha256 {(res.sha256 or '?')[:12]}")
        for preview in details.previews:
            click.echo(f"  preview: {preview}")

    emit(details, as_json, human)


@click.command()
@click.argument("pack", required=False)
@click.option("--for", "for_file", type=click.Path(path_type=Path), help="Fetch the models a workflow or image needs.")
@click.option("--ui", help="With --for: the UI whose view is checked.")
@click.option("--yes", is_flag=True, help="With --for: fetch without asking.")
@json_option
@click.pass_context
def install(
    ctx: click.Context, pack: str | None, for_file: Path | None, ui: str | None, yes: bool, as_json: bool
) -> None:
    """Make every file of PACK present in the library (download or copy), or with --for FILE the
    models a workflow or image needs (shown with their sizes before anything is fetched)."""
    if (pack is None) == (for_file is None):
        raise click.UsageError("name a PACK or give --for FILE (one of them)")
    if for_file is not None:
        from synapse_core.cli.workflow_cmd import install_for

        install_for(ctx, for_file, ui, yes, as_json)
        return
    assert pack is not None
    result = state(ctx).store(as_json).install(pack)

    def human() -> None:
        if result.fetched:
            click.echo(f"{pack}: fetched {', '.join(result.fetched)} ({human_size(result.bytes_written)} written)")
        else:
            click.echo(f"{pack}: everything already present")

    emit(result, as_json, human)


@click.command()
@click.argument("pack")
@json_option
@click.pass_context
def remove(ctx: click.Context, pack: str, as_json: bool) -> None:
    """Remove PACK from state and profiles (its files stay until 'synapse gc')."""
    result = state(ctx).store(as_json).remove(pack)

    def human() -> None:
        click.echo(f"removed {pack}; its files stay until 'synapse gc'")
        for ui, stack in result.switched_back.items():
            click.echo(f"{ui}: back to {stack[-1]} (it was using work__{pack})")

    emit(result, as_json, human)
