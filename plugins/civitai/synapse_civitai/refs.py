"""Every form of Civitai reference users paste (civitai-api.md section 4), parsed."""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qs, urlsplit

import attrs

from synapse_core.errors import InvalidInput

DEFAULT_BASE_URL = "https://civitai.com"


def base_url() -> str:
    """The API origin: SYNAPSE_CIVITAI_URL, else https://civitai.com."""
    return os.environ.get("SYNAPSE_CIVITAI_URL", DEFAULT_BASE_URL).rstrip("/")


CIVITAI_HOSTS = frozenset({"civitai.com", "www.civitai.com", "civitai.red", "www.civitai.red", "civitai.green"})
DOWNLOAD_QUERY_KEYS = ("type", "format", "size", "fp", "quantType")
_AIR = re.compile(
    r"^(?:urn:)?(?:air:)?(?:(?P<eco>[\w\-/]+):)?(?:(?P<type>[\w\-/]+):)?(?P<source>[\w\-/]+):(?P<id>[\w\-/.]+)"
    r"(?:@(?P<version>[\w\-/.]+))?(?:\+(?P<file>\d+))?(?:\.(?P<format>[\w-]+))?$",
    re.IGNORECASE,
)
_FORMAT_SUFFIX = re.compile(r"(?<=\d)\.[A-Za-z][\w-]*$")
_TOKEN_PARAM = re.compile(r"([?&;]token=)[^&#\s]*", re.IGNORECASE)
_SHORT = re.compile(r"^civitai:(?P<id>\d+)(?:@(?P<version>\d+))?$", re.IGNORECASE)
HELP = (
    "use a Civitai model URL (https://civitai.com/models/ID[?modelVersionId=VID]), a version URL "
    "(/model-versions/VID), a download URL (/api/download/models/VID), an AIR "
    "(urn:air:sdxl:lora:civitai:ID@VID) or civitai:ID[@VID]"
)


@attrs.frozen
class CivitaiRef:
    """What a reference names: a model, a version, maybe one file or file preferences."""

    model_id: int | None = None
    version_id: int | None = None
    file_id: int | None = None
    query: dict[str, str] = attrs.field(factory=dict)
    """Download-URL file selectors: type, format, size, fp, quantType."""


def looks_like_civitai(ref: str, extra_hosts: frozenset[str] = frozenset()) -> bool:
    """Whether ``ref`` is meant for Civitai (it may still be malformed)."""
    text = ref.strip()
    lowered = text.lower()
    if lowered.startswith(("civitai:", "urn:air:", "air:")):
        return True
    if "://" not in text:
        return lowered.startswith(tuple(f"{h}/" for h in CIVITAI_HOSTS))
    parts = urlsplit(text)
    return (parts.hostname or "") in CIVITAI_HOSTS or parts.netloc.lower() in extra_hosts


def parse_ref(ref: str, extra_hosts: frozenset[str] = frozenset()) -> CivitaiRef:
    """Parse a reference, or raise InvalidInput saying which forms are accepted."""
    text = ref.strip()
    short = _SHORT.match(text)
    if short:
        return CivitaiRef(model_id=int(short["id"]), version_id=_int(short["version"]))
    if text.lower().startswith(("urn:air:", "air:")):
        return _parse_air(text)
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if (parts.hostname or "") not in CIVITAI_HOSTS and parts.netloc.lower() not in extra_hosts:
        raise InvalidInput(f"{_shown(ref)!r} is not a Civitai address; {HELP}")
    return _parse_path(ref, parts.path, parse_qs(parts.query))


def _parse_path(ref: str, path: str, query: dict[str, list[str]]) -> CivitaiRef:
    segments = [s for s in path.split("/") if s]
    first = {k: v[0] for k, v in query.items() if v}
    if len(segments) >= 2 and segments[0] == "models" and segments[1].isdigit():
        return CivitaiRef(model_id=int(segments[1]), version_id=_int(first.get("modelVersionId")))
    if len(segments) >= 2 and segments[0] == "model-versions" and segments[1].isdigit():
        return CivitaiRef(version_id=int(segments[1]))
    if segments[:3] == ["api", "download", "models"] and len(segments) >= 4 and segments[3].isdigit():
        selectors = {k: first[k] for k in DOWNLOAD_QUERY_KEYS if k in first}
        return CivitaiRef(version_id=int(segments[3]), file_id=_int(first.get("fileId")), query=selectors)
    raise InvalidInput(f"{_shown(ref)!r} names no Civitai model or version; {HELP}")


def _parse_air(ref: str) -> CivitaiRef:
    match = _AIR.match(ref.strip())
    if not match or (match["source"] or "").lower() != "civitai":
        raise InvalidInput(f"{ref!r} is not a Civitai AIR; {HELP}")
    model_id, version = match["id"], match["version"]
    # the grammar lets '.' into id and version, so an AIR's '.format' suffix lands there: split it off
    if version is not None:
        version = _FORMAT_SUFFIX.sub("", version)
    else:
        model_id = _FORMAT_SUFFIX.sub("", model_id)
    if not model_id.isdigit() or (version and not version.isdigit()):
        raise InvalidInput(f"{ref!r}: a Civitai AIR needs numeric model and version ids; {HELP}")
    return CivitaiRef(model_id=int(model_id), version_id=_int(version), file_id=_int(match["file"]))


def _shown(ref: str) -> str:
    """``ref`` for a message: a download link's ``token=`` (an API key) masked."""
    return _TOKEN_PARAM.sub(r"\1***", ref)


def _int(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise InvalidInput(f"{value!r} is not a Civitai id (a whole number)")
    return int(value)
