"""Node graphs (workflows): every model name their loader nodes would load.

Formats, as the graph editor's own schema defines them (ComfyUI_frontend
``src/platform/workflow/validation/schemas/workflowSchema.ts``):

* UI format 0.4: ``nodes`` with ``widgets_values`` (a list by widget position, or an object
  by input name), ``links`` as 6-tuples ``[id, origin, origin_slot, target, target_slot, type]``;
* UI format 1: ``version: 1``, ``state``, ``links`` as objects;
* both may hold ``definitions.subgraphs``: a node whose ``type`` is a subgraph's id is an instance
  of it; inside, links from node -10 come from the instance's inputs, links to node -20 feed its
  outputs (litegraph ``SUBGRAPH_INPUT_ID``/``SUBGRAPH_OUTPUT_ID``);
* API format: ``{id: {class_type, inputs}}`` where a linked input is ``[origin_id, slot]``.

Which node types load what comes only from the plugins (:class:`GraphVocabulary`). Muted
(mode 2) and bypassed (mode 4) nodes load nothing, nor does anything inside a muted or bypassed
subgraph instance (frontend ``isNodeAndAncestorsActive``). A name fed through a link is followed
to the primitive or reroute it comes from, as the frontend's ``ExecutableNodeDTO.resolveInput``
does; a name computed by another node is reported as unknowable before the workflow runs.

Embedded ``models`` records (a node's ``properties.models``, the top-level ``models``) add the
download URL and hash of a name; a node's records count only where their name is one of the
node's string widget values (frontend ``getSelectedModelsMetadata``).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from synapse_core.errors import InvalidInput
from synapse_core.workflows.nodes import GraphVocabulary, ModelInput, NodeRole, NodeType
from synapse_core.workflows.refs import HashClaim, ModelRef, ParsedFile, hex_value, name_problem, normalise_name

SUBGRAPH_INPUT = "-10"
SUBGRAPH_OUTPUT = "-20"
MUTED, BYPASSED = 2, 4
MAX_DEPTH = 32
MAX_NODES = 20_000
MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pt2", ".pth", ".bin", ".gguf", ".sft", ".onnx")
"""Extensions that make a string widget of an unknown node type look like a model file name."""
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def graph_format(data: Any) -> str | None:
    """``ui-0.4``, ``ui-1`` or ``api`` when ``data`` is a node graph, else None."""
    if isinstance(data, dict) and isinstance(data.get("nodes"), list):
        return "ui-1" if data.get("version") == 1 else "ui-0.4"
    api = data.get("prompt") if isinstance(data, dict) and isinstance(data.get("prompt"), dict) else data
    if (
        isinstance(api, dict)
        and api
        and all(isinstance(v, dict) and isinstance(v.get("class_type"), str) for v in api.values())
    ):
        return "api"
    return None


def read_graph(data: Any, vocabulary: GraphVocabulary) -> ParsedFile:
    """Every model reference of a workflow (UI or API format)."""
    found = graph_format(data)
    if found is None:
        raise InvalidInput("not a workflow: no 'nodes' list (UI format) and no nodes with 'class_type' (API format)")
    parsed = ParsedFile(format=found, ui=vocabulary.ui)
    if found == "api":
        nodes = data["prompt"] if "prompt" in data and isinstance(data.get("prompt"), dict) else data
        _ApiReader(vocabulary, parsed, nodes).read()
    else:
        _UiReader(vocabulary, parsed, data).read()
    _merge_duplicates(parsed)
    return parsed


@attrs.frozen
class _Unknown:
    """A value that cannot be known from the file, and why."""

    reason: str


_OWN = object()
"""The subgraph instance does not override the inner node's widget: use the node's own value."""


def _where(path: tuple[str, ...], node_id: str, node_type: str) -> str:
    inside = f" in subgraph node {':'.join(path)}" if path else ""
    return f"node {node_id} ({node_type}){inside}"


class _Refs:
    """Turns values read from a graph into references, and bad values into problem lines."""

    def __init__(self, vocabulary: GraphVocabulary, parsed: ParsedFile) -> None:
        self.vocabulary = vocabulary
        self.parsed = parsed

    def model(self, where: str, model: ModelInput, value: object, node: NodeType) -> None:
        label = f"{where} {model.name}"
        if isinstance(value, _Unknown):
            self.parsed.problems.append(f"{label}: {value.reason}")
            return
        if value is None:
            self.parsed.problems.append(f"{label}: the workflow gives no value for it")
            return
        if not isinstance(value, str):
            what = (
                "a number" if isinstance(value, int | float) and not isinstance(value, bool) else type(value).__name__
            )
            self.parsed.problems.append(f"{label}: {value!r} is {what} where a file name belongs; ignored")
            return
        if value in ("", "None") or value in node.not_files:
            return
        problem = name_problem(value)
        if problem is not None:
            self.parsed.problems.append(f"{label}: the name {value!r} is refused ({problem})")
            return
        kind = self.vocabulary.kind_of(model.folder)
        folder = self.vocabulary.folder_key(model.folder)
        self.parsed.refs.append(ModelRef(value, label, folder=folder, kinds=(kind,) if kind else ()))

    def embeddings(self, where: str, text: object) -> None:
        prefix, folder = self.vocabulary.embedding_prefix, self.vocabulary.embedding_folder
        if not prefix or not folder or not isinstance(text, str) or prefix not in text:
            return
        kind = self.vocabulary.kind_of(folder)
        # comfy/sd1_clip.py tokenize_with_weights: split at ' <prefix>' / '\n<prefix>', the name is
        # the first word after it; ':weight' belongs to the weight syntax, a trailing ',' is dropped
        for match in re.finditer(rf"(?:^|[\s(]){re.escape(prefix)}([^\s()]+)", text):
            name = re.sub(r":-?[\d.]+$", "", match.group(1)).rstrip(",")
            if name and name_problem(name) is None:
                ref = ModelRef(name, f"{where} text", folder=folder, kinds=(kind,) if kind else (), match="stem")
                self.parsed.refs.append(ref)

    def unknown_node(self, where: str, node_type: str, values: Iterator[tuple[str, object]]) -> None:
        """A node type no plugin describes: string values that look like model files are reported."""
        for label, value in values:
            if isinstance(value, str) and value.lower().endswith(MODEL_SUFFIXES) and name_problem(value) is None:
                ref = ModelRef(value, f"{where} {label}")
                self.parsed.refs.append(ref)
                self.parsed.problems.append(
                    f"{where}: no installed plugin describes node type '{node_type}'; "
                    f"{value!r} looks like a model file, its folder is unknown"
                )


# -- the UI format ---------------------------------------------------------------------------------


@attrs.frozen
class _Link:
    origin: str
    origin_slot: int
    target: str
    target_slot: int


@attrs.define
class _Graph:
    nodes: dict[str, dict[str, Any]]
    links: dict[int, _Link]


@attrs.frozen
class _Scope:
    graph: _Graph
    path: tuple[str, ...] = ()
    instance: dict[str, Any] | None = None
    parent: _Scope | None = None


def _graph(raw: Mapping[str, Any], problems: list[str], label: str) -> _Graph:
    nodes: dict[str, dict[str, Any]] = {}
    for node in raw.get("nodes") or []:
        if isinstance(node, dict) and "id" in node and isinstance(node.get("type"), str):
            nodes[str(node["id"])] = node
        else:
            problems.append(f"{label}: a node without an id or type was skipped")
    links: dict[int, _Link] = {}
    for link in raw.get("links") or []:
        parsed = _link(link)
        if parsed is None:
            problems.append(f"{label}: a link that is not [id, origin, slot, target, slot, type] was skipped")
        else:
            links[parsed[0]] = parsed[1]
    return _Graph(nodes, links)


def _link(link: object) -> tuple[int, _Link] | None:
    try:
        if isinstance(link, list) and len(link) >= 5:
            return int(link[0]), _Link(str(link[1]), int(link[2]), str(link[3]), int(link[4]))
        if isinstance(link, dict):
            return int(link["id"]), _Link(
                str(link["origin_id"]), int(link["origin_slot"]), str(link["target_id"]), int(link["target_slot"])
            )
    except (KeyError, TypeError, ValueError):
        return None
    return None


def _subgraphs(raw: Mapping[str, Any], out: dict[str, Mapping[str, Any]], depth: int = 0) -> None:
    definitions = raw.get("definitions")
    if depth > MAX_DEPTH or not isinstance(definitions, dict):
        return
    for definition in definitions.get("subgraphs") or []:
        if isinstance(definition, dict) and isinstance(definition.get("id"), str):
            out.setdefault(definition["id"], definition)
            _subgraphs(definition, out, depth + 1)


def _mode(node: Mapping[str, Any]) -> int:
    mode = node.get("mode", 0)
    return mode if isinstance(mode, int) else 0


class _UiReader(_Refs):
    def __init__(self, vocabulary: GraphVocabulary, parsed: ParsedFile, data: Mapping[str, Any]) -> None:
        super().__init__(vocabulary, parsed)
        self.data = data
        self.definitions: dict[str, Mapping[str, Any]] = {}
        self.graphs: dict[str, _Graph] = {}
        self.visited = 0
        self.metadata: list[tuple[str, object]] = []

    def read(self) -> None:
        _subgraphs(self.data, self.definitions)
        for key, definition in self.definitions.items():
            self.graphs[key] = _graph(definition, self.parsed.problems, f"subgraph {definition.get('name') or key}")
        self.walk(_Scope(_graph(self.data, self.parsed.problems, "workflow")))
        for record in self.data.get("models") or []:
            self.metadata.append(("workflow 'models'", record))
        _apply_metadata(self.parsed, self.vocabulary, self.metadata)

    def walk(self, scope: _Scope) -> None:
        for node_id, node in scope.graph.nodes.items():
            self.visited += 1
            if self.visited > MAX_NODES:
                self.parsed.problems.append(
                    f"more than {MAX_NODES} nodes (with subgraphs expanded); the rest is not read"
                )
                return
            if _mode(node) in (MUTED, BYPASSED):
                continue
            node_type = node["type"]
            if node_type in self.graphs:
                if len(scope.path) >= MAX_DEPTH or node_type in {s for s in self._types_on_path(scope)}:
                    self.parsed.problems.append(f"{_where(scope.path, node_id, 'subgraph')}: subgraphs nest in a loop")
                    continue
                inner = _Scope(self.graphs[node_type], (*scope.path, node_id), node, scope)
                self.walk(inner)
            else:
                self.visit(scope, node_id, node)

    @staticmethod
    def _types_on_path(scope: _Scope) -> Iterator[str]:
        while scope.instance is not None:
            yield str(scope.instance.get("type"))
            scope = scope.parent  # type: ignore[assignment]

    def visit(self, scope: _Scope, node_id: str, node: dict[str, Any]) -> None:
        node_type = node["type"]
        where = _where(scope.path, node_id, node_type)
        described = self.vocabulary.nodes.get(node_type)
        raw_properties = node.get("properties")
        properties: dict[str, Any] = raw_properties if isinstance(raw_properties, dict) else {}
        for record in properties.get("models") or []:
            if isinstance(record, dict) and record.get("name") in _string_widgets(node):
                self.metadata.append((where, record))
        if described is None:
            if properties.get("cnr_id") not in self.vocabulary.own_download_packs:
                self.unknown_node(where, node_type, _widget_items(node))
            return
        if described.role is not NodeRole.LOADER:
            return
        for model in described.models:
            self.model(where, model, self.input_value(scope, node, model.name, model.widget), described)
        for text in described.texts:
            self.embeddings(where, self.input_value(scope, node, text.name, text.widget))

    def input_value(self, scope: _Scope, node: dict[str, Any], name: str, widget: int, depth: int = 0) -> object:
        for slot in node.get("inputs") or []:
            if not isinstance(slot, dict):
                continue
            widget_name = (slot.get("widget") or {}).get("name") if isinstance(slot.get("widget"), dict) else None
            if (slot.get("name") == name or widget_name == name) and slot.get("link") is not None:
                value = self.follow(scope, slot["link"], depth + 1)
                if value is _OWN:
                    break
                return value
        values = node.get("widgets_values")
        if isinstance(values, list):
            return values[widget] if 0 <= widget < len(values) else None
        if isinstance(values, dict):
            return values.get(name)
        return None

    def follow(self, scope: _Scope, link_id: object, depth: int) -> object:
        """The value that arrives through a link."""
        if depth > MAX_DEPTH:
            return _Unknown("the link chain it comes through is too long or loops")
        link = scope.graph.links.get(link_id) if isinstance(link_id, int) else None
        if link is None:
            return _Unknown(f"fed by link {link_id}, which the workflow does not have")
        if link.origin == SUBGRAPH_INPUT:
            return self.from_instance(scope, link.origin_slot, depth)
        origin = scope.graph.nodes.get(link.origin)
        if origin is None:
            return _Unknown(f"fed by node {link.origin}, which the workflow does not have")
        origin_type = origin["type"]
        where = _where(scope.path, link.origin, origin_type)
        if _mode(origin) == MUTED:
            return _Unknown(f"fed by {where}, which is muted")
        if _mode(origin) == BYPASSED:
            return self.through_input(scope, origin, link.origin_slot, depth, where)
        if origin_type in self.graphs:
            return self.from_subgraph_output(scope, link.origin, origin, link.origin_slot, depth)
        described = self.vocabulary.nodes.get(origin_type)
        if described is not None and described.role is NodeRole.VALUE:
            values = origin.get("widgets_values")
            if isinstance(values, list) and values:
                return values[0]
            if isinstance(values, dict):
                return values.get(described.value_input)
            return _Unknown(f"fed by {where}, which has no value")
        if described is not None and described.role is NodeRole.PASSTHROUGH:
            return self.through_input(scope, origin, 0, depth, where)
        return _Unknown(f"comes from an output of {where}; it is known only when the workflow runs")

    def through_input(self, scope: _Scope, node: dict[str, Any], slot: int, depth: int, where: str) -> object:
        inputs = node.get("inputs") or []
        if 0 <= slot < len(inputs) and isinstance(inputs[slot], dict) and inputs[slot].get("link") is not None:
            return self.follow(scope, inputs[slot]["link"], depth + 1)
        return _Unknown(f"fed through {where}, which has nothing connected")

    def from_instance(self, scope: _Scope, slot: int, depth: int) -> object:
        """A subgraph input: what is connected to the instance, else the instance's own widget."""
        instance, parent = scope.instance, scope.parent
        if instance is None or parent is None:
            return _Unknown("fed by a subgraph input outside any subgraph")
        inputs = instance.get("inputs") or []
        slot_info = inputs[slot] if 0 <= slot < len(inputs) and isinstance(inputs[slot], dict) else {}
        if slot_info.get("link") is not None:
            return self.follow(parent, slot_info["link"], depth + 1)
        values = instance.get("widgets_values")
        if isinstance(values, dict) and slot_info.get("name") in values:
            return values[slot_info["name"]]
        with_widgets = [s for s in inputs if isinstance(s, dict) and s.get("widget")]
        if isinstance(values, list) and slot_info in with_widgets and with_widgets.index(slot_info) < len(values):
            return values[with_widgets.index(slot_info)]
        return _OWN

    def from_subgraph_output(
        self, scope: _Scope, node_id: str, instance: dict[str, Any], slot: int, depth: int
    ) -> object:
        graph = self.graphs[instance["type"]]
        inner = _Scope(graph, (*scope.path, node_id), instance, scope)
        for link_id, link in graph.links.items():
            if link.target == SUBGRAPH_OUTPUT and link.target_slot == slot:
                return self.follow(inner, link_id, depth + 1)
        return _Unknown(f"comes from output {slot} of subgraph node {node_id}, which nothing feeds")


