"""Generation parameters ("infotext"): the prompt, the negative prompt and one line of ``Key: value``.

Why this lives in the core and not in a UI adapter: the format is an interchange format. It is
written by AUTOMATIC1111 and its forks and by SD.Next, and read by other UIs and by model sites;
a file does not say reliably which program wrote it, and a user with only a node-graph UI
installed still wants the models an image names. No UI is named here: only the format's keys.

Parsing follows A1111 ``modules/infotext_utils.py`` ``parse_generation_parameters``: the last line
holds the parameters when the key pattern matches at least three times there; a quoted value is a
JSON string. Keys read (facts from Forge dfdcbab ``processing.py``, ``extra_networks_lora.py``,
``textual_inversion.py``, SD.Next ``processing_info.py``): ``Model``/``Model hash``, ``VAE``/``VAE
hash``, ``Hires checkpoint``, ``Refiner``, ``Lora hashes``, ``TI hashes``, ``Hypernet``/``Hypernet
hash``, ``Module N``, ``LoRA networks``/``LoRA hashes``, ``Embeddings``, a ``Hashes`` JSON object,
``<lora:..>`` and ``<hypernet:..>`` in the prompt, and any AIR (``urn:air:...``) in the text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import attrs

from synapse_core.kinds import AssetKind
from synapse_core.workflows.refs import HashClaim, ModelRef, ParsedFile, claims_for

_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_EXTRA_NETWORK = re.compile(r"<(\w+):([^>]+)>")
_TITLE_HASH = re.compile(r"^(.*?)\s*\[([0-9a-fA-F]{8,64})\]$")
_AIR = re.compile(r"urn:air:[\w\-/.]+:(?P<type>[\w\-/]+):[\w\-/]+:[\w\-/.@+]+", re.IGNORECASE)
_AIR_TYPES = {
    "checkpoint": AssetKind.CHECKPOINT,
    "lora": AssetKind.LORA,
    "lycoris": AssetKind.LORA,
    "embedding": AssetKind.EMBEDDING,
    "vae": AssetKind.VAE,
    "hypernet": AssetKind.HYPERNETWORK,
    "controlnet": AssetKind.CONTROLNET,
    "upscaler": AssetKind.UPSCALER,
}
_HASHES_OBJECT_KINDS = {"lora": AssetKind.LORA, "embed": AssetKind.EMBEDDING, "hypernet": AssetKind.HYPERNETWORK}
MAX_REFS = 500


@attrs.frozen
class Infotext:
    """The three parts of a parameters text."""

    prompt: str
    negative_prompt: str
    params: dict[str, str]


def parse_infotext(text: str) -> Infotext:
    """Split a parameters text as A1111 does (quoted values unquoted)."""
    *lines, last = text.strip().split("\n")
    if len(_PARAM.findall(last)) < 3:
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    for line in (line.strip() for line in lines):
        if line.startswith("Negative prompt:"):
            negative.append(line[16:].strip())
        elif negative:
            negative.append(line)
        else:
            prompt.append(line)
    params: dict[str, str] = {}
    for key, value in _PARAM.findall(last):
        params[key.strip()] = _unquote(value.strip())
    return Infotext("\n".join(prompt), "\n".join(negative), params)


def _unquote(value: str) -> str:
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return value
    try:
        loaded = json.loads(value)
    except ValueError:
        return value
    return loaded if isinstance(loaded, str) else value


def looks_like_infotext(text: str) -> bool:
    """Whether ``text`` has a parameters line (at least three ``Key: value`` pairs)."""
    return bool(parse_infotext(text).params)


def read_infotext(text: str) -> ParsedFile:
    """Every model a parameters text names."""
    info = parse_infotext(text)
    parsed = ParsedFile(format="infotext", ui=None)
    if not info.params:
        parsed.problems.append("no generation parameters line (Steps: ..., Sampler: ..., ...) was found")
        return parsed
    p = info.params
    _titled(parsed, p, "Model", "Model hash", AssetKind.CHECKPOINT)
    _titled(parsed, p, "VAE", "VAE hash", AssetKind.VAE)
    _titled(parsed, p, "Hypernet", "Hypernet hash", AssetKind.HYPERNETWORK)
    for key in ("Hires checkpoint", "Refiner"):
        if key in p:
            _title_with_hash(parsed, key, p[key], AssetKind.CHECKPOINT)
    loras = _named_hashes(parsed, p.get("Lora hashes"), "Lora hashes", AssetKind.LORA, lora=True)
    _named_hashes(parsed, p.get("TI hashes"), "TI hashes", AssetKind.EMBEDDING, lora=False)
    _prompt_networks(parsed, info.prompt + "\n" + info.negative_prompt, loras)
    _sdnext_lists(parsed, p)
    _hashes_object(parsed, p.get("Hashes"))
    for key, value in p.items():
        if re.fullmatch(r"Module \d+", key) and value and value.lower() != "none":
            parsed.refs.append(
                ModelRef(value, f"infotext '{key}'", kinds=(AssetKind.VAE, AssetKind.TEXT_ENCODER), match="stem")
            )
    _airs(parsed, text)
    if len(parsed.refs) > MAX_REFS:
        parsed.problems.append(f"the parameters name {len(parsed.refs)} models; only the first {MAX_REFS} are read")
        del parsed.refs[MAX_REFS:]
    return parsed


def _claim(parsed: ParsedFile, raw: str, label: str, lora: bool = False) -> list[HashClaim]:
    claim = claims_for(raw, label, lora=lora)
    if claim is None:
        parsed.problems.append(f"infotext '{label}': {raw!r} is not a hash Synapse can match; ignored")
        return []
    return [claim]


def _titled(parsed: ParsedFile, p: dict[str, str], name_key: str, hash_key: str, kind: AssetKind) -> None:
    name, raw_hash = p.get(name_key), p.get(hash_key)
    if not name and not raw_hash:
        return
    hashes = _claim(parsed, raw_hash, hash_key) if raw_hash else []
    where = f"infotext '{hash_key}'" if raw_hash else f"infotext '{name_key}'"
    shown = name or f"[{raw_hash}]"
    parsed.refs.append(ModelRef(shown, where, kinds=(kind,), match="stem", hashes=hashes))


def _title_with_hash(parsed: ParsedFile, key: str, value: str, kind: AssetKind) -> None:
    match = _TITLE_HASH.match(value.strip())
    name, raw_hash = (match.group(1), match.group(2)) if match else (value.strip(), None)
    name = name.rsplit(".", 1)[0] if name.lower().endswith((".safetensors", ".ckpt")) else name
    hashes = _claim(parsed, raw_hash, key) if raw_hash else []
    parsed.refs.append(ModelRef(name, f"infotext '{key}'", kinds=(kind,), match="stem", hashes=hashes))


def _pairs(value: str) -> Iterator[tuple[str, str]]:
    """``"name: hash, name: hash"`` as A1111's lora_script reads it."""
    for item in value.split(","):
        name, sep, raw = item.strip().partition(":")
        if sep:
            yield name.strip(), raw.strip()


