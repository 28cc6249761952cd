"""The hooks of Synapse: the plugin author's manual.

A plugin is a module (or object) with functions decorated by
``synapse_core.hookimpl`` whose names are the hooks below. It is found through
the entry-point group ``synapse``::

    [project.entry-points.synapse]
    invokeai = "synapse_invokeai"

Rules every hook follows:

* Hooks are called once, when the plugin manager loads the plugin, never at
  import time of ``synapse_core``. Keep module imports cheap: import heavy
  libraries inside the objects' methods.
* Hooks return *instances* of the contract classes (:class:`~synapse_core.ui.UIAdapter`,
  :class:`~synapse_core.sources.Source`, :class:`~synapse_core.conflicts.ConflictPolicy`).
  They are selected by their ``name``, never by the order plugins were loaded.
* A hook that raises, returns the wrong type, or claims a name another plugin
  already has makes its plugin *failed*: it is listed with the reason by
  ``synapse plugins`` and ``synapse doctor``, one warning goes to stderr, and
  every other plugin keeps working. ``SYNAPSE_STRICT_PLUGINS=1`` re-raises instead.
* Hooks only grow: arguments are never renamed or removed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from synapse_core.conflicts import ConflictPolicy
    from synapse_core.remotes import RemoteKind
    from synapse_core.sources import Source
    from synapse_core.ui import UIAdapter
    from synapse_core.workflows.nodes import WorkflowNodes

PROJECT_NAME = "synapse"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def synapse_ui_adapters() -> list[UIAdapter]:
    """Return the UI adapters this plugin provides.

    Called once per plugin when plugins load. Each adapter describes where one
    UI looks for each :class:`~synapse_core.kinds.AssetKind` (a folder or an
    explicit "unsupported"; a kind it does not list is unsupported), which
    extensions it lists, the name it keys files by (that decides conflicts), and
    how to point an install at a view (``plan_attach``/``plan_detach``). An
    adapter whose layout is not a mapping of kinds, or whose ``name`` another
    plugin already provides, fails its plugin.
    """
    return []


@hookspec
def synapse_sources() -> list[Source]:
    """Return the asset sources this plugin provides.

    A source understands some references (``can_handle``), turns one into a
    pack draft (``resolve``), and delivers file bytes (``local_path`` or
    ``fetch`` into a core-owned sink that hashes and resumes). Optional abilities:
    ``search``, ``identify``. Errors are :class:`~synapse_core.errors.SynapseError`
    with one-line messages that never contain a secret; any other exception is
    reported as a failure of the plugin, with its name.
    """
    return []


@hookspec
def synapse_conflict_policies() -> list[ConflictPolicy]:
    """Return conflict policies: how entries a UI would see under one name are resolved.

    A profile names its policy (``conflicts.policy`` in profile.json; default
    ``last_wins``). The built-ins ``last_wins``, ``first_wins`` and ``error``
    are registered through this same hook.
    """
    return []


@hookspec
def synapse_workflow_nodes() -> list[WorkflowNodes]:
    """Return what this plugin knows about the node graphs (workflows) of a UI.

    Each :class:`~synapse_core.workflows.nodes.WorkflowNodes` names a UI and lists node
    types: for a loader, the inputs that name model files with their widget position and
    the UI's folder key; primitives and reroutes that pass a name on through a link; node
    types that download their own files. It also maps the UI's folder keys to asset kinds.
    ``synapse needs`` and ``install``/``use --for`` read workflows with the records of every
    plugin merged per UI, so a plugin for a UI's custom nodes adds only its node types. A
    node type or folder key that another plugin describes differently fails the plugin.
    """
    return []


@hookspec
def synapse_remotes() -> list[RemoteKind]:
    """Return the kinds of remote this plugin provides (where ``push``, ``pull`` and ``install`` go).

    Each :class:`~synapse_core.remotes.RemoteKind` names the URL schemes it opens (``s3``,
    ``file``) and opens one configured remote as a :class:`~synapse_core.remotes.Remote`: HEAD,
    verified and resumable uploads, downloads into the core's sink (which checks every byte's
    sha256), small records, listings. Credentials come from wherever the plugin's client finds
    them (environment, profiles), never from the store. A scheme another plugin already opens
    fails the plugin.
    """
    return []


@hookspec
def synapse_register_commands(cli: click.Group) -> None:
    """Add commands to the ``synapse`` CLI, e.g. ``cli.add_command(my_group)``.

    Called once when the CLI starts, after the built-in commands exist. A
    command name that is already taken fails the plugin. Import heavy
    dependencies inside the command function, not at module level.
    """
