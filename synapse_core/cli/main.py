"""The root `synapse` group: global options, lazy plugin loading and error mapping."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from synapse_core import __version__
from synapse_core.errors import UNWRITABLE, SynapseError, disk_error

if TYPE_CHECKING:
    from synapse_core.hashing import HashAhead
    from synapse_core.plugins import PluginRegistry
    from synapse_core.store import Store
    from synapse_core.switching import Switcher

# name -> (module:attribute, short help); --help lists these without importing them.
BUILTIN_COMMANDS: dict[str, tuple[str, str]] = {
    "store": ("store_cmd:store", "Create and inspect the store itself."),
    "plugins": ("plugins_cmd:plugins", "List plugins: what they contribute and their load status."),
    "import": ("pack_cmd:import_", "Import a file, a folder, or a URL a source knows as a pack."),
    "adopt": (
        "adopt_cmd:adopt",
        "Take existing UI installs and model folders into the library (--undo gives them back).",
    ),
    "list": ("pack_cmd:list_", "List packs."),
    "show": ("pack_cmd:show", "Show a pack: source, metadata, resources, what is installed."),
    "install": ("pack_cmd:install", "Make every file of a pack (or --for a workflow) present in the library."),
    "needs": ("workflow_cmd:needs", "Which models a workflow or image needs, and where each one is."),
    "remove": ("pack_cmd:remove", "Remove a pack (its files stay until gc)."),
    "use": ("view_cmd:use", "Switch UIs to a pack's work profile, where it wins every conflict."),
    "back": ("view_cmd:back", "Return UIs to the profile they used before the last use."),
    "status": ("view_cmd:status", "Each UI's profile stack, active view, conflicts and missing files."),
    "profiles": ("view_cmd:profiles", "List profiles and where they are in use."),
    "profile": ("view_cmd:profile", "Inspect one profile."),
    "attach": ("view_cmd:attach", "Point a UI install at its Synapse view."),
    "detach": ("view_cmd:detach", "Undo attach: remove only what Synapse added."),
    "doctor": ("maintenance_cmd:doctor", "Check the store's invariants and plugins; repair with --fix."),
    "gc": ("maintenance_cmd:gc", "Remove files no pack references."),
    "du": ("maintenance_cmd:du", "Disk use per pack and what deduplication saved."),
    "history": ("maintenance_cmd:history", "State changes, newest first."),
    "search": ("search_cmd:search", "Find packs locally, or with --remote in sources."),
    "identify": ("search_cmd:identify", "Look local model files up by hash in every source."),
    "check-updates": ("update_cmd:check_updates", "Look for newer versions of packs (changes no pack)."),
    "update": ("update_cmd:update", "Move packs to their newest version."),
    "pack": ("update_cmd:pack", "Settings of one pack (update policy)."),
    "remote": ("remote_cmd:remote", "Remotes (S3-compatible stores, shared folders): add, list, remove, order."),
    "push": ("remote_cmd:push", "Upload packs' files and records to a remote."),
    "pull": ("remote_cmd:pull", "Bring packs and their files from a remote."),
    "export": ("lock_cmd:export", "Write a profile as a lock file (synapse.lock) that sync reproduces elsewhere."),
    "sync": ("lock_cmd:sync", "Reproduce a lock file's views: import, fetch and switch the UIs to them."),
    "serve": ("serve_cmd:serve", "Serve the HTTP API (loopback by default)."),
}


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def _say_waiting(holder: str) -> None:
    click.echo(f"waiting for another synapse command: {holder}…", err=True)


def activity(argv: Sequence[str]) -> str:
    """What a command line runs, for others waiting on the lock: the command and its arguments,
    without options (their values may be secrets) and URLs without their query or user."""
    words: list[str] = []
    rest = list(argv)
    while rest and rest[0].startswith("-"):  # the group's options: --root takes a value
        rest = rest[2:] if rest[0] == "--root" else rest[1:]
    for word in rest:
        if word.startswith("-"):
            break
        if "://" in word:
            parts = urlsplit(word)
            word = f"{parts.scheme}://{parts.hostname or ''}{parts.path}"
        words.append(word)
    text = " ".join(words[:4]) + (" …" if len(words) > 4 else "")
    return "".join(c if c.isprintable() else "?" for c in text)[:200] or "synapse"


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

    def switcher(self) -> Switcher:
        """The light form of use/back: no pydantic, no plugins (see synapse_core.switching)."""
        from synapse_core.layout import StoreLayout, StoreLock, resolve_root
        from synapse_core.state import StateFiles
        from synapse_core.switching import Switcher

        layout = StoreLayout(resolve_root(self.root))
        return Switcher(layout, StateFiles(layout), StoreLock(layout.lock_file))

    def store(self, as_json: bool = False, hash_ahead: HashAhead | None = None) -> Store:
        """The store at the chosen root; long work shows progress on a terminal unless ``as_json``."""
        if self._store is None:
            from synapse_core.cli.progress import TerminalProgress
            from synapse_core.store import Store

            progress = None if as_json or not sys.stderr.isatty() else TerminalProgress()
            self._store = Store(root=self.root, registry=self.registry, progress=progress, hash_ahead=hash_ahead)
        return self._store


class SynapseGroup(click.Group):
    """Built-in commands are imported only when used; plugin commands load on demand."""

    _plugins_added = False
    builtin_names = frozenset(BUILTIN_COMMANDS)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_plugin_commands(ctx)
        return sorted({*BUILTIN_COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in BUILTIN_COMMANDS:
            module_name, attr = BUILTIN_COMMANDS[cmd_name][0].split(":")
            module = import_module(f"synapse_core.cli.{module_name}")
            command: click.Command = getattr(module, attr)
            return command
        self._add_plugin_commands(ctx)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List commands from the table (built-ins) and the plugins, importing no command module."""
        self._add_plugin_commands(ctx)
        rows = [(name, help_text) for name, (_, help_text) in BUILTIN_COMMANDS.items()]
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        rows += [(name, cmd.get_short_help_str(limit)) for name, cmd in self.commands.items()]
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows))

    def _add_plugin_commands(self, ctx: click.Context) -> None:
        if self._plugins_added:
            return
        self._plugins_added = True
        state = ctx.find_object(CliState) or CliState(None)
        state.registry.register_commands(self)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the CLI; a SynapseError becomes one line on stderr and its exit code."""
        from synapse_core.layout import StoreLock

        argv = kwargs.get("args") or (args[0] if args else None)
        StoreLock.activity = activity(sys.argv[1:] if argv is None else list(argv))
        StoreLock.on_wait = _say_waiting
        try:
            kwargs["standalone_mode"] = False
            return super().main(*args, **kwargs)
        except SynapseError as exc:
            if os.environ.get("SYNAPSE_DEBUG") == "1":
                raise
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(exc.exit_code)
        except OSError as exc:  # the store's folder cannot be written: one line, wherever it was met
            if exc.errno not in UNWRITABLE or os.environ.get("SYNAPSE_DEBUG") == "1":
                raise
            click.echo(f"error: {disk_error(exc, 'writing to the store').message}", err=True)
            sys.exit(1)
        except click.exceptions.Abort:
            click.echo("aborted", err=True)
            sys.exit(130)
        except click.exceptions.NoArgsIsHelpError as exc:  # plain `synapse`: the help, not an error
            if exc.ctx is not None:
                click.echo(exc.ctx.get_help())
            sys.exit(0)
        except click.ClickException as exc:
            hint = ""
            if isinstance(exc, click.UsageError) and exc.ctx is not None:
                hint = f" (see '{exc.ctx.command_path} --help')"
            click.echo(f"error: {exc.format_message()}{hint}", err=True)
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
