"""`synapse serve`: the HTTP API with uvicorn (the ``api`` extra)."""

from __future__ import annotations

import os

import click

from synapse_core.cli.output import state
from synapse_core.errors import InvalidInput

TOKEN_ENV = "SYNAPSE_API_TOKEN"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="Port.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Serve the HTTP API; beyond loopback it needs SYNAPSE_API_TOKEN (sent as Bearer)."""
    try:
        import uvicorn

        from synapse_core.api import create_app
        from synapse_core.api.security import is_loopback
    except ImportError as exc:
        raise InvalidInput(
            f"the HTTP API needs its extra: pip install 'synapse-store[api]' ({exc.name} missing)"
        ) from exc
    token = os.environ.get(TOKEN_ENV) or None
    if not is_loopback(host) and token is None:
        raise InvalidInput(f"listening on {host} exposes the store to the network: set {TOKEN_ENV} first")
    store = state(ctx).store(as_json=True)
    store.layout.require_initialised()
    app = create_app(store, allowed_hosts=[host], token=token)
    click.echo(f"serving {store.layout.root} on http://{host}:{port}/api (docs: /api/docs)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
