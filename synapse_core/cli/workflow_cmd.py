"""Commands about workflows and images: ``needs``, and the ``--for FILE`` of install and use."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from synapse_core.cli.output import emit, human_size, json_option, state
from synapse_core.errors import InvalidInput

if TYPE_CHECKING:
    from synapse_core.workflows.report import NeedsReport, NeedStatus

_MARK: dict[NeedStatus, str] = {
    "present": "present",
    "in_library": "in library",
    "findable": "findable",
    "unresolvable": "missing",
}


def _print_report(report: NeedsReport) -> None:
    where = f"{report.ui}'s view ({report.profile})" if report.ui else "the library (no UI named: --ui checks a view)"
    click.echo(f"{report.file}: {report.format} in {report.container}, {len(report.models)} model(s), against {where}")
    for need in report.models:
        folder = need.folder or ",".join(k.value for k in need.kinds) or "?"
        click.echo(f"  {_MARK[need.status]:<11} {folder:<16} {need.name}")
        size = f" ({human_size(need.offer.size)})" if need.offer and need.offer.size is not None else ""
        click.echo(f"  {'':<11} {'':<16} {need.detail}{size}")
    for problem in report.problems:
        click.echo(f"  problem: {problem}")
    counts = {s: report.count(s) for s in _MARK}
    summary = ", ".join(f"{n} {_MARK[s]}" for s, n in counts.items() if n)
    hint = f"; 'synapse install --for {report.file}' fetches what is findable" if counts["findable"] else ""
    click.echo(f"  {summary or 'no models'}{hint}")


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--ui", help="The UI whose active view is checked (default: the UI whose workflows these are).")
@click.option("--offline", is_flag=True, help="Do not ask sources; report what the library has.")
@json_option
@click.pass_context
def needs(ctx: click.Context, files: tuple[Path, ...], ui: str | None, offline: bool, as_json: bool) -> None:
    """Which models each FILE (a workflow, or an image that carries one or generation parameters)
    needs, and whether each is in the UI's view, in the library, findable on a source, or not."""
    from synapse_core.workflows.service import Workflows, read_path

    service = Workflows(state(ctx).store(as_json), offline=offline)
    reports, failed = [], False
    for path in files:
        try:
            reports.append(service.needs(read_path(path), str(path), ui).report)
        except InvalidInput as exc:
            if len(files) == 1:
                raise
            failed = True
            click.echo(f"error: {exc.message}", err=True)

    def human() -> None:
        for report in reports:
            _print_report(report)

    emit(reports[0] if len(files) == 1 else reports, as_json, human)
    if failed:
        sys.exit(InvalidInput.exit_code)


def install_for(ctx: click.Context, path: Path, ui: str | None, yes: bool, as_json: bool) -> None:
    """``install --for FILE``: show what would be downloaded, ask, then fetch it."""
    from synapse_core.workflows.service import Workflows, read_path

    service = Workflows(state(ctx).store(as_json))
    resolution = service.needs(read_path(path), str(path), ui)
    plan = service.plan(resolution)
    if not as_json:
        _print_report(resolution.report)
    if not plan:
        result = service.install(resolution, accepted=())
        emit(result, as_json, lambda: click.echo("nothing to download: every findable model is in the library"))
        return
    total = sum(item.size or 0 for item in plan)
    unknown = any(item.size is None for item in plan)
    if not as_json:
        click.echo("to fetch:")
        for item in plan:
            size = human_size(item.size) if item.size is not None else "size unknown"
            verb = "download from" if item.action == "download" else "install pack"
            click.echo(f"  {item.name}: {verb} {item.source if item.action == 'download' else item.pack} ({size})")
    if not yes:
        if as_json or not sys.stdin.isatty():
            raise InvalidInput(f"{len(plan)} file(s) would be fetched; pass --yes to fetch them without asking")
        more = " or more" if unknown else ""
        if not click.confirm(f"fetch {len(plan)} file(s), {human_size(total)}{more}?", default=False):
            raise click.exceptions.Abort()
    result = service.install(resolution)

    def human() -> None:
        click.echo(f"fetched {len(result.done)} of {len(result.planned)} ({human_size(result.bytes_written)} written)")
        after = result.report
        click.echo(
            f"now: {after.count('present')} present, {after.count('in_library')} in the library, "
            f"{after.count('unresolvable')} missing"
        )

    emit(result, as_json, human)


def use_for(ctx: click.Context, path: Path, uis: tuple[str, ...], as_json: bool) -> None:
    """``use --for FILE``: write the file's profile and switch its UI (or the --ui ones) to it."""
    from synapse_core.workflows.service import Workflows, read_path
    from synapse_core.workflows.use import plan_profile

    store = state(ctx).store(as_json)
    if len(uis) > 1:
        raise click.UsageError("--for places names for one UI: give at most one --ui")
    resolution = Workflows(store, offline=True).needs(read_path(path), str(path), uis[0] if uis else None)
    ui = resolution.report.ui
    if ui is None:
        raise InvalidInput(f"{path}: generation parameters name no UI; say which one with --ui (e.g. --ui forge)")
    planned = plan_profile(store, resolution, ui)
    result = store.use_profile(planned.profile, uis=(ui,))
    for warning in planned.warnings:
        click.echo(f"warning: {warning}", err=True)

    def human() -> None:
        aliases = len(planned.profile.aliases)
        click.echo(f"{ui}: {' > '.join(result.uis.get(ui, []))} ({aliases} name(s) placed as the file spells them)")

    emit(
        {
            "uis": result.uis,
            "profile": planned.profile.name,
            "aliases": planned.profile.aliases,
            "warnings": planned.warnings,
        },
        as_json,
        human,
    )