def _named_hashes(
    parsed: ParsedFile, value: str | None, label: str, kind: AssetKind, *, lora: bool
) -> dict[str, ModelRef]:
    found: dict[str, ModelRef] = {}
    for name, raw in _pairs(value or ""):
        ref = ModelRef(
            name, f"infotext '{label}'", kinds=(kind,), match="stem", hashes=_claim(parsed, raw, label, lora)
        )
        parsed.refs.append(ref)
        found[name] = ref
    return found


def _prompt_networks(parsed: ParsedFile, prompt: str, with_hashes: dict[str, ModelRef]) -> None:
    """``<lora:NAME:weight>`` and ``<hypernet:NAME:weight>`` in the prompt (extra networks)."""
    seen: set[tuple[str, str]] = set()
    for network, args in _EXTRA_NETWORK.findall(prompt):
        name = args.split(":")[0].strip()
        kind = {"lora": AssetKind.LORA, "lyco": AssetKind.LORA, "hypernet": AssetKind.HYPERNETWORK}.get(network)
        if kind is None or not name or (network, name) in seen:
            continue
        seen.add((network, name))
        # A1111 drops ':' and ',' from the name it writes into 'Lora hashes'
        if kind is AssetKind.LORA and name.replace(":", "").replace(",", "") in with_hashes:
            continue
        parsed.refs.append(ModelRef(name, f"prompt <{network}:{name}>", kinds=(kind,), match="stem"))


def _sdnext_lists(parsed: ParsedFile, p: dict[str, str]) -> None:
    """SD.Next writes names and hashes as two lists, paired by position."""
    names = [n.strip() for n in p.get("LoRA networks", "").split(",") if n.strip()]
    hashes = [h.strip() for h in p.get("LoRA hashes", "").split(",") if h.strip()]
    paired = len(names) == len(hashes)
    for index, name in enumerate(names):
        claims = _claim(parsed, hashes[index], "LoRA hashes", lora=True) if paired else []
        parsed.refs.append(
            ModelRef(name, "infotext 'LoRA networks'", kinds=(AssetKind.LORA,), match="stem", hashes=claims)
        )
    for name in (n.strip() for n in p.get("Embeddings", "").split(",")):
        if name:
            parsed.refs.append(ModelRef(name, "infotext 'Embeddings'", kinds=(AssetKind.EMBEDDING,), match="stem"))


def _hashes_object(parsed: ParsedFile, value: str | None) -> None:
    """``Hashes: {"model": h, "vae": h, "lora:name": h, "embed:name": h}`` (read by model sites)."""
    if not value:
        return
    try:
        data = json.loads(value)
    except ValueError:
        parsed.problems.append("infotext 'Hashes' is not a JSON object; ignored")
        return
    if not isinstance(data, dict):
        parsed.problems.append("infotext 'Hashes' is not a JSON object; ignored")
        return
    named = {(r.kinds, r.name) for r in parsed.refs}
    for key, raw in data.items():
        prefix, _, name = str(key).partition(":")
        kind = {"model": AssetKind.CHECKPOINT, "vae": AssetKind.VAE}.get(prefix) or _HASHES_OBJECT_KINDS.get(prefix)
        if kind is None or not isinstance(raw, str):
            continue
        shown = name or f"[{raw}]"
        if ((kind,), shown) in named:
            continue
        claims = _claim(parsed, raw, f"Hashes {key}", lora=kind is AssetKind.LORA)
        parsed.refs.append(ModelRef(shown, f"infotext 'Hashes' {key}", kinds=(kind,), match="stem", hashes=claims))


def _airs(parsed: ParsedFile, text: str) -> None:
    """AIRs (``urn:air:<ecosystem>:<type>:<source>:<id>``) anywhere in the text: a source reference each."""
    for match in dict.fromkeys(m.group(0) for m in _AIR.finditer(text)):
        kind = _AIR_TYPES.get(_AIR.match(match).group("type").lower())  # type: ignore[union-attr]
        parsed.refs.append(
            ModelRef(match, "infotext AIR", kinds=(kind,) if kind else (), match="stem", source_ref=match)
        )
