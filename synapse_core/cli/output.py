"""Helpers that every command uses to print: JSON for machines, lines for people."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import click

from synapse_core.cli.main import CliState
from synapse_core.errors import InvalidInput

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def state(ctx: click.Context) -> CliState:
    """The shared CLI state of this invocation."""
    return ctx.ensure_object(CliState)


def to_jsonable(value: Any) -> Any:
    """Models (pydantic or attrs), lists of models and plain data, as JSON-ready data."""
    if hasattr(value, "model_dump"):  # a pydantic model (no import: fast commands never load pydantic)
        return value.model_dump(mode="json")
    if hasattr(type(value), "__attrs_attrs__"):  # an attrs class; attrs itself loads only then
        import attrs

        return to_jsonable(attrs.asdict(value))
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    return value


def emit(value: Any, as_json: bool, human: Callable[[], None]) -> None:
    """Print ``value`` as JSON, or call ``human`` to print it for a person."""
    if as_json and hasattr(value, "model_dump_json"):  # pydantic serialises in Rust: big reports stay quick
        click.echo(value.model_dump_json(indent=2))
    elif as_json:
        click.echo(json.dumps(to_jsonable(value), indent=2, sort_keys=False))
    else:
        human()


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_age(value: str | None, option: str) -> timedelta | None:
    """'30m', '12h', '7d' -> timedelta (``option`` names the flag in the error)."""
    if value is None:
        return None
    number, unit = value[:-1], value[-1:]
    if unit not in _UNITS or not number.isdigit():
        raise InvalidInput(f"{option} takes a number and a unit (s, m, h, d), e.g. 12h; got {value!r}")
    return timedelta(seconds=int(number) * _UNITS[unit])


def human_size(size: int) -> str:
    """Bytes as a short human figure (1.5 GiB)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
