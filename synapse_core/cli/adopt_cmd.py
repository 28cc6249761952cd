"""``synapse adopt``: existing installs and model folders into the library, and back."""

from __future__ import annotations

import click

from synapse_core.cli.output import emit, human_size, json_option, state
from synapse_core.results import AdoptPlan


def print_plan(plan: AdoptPlan) -> None:
    """The plan, for a person: each file with its kind, pack and action; what is skipped and why."""
    for install in plan.installs:
        click.echo(f"{install.path}: a {install.ui} install")
    for item in plan.files:
        same = f" (same bytes as {item.same_as})" if item.same_as else ""
        click.echo(f"  {item.action:<9} {item.path}")
        click.echo(f"            {item.kind.value} {item.expose} -> pack {item.pack}{same}; {item.why}")
        if item.sidecars:
            click.echo(f"            sidecars: {', '.join(item.sidecars)}")
    for skip in plan.skipped:
        click.echo(f"  skipped   {skip.path}: {skip.reason}")
    new = [p for p in plan.packs if p.new]
    click.echo(
        f"{len(plan.files)} model files -> {len(new)} new packs; linked {human_size(plan.link_bytes)} "
        f"(no bytes written), to copy {human_size(plan.copy_bytes)}, already in the library "
        f"{human_size(plan.present_bytes)}; hashed {plan.hashed_files} files ({human_size(plan.hashed_bytes)})"
    )
    if plan.needs_copy:
        click.echo(f"{human_size(plan.copy_bytes)} must be copied: another file system (only with --copy)")
    for warning in plan.warnings:
        click.echo(f"warning: {warning}", err=True)


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--identify", is_flag=True, help="Ask sources about each file's hash (batched) for its metadata.")
@click.option("--copy", is_flag=True, help="Copy files that no hard link can reach (another file system).")
@click.option("--keep-originals", is_flag=True, help="Leave the UIs' own files in place (the UI then sees both).")
@click.option("--undo", is_flag=True, help="Put back every file an adopt of PATH took, detach, remove its packs.")
@json_option
@click.pass_context
def adopt(
    ctx: click.Context,
    paths: tuple[str, ...],
    dry_run: bool,
    identify: bool,
    copy: bool,
    keep_originals: bool,
    undo: bool,
    as_json: bool,
) -> None:
    """Take UI installs (PATH: ComfyUI, A1111, ...) or folders of models into the library: one pack
    per model file, exposed under its old name; the originals go once their bytes are in the
    library, then the install is attached. Prints the plan first."""
    store = state(ctx).store(as_json)
    if undo:
        if len(paths) != 1 or dry_run or identify or copy or keep_originals:
            raise click.UsageError("--undo takes one PATH and no other option")
        undone = store.adopt_undo(paths[0])

        def said_undo() -> None:
            click.echo(
                f"put back {undone.restored} files; removed {len(undone.packs_removed)} packs; "
                f"detached {', '.join(i.path for i in undone.detached) or 'nothing'}"
            )
            for warning in undone.warnings:
                click.echo(f"warning: {warning}", err=True)

        emit(undone, as_json, said_undo)
        return
    result = store.adopt(
        list(paths),
        dry_run=dry_run,
        identify=identify,
        copy=copy,
        keep_originals=keep_originals,
        show_plan=None if as_json else print_plan,
    )

    def said() -> None:
        if result.dry_run:
            click.echo("dry run: nothing was changed")
            return
        click.echo(f"adopted: {len(result.packs)} new packs, {result.removed} originals now served by the library")
        for install in result.attached:
            click.echo(f"attached {install.ui} at {install.path}")
        if result.plan.keep_originals:
            click.echo("the originals were kept (--keep-originals): a UI may list a model twice")
        if result.journal:
            click.echo(f"'synapse adopt --undo {result.plan.paths[0]}' puts everything back")
        for warning in result.warnings:
            click.echo(f"warning: {warning}", err=True)

    emit(result, as_json, said)
