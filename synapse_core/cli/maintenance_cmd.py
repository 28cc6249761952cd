"""Maintenance commands: gc, du, doctor, history."""

from __future__ import annotations

import sys

import click

from synapse_core.cli.output import emit, human_size, json_option, state


@click.command()
@click.option("--dry-run", is_flag=True, help="Only report what would be removed.")
@click.option("--now", is_flag=True, help="No grace period: also remove files that became unreferenced just now.")
@json_option
@click.pass_context
def gc(ctx: click.Context, dry_run: bool, now: bool, as_json: bool) -> None:
    """Remove files no pack references (those unreferenced for a few hours: see --now)."""
    result = state(ctx).store(as_json).gc(dry_run=dry_run, now=now)
    verb = "would remove" if dry_run else "removed"

    def human() -> None:
        click.echo(f"{verb} {result.blobs} blob(s), {human_size(result.bytes)}")
        if result.kept_blobs:
            click.echo(
                f"kept {result.kept_blobs} blob(s), {human_size(result.kept_bytes)}, unreferenced for less than "
                f"{result.grace_hours:g} h (a command running elsewhere may still take them); --now removes them"
            )

    emit(result, as_json, human)


@click.command()
@click.option("--remote", "remote", is_flag=True, help="What each remote holds instead.")
@json_option
@click.pass_context
def du(ctx: click.Context, remote: bool, as_json: bool) -> None:
    """Disk use per pack, shared bytes, and what deduplication saved (--remote: of each remote)."""
    if remote:
        usage = state(ctx).store(as_json).remote_du()

        def remotes() -> None:
            if not usage:
                click.echo("no remotes; add one with 'synapse remote add NAME URL'")
            for u in usage:
                lacks = f"; lacks {u.missing_here} file(s) of this library" if u.missing_here else ""
                click.echo(f"{u.remote:<16} {human_size(u.bytes):>10} in {u.blobs} file(s), {u.packs} pack(s){lacks}")

        emit(usage, as_json, remotes)
        return
    report = state(ctx).store(as_json).du()

    def human() -> None:
        for p in report.packs:
            shared = f"  ({human_size(p.shared_bytes)} shared)" if p.shared_bytes else ""
            click.echo(f"{p.pack:<28} {human_size(p.bytes):>10}{shared}")
        click.echo(f"library: {human_size(report.store_bytes)}; saved by dedup: {human_size(report.saved_by_dedup)}")
        if report.unreferenced_bytes:
            click.echo(f"no pack references {human_size(report.unreferenced_bytes)}: 'synapse gc' removes it")
        if report.temps:
            click.echo(
                f"temps left by killed commands: {report.temps} file(s), {human_size(report.temp_bytes)} "
                "('synapse gc' removes them past its grace period; --now: at once)"
            )

    emit(report, as_json, human)


@click.command()
@click.option("--verify-blobs", is_flag=True, help="Re-hash every blob.")
@click.option("--fix", is_flag=True, help="Repair what can be repaired.")
@click.option("--rebuild-views", is_flag=True, help="Recreate every view from state and blobs alone.")
@json_option
@click.pass_context
def doctor(ctx: click.Context, verify_blobs: bool, fix: bool, rebuild_views: bool, as_json: bool) -> None:
    """Check the store's invariants and plugins; exit 1 if a problem remains."""
    report = state(ctx).store(as_json).doctor(verify_blobs=verify_blobs, fix=fix, rebuild_views=rebuild_views)

    def human() -> None:
        click.echo(f"checked: {'; '.join(report.checks)}")
        for p in report.problems:
            click.echo(f"{'fixed' if p.fixed else 'problem'}: {p.message}")
        for n in report.notices:
            click.echo(f"notice: {n.message}")
        if not report.history:
            click.echo("note: state history is off (git is not installed)")
        for failure in report.plugin_failures:
            click.echo(f"plugin failed: {failure}")
        for note in report.notes:
            click.echo(note)
        for line in report.kept:
            click.echo(f"kept (written by a UI, shown in every profile): {line}")
        if report.healthy:
            click.echo("healthy")

    emit(report, as_json, human)
    if not report.healthy:
        sys.exit(1)


@click.command()
@click.option("-n", "limit", default=20, show_default=True, help="How many entries.")
@json_option
@click.pass_context
def history(ctx: click.Context, limit: int, as_json: bool) -> None:
    """State changes, newest first (state/ is a git repository)."""
    entries = state(ctx).store(as_json).history_log(limit)

    def human() -> None:
        for e in entries:
            click.echo(f"{e.commit}  {e.date:%Y-%m-%d %H:%M}  {e.message}")

    emit(entries, as_json, human)