def _widget_items(node: Mapping[str, Any]) -> Iterator[tuple[str, object]]:
    values = node.get("widgets_values")
    if isinstance(values, list):
        yield from ((f"widget #{i}", v) for i, v in enumerate(values))
    elif isinstance(values, dict):
        yield from ((str(k), v) for k, v in values.items())


def _string_widgets(node: Mapping[str, Any]) -> set[str]:
    return {v for _, v in _widget_items(node) if isinstance(v, str) and v}


# -- the API format --------------------------------------------------------------------------------


class _ApiReader(_Refs):
    def __init__(self, vocabulary: GraphVocabulary, parsed: ParsedFile, nodes: Mapping[str, Any]) -> None:
        super().__init__(vocabulary, parsed)
        self.nodes = {str(k): v for k, v in nodes.items()}

    def read(self) -> None:
        if len(self.nodes) > MAX_NODES:
            self.parsed.problems.append(f"more than {MAX_NODES} nodes; the rest is not read")
        for node_id, node in list(self.nodes.items())[:MAX_NODES]:
            node_type = node["class_type"]
            where = f"node {node_id} ({node_type})"
            inputs = node.get("inputs") if isinstance(node.get("inputs"), dict) else {}
            described = self.vocabulary.nodes.get(node_type)
            if described is None:
                self.unknown_node(where, node_type, iter(inputs.items()))
                continue
            if described.role is not NodeRole.LOADER:
                continue
            for model in described.models:
                self.model(where, model, self.value(inputs.get(model.name), 0), described)
            for text in described.texts:
                self.embeddings(where, self.value(inputs.get(text.name), 0))

    def value(self, raw: object, depth: int) -> object:
        if not (isinstance(raw, list) and len(raw) == 2 and isinstance(raw[1], int)):
            return raw
        if depth > MAX_DEPTH:
            return _Unknown("the link chain it comes through is too long or loops")
        origin = self.nodes.get(str(raw[0]))
        if origin is None:
            return _Unknown(f"fed by node {raw[0]}, which the workflow does not have")
        described = self.vocabulary.nodes.get(origin["class_type"])
        inputs = origin.get("inputs") if isinstance(origin.get("inputs"), dict) else {}
        if described is not None and described.role is NodeRole.VALUE:
            return self.value(inputs.get(described.value_input), depth + 1)
        if described is not None and described.role is NodeRole.PASSTHROUGH and inputs:
            return self.value(next(iter(inputs.values())), depth + 1)
        return _Unknown(
            f"comes from an output of node {raw[0]} ({origin['class_type']}); it is known only when the workflow runs"
        )


