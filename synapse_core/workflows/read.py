"""From a file's bytes to its model references: pick the embedded text, then the right reader."""

from __future__ import annotations

import json
from collections.abc import Mapping

import attrs

from synapse_core.errors import InvalidInput
from synapse_core.workflows.containers import read_embedded
from synapse_core.workflows.graph import graph_format, read_graph
from synapse_core.workflows.infotext import looks_like_infotext, read_infotext
from synapse_core.workflows.nodes import GraphVocabulary
from synapse_core.workflows.refs import ParsedFile

GRAPH_KEYS = ("json", "workflow", "prompt")
"""In the order the graph editor prefers them (frontend ``handleFile``: workflow, then prompt)."""


@attrs.frozen
class ReadFile:
    """A file's container and what its metadata names."""

    container: str
    parsed: ParsedFile


def read_file(data: bytes, label: str, vocabularies: Mapping[str, GraphVocabulary], ui: str | None = None) -> ReadFile:
    """Every model reference of a workflow or image; InvalidInput (one line) when it has none to read."""
    embedded = read_embedded(data, label)
    problems = list(embedded.warnings)
    for key in GRAPH_KEYS:
        if key not in embedded.texts:
            continue
        try:
            loaded = json.loads(embedded.texts[key])
        except ValueError as exc:
            if key == "json":
                raise InvalidInput(f"{label}: not valid JSON ({exc}); is it a workflow?") from exc
            problems.append(f"{label}: the embedded '{key}' is not valid JSON; skipped")
            continue
        if graph_format(loaded) is None:
            if key == "json":
                raise InvalidInput(
                    f"{label}: JSON, but not a workflow (no 'nodes' list and no nodes with 'class_type')"
                )
            problems.append(f"{label}: the embedded '{key}' is not a workflow; skipped")
            continue
        parsed = read_graph(loaded, _vocabulary(vocabularies, ui, label))
        if ui is not None and ui != parsed.ui:
            parsed.problems.append(f"{ui} does not read node graphs; the view of {parsed.ui} is checked instead")
        parsed.problems[:0] = problems
        return ReadFile(embedded.container, parsed)
    text = embedded.texts.get("parameters")
    if text is not None and looks_like_infotext(text):
        parsed = read_infotext(text)
        parsed.ui = ui
        parsed.problems[:0] = problems
        return ReadFile(embedded.container, parsed)
    if embedded.container == "text":
        raise InvalidInput(f"{label}: not a workflow (JSON) and not generation parameters")
    raise InvalidInput(
        f"{label}: the {embedded.container.upper()} carries no workflow, prompt or generation parameters;"
        " nothing names a model"
    )


def _vocabulary(vocabularies: Mapping[str, GraphVocabulary], ui: str | None, label: str) -> GraphVocabulary:
    if ui is not None and ui in vocabularies:
        return vocabularies[ui]
    if len(vocabularies) == 1:
        return next(iter(vocabularies.values()))
    if not vocabularies:
        raise InvalidInput(
            f"{label}: a workflow (node graph), but no installed plugin describes the node types of workflows;"
            " install the plugin of the UI that wrote it"
        )
    raise InvalidInput(
        f"{label}: several UIs read node graphs ({', '.join(sorted(vocabularies))}); choose one with --ui"
    )
