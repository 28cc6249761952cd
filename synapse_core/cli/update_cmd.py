"""Update commands: check-updates, update, pack policy."""

from __future__ import annotations

import sys

import click

from synapse_core.cli.output import emit, human_size, json_option, parse_age, state
from synapse_core.results import UpdatePlan
from synapse_core.updates import AmbiguousUpdate, choose_flags, describe


def print_plan(plan: UpdatePlan) -> None:
    """The plan, for a person."""
    for update in plan.updates:
        name = update.latest_version_name or update.latest_version_id
        click.echo(f"{update.pack}: {update.current_version_id} -> {update.latest_version_id} ({name})")
        if update.base_change is not None:
            click.echo(f"  changes the {describe(update.base_change)} (applied only with --allow-base-change)")
        for res in update.resources:
            if res.new is not None:
                click.echo(f"  {res.resource}: {res.old_file} -> {res.new.file_name} (file {res.new.file_id})")
            elif res.ambiguous:
                click.echo(f"  {res.resource}: {res.old_file} -> one of:")
                for c in res.candidates:
                    meta = " ".join(c.metadata.values())
                    size = human_size(c.size) if c.size else "?"
                    click.echo(f"      file {c.file_id}: {c.file_name} {size} {meta}")
            else:
                click.echo(f"  {res.resource}: {res.old_file} (no replacement in the new version; kept)")
    for label, notes in (("not available yet", plan.unavailable), ("removed upstream", plan.removed)):
        for note in notes:
            click.echo(f"{note.pack}: {label}: {note.message}")
    for note in plan.failed:
        click.echo(f"{note.pack}: check failed: {note.message}", err=True)
    skipped = len(plan.skipped_recent)
    if skipped:
        click.echo(f"skipped {skipped} {'pack' if skipped == 1 else 'packs'} checked more recently than --max-age")
    if not plan.updates:
        click.echo("everything is up to date" if not (plan.failed or skipped) else "no updates found")
    flags = choose_flags(plan)
    if flags:
        click.echo(f"to apply, pass {'; and '.join(flags)}")


@click.command("check-updates")
@click.argument("packs", nargs=-1)
@click.option("--max-age", help="Skip packs checked more recently than this (e.g. 12h).")
@json_option
@click.pass_context
def check_updates(ctx: click.Context, packs: tuple[str, ...], max_age: str | None, as_json: bool) -> None:
    """Look for newer versions of packs that follow the latest version (changes no pack)."""
    plan = state(ctx).store(as_json).check_updates(packs, max_age=parse_age(max_age, "--max-age"))
    emit(plan, as_json, lambda: print_plan(plan))


@click.command()
@click.argument("packs", nargs=-1)
@click.option("--all", "all_packs", is_flag=True, help="Every pack that follows the latest version.")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--choose", multiple=True, help="Settle an ambiguous file: RESOURCE=FILE_ID or PACK:RESOURCE=FILE_ID.")
@click.option("--sync", is_flag=True, help="Download the new files and switch the views now.")
@click.option(
    "--allow-base-change", is_flag=True, help="Also apply a new version for another base model or of another kind."
)
@json_option
@click.pass_context
def update(
    ctx: click.Context,
    packs: tuple[str, ...],
    all_packs: bool,
    dry_run: bool,
    choose: tuple[str, ...],
    sync: bool,
    allow_base_change: bool,
    as_json: bool,
) -> None:
    """Move packs to their newest version (one state commit). A version for another base model
    or of another kind is held back unless --allow-base-change: its files keep the old names."""
    store = state(ctx).store(as_json)
    try:
        result = store.update(
            packs,
            all_packs=all_packs,
            dry_run=dry_run,
            choose=choose,
            sync=sync,
            allow_base_change=allow_base_change,
        )
    except AmbiguousUpdate as exc:
        plan = exc.plan
        emit(plan, as_json, lambda: print_plan(plan))
        click.echo(f"error: {exc.message}; nothing was changed", err=True)
        sys.exit(exc.exit_code)

    def human() -> None:
        print_plan(result.plan)
        if result.dry_run:
            click.echo("dry run: nothing was changed")
        elif result.applied:
            click.echo(f"updated {', '.join(result.applied)}")
            if not sync:
                click.echo("new files are not downloaded yet: 'synapse install PACK' or 'update --sync'")
        for name in [] if result.dry_run else result.held_back:
            click.echo(f"{name}: not updated (base model or kind changes); 'synapse update {name} --allow-base-change'")

    emit(result, as_json, human)


@click.group()
def pack() -> None:
    """Settings of one pack."""


@pack.command()
@click.argument("name")
@click.argument("policy", type=click.Choice(["follow_latest", "pinned"]))
@json_option
@click.pass_context
def policy(ctx: click.Context, name: str, policy: str, as_json: bool) -> None:
    """Make PACK follow the latest version, or pin it to the one it has."""
    result = state(ctx).store(as_json).set_policy(name, policy)
    emit(result, as_json, lambda: click.echo(f"{name}: {result.policy}"))