# -- embedded models records -------------------------------------------------------------------------


def _apply_metadata(parsed: ParsedFile, vocabulary: GraphVocabulary, records: list[tuple[str, object]]) -> None:
    """Give references the URL and hash their ``models`` record names; a record no node uses is a
    reference of its own (the frontend lists it the same way)."""
    seen: set[str] = set()
    for where, record in records:
        checked = _check_record(where, record, parsed.problems)
        if checked is None:
            continue
        name, folder, url, claim = checked
        identity = url or (claim.value if claim else "")
        if not identity or identity in seen:  # frontend: records need a url or a hash; one per url, else hash
            continue
        seen.add(identity)
        folder_key = vocabulary.folder_key(folder)
        matching = [r for r in parsed.refs if r.folder == folder_key and normalise_name(r.name) == normalise_name(name)]
        if not matching:
            kind = vocabulary.kind_of(folder)
            if not vocabulary.knows_folder(folder):
                parsed.problems.append(
                    f"{where}: directory {folder!r} of {name!r} is not a folder {vocabulary.ui} has"
                    " (does it need custom nodes?)"
                )
            ref = ModelRef(
                name,
                f"{where} record",
                folder=folder_key if vocabulary.knows_folder(folder) else None,
                kinds=(kind,) if kind else (),
            )
            parsed.refs.append(ref)
            matching = [ref]
        for ref in matching:
            ref.url = ref.url or url
            if claim is not None and claim not in ref.hashes:
                ref.hashes.append(claim)


