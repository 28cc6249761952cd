"""The root `synapse` group: global options, lazy plugin loading and error mapping."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from synapse_core import __version__
from synapse_core.errors import SynapseError

if TYPE_CHECKING:
    from synapse_core.plugins import PluginRegistry
    from synapse_core.store import Store

BUILTIN_COMMANDS: dict[str, str] = {
    "plugins": "synapse_core.cli.plugins_cmd:plugins",
    "store": "synapse_core.cli.store_cmd:store",
    "import": "synapse_core.cli.pack_cmd:import_",
    "list": "synapse_core.cli.pack_cmd:list_",
    "show": "synapse_core.cli.pack_cmd:show",
    "remove": "synapse_core.cli.pack_cmd:remove",
    "install": "synapse_core.cli.pack_cmd:install",
    "gc": "synapse_core.cli.maintenance_cmd:gc",
    "du": "synapse_core.cli.maintenance_cmd:du",
    "doctor": "synapse_core.cli.maintenance_cmd:doctor",
    "history": "synapse_core.cli.maintenance_cmd:history",
    "use": "synapse_core.cli.view_cmd:use",
    "back": "synapse_core.cli.view_cmd:back",
    "status": "synapse_core.cli.view_cmd:status",
    "profiles": "synapse_core.cli.view_cmd:profiles",
    "profile": "synapse_core.cli.view_cmd:profile",
    "attach": "synapse_core.cli.view_cmd:attach",
    "detach": "synapse_core.cli.view_cmd:detach",
}


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


class CliState:
    """What every command shares: the root, and the registry and store, made on first use."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._registry: PluginRegistry | None = None
        self._store: Store | None = None

    @property
    def registry(self) -> PluginRegistry:
        """The plugins, loaded once per process."""
        if self._registry is None:
            from synapse_core.plugins import PluginRegistry

            self._registry = PluginRegistry.load(warn=_warn)
        return self._registry

    def store(self, as_json: bool = False) -> Store:
        """The store at the chosen root; long work shows progress on a terminal unless ``as_json``."""
        if self._store is None:
            from synapse_core.cli.progress import TerminalProgress
            from synapse_core.store import Store

            progress = None if as_json or not sys.stderr.isatty() else TerminalProgress()
            self._store = Store(root=self.root, registry=self.registry, progress=progress)
        return self._store


class SynapseGroup(click.Group):
    """Built-in commands are imported only when used; plugin commands load on demand."""

    _plugins_added = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_plugin_commands(ctx)
        return sorted({*BUILTIN_COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in BUILTIN_COMMANDS:
            module_name, attr = BUILTIN_COMMANDS[cmd_name].split(":")
            module = __import__(module_name, fromlist=[attr])
            command: click.Command = getattr(module, attr)
            return command
        self._add_plugin_commands(ctx)
        return self.commands.get(cmd_name)

    def _add_plugin_commands(self, ctx: click.Context) -> None:
        if self._plugins_added:
            return
        self._plugins_added = True
        state = ctx.find_object(CliState) or CliState(None)
        state.registry.register_commands(self)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the CLI; a SynapseError becomes one line on stderr and its exit code."""
        try:
            kwargs["standalone_mode"] = False
            return super().main(*args, **kwargs)
        except SynapseError as exc:
            if os.environ.get("SYNAPSE_DEBUG") == "1":
                raise
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("aborted", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)


@click.group(cls=SynapseGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="synapse", message="%(prog)s %(version)s")
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="SYNAPSE_ROOT",
    help="Store root (default ~/.synapse; env SYNAPSE_ROOT).",
)
@click.pass_context
def cli(ctx: click.Context, root: Path | None) -> None:
    """Synapse Store: one model library, a view per Stable Diffusion UI."""
    ctx.obj = CliState(root)


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="synapse")
