"""`synapse serve`: the web page and the HTTP API with uvicorn (the ``api`` extra)."""

from __future__ import annotations

import os
import socket
import webbrowser

import click

from synapse_core.cli.output import state
from synapse_core.errors import InvalidInput

TOKEN_ENV = "SYNAPSE_API_TOKEN"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one).")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser.")
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="Also answer requests for this Host name (repeatable; config: allowed_hosts).",
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, open_browser: bool, allow_hosts: tuple[str, ...]) -> None:
    """Serve the web page at / and the API at /api; beyond loopback it needs SYNAPSE_API_TOKEN."""
    try:
        import uvicorn

        from synapse_core.api import create_app
        from synapse_core.api.security import is_loopback, is_wildcard, machine_names
    except ImportError as exc:
        raise InvalidInput(
            f"the HTTP API needs its extra: pip install 'synapse-store[api]' ({exc.name} missing)"
        ) from exc
    token = os.environ.get(TOKEN_ENV) or None
    if not is_loopback(host) and token is None:
        raise InvalidInput(f"listening on {host} exposes the store to the network: set {TOKEN_ENV} first")
    store = state(ctx).store(as_json=True)
    store.layout.require_initialised()
    hosts = {host, *allow_hosts, *store.files.config().allowed_hosts}
    if is_wildcard(host):  # clients reach it by the machine's names and addresses, never by 0.0.0.0
        hosts |= machine_names()
    app = create_app(store, allowed_hosts=hosts, token=token)
    listener = _listen(host, port)
    bound = listener.getsockname()[1]
    url = f"http://{f'[{host}]' if ':' in host else host}:{bound}/"
    click.echo(f"serving {store.layout.root} on {url} (API: {url}api, docs: {url}api/docs)", err=True)
    if open_browser:
        webbrowser.open(url)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[listener])


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the URL is printed (so ``--port 0`` prints the real port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise InvalidInput(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port") from exc
    listener.listen(128)
    listener.set_inheritable(True)
    return listener
