"""Commands about what UIs see: use, back, status, profiles, attach, detach."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import click

from synapse_core.cli.output import emit, human_size, json_option, state

ui_option = click.option("--ui", "uis", multiple=True, help="A UI to act on (repeatable).")
ui_set_option = click.option("--ui-set", help="A UI set from state/ui_sets.json (default: the config's default).")


def _emit_stacks(stacks: dict[str, list[str]], installed: list[str], as_json: bool) -> None:
    """Print a switch's outcome (the shape of results.SwitchResult, built without loading it)."""

    def human() -> None:
        for ui, stack in stacks.items():
            click.echo(f"{ui}: {' > '.join(stack)}")

    emit({"uis": stacks, "installed": installed}, as_json, human)


@click.command()
@click.argument("pack", required=False)
@click.option(
    "--for", "for_file", type=click.Path(path_type=Path), help="Switch to a profile made for a workflow or image."
)
@ui_option
@ui_set_option
@click.option("--sync", is_flag=True, help="Install the pack's missing files first.")
@json_option
@click.pass_context
def use(
    ctx: click.Context,
    pack: str | None,
    for_file: Path | None,
    uis: tuple[str, ...],
    ui_set: str | None,
    sync: bool,
    as_json: bool,
) -> None:
    """Switch UIs to PACK's work profile, where PACK wins every name conflict; or with --for FILE
    to a profile where every model the file names shows under exactly the name it spells."""
    if (pack is None) == (for_file is None):
        raise click.UsageError("name a PACK or give --for FILE (one of them)")
    if for_file is not None:
        from synapse_core.cli.workflow_cmd import use_for

        use_for(ctx, for_file, uis, as_json)
        return
    assert pack is not None
    cli_state = state(ctx)
    current = None if sync else cli_state.switcher().use(pack, uis, ui_set)
    if current is not None:
        _record_hashes(ctx, current, as_json)
        _emit_stacks(current, [], as_json)
        return
    result = cli_state.store(as_json).use(pack, uis=uis, ui_set=ui_set, sync=sync)
    _emit_stacks(result.uis, result.installed, as_json)


@click.command()
@ui_option
@ui_set_option
@json_option
@click.pass_context
def back(ctx: click.Context, uis: tuple[str, ...], ui_set: str | None, as_json: bool) -> None:
    """Return UIs to the profile they used before the last `use`."""
    stacks = state(ctx).switcher().back(uis, ui_set)
    if stacks is None:  # the view to land on must be built: the full Store path
        stacks = state(ctx).store(as_json).back(uis=uis, ui_set=ui_set).uis
    else:
        _record_hashes(ctx, stacks, as_json)
    _emit_stacks(stacks, [], as_json)


def _record_hashes(ctx: click.Context, uis: Collection[str], as_json: bool) -> None:
    """After a light switch: attached installs' hash caches get the new view's sha256s (the Store
    is made only when such an install exists, so the light path stays light otherwise)."""
    from synapse_core.attached import attached_uis

    cli_state = state(ctx)
    if attached_uis(cli_state.switcher().layout.config_file, uis):
        cli_state.store(as_json).record_ui_hashes(uis)


_FOLLOWS = {
    "live": "follows use/back by itself",
    "refresh": "follows use/back after its Refresh",
    "restart": "restart it after use/back",
}


@click.command()
@json_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Each UI's profile stack, active view, shadowed entries and missing files."""
    report = state(ctx).store(as_json).status()

    def human() -> None:
        click.echo(f"store {report.root}: {report.packs} packs, {report.blobs} files, {human_size(report.bytes)}")
        for ui in report.uis:
            click.echo(f"{ui.ui}: {ui.active} ({ui.entries} files)  stack: {' > '.join(ui.stack)}")
            click.echo(f"  view: {ui.view}")
            for line in ui.shadowed:
                click.echo(f"  shadowed: {line}")
            for line in ui.missing:
                click.echo(f"  missing: {line}")
            for line in ui.unsupported:
                click.echo(f"  not shown: {line}")
            for line in ui.kept:
                click.echo(f"  kept (written by the UI): {line}")
            for install in ui.installs:
                version = f" {install.version}" if install.version else ""
                click.echo(
                    f"  attached: {install.path} ({install.variant}{version}; running: {_FOLLOWS[install.follows]})"
                )
                if install.problem:
                    click.echo(f"    problem: {install.problem}")
                for line in install.not_listed:
                    click.echo(f"    not listed there: {line}")

    emit(report, as_json, human)


@click.command()
@json_option
@click.pass_context
def profiles(ctx: click.Context, as_json: bool) -> None:
    """List profiles and where they are in use."""
    infos = state(ctx).store(as_json).list_profiles()

    def human() -> None:
        for info in infos:
            active = f"  active in: {', '.join(info.active_in)}" if info.active_in else ""
            click.echo(f"{info.name:<32} {len(info.packs)} packs  {info.policy}{active}")

    emit(infos, as_json, human)


@click.group()
def profile() -> None:
    """Inspect one profile."""


@profile.command("show")
@click.argument("name")
@json_option
@click.pass_context
def profile_show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show a profile's packs in order (later packs win conflicts under last_wins)."""
    info = state(ctx).store(as_json).show_profile(name)

    def human() -> None:
        click.echo(f"{info.name} (policy {info.policy})")
        for index, pack in enumerate(info.packs, 1):
            click.echo(f"  {index}. {pack}")
        if info.stacked_in:
            click.echo(f"  on the stack of: {', '.join(info.stacked_in)}")

    emit(info, as_json, human)


def _attach(
    ctx: click.Context,
    ui: str,
    path: Path,
    print_only: bool,
    as_json: bool,
    detach: bool,
    force: bool = False,
    link_mode: str | None = None,
) -> None:
    result = (
        state(ctx)
        .store(as_json)
        .attach(ui, path, print_only=print_only, detach=detach, force=force, link_mode=link_mode)
    )

    def human() -> None:
        click.echo(result.instructions)
        for line in result.changed:
            click.echo(f"changed {line}")
        if not print_only and not result.changed:
            click.echo("nothing to change")

    emit(result, as_json, human)


@click.command()
@click.argument("ui")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--print", "print_only", is_flag=True, help="Only print what to add; change no file.")
@click.option("--force", is_flag=True, help="Attach even if the install's own models or flags would be hidden.")
@click.option(
    "--link-mode",
    type=click.Choice(["auto", "symlink", "hardlink", "reflink", "copy"]),
    help="How this UI's views are made (default: the store's).",
)
@json_option
@click.pass_context
def attach(
    ctx: click.Context, ui: str, path: Path, print_only: bool, force: bool, link_mode: str | None, as_json: bool
) -> None:
    """Point the UI installed at PATH at its Synapse view (once; use/back need no re-attach).

    Stops, listing them, when the install's own folders that attach replaces hold models or
    the user set those flags: adopt them first ('synapse adopt PATH') or pass --force."""
    _attach(ctx, ui, path, print_only, as_json, detach=False, force=force, link_mode=link_mode)


@click.command()
@click.argument("ui")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--print", "print_only", is_flag=True, help="Only print what would be removed.")
@json_option
@click.pass_context
def detach(ctx: click.Context, ui: str, path: Path, print_only: bool, as_json: bool) -> None:
    """Undo `attach`: remove only what Synapse added to the install at PATH."""
    _attach(ctx, ui, path, print_only, as_json, detach=True)
