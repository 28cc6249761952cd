"""Remote commands: remote add/list/remove/order, push, pull."""

from __future__ import annotations

import click

from synapse_core.cli.output import emit, human_size, json_option, parse_age, state
from synapse_core.errors import InvalidInput


@click.group()
def remote() -> None:
    """Remotes: an S3-compatible store (s3://BUCKET/PREFIX) or a shared folder (file:///mnt/nas/synapse).

    Credentials come from the client's standard chain (AWS_* variables, ~/.aws profiles),
    never from the store."""


def _options(values: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--option takes KEY=VALUE (e.g. region=eu-west-1), got {value!r}")
        found[key] = val
    return found


@remote.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--endpoint-url", help="The S3 API's address, for stores other than AWS (R2, B2, MinIO, Ceph...).")
@click.option("--region", help="The bucket's region (default: the client's own configuration).")
@click.option("--profile", "aws_profile", help="The credentials profile to use (default: the standard chain).")
@click.option("--option", "options", multiple=True, help="A setting of the remote's kind, KEY=VALUE.")
@click.option("--default", "default", is_flag=True, help="Push and pull use this remote when none is named.")
@json_option
@click.pass_context
def add(
    ctx: click.Context,
    name: str,
    url: str,
    endpoint_url: str | None,
    region: str | None,
    aws_profile: str | None,
    options: tuple[str, ...],
    default: bool,
    as_json: bool,
) -> None:
    """Add a remote NAME at URL."""
    settings = _options(options)
    if region:
        settings["region"] = region
    if aws_profile:
        settings["profile"] = aws_profile
    infos = (
        state(ctx).store(as_json).remote_add(name, url, endpoint_url=endpoint_url, options=settings, default=default)
    )
    emit(infos, as_json, lambda: click.echo(f"added remote {name} ({url}); 'synapse doctor' checks it can be reached"))


@remote.command("list")
@json_option
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List remotes (the default one is marked)."""
    infos = state(ctx).store(as_json).remote_list()

    def human() -> None:
        if not infos:
            click.echo("no remotes; add one with 'synapse remote add NAME URL'")
        for info in infos:
            endpoint = f"  (endpoint {info.endpoint_url})" if info.endpoint_url else ""
            click.echo(f"{'*' if info.default else ' '} {info.name:<16} {info.url}{endpoint}")

    emit(infos, as_json, human)


@remote.command("remove")
@click.argument("name")
@json_option
@click.pass_context
def remove(ctx: click.Context, name: str, as_json: bool) -> None:
    """Forget remote NAME (nothing on it is deleted)."""
    infos = state(ctx).store(as_json).remote_remove(name)
    emit(infos, as_json, lambda: click.echo(f"removed remote {name}; nothing on it was deleted"))


@remote.command("order")
@click.argument("steps", nargs=-1, required=True)
@json_option
@click.pass_context
def order(ctx: click.Context, steps: tuple[str, ...], as_json: bool) -> None:
    """Where install looks for a missing file first: 'remotes source' (the default) or 'source remotes'."""
    result = state(ctx).store(as_json).remote_order(steps)
    emit(result, as_json, lambda: click.echo(f"install looks in: {', then '.join(result)}"))


@remote.command("prune")
@click.argument("name", required=False)
@click.option("--older-than", default="1d", show_default=True, help="Only uploads idle this long (30m, 12h, 2d).")
@click.option("--dry-run", is_flag=True, help="List them; remove nothing.")
@json_option
@click.pass_context
def prune(ctx: click.Context, name: str | None, older_than: str, dry_run: bool, as_json: bool) -> None:
    """Remove unfinished uploads that interrupted pushes left on remote NAME (default: the default remote)."""
    idle = parse_age(older_than, "--older-than")
    assert idle is not None
    result = state(ctx).store(as_json).remote_prune(name, older_than=idle, dry_run=dry_run)

    def human() -> None:
        for key in result.uploads:
            click.echo(f"{'would remove' if dry_run else 'removed'} the unfinished upload of {key}")
        verb = "would free" if dry_run else "freed"
        click.echo(f"{result.remote}: {len(result.uploads)} unfinished upload(s), {verb} {human_size(result.bytes)}")

    emit(result, as_json, human)


@click.command()
@click.argument("packs", nargs=-1)
@click.option("--all", "all_packs", is_flag=True, help="Every pack of the library.")
@click.option("--remote", "remote_name", help="The remote (default: the default remote).")
@json_option
@click.pass_context
def push(ctx: click.Context, packs: tuple[str, ...], all_packs: bool, remote_name: str | None, as_json: bool) -> None:
    """Upload the files of PACKS (or --all) that the remote lacks, then their records."""
    if bool(packs) == all_packs:
        raise click.UsageError("name the PACKS to push, or give --all")
    result = state(ctx).store(as_json).push(packs, remote=remote_name)
    emit(
        result,
        as_json,
        lambda: click.echo(
            f"pushed {len(result.packs)} pack(s) to {result.remote}: {result.uploaded} of {result.blobs} file(s) "
            f"uploaded ({human_size(result.bytes_uploaded)}), the rest were there"
        ),
    )


@click.command()
@click.argument("packs", nargs=-1)
@click.option("--remote", "remote_name", help="The remote (default: the default remote).")
@json_option
@click.pass_context
def pull(ctx: click.Context, packs: tuple[str, ...], remote_name: str | None, as_json: bool) -> None:
    """Bring PACKS (default: every pack the remote has) and their files from a remote."""
    result = state(ctx).store(as_json).pull(packs, remote=remote_name)
    emit(
        result,
        as_json,
        lambda: click.echo(
            f"pulled {len(result.packs)} pack(s) from {result.remote} ({len(result.new_packs)} new): "
            f"{result.downloaded} file(s), {human_size(result.bytes_downloaded)}"
        ),
    )
