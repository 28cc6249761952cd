"""`synapse civitai ...`: the API token."""

from __future__ import annotations

import sys

import click

from synapse_civitai.credentials import TOKEN_ENV, credentials_file, forget_token, load_token, save_token


@click.group()
def civitai() -> None:
    """Civitai account settings."""


@civitai.command()
@click.option("--token-stdin", is_flag=True, help="Read the API key from standard input.")
def login(token_stdin: bool) -> None:
    """Store a Civitai API key in your user config (never in the store)."""
    if token_stdin:
        token = sys.stdin.readline()
    else:
        token = click.prompt("Civitai API key (civitai.com/user/account)", hide_input=True)
    path = save_token(token)
    click.echo(f"saved to {path} (readable by you only); {TOKEN_ENV} still takes precedence when set")


@civitai.command()
def logout() -> None:
    """Forget the stored API key."""
    removed = forget_token()
    click.echo(f"removed the key from {credentials_file()}" if removed else "no stored key")


@civitai.command()
def status() -> None:
    """Say where the API key comes from (never prints it)."""
    import os

    if os.environ.get(TOKEN_ENV, "").strip():
        click.echo(f"using the key in {TOKEN_ENV}")
    elif load_token():
        click.echo(f"using the key stored in {credentials_file()}")
    else:
        click.echo(f"no key: set {TOKEN_ENV} or run 'synapse civitai login' (needed for gated downloads)")