def _check_record(
    where: str, record: object, problems: list[str]
) -> tuple[str, str, str | None, HashClaim | None] | None:
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("name"), str)
        or not isinstance(record.get("directory"), str)
    ):
        problems.append(f"{where}: a 'models' record without a name and directory was skipped")
        return None
    name, folder = record["name"], record["directory"]
    problem = name_problem(name)
    if problem is not None:
        problems.append(f"{where}: 'models' record {name!r} is refused ({problem})")
        return None
    url = record.get("url") if isinstance(record.get("url"), str) else None
    if url is not None:
        url_problem = _url_problem(url)
        if url_problem is not None:
            problems.append(f"{where}: the URL of {name!r} is refused ({url_problem}); it is not downloaded")
            url = None
    claim = None
    raw_hash, hash_type = record.get("hash"), str(record.get("hash_type") or "sha256").lower()
    if raw_hash is not None:
        hexed = hex_value(raw_hash)
        if hash_type == "sha256" and hexed is not None and len(hexed) == 64:
            claim = HashClaim(hexed, ("sha256",), "models[].hash")
        else:
            problems.append(f"{where}: the hash of {name!r} is not a SHA-256 ({hash_type}); it is not used")
    return name, folder, url, claim


def _url_problem(url: str) -> str | None:
    """Downloads come from https URLs only (http on this machine is allowed for tests, as the
    frontend allows ``http://localhost:``)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "it is not a URL"
    if parts.scheme == "https" and host:
        return None
    if parts.scheme == "http" and host in _LOOPBACK:
        return None
    return "it is not https" if parts.scheme != "https" else "it has no host"


def _merge_duplicates(parsed: ParsedFile) -> None:
    """Keep problem lines unique (the same unknown node type warns once per value)."""
    parsed.problems[:] = list(dict.fromkeys(parsed.problems))


def basename(name: str) -> str:
    """The file name of a workflow's model name, whichever separator it was saved with."""
    return posixpath.basename(normalise_name(name))
