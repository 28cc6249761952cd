"""The contract of node vocabularies: which node types of a UI's node graphs load model files.

A UI plugin (or a plugin for a UI's custom nodes) returns :class:`WorkflowNodes` from the
``synapse_workflow_nodes`` hook. The core reads node graphs (their formats are in
:mod:`synapse_core.workflows.graph`) and knows node types only through these records; the
registry merges the records of every plugin into one :class:`GraphVocabulary` per UI.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

import attrs

from synapse_core.kinds import AssetKind


class NodeRole(StrEnum):
    """What a node type does with respect to model names."""

    LOADER = "loader"
    """Some inputs name model files (:attr:`NodeType.models`)."""
    VALUE = "value"
    """Outputs the value of its first widget (UI format) or of :attr:`NodeType.value_input` (API
    format): a primitive that feeds a loader's name through a link."""
    PASSTHROUGH = "passthrough"
    """Outputs what its first input receives (a reroute)."""
    OWN_DOWNLOADS = "own_downloads"
    """Names files it downloads itself into its own folder; nothing Synapse provides."""


@attrs.frozen
class ModelInput:
    """One input of a node type that names a model file."""

    name: str
    """The input's name: its key under ``inputs`` in the API format."""
    widget: int
    """Its position in ``widgets_values`` in the UI format (socket inputs take no position)."""
    folder: str
    """The UI's folder key the name is relative to, e.g. ``checkpoints``."""


@attrs.frozen
class TextInput:
    """An input holding prompt text, in which :attr:`WorkflowNodes.embedding_prefix` names embeddings."""

    name: str
    widget: int


@attrs.frozen
class NodeType:
    """One node type (``class_type``) and what its inputs mean."""

    type: str
    models: tuple[ModelInput, ...] = ()
    texts: tuple[TextInput, ...] = ()
    role: NodeRole = NodeRole.LOADER
    value_input: str = "value"
    """For :attr:`NodeRole.VALUE` in the API format: the input whose value the node outputs."""
    not_files: frozenset[str] = frozenset()
    """Values of the model inputs that name no file (e.g. a built-in choice such as ``pixel_space``)."""
    source: str = ""
    """Where the fact comes from, e.g. ``nodes.py CheckpointLoaderSimple``."""


@attrs.frozen
class WorkflowNodes:
    """What one plugin knows about the node graphs of one UI."""

    ui: str
    """The UI whose graphs use these node types (a UI adapter's ``name``)."""
    nodes: tuple[NodeType, ...] = ()
    folders: Mapping[str, AssetKind | None] = attrs.field(factory=dict)
    """Folder key -> the kind of asset it holds; None for a folder Synapse has no kind for."""
    folder_aliases: Mapping[str, str] = attrs.field(factory=dict)
    """Legacy folder keys and the key they stand for (e.g. ``unet`` -> ``diffusion_models``)."""
    embedding_prefix: str | None = None
    """The word that names an embedding inside prompt text (e.g. ``embedding:``)."""
    embedding_folder: str | None = None
    embedding_extensions: tuple[str, ...] = ()
    """Extensions tried, in order, when an embedding is named without one."""
    own_download_packs: frozenset[str] = frozenset()
    """Node-pack ids (a node's ``properties.cnr_id``) whose nodes fetch their own files."""


@attrs.define
class GraphVocabulary:
    """Every plugin's :class:`WorkflowNodes` for one UI, merged."""

    ui: str
    nodes: dict[str, NodeType] = attrs.Factory(dict)
    folders: dict[str, AssetKind | None] = attrs.Factory(dict)
    folder_aliases: dict[str, str] = attrs.Factory(dict)
    embedding_prefix: str | None = None
    embedding_folder: str | None = None
    embedding_extensions: tuple[str, ...] = ()
    own_download_packs: set[str] = attrs.Factory(set)

    def add(self, contribution: WorkflowNodes) -> None:
        """Merge one plugin's record; a node type or folder claimed differently is an error."""
        for node in contribution.nodes:
            if node.type in self.nodes:
                raise ValueError(f"node type '{node.type}' of {self.ui} is already described by another plugin")
            for model in node.models:
                if model.folder not in contribution.folders and model.folder not in self.folders:
                    raise ValueError(f"node type '{node.type}': folder '{model.folder}' has no kind in the record")
        for key, kind in contribution.folders.items():
            if key in self.folders and self.folders[key] != kind:
                raise ValueError(f"folder '{key}' of {self.ui} is already mapped to {self.folders[key]}")
        self.nodes.update({node.type: node for node in contribution.nodes})
        self.folders.update(contribution.folders)
        self.folder_aliases.update(contribution.folder_aliases)
        if contribution.embedding_prefix and not self.embedding_prefix:
            self.embedding_prefix = contribution.embedding_prefix
            self.embedding_folder = contribution.embedding_folder
            self.embedding_extensions = contribution.embedding_extensions
        self.own_download_packs.update(contribution.own_download_packs)

    def folder_key(self, key: str) -> str:
        """``key`` with a legacy alias replaced by the key it stands for."""
        return self.folder_aliases.get(key, key)

    def kind_of(self, key: str) -> AssetKind | None:
        """The kind a folder key holds, None when Synapse has no kind for it or the key is unknown."""
        return self.folders.get(self.folder_key(key))

    def knows_folder(self, key: str) -> bool:
        """Whether the UI has this folder key (possibly without a kind Synapse knows)."""
        return self.folder_key(key) in self.folders


def merge(contributions: Iterable[WorkflowNodes]) -> dict[str, GraphVocabulary]:
    """One vocabulary per UI from every plugin's records."""
    merged: dict[str, GraphVocabulary] = {}
    for contribution in contributions:
        merged.setdefault(contribution.ui, GraphVocabulary(contribution.ui)).add(contribution)
    return merged
