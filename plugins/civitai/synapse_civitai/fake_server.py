"""A faithful fake of the Civitai public REST API and its storage CDN, for tests and demos.

Standard library only, and standalone: it imports nothing from ``synapse_core`` or
``synapse_civitai``. Two loopback HTTP servers run side by side:

* the **API** server (``fake.api_url``) answers ``/api/v1/...`` and
  ``/api/download/models/{versionId}`` the way civitai.com does (shapes, status codes,
  JSON error bodies, cache and CORS headers, the browser / non-browser error branches);
* the **CDN** server (``fake.cdn_url``) plays the presigned R2 storage the download
  endpoint redirects to (raw UTF-8 ``Content-Disposition``, ``Range``/206/416, rejecting
  any ``Authorization`` header) and the image CDN.

Every behaviour follows ``shared/civitai-api.md`` (sections 1, 2, 6 and 7). Usage::

    with FakeCivitai() as fake:
        fake.add_model(424242, name="Paper Lantern Style", type="LORA", creator="lantern_maker")
        fake.add_version(424242, 909001, name="v1.0", base_model="SD 1.5",
                         files=[FakeFile(808001, "paper_lantern_v1.safetensors", size=150_000,
                                         metadata={"format": "SafeTensor", "size": "pruned",
                                                   "fp": "fp16"})])
        fake.valid_tokens.add("tok-123")
        fake.inject(r"^/api/v1/models/", status=503, times=2, headers={"Retry-After": "1"})
        ...  # point a client at fake.api_url
        assert all("authorization" not in r.headers for r in fake.requests_for("cdn"))

Run ``python -m synapse_civitai.fake_server --port-file PATH --seed-demo`` to serve the
demo catalogue in the foreground until SIGTERM/SIGINT.

Things a client author should know:

* ``files[].name`` and the download's ``Content-Disposition`` carry the name Civitai
  derives (``getDownloadFilename``): LORA/LoCon keep the uploaded ``FakeFile.name``,
  TextualInversion becomes ``<trainedWords[0]>[-neg].<ext>``, other types become
  ``<model>_<version>.<ext>``; ``FakeFile.override_name`` wins over all of that.
* Computed hashes stream the whole file once (about a second per GiB), the first time a
  response lists the file; pass ``hashes=`` to skip that for huge files.
* Only storage paths (``/model/...``) reject ``Authorization``; image URLs (``/images/...``)
  play Cloudflare Images, which ignores it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import math
import os
import re
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Literal, cast
from urllib.parse import parse_qsl, quote, unquote, urlsplit

__all__ = [
    "CLOUDFLARE_CHALLENGE_HTML",
    "LOGIN_PAGE_HTML",
    "MAINTENANCE_HTML",
    "FakeCivitai",
    "FakeFile",
    "FakeImage",
    "FakeModel",
    "FakeUser",
    "FakeVersion",
    "Injection",
    "LoggedRequest",
    "air_for",
    "download_filename",
    "file_download_url",
    "filenamize",
    "is_browser_user_agent",
    "main",
    "parse_range",
    "rank_files",
    "seed_demo",
]

ServerRole = Literal["api", "cdn"]
JsonObj = dict[str, Any]

# --------------------------------------------------------------------------------------
# Enumerations and fixed strings (doc sections 1.6, 2, 3)
# --------------------------------------------------------------------------------------

MODEL_TYPES: tuple[str, ...] = (
    "Checkpoint", "TextualInversion", "Hypernetwork", "AestheticGradient", "LORA", "LoCon",
    "DoRA", "Controlnet", "Upscaler", "MotionModule", "VAE", "TextEncoder", "UNet",
    "CLIPVision", "Poses", "Wildcards", "Workflows", "ComfyWorkflows", "Detection",
    "VisionLanguage", "CLIP", "LLM", "Other",
)  # fmt: skip
MODEL_FILE_TYPES: tuple[str, ...] = (
    "Model", "Text Encoder", "Vision Encoder", "Pruned Model", "Negative", "Training Data",
    "VAE", "Config", "Archive", "UNet", "Diffusion Model", "CLIPVision", "ControlNet",
    "Workflow", "Upscaler", "Enhancement LoRA", "Other",
)  # fmt: skip
MODEL_FILE_FORMATS: tuple[str, ...] = (
    "SafeTensor", "PickleTensor", "GGUF", "Diffusers", "Core ML", "ONNX", "Other",
)  # fmt: skip
MODEL_FILE_SIZES: tuple[str, ...] = ("full", "pruned")
BASE_MODEL_TYPES: tuple[str, ...] = ("Standard", "Inpainting", "Refiner", "Pix2Pix")
MODEL_SORTS: tuple[str, ...] = (
    "Highest Rated", "Most Downloaded", "Most Liked", "Most Discussed", "Most Collected",
    "Most Images", "Newest", "Oldest",
)  # fmt: skip
PERIODS: tuple[str, ...] = ("AllTime", "Year", "Month", "Week", "Day")
BASE_MODELS: tuple[str, ...] = (
    "SD 1.4", "SD 1.5", "SD 1.5 LCM", "SD 1.5 Hyper", "SD 2.0", "SD 2.0 768", "SD 2.1",
    "SD 2.1 768", "SD 2.1 Unclip", "SDXL 0.9", "SDXL 1.0", "SDXL 1.0 LCM", "SDXL Lightning",
    "SDXL Hyper", "SDXL Turbo", "SDXL Distilled", "Pony", "Pony V7", "Illustrious", "NoobAI",
    "SD 3", "SD 3.5", "SD 3.5 Large", "SD 3.5 Large Turbo", "SD 3.5 Medium", "Stable Cascade",
    "SVD", "SVD XT", "Flux.1 S", "Flux.1 D", "Flux.1 Krea", "Flux.1 Kontext", "Flux.2 D",
    "Flux.2 Klein 9B", "Hunyuan 1", "Hunyuan Video", "Kolors", "AuraFlow", "Chroma",
    "HiDream", "Lumina", "LTXV", "Mochi", "CogVideoX", "PixArt a", "PixArt E",
    "Playground v2", "ODOR", "Qwen", "Wan Video", "Wan Video 14B t2v",
    "Wan Video 2.2 T2V-A14B", "ZImageTurbo", "ZImageBase", "Upscaler", "Other",
)  # fmt: skip
ACTIVE_BASE_MODELS: tuple[str, ...] = tuple(
    b for b in BASE_MODELS if b not in {"SD 1.4", "SDXL 0.9", "SD 2.0 768", "ODOR"}
)
#: File types that get the +1000 "main weights" bonus when ranking (CV-primary; HEAD also
#: lists UNet).
PRIMARY_FILE_TYPES: tuple[str, ...] = ("Model", "Pruned Model", "Diffusion Model", "UNet")
DEFAULT_FILE_PREFERENCES: dict[str, str] = {
    "format": "SafeTensor",
    "size": "pruned",
    "fp": "fp16",
    "quantType": "Q4_K_M",
}
PREFERENCE_WEIGHTS: dict[str, float] = {"format": 100, "size": 10, "fp": 1, "quantType": 0.5}
BROWSER_UA_MARKERS: tuple[str, ...] = ("mozilla", "chrome", "safari", "firefox", "opera", "edge")
NSFW_PUBLIC_LEVELS = 1  # PG
NSFW_ALL_LEVELS = 31  # PG | PG13 | R | X | XXX

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
PUBLIC_CACHE_CONTROL = "public, s-maxage=300, stale-while-revalidate=150"
BY_HASH_CACHE_CONTROL = "public, s-maxage=3600, stale-while-revalidate=1800"
DOWNLOAD_CACHE_CONTROL = "no-store, max-age=0"

MSG_FILE_NOT_FOUND = "File not found"
MSG_ARCHIVED = "Model archived, not available for download"
MSG_FORBIDDEN = "Forbidden"
MSG_NO_ACCESS = "You do not have access to download this file"
MSG_LIMITER = (
    "We've noticed an unusual amount of downloading from your account. Contact support@civitai.com or come back later."
)
MSG_EARLY_ACCESS = "This asset is in Early Access. You can use Buzz access it now!"
MSG_LOGIN_REQUIRED = "The creator of this asset requires you to be logged in to download it"
MSG_DOWNLOADS_DISABLED = "The creator of this asset has disabled downloads on this file"
MSG_PAGE_CAP = "You've requested too many pages, please use cursors instead"
MSG_QUERY_AND_PAGE = "Cannot use page param with query search. Use cursor-based pagination."
MSG_SEARCH_OVERLOADED = "Model search is temporarily overloaded — please retry."

#: A Cloudflare "managed challenge" page, as served on API calls (doc 5.8).
CLOUDFLARE_CHALLENGE_HTML = (
    b'<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>'
    b'<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">'
    b'<meta name="robots" content="noindex,nofollow"></head><body>'
    b'<div class="main-wrapper" role="main"><div class="main-content">'
    b'<h1 class="zone-name-title h1">civitai.com</h1>'
    b'<h2 class="h2" id="challenge-running">Checking if the site connection is secure</h2>'
    b"<noscript>Enable JavaScript and cookies to continue</noscript>"
    b"<script>window._cf_chl_opt={cvId: '3',cType: 'managed'};</script>"
    b"</div></div></body></html>"
)
#: The maintenance page Civitai shows during deploys (doc 5.8).
MAINTENANCE_HTML = (
    b"<!DOCTYPE html><html><head><title>Civitai | Maintenance</title></head><body>"
    b"<h1>We're adjusting a few things, be back in a few minutes...</h1></body></html>"
)
#: The login page a browser lands on after the download-auth redirect (served at /login).
LOGIN_PAGE_HTML = (
    b"<!DOCTYPE html><html><head><title>Sign in | Civitai</title></head><body>"
    b"<h1>Sign in to Civitai</h1><p>Sign in to download this resource.</p></body></html>"
)
_NOT_FOUND_HTML = (
    b"<!DOCTYPE html><html><head><title>404: This page could not be found</title></head>"
    b"<body><h1>404</h1><h2>This page could not be found.</h2></body></html>"
)
_FAKE_JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
_FAKE_MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
_FAKE_MP3_HEAD = b"ID3\x04\x00\x00\x00\x00\x00\x00"

_BLOCK_SIZE = 1 << 20  # generated content repeats a per-file 1 MiB block with a counter
_STREAM_CHUNK = 256 * 1024
_AUTOV1_OFFSET = 1 << 20
_AUTOV1_LENGTH = 64 * 1024
_AUTOV1_MIN_SIZE = 2 << 20
_EPOCH = datetime(2025, 1, 1, 9, 30, tzinfo=UTC)
_DEFAULT_BLURHASH = "U8F5?xYk~qof%Mj[t7ay-;WBRjay"

# --------------------------------------------------------------------------------------
# Small pure helpers
# --------------------------------------------------------------------------------------


def is_browser_user_agent(user_agent: str | None) -> bool:
    """Return True when Civitai would treat this User-Agent as a browser (CV-ua)."""
    if not user_agent:
        return False
    lowered = user_agent.lower()
    return any(marker in lowered for marker in BROWSER_UA_MARKERS)


def _iso(moment: datetime) -> str:
    """Format like JavaScript's ``Date.toISOString()`` (milliseconds, ``Z``)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _to_datetime(value: datetime | str | None) -> datetime | None:
    """Accept a datetime or an ISO-8601 string (``Z`` allowed); naive means UTC."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _json_bytes(value: Any) -> bytes:
    """Serialise compactly, like ``JSON.stringify``."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _qs_encode(value: str) -> str:
    """Strict URI-component encoding, as the ``query-string`` package does."""
    return quote(value, safe="")


def _qs_stringify(pairs: Iterable[tuple[str, str]]) -> str:
    """``QS.stringify`` with nulls/empties skipped and key order kept."""
    return "&".join(f"{_qs_encode(k)}={_qs_encode(v)}" for k, v in pairs if v)


_JS_DECIMAL = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_JS_RADIX = re.compile(r"^0([xXoObB])([0-9a-fA-F]+)$")


def _js_number(text: str) -> float:
    """Mimic JavaScript ``Number(text)`` for query strings (NaN when not numeric)."""
    stripped = text.strip()
    if stripped == "":
        return 0.0
    if _JS_DECIMAL.match(stripped):
        return float(stripped)
    radix = _JS_RADIX.match(stripped)
    if radix:
        base = {"x": 16, "o": 8, "b": 2}[radix.group(1).lower()]
        try:
            return float(int(radix.group(2), base))
        except ValueError:
            return math.nan
    if stripped in ("Infinity", "+Infinity"):
        return math.inf
    if stripped == "-Infinity":
        return -math.inf
    return math.nan


def _js_number_text(value: float) -> str:
    """Render a number the way JavaScript's template strings do."""
    value = float(value)
    if math.isfinite(value) and value.is_integer():
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return str(value)


# lodash `words` restricted to ASCII (filenamize output is ASCII only).
_LODASH_WORD = re.compile(
    r"[A-Z]?[a-z]+(?=[^A-Za-z0-9]|[A-Z]|$)"
    r"|[A-Z]+(?=[^A-Za-z0-9]|[A-Z][a-z]|$)"
    r"|[A-Z]?[a-z]+"
    r"|[A-Z]+"
    r"|\d*(?:1ST|2ND|3RD|(?![123])\dTH)(?=\b|[a-z_])"
    r"|\d*(?:1st|2nd|3rd|(?![123])\dth)(?=\b|[A-Z_])"
    r"|\d+"
)


def _camel_case(value: str) -> str:
    """lodash ``camelCase`` for ASCII input."""
    words = _LODASH_WORD.findall(value.replace("'", ""))
    out = ""
    for index, word in enumerate(words):
        lower = word.lower()
        out += lower[:1].upper() + lower[1:] if index else lower
    return out


def _lodash_truncate(value: str, length: int, separator: str = "_") -> str:
    """lodash ``truncate`` with an empty omission and a string separator."""
    if length >= len(value):
        return value
    if length < 1:
        return ""
    result = value[:length]
    if value.find(separator, length) != length:
        index = result.rfind(separator)
        if index > -1:
            result = result[:index]
    return result


def filenamize(value: str, length: int = 20) -> str:
    """Civitai's ``filenamize`` (CV-str): strip ``'``, non-alphanumerics to ``_``, camelCase."""
    cleaned = "".join(
        ch if ch.isascii() and ch.isalnum() else ("__" if ord(ch) > 0xFFFF else "_") for ch in value.replace("'", "")
    )
    limit = length + cleaned.count("_")
    return _camel_case(_lodash_truncate(cleaned, limit, "_"))


def download_filename(model: FakeModel, version: FakeVersion, file: FakeFile) -> str:
    """The name Civitai gives a file in ``files[].name`` and the download (CV-file)."""
    if file.override_name:
        return file.override_name
    model_name = filenamize(model.name)
    escaped = re.escape(model_name)
    version_name = filenamize(re.sub(escaped, "", version.name, flags=re.IGNORECASE))
    if not model_name or model.type in ("LORA", "LoCon"):
        return file.name
    ext = file.name.split(".")[-1]
    if file.type not in MODEL_FILE_TYPES:
        return file.name
    if file.type == "Training Data":
        return f"{model_name}_{version_name}_trainingData.zip"
    if model.type == "TextualInversion":
        suffix = "-neg" if file.type == "Negative" else ""
        return f"{version.trained_words[0]}{suffix}.{ext}" if version.trained_words else file.name
    if file.type == "VAE":
        return file.name
    return _checkpoint_style_name(model_name, version_name, file, ext)


def _checkpoint_style_name(model_name: str, version_name: str, file: FakeFile, ext: str) -> str:
    """``<model>_<version>[-inpainting|.instruct-pix2pix|_txt].<ext>`` (CV-file)."""
    suffix = ""
    lowered = file.name.lower()
    if "-inpainting" in lowered:
        version_name = re.sub(r"_?inpainting", "", version_name, count=1, flags=re.IGNORECASE)
        suffix = "-inpainting"
    elif ".instruct-pix2pix" in lowered:
        version_name = re.sub(r"_?instruct|-?pix2pix", "", version_name, flags=re.IGNORECASE)
        suffix = ".instruct-pix2pix"
    elif file.type == "Text Encoder":
        suffix = "_txt"
    return f"{model_name}_{version_name}{suffix}.{ext}"


_AIR_TYPES: dict[str, str] = {
    "Checkpoint": "checkpoint", "TextualInversion": "embedding", "LORA": "lora", "DoRA": "dora",
    "LoCon": "lycoris", "Hypernetwork": "hypernet", "AestheticGradient": "ag",
    "MotionModule": "motion", "Upscaler": "upscaler", "VAE": "vae", "Controlnet": "controlnet",
    "TextEncoder": "text_encoders", "UNet": "unet", "CLIPVision": "clipvision", "CLIP": "clip",
    "VisionLanguage": "visionlanguage",
}  # fmt: skip
_AIR_ECOSYSTEM_PREFIXES: tuple[tuple[str, str], ...] = (
    ("SDXL", "sdxl"), ("Pony", "sdxl"), ("Illustrious", "sdxl"), ("NoobAI", "sdxl"),
    ("SD 1.", "sd1"), ("SD 2.", "sd2"), ("SD 3", "sd3"), ("Flux.1", "flux1"), ("Flux.2", "flux2"),
)  # fmt: skip


def air_for(model_type: str, base_model: str, model_id: int, version_id: int, primary_type: str) -> str:
    """Build the version AIR ``urn:air:<ecosystem>:<type>:civitai:<model>@<version>`` (CV-air)."""
    ecosystem = next((eco for prefix, eco in _AIR_ECOSYSTEM_PREFIXES if base_model.startswith(prefix)), "other")
    air_type = _AIR_TYPES.get(model_type, "unknown")
    if model_type == "Checkpoint" and primary_type == "Diffusion Model":
        air_type = "diffusionmodel"
    elif model_type == "Checkpoint" and primary_type == "UNet":
        air_type = "unet"
    return f"urn:air:{ecosystem}:{air_type}:civitai:{model_id}@{version_id}"


# --------------------------------------------------------------------------------------
# Catalogue objects
# --------------------------------------------------------------------------------------


@dataclass(eq=False)
class FakeFile:
    """One model file of a version, with deterministic content.

    Give either ``size`` (bytes are generated: a 1 MiB block derived from the seed,
    repeated with an 8-byte block counter, so gigabyte files stream without being held
    in memory) or ``content`` (served as is). ``hashes=None`` means "computed"
    (``AutoV1`` when the file is at least 2 MiB, ``AutoV2``, ``SHA256``, ``CRC32``; no
    BLAKE3/AutoV3); ``hashes={}`` emits ``{}`` as while scanning is pending; any other
    dict is emitted verbatim. ``primary=True`` pins the primary file; otherwise it is
    computed by Civitai's ranking. ``name`` is the uploaded name: the API shows the name
    Civitai derives from it (see :func:`download_filename`) unless ``override_name``.
    """

    id: int
    name: str
    size: int | None = None
    type: str = "Model"
    metadata: dict[str, str] = field(default_factory=dict)
    primary: bool = False
    hashes: dict[str, str] | None = None
    content: bytes | None = None
    visibility: str = "Public"
    override_name: str | None = None
    pickle_scan_result: str = "Success"
    pickle_scan_message: str | None = "No Pickle imports"
    virus_scan_result: str = "Success"
    virus_scan_message: str | None = None
    scanned_at: datetime | str | None = None
    seed: int | None = None
    _base_block: bytes | None = field(default=None, init=False, repr=False)
    _computed: dict[str, str] | None = field(default=None, init=False, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.content is not None:
            if self.size is not None and self.size != len(self.content):
                raise ValueError(f"FakeFile {self.id}: size {self.size} != len(content)")
            self.size = len(self.content)
        if self.size is None or self.size < 0:
            raise ValueError(f"FakeFile {self.id}: give size (>= 0) or content")

    @property
    def byte_size(self) -> int:
        """The file length in bytes."""
        return self.content_length()

    def content_length(self) -> int:
        """The file length in bytes (same as :attr:`byte_size`)."""
        return len(self.content) if self.content is not None else int(self.size or 0)

    @property
    def size_kb(self) -> float:
        """``sizeKB`` as the API reports it: bytes / 1024, a float."""
        return self.content_length() / 1024

    def iter_bytes(self, start: int = 0, end: int | None = None, chunk_size: int = _STREAM_CHUNK) -> Iterator[bytes]:
        """Yield the bytes ``[start, end)`` (``end`` exclusive, default: the end) in chunks."""
        stop = self.content_length() if end is None else min(end, self.content_length())
        position = max(0, start)
        while position < stop:
            chunk = self._read_at(position, min(chunk_size, stop - position))
            yield chunk
            position += len(chunk)

    def read(self, start: int = 0, length: int | None = None) -> bytes:
        """Return ``length`` bytes from ``start`` (the rest of the file by default)."""
        end = None if length is None else start + length
        return b"".join(self.iter_bytes(start, end))

    def _read_at(self, position: int, count: int) -> bytes:
        if self.content is not None:
            return self.content[position : position + count]
        block, offset = divmod(position, _BLOCK_SIZE)
        count = min(count, _BLOCK_SIZE - offset)
        base = self._base()
        if offset >= 8:
            return base[offset : offset + count]
        return (block.to_bytes(8, "big")[offset:] + base[8 : offset + count])[:count]

    def _base(self) -> bytes:
        with self._lock:
            if self._base_block is None:
                seed = self.id if self.seed is None else self.seed
                shake = hashlib.shake_256(f"synapse-fake-civitai:{seed}".encode())
                self._base_block = shake.digest(_BLOCK_SIZE)
            return self._base_block

    def computed_hashes(self) -> dict[str, str]:
        """The real hashes of the content (streamed once, then cached)."""
        with self._lock:
            if self._computed is None:
                self._computed = self._compute_hashes()
            return dict(self._computed)

    def _compute_hashes(self) -> dict[str, str]:
        digest = hashlib.sha256()
        crc = 0
        for chunk in self.iter_bytes(chunk_size=_BLOCK_SIZE):
            digest.update(chunk)
            crc = zlib.crc32(chunk, crc)
        sha = digest.hexdigest().upper()
        result: dict[str, str] = {}
        if self.content_length() >= _AUTOV1_MIN_SIZE:
            window = self.read(_AUTOV1_OFFSET, _AUTOV1_LENGTH)
            result["AutoV1"] = hashlib.sha256(window).hexdigest()[:8].upper()
        result.update({"AutoV2": sha[:10], "SHA256": sha, "CRC32": f"{crc:08X}"})
        return result

    def sha256_hex(self) -> str:
        """Lower-case hex SHA-256 of the served bytes (what a blob store names it by)."""
        return self.computed_hashes()["SHA256"].lower()

    def api_hashes(self) -> dict[str, str]:
        """The ``hashes`` object the API emits (the override when one was given)."""
        return dict(self.hashes) if self.hashes is not None else self.computed_hashes()

    def etag(self) -> str:
        """A stable strong ETag for this content identity (not a content hash)."""
        basis = f"{self.id}:{self.content_length()}:{self.seed}:{self.content is not None}"
        if self.content is not None:
            basis += hashlib.sha256(self.content).hexdigest()
        return '"' + hashlib.sha256(basis.encode()).hexdigest()[:32] + '"'


@dataclass(eq=False)
class FakeImage:
    """A gallery image (or video/audio) of a version; the CDN serves small fixed bytes for it.

    Its URL is ``<cdn_url>/images/<uuid>/original=true/<id>.jpeg`` (``.mp4`` for video,
    ``.mp3`` for audio); the ``id`` survives only in that file name, as on Civitai.
    """

    id: int
    width: int = 512
    height: int = 768
    type: str = "image"
    nsfw_level: int = 1
    hash: str = _DEFAULT_BLURHASH
    meta: dict[str, Any] | None = None
    has_positive_prompt: bool = True
    content: bytes | None = None

    @property
    def key(self) -> str:
        """The deterministic uuid path segment of the image URL."""
        return str(uuid.UUID(bytes=hashlib.sha256(f"img:{self.id}".encode()).digest()[:16], version=4))

    @property
    def extension(self) -> str:
        """``jpeg``, ``mp4`` or ``mp3`` depending on :attr:`type`."""
        return {"video": "mp4", "audio": "mp3"}.get(self.type, "jpeg")

    @property
    def content_type(self) -> str:
        """The Content-Type the CDN serves the bytes with."""
        return {"mp4": "video/mp4", "mp3": "audio/mpeg"}.get(self.extension, "image/jpeg")

    def body(self) -> bytes:
        """The bytes the CDN serves (JPEG-ish starting ``FF D8 FF`` by default)."""
        if self.content is not None:
            return self.content
        payload = f"fake-civitai-image:{self.id}:{self.width}x{self.height}".encode()
        if self.extension == "mp4":
            return _FAKE_MP4_HEAD + payload
        if self.extension == "mp3":
            return _FAKE_MP3_HEAD + payload
        return _FAKE_JPEG_HEAD + payload + b"\xff\xd9"

    def url(self, cdn_url: str) -> str:
        """The absolute image URL on the given CDN origin."""
        return f"{cdn_url}/images/{self.key}/original=true/{self.id}.{self.extension}"


@dataclass(eq=False)
class FakeVersion:
    """A model version as stored by the fake (use :meth:`FakeCivitai.add_version`)."""

    id: int
    model_id: int
    name: str
    base_model: str
    base_model_type: str
    trained_words: list[str]
    files: list[FakeFile]
    images: list[FakeImage]
    availability: str
    early_access_deadline: datetime | None
    require_auth: bool
    usage_control: str
    published: bool
    description: str | None
    created_at: datetime
    published_at: datetime | None
    updated_at: datetime
    nsfw_level: int
    supports_generation: bool
    stats: dict[str, int]
    upload_type: str = "Created"

    def early_access_active(self, now: datetime | None = None) -> bool:
        """True while the version is gated (EarlyAccess with no or a future deadline)."""
        if self.availability != "EarlyAccess":
            return False
        deadline = self.early_access_deadline
        return deadline is None or deadline > (now or datetime.now(UTC))

    def primary_file(self) -> FakeFile | None:
        """The pinned primary file, else Civitai's ranking winner over all files."""
        pinned = next((f for f in self.files if f.primary), None)
        return pinned or rank_files(self.files, {})


@dataclass(eq=False)
class FakeModel:
    """A model as stored by the fake (use :meth:`FakeCivitai.add_model`)."""

    id: int
    name: str
    type: str
    description: str
    tags: list[str]
    creator: str | None
    nsfw: bool
    nsfw_level: int
    mode: str | None
    availability: str
    poi: bool
    minor: bool
    published: bool
    supports_generation: bool
    allow_no_credit: bool
    allow_commercial_use: str | list[str]
    allow_derivatives: bool
    allow_different_license: bool
    stats: dict[str, int | None]
    versions: list[FakeVersion] = field(default_factory=list)

    @property
    def creator_image_key(self) -> str:
        """The uuid path segment of the creator avatar URL."""
        return str(uuid.UUID(bytes=hashlib.sha256(f"avatar:{self.creator}".encode()).digest()[:16], version=4))


@dataclass(frozen=True)
class FakeUser:
    """The account an API key resolves to."""

    id: int
    username: str


def rank_files(files: Sequence[FakeFile], requested: dict[str, str]) -> FakeFile | None:
    """Civitai's ``getPrimaryFile`` ranking (CV-primary) over ``files``.

    Score 1000, +/- the weight (format 100, size 10, fp 1, quantType 0.5) for each
    metadata key that equals / differs from the preference (the defaults SafeTensor,
    pruned, fp16, Q4_K_M overridden by ``requested``), +1000 for main-weights file types.
    Ties keep a pinned primary first, then the given order (JavaScript sort is stable).
    """
    if not files:
        return None
    preferred = {**DEFAULT_FILE_PREFERENCES, **requested}

    def score(file: FakeFile) -> float:
        total = 1000.0
        for key, value in file.metadata.items():
            weight = PREFERENCE_WEIGHTS.get(key)
            if weight:
                total += weight if value == preferred.get(key) else -weight
        return total + (1000 if file.type in PRIMARY_FILE_TYPES else 0)

    ranked = sorted(enumerate(files), key=lambda item: (-score(item[1]), not item[1].primary, item[0]))
    return ranked[0][1]


# --------------------------------------------------------------------------------------
# Request log and failure injection
# --------------------------------------------------------------------------------------


@dataclass
class LoggedRequest:
    """One request as a server saw it. ``headers`` keys are lower-cased."""

    server: ServerRole
    method: str
    path: str
    raw_query: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    host: str
    port: int
    time: float
    status: int | None = None

    def header(self, name: str) -> str | None:
        """A request header by case-insensitive name."""
        return self.headers.get(name.lower())

    def param(self, name: str) -> str | None:
        """The first value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else None

    @property
    def target(self) -> str:
        """Path plus query, as sent."""
        return self.path + (f"?{self.raw_query}" if self.raw_query else "")


@dataclass
class Injection:
    """A failure knob that applies to the next ``times`` matching requests (``None`` = always).

    With ``status`` the request is answered with that canned response (``body`` or a JSON
    ``{"error": <reason>}``). Without it the normal answer is altered: ``truncate_after``
    (send N body bytes, then FIN the connection), ``ignore_range`` (200 full body to a
    Range request), ``omit_content_length`` (no Content-Length, ``Connection: close``),
    ``slow_bytes_per_sec`` (throttle the body). ``delay`` sleeps before answering.
    """

    pattern: re.Pattern[str]
    times: int | None = 1
    server: ServerRole | None = None
    method: str | None = None
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    content_type: str | None = None
    truncate_after: int | None = None
    ignore_range: bool = False
    omit_content_length: bool = False
    slow_bytes_per_sec: int | None = None
    delay: float = 0.0
    hits: int = 0

    def matches(self, server: ServerRole, method: str, path: str) -> bool:
        """Whether this knob applies to the request (ignoring the remaining count)."""
        if self.server is not None and self.server != server:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        return self.pattern.search(path) is not None

    @property
    def exhausted(self) -> bool:
        """True once it has been applied ``times`` times."""
        return self.times is not None and self.hits >= self.times


@dataclass
class _Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    stream: Iterable[bytes] | None = None
    length: int | None = None


@dataclass
class _Ctx:
    server: ServerRole
    method: str
    path: str
    raw_query: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    injection: Injection | None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    @property
    def is_browser(self) -> bool:
        return is_browser_user_agent(self.header("user-agent"))


def _json(status: int, value: Any, headers: Sequence[tuple[str, str]] = ()) -> _Response:
    return _Response(status, [*headers, ("Content-Type", JSON_CONTENT_TYPE)], _json_bytes(value))


def _html(status: int, body: bytes, headers: Sequence[tuple[str, str]] = ()) -> _Response:
    return _Response(status, [*headers, ("Content-Type", "text/html; charset=utf-8")], body)


def _redirect(location: str, headers: Sequence[tuple[str, str]] = ()) -> _Response:
    """Next.js ``res.redirect(url)``: 307, ``Location``, and the URL as the body."""
    return _Response(307, [*headers, ("Location", location)], location.encode("utf-8"))


def _s3_error(status: int, code: str, message: str) -> _Response:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'
    ).encode()
    return _Response(status, [("Content-Type", "application/xml")], body)


def _zod_issue(path: list[str | int], message: str, **extra: Any) -> JsonObj:
    return {**extra, "path": path, "message": message}


def _zod_error_object(issues: list[JsonObj]) -> JsonObj:
    """``JSON.stringify(zodError)`` in zod 4: the issues live in a pretty-printed message."""
    return {"name": "ZodError", "message": json.dumps(issues, ensure_ascii=False, indent=2)}


def _zod_pretty(issue: JsonObj) -> str:
    """``z.prettifyError`` for one issue."""
    path = ".".join(str(p) for p in issue["path"])
    return f"✖ {issue['message']}" + (f"\n  → at {path}" if path else "")


def _enum_issue(name: str, values: Sequence[str]) -> JsonObj:
    listed = "|".join(json.dumps(v, ensure_ascii=False) for v in values)
    return _zod_issue([name], f"Invalid option: expected one of {listed}", code="invalid_value", values=list(values))


def _number_issue(name: str, raw: str, minimum: float | None = None, maximum: float | None = None) -> JsonObj | None:
    value = _js_number(raw)
    if math.isnan(value):
        return _zod_issue(
            [name], "Invalid input: expected number, received NaN", expected="number", code="invalid_type"
        )
    if minimum is not None and value < minimum:
        msg = f"Too small: expected number to be >={_js_number_text(minimum)}"
        return _zod_issue([name], msg, origin="number", code="too_small", minimum=minimum, inclusive=True)
    if maximum is not None and value > maximum:
        msg = f"Too big: expected number to be <={_js_number_text(maximum)}"
        return _zod_issue([name], msg, origin="number", code="too_big", maximum=maximum, inclusive=True)
    return None


_STRINGBOOL_TRUE = {"true", "1", "yes", "on", "y", "enabled"}
_STRINGBOOL_FALSE = {"false", "0", "no", "off", "n", "disabled"}


def _string_bool(raw: str) -> bool | None:
    lowered = raw.strip().lower()
    if lowered in _STRINGBOOL_TRUE:
        return True
    if lowered in _STRINGBOOL_FALSE:
        return False
    return None


# --------------------------------------------------------------------------------------
# JSON rendering (doc section 2 and 6)
# --------------------------------------------------------------------------------------


def _remove_empty(obj: JsonObj) -> JsonObj:
    """Civitai's ``removeEmpty``: drop None values and empty lists."""
    return {k: v for k, v in obj.items() if v is not None and not (isinstance(v, list) and not v)}


def file_download_url(origin: str, version_id: int, file: FakeFile, primary: bool) -> str:
    """``createModelFileDownloadUrl`` (CV-url): no query for the primary file."""
    base = f"{origin}/api/download/models/{version_id}"
    if primary:
        return base
    meta = file.metadata
    pairs = [
        ("type", file.type),
        ("format", meta.get("format", "") if file.type != "Training Data" else ""),
        ("size", meta.get("size", "")),
        ("fp", meta.get("fp", "")),
        ("quantType", meta.get("quantType", "")),
    ]
    query = _qs_stringify(pairs)
    return f"{base}?{query}" if query else base


class _Renderer:
    """Builds the JSON bodies from the catalogue."""

    def __init__(self, fake: FakeCivitai) -> None:
        self.fake = fake

    def _scanned_at(self, file: FakeFile, version: FakeVersion) -> str | None:
        moment = (
            _to_datetime(file.scanned_at) if file.scanned_at is not None else version.created_at + timedelta(minutes=5)
        )
        return _iso(moment) if moment else None

    def _file_common(self, file: FakeFile, version: FakeVersion, model: FakeModel) -> JsonObj:
        return {
            "id": file.id,
            "name": download_filename(model, version, file),
            "type": file.type,
            "sizeKB": file.size_kb,
            "pickleScanResult": file.pickle_scan_result,
            "pickleScanMessage": file.pickle_scan_message,
            "virusScanResult": file.virus_scan_result,
            "virusScanMessage": file.virus_scan_message,
            "scannedAt": self._scanned_at(file, version),
        }

    def embedded_file(
        self, file: FakeFile, version: FakeVersion, model: FakeModel, origin: str, primary: bool
    ) -> JsonObj:
        out = self._file_common(file, version, model)
        out["metadata"] = {k: v for k, v in file.metadata.items() if v is not None}
        out["hashes"] = file.api_hashes()
        out["downloadUrl"] = file_download_url(origin, version.id, file, primary)
        if primary:
            out["primary"] = True
        return out

    def standalone_file(
        self, file: FakeFile, version: FakeVersion, model: FakeModel, origin: str, primary: bool
    ) -> JsonObj:
        common = self._file_common(file, version, model)
        out: JsonObj = {"id": file.id, "sizeKB": common.pop("sizeKB")}
        out.update(common)
        out["metadata"] = {k: file.metadata[k] for k in ("format", "size", "fp") if file.metadata.get(k) is not None}
        out["hashes"] = file.api_hashes()
        out["primary"] = primary
        out["downloadUrl"] = file_download_url(origin, version.id, file, primary)
        return out

    def image(self, image: FakeImage, with_meta: bool) -> JsonObj:
        out: JsonObj = {
            "url": image.url(self.fake.cdn_url),
            "nsfwLevel": image.nsfw_level,
            "width": image.width,
            "height": image.height,
            "hash": image.hash,
            "type": image.type,
            "hasMeta": image.meta is not None,
            "hasPositivePrompt": image.has_positive_prompt,
            "onSite": False,
            "remixOfId": None,
        }
        if with_meta:
            out["meta"] = image.meta
        return out

    def _gate_fields(self, version: FakeVersion) -> tuple[JsonObj | None, str | None]:
        if not version.early_access_active():
            return None, None
        deadline = version.early_access_deadline
        ends = _iso(deadline) if deadline else None
        return {"permanent": deadline is None, "endsAt": ends}, ends

    def embedded_version(
        self, version: FakeVersion, model: FakeModel, index: int, origin: str, primary_only: bool
    ) -> JsonObj | None:
        primary = version.primary_file()
        if primary is None:
            return None
        archived = model.mode == "Archived"
        files = [] if archived else [f for f in version.files if f.visibility == "Public"]
        if primary_only:
            files = [f for f in files if f is primary]
        paid, deadline = self._gate_fields(version)
        return _remove_empty(
            {
                "id": version.id,
                "index": index,
                "name": version.name,
                "baseModel": version.base_model,
                "baseModelType": version.base_model_type,
                "createdAt": _iso(version.created_at),
                "publishedAt": _iso(version.published_at) if version.published_at else None,
                "status": "Published",
                "availability": version.availability,
                "nsfwLevel": version.nsfw_level,
                "description": version.description,
                "trainedWords": list(version.trained_words),
                "supportsGeneration": version.supports_generation,
                "stats": {k: version.stats.get(k, 0) for k in ("downloadCount", "thumbsUpCount", "thumbsDownCount")},
                "earlyAccessDeadline": deadline,
                "paidAccess": paid,
                "files": [self.embedded_file(f, version, model, origin, f is primary) for f in files],
                "images": [] if model.mode == "TakenDown" else [self.image(i, False) for i in version.images],
                "downloadUrl": None if archived else f"{origin}/api/download/models/{version.id}",
            }
        )

    def model(self, model: FakeModel, origin: str, primary_only: bool = False) -> JsonObj | None:
        """The ``/models/{id}`` shape, or None when nothing of it is published."""
        if not model.published:
            return None
        versions: list[JsonObj] = []
        for index, version in enumerate(model.versions):
            if not version.published:
                continue
            rendered = self.embedded_version(version, model, index, origin, primary_only)
            if rendered is not None:
                versions.append(rendered)
        if not versions:
            return None
        out: JsonObj = {
            "id": model.id,
            "name": model.name,
            "description": model.description,
            "type": model.type,
            "nsfw": model.nsfw,
            "nsfwLevel": model.nsfw_level,
            "availability": model.availability,
            "supportsGeneration": model.supports_generation,
            "allowNoCredit": model.allow_no_credit,
            "allowCommercialUse": model.allow_commercial_use,
            "allowDerivatives": model.allow_derivatives,
            "allowDifferentLicense": model.allow_different_license,
            "minor": model.minor,
            "poi": model.poi,
            "sfwOnly": False,
        }
        if model.mode:
            out["mode"] = model.mode
        out["stats"] = {
            k: model.stats.get(k, 0)
            for k in ("downloadCount", "thumbsUpCount", "thumbsDownCount", "commentCount", "tippedAmountCount")
        }
        if model.creator is not None:
            avatar = f"{self.fake.cdn_url}/images/{model.creator_image_key}/width=96/{model.creator}.jpeg"
            out["creator"] = {"username": model.creator, "image": avatar}
        out["tags"] = list(model.tags)
        out["modelVersions"] = versions
        return out

    def standalone_version(self, version: FakeVersion, model: FakeModel, origin: str) -> JsonObj | None:
        """The ``/model-versions/{id}`` shape, or None when the version has no file."""
        primary = version.primary_file()
        if primary is None:
            return None
        archived = model.mode == "Archived"
        paid, deadline = self._gate_fields(version)
        model_obj: JsonObj = {"name": model.name, "type": model.type, "nsfw": model.nsfw, "poi": model.poi}
        if model.mode:
            model_obj["mode"] = model.mode
        files = [] if archived else [f for f in version.files if f.visibility == "Public"]
        out: JsonObj = {
            "id": version.id,
            "modelId": model.id,
            "name": version.name,
            "nsfwLevel": version.nsfw_level,
            "createdAt": _iso(version.created_at),
            "updatedAt": _iso(version.updated_at),
            "status": "Published" if version.published else "Draft",
            "publishedAt": _iso(version.published_at) if version.published_at else None,
            "trainedWords": list(version.trained_words),
            "trainingStatus": None,
            "trainingDetails": None,
            "baseModel": version.base_model,
            "baseModelType": version.base_model_type,
            "description": version.description,
            "uploadType": version.upload_type,
            "usageControl": version.usage_control,
            "availability": version.availability,
        }
        if deadline:
            out["earlyAccessEndsAt"] = deadline
        out.update(
            {
                "licensingFee": None,
                "paidAccess": paid,
                "air": air_for(model.type, version.base_model, model.id, version.id, primary.type),
                "stats": {
                    "downloadCount": version.stats.get("downloadCount", 0),
                    "thumbsUpCount": version.stats.get("thumbsUpCount", 0),
                },
                "model": model_obj,
                "files": [self.standalone_file(f, version, model, origin, f is primary) for f in files],
                "images": [] if model.mode == "TakenDown" else [self.image(i, True) for i in version.images[:10]],
            }
        )
        if not archived:
            out["downloadUrl"] = f"{origin}/api/download/models/{version.id}"
        return out


# --------------------------------------------------------------------------------------
# The API application
# --------------------------------------------------------------------------------------

_RE_MODELS = re.compile(r"^/api/v1/models/?$")
_RE_MODEL = re.compile(r"^/api/v1/models/([^/]+)/?$")
_RE_BULK_HASH = re.compile(r"^/api/v1/model-versions/by-hash/?$")
_RE_BY_HASH = re.compile(r"^/api/v1/model-versions/by-hash/([^/]+)/?$")
_RE_VERSION = re.compile(r"^/api/v1/model-versions/([^/]+)/?$")
_RE_DOWNLOAD = re.compile(r"^/api/download/models/([^/]+)/?$")
_RE_SITE_PAGE = re.compile(r"^/(login|model-versions/\d+|models/\d+(/[^/]*)?)/?$")


def _cors(methods: Sequence[str] = ("GET",)) -> list[tuple[str, str]]:
    return [
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Allow-Headers", "*"),
        ("Access-Control-Allow-Methods", ", ".join(methods)),
    ]


@dataclass
class _ListQuery:
    limit: int = 100
    page: int | None = None
    cursor: str | None = None
    query: str | None = None
    types: list[str] = field(default_factory=list)
    base_models: list[str] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    nsfw: bool = False
    sort: str = "Highest Rated"
    username: str | None = None
    tag: str | None = None
    primary_file_only: bool = False


def _slug(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")


class _ApiApp:
    """Routes and answers requests on the API server."""

    def __init__(self, fake: FakeCivitai) -> None:
        self.fake = fake
        self.render = _Renderer(fake)

    def handle(self, ctx: _Ctx) -> _Response:
        path = ctx.path
        if _RE_MODELS.match(path):
            return self.models_list(ctx)
        if match := _RE_MODEL.match(path):
            return self.model_detail(ctx, unquote(match.group(1)))
        if _RE_BULK_HASH.match(path):
            return self.by_hash_bulk(ctx)
        if match := _RE_BY_HASH.match(path):
            return self.by_hash(ctx, unquote(match.group(1)))
        if match := _RE_VERSION.match(path):
            return self.version_detail(ctx, unquote(match.group(1)))
        if match := _RE_DOWNLOAD.match(path):
            return self.download(ctx, unquote(match.group(1)))
        if path.rstrip("/") == "/api/v1/enums":
            return self.enums()
        if path.rstrip("/") == "/api/v1/me":
            return self.me(ctx)
        if _RE_SITE_PAGE.match(path):
            return _html(
                200,
                LOGIN_PAGE_HTML if path.startswith("/login") else b"<!DOCTYPE html><html><body>Civitai</body></html>",
            )
        return _html(404, _NOT_FOUND_HTML)

    # -- helpers -----------------------------------------------------------------------

    def origin(self, ctx: _Ctx) -> str:
        """The request's own origin (host echo), falling back to the configured base URL."""
        host = ctx.header("host")
        return f"http://{host}" if host else self.fake.api_url

    @staticmethod
    def token(ctx: _Ctx) -> str | None:
        """CV-auth: the second word of ``Authorization`` wins; ``?token=`` only without the header."""
        auth = ctx.header("authorization")
        if auth:
            parts = auth.split(" ")
            return parts[1] or None if len(parts) > 1 else None
        return ctx.param("token") or None

    def session(self, ctx: _Ctx) -> FakeUser | None:
        """The user the request's API key resolves to; None (anonymous) for no or unknown keys."""
        token = self.token(ctx)
        return self.fake.user_for_token(token) if token else None

    @staticmethod
    def mixed_headers(user: FakeUser | None) -> list[tuple[str, str]]:
        headers = _cors()
        if user is None:
            headers.append(("Cache-Control", PUBLIC_CACHE_CONTROL))
        return headers

    # -- /api/v1/models/{id} -----------------------------------------------------------

    def model_detail(self, ctx: _Ctx, raw_id: str) -> _Response:
        headers = [*_cors(), ("Cache-Control", PUBLIC_CACHE_CONTROL)]
        if ctx.method == "OPTIONS":
            return _Response(200, headers)
        value = _js_number(raw_id)
        issue = _positive_int_issue("id", value)
        if issue:
            return _json(400, {"error": _zod_pretty(issue)}, headers)
        model = self.fake.get_model(int(value))
        body = self.render.model(model, self.fake.api_url) if model else None
        if body is None:
            return _json(404, {"error": f"No model with id {int(value)}"}, headers)
        return _json(200, body, headers)

    # -- /api/v1/model-versions/{id} and by-hash --------------------------------------

    def version_detail(self, ctx: _Ctx, raw_id: str) -> _Response:
        if ctx.method not in ("GET", "OPTIONS"):
            return _json(405, {"error": "Method not allowed"})
        user = self.session(ctx)
        headers = self.mixed_headers(user)
        if ctx.method == "OPTIONS":
            return _Response(200, headers)
        value = _js_number(raw_id)
        if math.isnan(value):
            issue = _zod_issue(
                ["id"], "Invalid input: expected number, received NaN", expected="number", code="invalid_type"
            )
            return _json(400, {"error": _zod_pretty(issue)}, headers)
        if value == 0:
            return _json(400, {"error": "Missing modelVersionId"}, headers)
        version = self.fake.get_version(int(value)) if value.is_integer() else None
        visible = version is not None and version.published and version.nsfw_level & NSFW_ALL_LEVELS
        return self.version_answer(ctx, version if visible else None, headers)

    def version_answer(self, ctx: _Ctx, version: FakeVersion | None, headers: list[tuple[str, str]]) -> _Response:
        """``resModelVersionDetails``: 404 Model not found / Missing model file / 200."""
        model = self.fake.get_model(version.model_id) if version else None
        if version is None or model is None:
            return _json(404, {"error": "Model not found"}, headers)
        body = self.render.standalone_version(version, model, self.origin(ctx))
        if body is None:
            return _json(404, {"error": "Missing model file"}, headers)
        return _json(200, body, headers)

    def by_hash(self, ctx: _Ctx, raw_hash: str) -> _Response:
        headers = [*_cors(), ("Cache-Control", BY_HASH_CACHE_CONTROL)]
        if ctx.method == "OPTIONS":
            return _Response(200, headers)
        wanted = raw_hash.upper()
        if not wanted:
            return _json(400, {"error": "Missing hash"}, headers)
        matches = [v for f, v in self.fake.published_files() if wanted in f.api_hashes().values()]
        matches.sort(key=lambda v: (v.published_at or datetime.max.replace(tzinfo=UTC), v.id))
        return self.version_answer(ctx, matches[0] if matches else None, headers)

    def by_hash_bulk(self, ctx: _Ctx) -> _Response:
        headers = [*_cors(("POST",)), ("Cache-Control", PUBLIC_CACHE_CONTROL)]
        if ctx.method == "OPTIONS":
            return _Response(200, headers)
        hashes, problem = _parse_hash_list(ctx)
        if problem is not None:
            return _json(400, {"error": f"Request must include an array of SHA256 Hashes. {problem}"}, headers)
        origin = self.origin(ctx)
        out: list[JsonObj] = []
        for file, version in self.fake.published_files():
            sha = file.api_hashes().get("SHA256")
            model = self.fake.get_model(version.model_id)
            if sha in hashes and model is not None:
                rendered = self.render.standalone_version(version, model, origin)
                if rendered is not None:
                    out.append(rendered)
        return _json(200, out, headers)

    # -- /api/v1/models ----------------------------------------------------------------

    def models_list(self, ctx: _Ctx) -> _Response:
        if ctx.method not in ("GET", "OPTIONS"):
            return _json(405, {"error": "Method not allowed"})
        user = self.session(ctx)
        headers = self.mixed_headers(user)
        if ctx.method == "OPTIONS":
            return _Response(200, headers)
        if user is None and any(k in ctx.query for k in ("favorites", "hidden")):
            return _json(401, {"error": "Unauthorized"}, headers)
        parsed, issues = _parse_list_query(ctx.query)
        if issues or parsed is None:
            return _json(400, {"error": _zod_error_object(issues)}, headers)
        using_paging = parsed.page is not None and parsed.cursor is None
        if using_paging and parsed.page is not None and parsed.page * parsed.limit > 1000:
            return _json(429, {"error": MSG_PAGE_CAP}, headers)
        if parsed.query and parsed.page is not None:
            return _json(400, {"error": MSG_QUERY_AND_PAGE}, headers)
        if parsed.query and self.fake.take_search_overload():
            overload = [*_cors(), ("Cache-Control", "no-store"), ("Retry-After", "2")]
            return _json(503, {"error": MSG_SEARCH_OVERLOADED}, overload)
        return self.list_page(ctx, parsed, using_paging, headers)

    def list_page(self, ctx: _Ctx, parsed: _ListQuery, using_paging: bool, headers: list[tuple[str, str]]) -> _Response:
        origin = self.origin(ctx)
        offset = _cursor_offset(parsed.cursor) if parsed.cursor is not None else None
        if parsed.cursor is not None and offset is None:
            issue = _zod_issue(["cursor"], "Invalid cursor", code="custom")
            return _json(400, {"error": _zod_error_object([issue])}, headers)
        if offset is None:
            offset = (parsed.page - 1) * parsed.limit if using_paging and parsed.page else 0
        bodies = self.fake.search(parsed, origin)
        items = bodies[offset : offset + parsed.limit]
        metadata: JsonObj = {}
        next_offset = offset + parsed.limit
        if parsed.limit > 0 and next_offset < len(bodies):
            cursor = str(next_offset) if parsed.query else f"{items[-1]['id']}|{next_offset}"
            metadata["nextCursor"] = cursor
            metadata["nextPage"] = _next_page_url(origin, ctx, cursor)
        if using_paging:
            metadata["currentPage"] = parsed.page
            metadata["pageSize"] = parsed.limit
        return _json(200, {"items": items, "metadata": metadata}, headers)

    # -- /api/v1/enums and /api/v1/me ---------------------------------------------------

    def enums(self) -> _Response:
        return _json(
            200,
            {
                "ModelType": list(MODEL_TYPES),
                "ModelFileType": list(MODEL_FILE_TYPES),
                "ActiveBaseModel": list(ACTIVE_BASE_MODELS),
                "BaseModel": list(BASE_MODELS),
                "BaseModelType": list(BASE_MODEL_TYPES),
            },
        )

    def me(self, ctx: _Ctx) -> _Response:
        origin = ctx.header("origin") or "https://civitai.com"
        headers = [
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Credentials", "true"),
            ("Access-Control-Allow-Headers", "*"),
            ("Access-Control-Allow-Methods", "GET"),
        ]
        if ctx.method == "OPTIONS":
            return _Response(200, headers)
        if ctx.method != "GET":
            return _json(405, {"error": "Method not allowed"}, headers)
        user = self.session(ctx)
        if user is None:
            return _json(401, {"error": "Unauthorized"}, headers)
        body = {
            "id": user.id,
            "username": user.username,
            "tier": None,
            "status": "active",
            "isMember": False,
            "subscriptions": [],
        }
        return _json(200, body, headers)

    # -- /api/download/models/{versionId} ----------------------------------------------

    def download(self, ctx: _Ctx, raw_id: str) -> _Response:
        headers = [*_cors(), ("Cache-Control", DOWNLOAD_CACHE_CONTROL)]
        if ctx.method == "OPTIONS":
            return _Response(200, headers)
        return _DownloadFlow(self, ctx, raw_id, headers).run()


def _positive_int_issue(name: str, value: float) -> JsonObj | None:
    """``z.coerce.number().int().gt(0).lte(2147483647)``."""
    if math.isnan(value):
        return _zod_issue(
            [name], "Invalid input: expected number, received NaN", expected="number", code="invalid_type"
        )
    if not math.isfinite(value) or not value.is_integer():
        return _zod_issue([name], "Invalid input: expected int, received number", expected="int", code="invalid_type")
    if value <= 0:
        return _zod_issue([name], "Too small: expected number to be >0", origin="number", code="too_small", minimum=0)
    if value > 2147483647:
        msg = "Too big: expected number to be <=2147483647"
        return _zod_issue([name], msg, origin="number", code="too_big", maximum=2147483647)
    return None


def _parse_hash_list(ctx: _Ctx) -> tuple[set[str], str | None]:
    """Validate the bulk by-hash body; return (upper-cased hashes, zod message or None)."""
    payload: Any = ctx.body.decode("utf-8", "replace")
    if "json" in (ctx.header("content-type") or ""):
        try:
            payload = json.loads(ctx.body or b"null")
        except ValueError:
            payload = ctx.body.decode("utf-8", "replace")
    if not isinstance(payload, list):
        received = "string" if isinstance(payload, str) else type(payload).__name__
        issue = {
            "expected": "array",
            "code": "invalid_type",
            "path": [],
            "message": f"Invalid input: expected array, received {received}",
        }
        return set(), json.dumps([issue], indent=2)
    issues: list[JsonObj] = []
    for index, item in enumerate(payload):
        if not isinstance(item, str) or len(item) != 64:
            issues.append({"code": "custom", "path": [index], "message": "Invalid hash"})
    if len(payload) > 100:
        issues.append(
            {
                "origin": "array",
                "code": "too_big",
                "maximum": 100,
                "inclusive": True,
                "path": [],
                "message": "Too many hashes",
            }
        )
    if issues:
        return set(), json.dumps(issues, indent=2)
    return {str(item).upper() for item in payload}, None


def _single(query: dict[str, list[str]], name: str, issues: list[JsonObj]) -> str | None:
    values = query.get(name)
    if not values:
        return None
    if len(values) > 1:
        issues.append(
            _zod_issue([name], "Invalid input: expected string, received array", expected="string", code="invalid_type")
        )
        return None
    return values[0]


def _parse_list_query(query: dict[str, list[str]]) -> tuple[_ListQuery | None, list[JsonObj]]:
    """Validate ``GET /api/v1/models`` parameters like ``modelsEndpointSchema``."""
    issues: list[JsonObj] = []
    out = _ListQuery()
    limit = _single(query, "limit", issues)
    if limit is not None:
        issue = _number_issue("limit", limit, 0, 100)
        if issue:
            issues.append(issue)
        else:
            out.limit = int(_js_number(limit))
    page = _single(query, "page", issues)
    if page is not None:
        issue = _number_issue("page", page, 1)
        if issue:
            issues.append(issue)
        else:
            out.page = int(_js_number(page))
    out.cursor = _single(query, "cursor", issues)
    out.query = _single(query, "query", issues) or None
    out.tag = _single(query, "tag", issues)
    out.username = _single(query, "username", issues)
    _parse_list_enums(query, out, issues)
    _parse_list_flags(query, out, issues)
    out.base_models = list(query.get("baseModels", []))
    for index, part in enumerate(p for raw in query.get("ids", []) for p in raw.split(",")):
        number = _js_number(part)
        if math.isnan(number):
            issues.append(
                _zod_issue(
                    ["ids", index],
                    "Invalid input: expected number, received NaN",
                    expected="number",
                    code="invalid_type",
                )
            )
        else:
            out.ids.append(int(number))
    return (None if issues else out), issues


def _parse_list_enums(query: dict[str, list[str]], out: _ListQuery, issues: list[JsonObj]) -> None:
    types = query.get("types", [])
    if any(t not in MODEL_TYPES for t in types):
        issues.append(
            _zod_issue(["types"], "Invalid input", code="invalid_union", errors=[[_enum_issue("types", MODEL_TYPES)]])
        )
    else:
        out.types = list(types)
    for name, allowed in (("sort", MODEL_SORTS), ("period", PERIODS)):
        value = _single(query, name, issues)
        if value is not None and value not in allowed:
            issues.append(_enum_issue(name, allowed))
        elif value is not None and name == "sort":
            out.sort = value


def _parse_list_flags(query: dict[str, list[str]], out: _ListQuery, issues: list[JsonObj]) -> None:
    for name in ("nsfw", "primaryFileOnly", "favorites", "hidden"):
        raw = _single(query, name, issues)
        if raw is None:
            continue
        value = _string_bool(raw)
        if value is None:
            issues.append(_zod_issue([name], "Invalid input", code="invalid_union"))
        elif name == "nsfw":
            out.nsfw = value
        elif name == "primaryFileOnly":
            out.primary_file_only = value


def _cursor_offset(cursor: str) -> int | None:
    tail = cursor.rsplit("|", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _next_page_url(origin: str, ctx: _Ctx, cursor: str) -> str:
    """CV-pg ``getNextPage``: the request's own host, path and query with ``cursor`` set."""
    pairs: list[tuple[str, str]] = []
    seen_cursor = False
    for key, values in ctx.query.items():
        if key == "cursor":
            pairs.append((key, cursor))
            seen_cursor = True
            continue
        pairs.extend((key, v) for v in values)
    if not seen_cursor:
        pairs.append(("cursor", cursor))
    return f"{origin}{ctx.path}?{_qs_stringify(pairs)}"


class _DownloadFlow:
    """``GET /api/download/models/{id}`` (CV-dl + CV-file ``getFileForModelVersion``)."""

    def __init__(self, app: _ApiApp, ctx: _Ctx, raw_id: str, headers: list[tuple[str, str]]) -> None:
        self.app = app
        self.fake = app.fake
        self.ctx = ctx
        self.raw_id = raw_id
        self.headers = headers
        self.user = app.session(ctx)
        self.token = app.token(ctx) if self.user else None

    def error(self, status: int, message: str) -> _Response:
        """Browser UAs get the bare message (no Content-Type, as Next's res.send); others JSON."""
        if self.ctx.is_browser:
            return _Response(status, list(self.headers), message.encode("utf-8"))
        return _json(status, {"error": message}, self.headers)

    def run(self) -> _Response:
        if self.fake.ip_blocked or (self.token is not None and self.token in self.fake.blocked_tokens):
            return self.error(403, MSG_FORBIDDEN)
        limiter_key = self.token or "anonymous"
        if self.fake.download_limit_reached(limiter_key):
            return self.error(429, MSG_LIMITER)
        params, problem = self.validate()
        if problem is not None:
            return _json(400, {"error": problem}, self.headers)
        number = _js_number(self.raw_id)
        if number == 0:
            return self.error(400, "Missing modelVersionId")
        if not number.is_integer():
            return self.error(404, MSG_FILE_NOT_FOUND)
        return self.resolve(int(number), params, limiter_key)

    def validate(self) -> tuple[dict[str, str], str | None]:
        """The zod schema of CV-dl; returns the parameters or a prettified error."""
        issues: list[JsonObj] = []
        params: dict[str, str] = {}
        version_number = _js_number(self.raw_id)
        if not math.isfinite(version_number):
            received = _js_number_text(version_number)
            message = f"Invalid input: expected number, received {received}"
            issues.append(_zod_issue(["modelVersionId"], message, code="invalid_type"))
        enums = {"type": MODEL_FILE_TYPES, "format": MODEL_FILE_FORMATS, "size": MODEL_FILE_SIZES}
        for name in ("type", "format", "size", "fp", "quantType", "fileId"):
            value = _single(self.ctx.query, name, issues)
            if value is None:
                continue
            if name in enums and value not in enums[name]:
                issues.append(_enum_issue(name, enums[name]))
            elif name in ("fp", "quantType") and len(value) > 64:
                issues.append(_zod_issue([name], "Too big: expected string to have <=64 characters", code="too_big"))
            elif name == "fileId" and not math.isfinite(_js_number(value)):
                issues.append(_zod_issue([name], "Invalid input: expected number, received NaN", code="invalid_type"))
            elif value and not (name == "fileId" and _js_number(value) == 0):
                params[name] = value
        if issues:
            return params, "\n".join(_zod_pretty(i) for i in issues)
        return params, None

    def resolve(self, version_id: int, params: dict[str, str], limiter_key: str) -> _Response:
        version = self.fake.get_version(version_id)
        model = self.fake.get_model(version.model_id) if version else None
        if version is None or model is None or model.poi:
            return self.error(404, MSG_FILE_NOT_FOUND)
        gate = self.gate(version, model)
        if gate is not None:
            return gate
        file = self.select_file(version, params)
        if file is None:
            return self.error(404, MSG_FILE_NOT_FOUND)
        if self.fake.take_storage_failure():
            self.headers = [(k, v) for k, v in self.headers if k != "Cache-Control"]
            self.headers.append(("Cache-Control", "private, no-store"))
            return self.error(404, MSG_FILE_NOT_FOUND)
        if "fileId" not in params and self.misaligned(file, params):
            return self.error(404, MSG_FILE_NOT_FOUND)
        self.fake.count_download(limiter_key)
        filename = download_filename(model, version, file)
        return _redirect(self.fake.signed_file_url(file, filename), self.headers)

    def gate(self, version: FakeVersion, model: FakeModel) -> _Response | None:
        """The status checks of ``getFileForModelVersion``, in source order."""
        if model.mode == "Archived":
            return self.error(410, MSG_ARCHIVED)
        if not (model.published and version.published):
            return self.error(404, MSG_FILE_NOT_FOUND)
        if version.usage_control != "Download":
            body = {"error": "Unauthorized", "message": MSG_DOWNLOADS_DISABLED}
            return _json(401, body, self.headers)
        if (version.require_auth or not self.fake.unauthenticated_download) and self.user is None:
            return self.login_required(version.id)
        granted = self.token is not None and self.fake.has_grant(self.token, version.id)
        if version.early_access_active() and not granted:
            return self.early_access(version)
        if version.availability == "Private" and not granted:
            return self.error(403, MSG_NO_ACCESS) if self.user else self.login_required(version.id)
        return None

    def login_required(self, version_id: int) -> _Response:
        if self.ctx.is_browser:
            return_url = _qs_encode(f"/model-versions/{version_id}")
            return _redirect(f"/login?returnUrl={return_url}&reason=download-auth", self.headers)
        return _json(401, {"error": "Unauthorized", "message": MSG_LOGIN_REQUIRED}, self.headers)

    def early_access(self, version: FakeVersion) -> _Response:
        if self.ctx.is_browser:
            return _redirect(f"/model-versions/{version.id}", self.headers)
        body: JsonObj = {"error": "Early Access"}
        if version.early_access_deadline is not None:
            body["deadline"] = _iso(version.early_access_deadline)
        body["message"] = MSG_EARLY_ACCESS
        return _json(403, body, self.headers)

    def select_file(self, version: FakeVersion, params: dict[str, str]) -> FakeFile | None:
        """``fileId`` exact; else filter by ``type`` and rank (no parameters: the primary)."""
        public = [f for f in version.files if f.visibility == "Public"]
        if "fileId" in params:
            wanted = _js_number(params["fileId"])
            return next((f for f in public if f.id == wanted), None)
        if "type" in params:
            public = [f for f in public if f.type == params["type"]]
        requested: dict[str, str] = {k: params[k] for k in ("format", "size", "fp", "quantType") if k in params}
        primary = version.primary_file()
        if not requested and "type" not in params and primary in public:
            return primary
        return rank_files(public, requested)

    @staticmethod
    def misaligned(file: FakeFile, params: dict[str, str]) -> bool:
        """CV-dl "Check for misalignment": a requested value differing from the file's."""
        return any(file.metadata.get(k) and file.metadata.get(k) != v for k, v in params.items())


# --------------------------------------------------------------------------------------
# The CDN application (presigned R2 storage + image CDN)
# --------------------------------------------------------------------------------------

_RE_CDN_FILE = re.compile(r"^/model/(\d+)/([^/]+)$")
_RE_CDN_IMAGE = re.compile(r"^/images/([0-9a-f-]{36})/.+$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """Parse a single ``bytes=`` range against ``size``; None means "serve the whole body"."""
    if not header or not header.strip().lower().startswith("bytes="):
        return None
    spec = header.strip()[6:].strip()
    if "," in spec:
        return None
    match = re.fullmatch(r"(\d*)\s*-\s*(\d*)", spec)
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, min(end, size - 1)


class _CdnApp:
    """Routes and answers requests on the CDN server."""

    def __init__(self, fake: FakeCivitai) -> None:
        self.fake = fake

    def handle(self, ctx: _Ctx) -> _Response:
        if match := _RE_CDN_IMAGE.match(ctx.path):
            return self.image(match.group(1))
        if ctx.header("authorization") is not None:
            return _s3_error(400, "InvalidRequest", "Missing x-amz-content-sha256")
        if ctx.method not in ("GET", "HEAD"):
            return _s3_error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
        match = _RE_CDN_FILE.match(ctx.path)
        found = self.fake.get_file(int(match.group(1))) if match else None
        if found is None:
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        problem = self.fake.check_signature(ctx.path, ctx.raw_query)
        if problem is not None:
            return _s3_error(403, "AccessDenied", problem)
        return self.file(ctx, found[0], found[1])

    def image(self, key: str) -> _Response:
        image = self.fake.image_by_key(key)
        if image is None:
            return _Response(404, [("Content-Type", "text/plain")], b"Not Found")
        return _Response(
            200, [("Content-Type", image[1]), ("Cache-Control", "public, max-age=31536000, immutable")], image[0]
        )

    def file(self, ctx: _Ctx, file: FakeFile, version: FakeVersion) -> _Response:
        size = file.content_length()
        headers = [
            ("Content-Type", "application/octet-stream"),
            ("Accept-Ranges", "bytes"),
            ("Cache-Control", "no-store"),
            ("ETag", file.etag()),
            ("Last-Modified", _http_date(version.updated_at)),
        ]
        disposition = ctx.param("response-content-disposition")
        if disposition:
            headers.append(("Content-Disposition", disposition))
        wanted = None if ctx.injection and ctx.injection.ignore_range else self.range_for(ctx, file)
        if wanted == "unsatisfiable":
            answer = _s3_error(416, "InvalidRange", "The requested range is not satisfiable")
            answer.headers.append(("Content-Range", f"bytes */{size}"))
            return answer
        if wanted is None:
            return _Response(200, headers, stream=file.iter_bytes(), length=size)
        start, end = wanted
        headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
        return _Response(206, headers, stream=file.iter_bytes(start, end + 1), length=end - start + 1)

    @staticmethod
    def range_for(ctx: _Ctx, file: FakeFile) -> tuple[int, int] | Literal["unsatisfiable"] | None:
        if_range = ctx.header("if-range")
        if if_range is not None and if_range.strip() != file.etag():
            return None
        return parse_range(ctx.header("range"), file.content_length())


def _http_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


# --------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------


class _ClientGoneError(Exception):
    """The peer went away or the fake is stopping: stop writing."""


class _FakeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], fake: FakeCivitai, role: ServerRole) -> None:
        self.fake = fake
        self.role: ServerRole = role
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (as clients do after a redirect) is not worth a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def track(self, connection: socket.socket, is_open: bool) -> None:
        """Remember open client connections so :meth:`drop_connections` can end them."""
        with self._connections_lock:
            if is_open:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def drop_connections(self) -> None:
        """Shut every open (e.g. idle keep-alive) client connection so handler threads end."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeCivitai/1.0"

    def version_string(self) -> str:
        return self.server_version

    timeout = 60  # idle keep-alive connections end after a minute

    def setup(self) -> None:
        super().setup()
        self._server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._server.track(self.connection, False)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        if self._server.fake.verbose:
            super().log_message(format, *args)

    @property
    def _server(self) -> _FakeHTTPServer:
        return cast(_FakeHTTPServer, self.server)

    def _dispatch(self) -> None:
        fake = self._server.fake
        role = self._server.role
        split = urlsplit(self.path)
        body = self._read_body()
        headers: dict[str, str] = {}
        for key, value in self.headers.items():
            lowered = key.lower()
            headers[lowered] = f"{headers[lowered]}, {value}" if lowered in headers else value
        record = fake.log_request(
            role, self.command, split.path, split.query, headers, body, self._server.server_address[1]
        )
        injection = fake.take_injection(role, self.command, split.path)
        query: dict[str, list[str]] = {}
        for key, value in parse_qsl(split.query, keep_blank_values=True):
            query.setdefault(key, []).append(value)
        ctx = _Ctx(role, self.command, split.path, split.query, query, headers, body, injection)
        if injection is not None and injection.delay > 0:
            fake.stopping.wait(injection.delay)
        response = self._answer(ctx)
        record.status = response.status
        self._send(response, injection)

    def _answer(self, ctx: _Ctx) -> _Response:
        fake = self._server.fake
        if ctx.injection is not None and ctx.injection.status is not None:
            return _canned(ctx.injection)
        try:
            app = fake.api_app if ctx.server == "api" else fake.cdn_app
            return app.handle(ctx)
        except Exception as exc:  # a fake bug must still answer, like Civitai's 500
            if fake.verbose:
                traceback.print_exc()
            return _json(500, {"error": f"{type(exc).__name__}: {exc}"})

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length and length.isdigit():
            return self.rfile.read(int(length))
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        return b""

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _send(self, response: _Response, injection: Injection | None) -> None:
        omit_length = injection is not None and injection.omit_content_length
        length = response.length if response.stream is not None else len(response.body)
        try:
            self.send_response(response.status)
            for key, value in response.headers:
                self.send_header(key, _raw_header_value(value))
            if omit_length or length is None:
                self.send_header("Connection", "close")
                self.close_connection = True
            else:
                self.send_header("Content-Length", str(length))
            self.end_headers()
            if self.command != "HEAD":
                chunks = response.stream if response.stream is not None else [response.body]
                self._write_body(chunks, length, injection)
        except (_ClientGoneError, OSError):
            self.close_connection = True

    def _write_body(self, chunks: Iterable[bytes], length: int | None, injection: Injection | None) -> None:
        limit = injection.truncate_after if injection else None
        rate = injection.slow_bytes_per_sec if injection else None
        sent = 0
        for chunk in chunks:
            if limit is not None:
                chunk = chunk[: max(0, limit - sent)]
            self._write_chunk(chunk, rate)
            sent += len(chunk)
            if limit is not None and sent >= limit and (length is None or sent < length):
                self._drop_connection()
                return

    def _write_chunk(self, chunk: bytes, rate: int | None) -> None:
        stopping = self._server.fake.stopping
        if not rate or rate <= 0:
            if stopping.is_set():
                raise _ClientGoneError
            self.wfile.write(chunk)
            return
        piece = max(1, rate // 20)
        for start in range(0, len(chunk), piece):
            part = chunk[start : start + piece]
            if stopping.wait(len(part) / rate):
                raise _ClientGoneError
            self.wfile.write(part)

    def _drop_connection(self) -> None:
        """Stop mid-body: flush what was sent, then FIN the socket (IncompleteRead for the peer)."""
        self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)
        self.close_connection = True


def _raw_header_value(value: str) -> str:
    """Let ``send_header`` (latin-1) put raw UTF-8 bytes on the wire; strip CR/LF."""
    return value.replace("\r", " ").replace("\n", " ").encode("utf-8").decode("latin-1")


def _canned(injection: Injection) -> _Response:
    status = injection.status or 500
    headers = list(injection.headers.items())
    if injection.body is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        return _json(status, {"error": phrase}, headers)
    content_type = injection.content_type or "text/html; charset=utf-8"
    return _Response(status, [*headers, ("Content-Type", content_type)], injection.body)


# --------------------------------------------------------------------------------------
# The fake itself
# --------------------------------------------------------------------------------------


class FakeCivitai:
    """Two loopback servers (API and CDN) over an in-memory Civitai catalogue.

    Use as a context manager (or call :meth:`start` / :meth:`stop`). All state lives on
    the instance. Knobs (plain attributes, change them any time):

    * ``valid_tokens``: API keys that resolve to a user (unknown keys mean anonymous);
      :meth:`add_token` names the user.
    * ``blocked_tokens`` / ``ip_blocked``: download answers 403 Forbidden.
    * ``download_limit``: successful downloads allowed per key (``"anonymous"`` for no
      session) before 429 with the limiter message; ``None`` = unlimited.
    * ``unauthenticated_download``: False makes every download need a session (401).
    * ``storage_failures``: the next N otherwise-successful downloads answer the
      transient 404 with ``Cache-Control: private, no-store``.
    * ``search_overloads``: the next N ``/models?query=`` calls answer 503 + Retry-After 2.
    * ``signed_url_ttl``: seconds a CDN link stays valid (403 AccessDenied after).
    * ``disposition_style``: ``"raw"`` (Civitai: ``filename="<raw UTF-8>"``),
      ``"rfc5987"`` (ASCII fallback plus ``filename*=UTF-8''...``) or ``"none"``.
    """

    def __init__(self, *, host: str = "127.0.0.1", api_port: int = 0, cdn_port: int = 0, verbose: bool = False) -> None:
        self.host = host
        self.verbose = verbose
        self.valid_tokens: set[str] = set()
        self.blocked_tokens: set[str] = set()
        self.ip_blocked = False
        self.download_limit: int | None = None
        self.unauthenticated_download = True
        self.storage_failures = 0
        self.search_overloads = 0
        self.signed_url_ttl = 86400
        self.disposition_style: Literal["raw", "rfc5987", "none"] = "raw"
        self.stopping = threading.Event()
        self.api_app = _ApiApp(self)
        self.cdn_app = _CdnApp(self)
        self._ports = (api_port, cdn_port)
        self._lock = threading.RLock()
        self._secret = os.urandom(16)
        self._models: dict[int, FakeModel] = {}
        self._versions: dict[int, FakeVersion] = {}
        self._files: dict[int, tuple[FakeFile, FakeVersion]] = {}
        self._images: dict[str, tuple[bytes, str]] = {}
        self._users: dict[str, FakeUser] = {}
        self._grants: set[tuple[str, int]] = set()
        self._download_counts: dict[str, int] = {}
        self._injections: list[Injection] = []
        self._log: list[LoggedRequest] = []
        self._servers: list[_FakeHTTPServer] = []
        self._threads: list[threading.Thread] = []
        self._version_seq = 0

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> FakeCivitai:
        """Bind both servers on free (or the given) ports and serve in daemon threads."""
        if self._servers:
            return self
        self.stopping.clear()
        for role, port in (("api", self._ports[0]), ("cdn", self._ports[1])):
            server = _FakeHTTPServer((self.host, port), self, cast(ServerRole, role))
            thread = threading.Thread(
                target=server.serve_forever, args=(0.05,), name=f"fake-civitai-{role}", daemon=True
            )
            self._servers.append(server)
            self._threads.append(thread)
            thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the sockets and join the serving threads."""
        self.stopping.set()
        for server in self._servers:
            server.shutdown()
            server.drop_connections()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> FakeCivitai:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        """Base URL of the API server, e.g. ``http://127.0.0.1:PORT`` (no trailing slash)."""
        return self._url(0)

    @property
    def cdn_url(self) -> str:
        """Base URL of the storage/image CDN server."""
        return self._url(1)

    def _url(self, index: int) -> str:
        if not self._servers:
            raise RuntimeError("FakeCivitai is not started (use `with FakeCivitai() as fake:`)")
        host, port = self._servers[index].server_address[:2]
        return f"http://{host!s}:{port}"

    # -- catalogue -----------------------------------------------------------------------

    def add_model(
        self,
        model_id: int,
        *,
        name: str,
        type: str = "LORA",
        tags: Sequence[str] = (),
        creator: str | None = "fake_creator",
        description: str = "",
        nsfw: bool = False,
        mode: Literal["Archived", "TakenDown"] | None = None,
        nsfw_level: int | None = None,
        availability: str = "Public",
        poi: bool = False,
        minor: bool = False,
        published: bool = True,
        supports_generation: bool = False,
        allow_commercial_use: str | list[str] = "{Image,RentCivit}",
        stats: dict[str, int | None] | None = None,
    ) -> FakeModel:
        """Add a model (no versions yet). ``creator=None`` omits ``creator`` (the civitai account)."""
        model = FakeModel(
            id=model_id,
            name=name,
            type=type,
            description=description,
            tags=list(tags),
            creator=creator,
            nsfw=nsfw,
            nsfw_level=nsfw_level if nsfw_level is not None else (28 if nsfw else 1),
            mode=mode,
            availability=availability,
            poi=poi,
            minor=minor,
            published=published,
            supports_generation=supports_generation,
            allow_no_credit=True,
            allow_commercial_use=allow_commercial_use,
            allow_derivatives=True,
            allow_different_license=True,
            stats={
                "downloadCount": 0,
                "thumbsUpCount": 0,
                "thumbsDownCount": 0,
                "commentCount": 0,
                "tippedAmountCount": 0,
                **(stats or {}),
            },
        )
        with self._lock:
            if model_id in self._models:
                raise ValueError(f"model {model_id} already exists")
            self._models[model_id] = model
            if creator is not None:
                self._images[model.creator_image_key] = (FakeImage(model_id).body(), "image/jpeg")
        return model

    def add_version(
        self,
        model_id: int,
        version_id: int,
        *,
        name: str,
        base_model: str = "SD 1.5",
        base_model_type: str = "Standard",
        trained_words: Sequence[str] = (),
        files: Sequence[FakeFile] = (),
        images: Sequence[FakeImage] = (),
        availability: str = "Public",
        early_access_deadline: datetime | str | None = None,
        require_auth: bool = False,
        usage_control: str = "Download",
        published: bool = True,
        description: str | None = None,
        published_at: datetime | str | None = None,
        created_at: datetime | str | None = None,
        nsfw_level: int = 1,
        supports_generation: bool = False,
        stats: dict[str, int] | None = None,
    ) -> FakeVersion:
        """Add a version to a model; it becomes the newest (index 0 of ``modelVersions``).

        Timestamps default to a deterministic sequence (one day apart per call).
        ``availability="EarlyAccess"`` gates downloads until ``early_access_deadline``
        (``None`` = permanent); ``require_auth`` needs a session; ``usage_control`` other
        than ``"Download"`` disables downloads.
        """
        with self._lock:
            model = self._models.get(model_id)
            if model is None:
                raise KeyError(f"unknown model {model_id}")
            self._check_new_ids(version_id, files)
            self._version_seq += 1
            default_published = _EPOCH + timedelta(days=self._version_seq)
            pub = _to_datetime(published_at) or default_published
            version = FakeVersion(
                id=version_id,
                model_id=model_id,
                name=name,
                base_model=base_model,
                base_model_type=base_model_type,
                trained_words=list(trained_words),
                files=list(files),
                images=list(images),
                availability=availability,
                early_access_deadline=_to_datetime(early_access_deadline),
                require_auth=require_auth,
                usage_control=usage_control,
                published=published,
                description=description,
                created_at=_to_datetime(created_at) or pub - timedelta(minutes=90),
                published_at=pub if published else None,
                updated_at=pub,
                nsfw_level=nsfw_level,
                supports_generation=supports_generation,
                stats={"downloadCount": 0, "thumbsUpCount": 0, "thumbsDownCount": 0, **(stats or {})},
            )
            model.versions.insert(0, version)
            self._versions[version_id] = version
            for file in version.files:
                self._files[file.id] = (file, version)
            for image in version.images:
                self._images[image.key] = (image.body(), image.content_type)
        return version

    def _check_new_ids(self, version_id: int, files: Sequence[FakeFile]) -> None:
        if version_id in self._versions:
            raise ValueError(f"version {version_id} already exists")
        ids = [f.id for f in files]
        if len(set(ids)) != len(ids) or any(i in self._files for i in ids):
            raise ValueError(f"duplicate file id in {ids}")

    def get_model(self, model_id: int) -> FakeModel | None:
        """The stored model, or None."""
        with self._lock:
            return self._models.get(model_id)

    def get_version(self, version_id: int) -> FakeVersion | None:
        """The stored version, or None."""
        with self._lock:
            return self._versions.get(version_id)

    def get_file(self, file_id: int) -> tuple[FakeFile, FakeVersion] | None:
        """The stored file and its version, or None."""
        with self._lock:
            return self._files.get(file_id)

    def file_sha256(self, file_id: int) -> str:
        """Lower-case hex SHA-256 of the bytes the CDN serves for ``file_id``."""
        found = self.get_file(file_id)
        if found is None:
            raise KeyError(f"unknown file {file_id}")
        return found[0].sha256_hex()

    def published_files(self) -> list[tuple[FakeFile, FakeVersion]]:
        """Files whose version and model are both published (by-hash candidates)."""
        with self._lock:
            pairs = list(self._files.values())
        out = []
        for file, version in pairs:
            model = self.get_model(version.model_id)
            if version.published and model is not None and model.published:
                out.append((file, version))
        return out

    def image_by_key(self, key: str) -> tuple[bytes, str] | None:
        """CDN image bytes and Content-Type by uuid key."""
        with self._lock:
            return self._images.get(key)

    def search(self, parsed: _ListQuery, origin: str) -> list[JsonObj]:
        """Filtered, sorted ``/models`` list items (all pages)."""
        with self._lock:
            models = list(self._models.values())
        selected = [
            (m, body)
            for m in models
            if self._list_match(m, parsed) and (body := self.api_app.render.model(m, origin, parsed.primary_file_only))
        ]
        selected.sort(key=lambda pair: _sort_key(pair[0], parsed.sort))
        return [body for _, body in selected]

    @staticmethod
    def _list_match(model: FakeModel, q: _ListQuery) -> bool:
        levels = NSFW_ALL_LEVELS if q.nsfw else NSFW_PUBLIC_LEVELS
        published = [v for v in model.versions if v.published]
        checks = [
            model.availability != "Private" and model.nsfw_level & levels != 0,
            not q.types or model.type in q.types,
            not q.ids or model.id in q.ids,
            not q.base_models or any(v.base_model in q.base_models for v in published),
            not q.username or _slug(model.creator or "civitai") == _slug(q.username),
            not q.tag or q.tag.lower() in (t.lower() for t in model.tags),
            not q.query or _query_match(model, q.query),
        ]
        return all(checks)

    # -- users and access ----------------------------------------------------------------

    def add_token(self, token: str, *, username: str = "fake_user", user_id: int | None = None) -> FakeUser:
        """Make ``token`` a valid API key for the named user."""
        with self._lock:
            user = FakeUser(user_id if user_id is not None else 1000 + len(self._users), username)
            self._users[token] = user
            self.valid_tokens.add(token)
        return user

    def user_for_token(self, token: str) -> FakeUser | None:
        """The user of a valid token; None (anonymous) for unknown tokens."""
        with self._lock:
            if token not in self.valid_tokens:
                return None
            known = self._users.get(token)
        return known or FakeUser(1000 + int(hashlib.sha256(token.encode()).hexdigest()[:6], 16), "fake_user")

    def grant(self, token: str, version_id: int) -> None:
        """Give ``token``'s user download access to a gated (EarlyAccess/Private) version."""
        with self._lock:
            self._grants.add((token, version_id))

    def has_grant(self, token: str, version_id: int) -> bool:
        """Whether :meth:`grant` was called for this pair."""
        with self._lock:
            return (token, version_id) in self._grants

    def download_limit_reached(self, key: str) -> bool:
        """Whether the download limiter trips for this key."""
        with self._lock:
            return self.download_limit is not None and self._download_counts.get(key, 0) >= self.download_limit

    def reset_download_counts(self) -> None:
        """Forget the downloads counted toward ``download_limit``."""
        with self._lock:
            self._download_counts.clear()

    def count_download(self, key: str) -> None:
        """Count one successful download toward the limiter."""
        with self._lock:
            self._download_counts[key] = self._download_counts.get(key, 0) + 1

    def take_storage_failure(self) -> bool:
        """Consume one ``storage_failures`` knob, if any is left."""
        with self._lock:
            if self.storage_failures > 0:
                self.storage_failures -= 1
                return True
            return False

    def take_search_overload(self) -> bool:
        """Consume one ``search_overloads`` knob, if any is left."""
        with self._lock:
            if self.search_overloads > 0:
                self.search_overloads -= 1
                return True
            return False

    # -- signed storage URLs -------------------------------------------------------------

    def content_disposition(self, filename: str) -> str | None:
        """The Content-Disposition the CDN will send for ``filename`` (per ``disposition_style``)."""
        if self.disposition_style == "none":
            return None
        if self.disposition_style == "rfc5987":
            fallback = filename.encode("ascii", "replace").decode("ascii").replace('"', "_")
            return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
        return f'attachment; filename="{filename}"'

    def signed_file_url(self, file: FakeFile, filename: str) -> str:
        """An absolute presigned-looking CDN URL for ``file`` (S3 query names)."""
        now = datetime.now(UTC)
        path = f"/model/{file.id}/{quote(filename, safe='')}"
        params = [
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Credential", f"FAKEACCESSKEY/{now:%Y%m%d}/auto/s3/aws4_request"),
            ("X-Amz-Date", now.strftime("%Y%m%dT%H%M%SZ")),
            ("X-Amz-Expires", str(self.signed_url_ttl)),
            ("X-Amz-SignedHeaders", "host"),
        ]
        disposition = self.content_disposition(filename)
        if disposition is not None:
            params.append(("response-content-disposition", disposition))
        params.append(("X-Amz-Signature", self._signature(unquote(path), params)))
        return f"{self.cdn_url}{path}?{_qs_stringify(params)}"

    def _signature(self, path: str, params: Sequence[tuple[str, str]]) -> str:
        canonical = path + "\n" + "&".join(f"{k}={v}" for k, v in sorted(params))
        return hmac.new(self._secret, canonical.encode("utf-8"), hashlib.sha256).hexdigest()

    def check_signature(self, path: str, raw_query: str) -> str | None:
        """None when the CDN link is valid; else the AccessDenied message."""
        params = parse_qsl(raw_query, keep_blank_values=True)
        given = [v for k, v in params if k == "X-Amz-Signature"]
        rest = [(k, v) for k, v in params if k != "X-Amz-Signature"]
        if len(given) != 1 or not hmac.compare_digest(given[0], self._signature(unquote(path), rest)):
            return "The request signature we calculated does not match the signature you provided."
        values = dict(rest)
        try:
            signed = datetime.strptime(values["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            expires = int(values["X-Amz-Expires"])
        except (KeyError, ValueError):
            return "Invalid presigned URL."
        if datetime.now(UTC) > signed + timedelta(seconds=expires):
            return "Request has expired"
        return None

    # -- failure injection ---------------------------------------------------------------

    def inject(
        self,
        path_regex: str,
        status: int | None = None,
        *,
        times: int | None = 1,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        server: ServerRole | None = None,
        method: str | None = None,
        truncate_after: int | None = None,
        ignore_range: bool = False,
        omit_content_length: bool = False,
        slow_bytes_per_sec: int | None = None,
        delay: float = 0.0,
    ) -> Injection:
        """Alter the next ``times`` requests whose path matches ``path_regex`` (``re.search``).

        Knobs are tried in the order added; the first live match is used. See
        :class:`Injection` for the meaning of each option. Returns the knob (its ``hits``
        counts uses).
        """
        knob = Injection(
            pattern=re.compile(path_regex),
            times=times,
            server=server,
            method=method,
            status=status,
            headers=dict(headers or {}),
            body=body,
            content_type=content_type,
            truncate_after=truncate_after,
            ignore_range=ignore_range,
            omit_content_length=omit_content_length,
            slow_bytes_per_sec=slow_bytes_per_sec,
            delay=delay,
        )
        with self._lock:
            self._injections.append(knob)
        return knob

    def inject_html(
        self,
        path_regex: str,
        status: int = 403,
        *,
        page: Literal["cloudflare", "maintenance", "login"] = "cloudflare",
        times: int | None = 1,
        server: ServerRole | None = None,
    ) -> Injection:
        """Answer with an HTML page where JSON or a file was expected (doc 5.8).

        ``cloudflare`` adds ``cf-mitigated: challenge`` (as the real challenge does).
        """
        bodies = {"cloudflare": CLOUDFLARE_CHALLENGE_HTML, "maintenance": MAINTENANCE_HTML, "login": LOGIN_PAGE_HTML}
        headers = {"cf-mitigated": "challenge"} if page == "cloudflare" else {}
        return self.inject(
            path_regex,
            status,
            times=times,
            headers=headers,
            body=bodies[page],
            content_type="text/html; charset=UTF-8",
            server=server,
        )

    def clear_injections(self) -> None:
        """Remove every failure knob."""
        with self._lock:
            self._injections.clear()

    def take_injection(self, server: ServerRole, method: str, path: str) -> Injection | None:
        """Find and consume the knob for one request (used by the servers)."""
        with self._lock:
            for knob in self._injections:
                if not knob.exhausted and knob.matches(server, method, path):
                    knob.hits += 1
                    return knob
        return None

    # -- request log ---------------------------------------------------------------------

    def log_request(
        self,
        server: ServerRole,
        method: str,
        path: str,
        raw_query: str,
        headers: dict[str, str],
        body: bytes,
        port: int,
    ) -> LoggedRequest:
        """Record one request (used by the servers)."""
        query: dict[str, list[str]] = {}
        for key, value in parse_qsl(raw_query, keep_blank_values=True):
            query.setdefault(key, []).append(value)
        record = LoggedRequest(
            server, method, path, raw_query, query, headers, body, headers.get("host", ""), port, time.time()
        )
        with self._lock:
            self._log.append(record)
        return record

    @property
    def requests(self) -> list[LoggedRequest]:
        """A snapshot of every request seen so far, oldest first."""
        with self._lock:
            return list(self._log)

    def requests_for(self, server: ServerRole | None = None, path_regex: str | None = None) -> list[LoggedRequest]:
        """Logged requests filtered by server and/or a path regex (``re.search``)."""
        pattern = re.compile(path_regex) if path_regex else None
        return [
            r
            for r in self.requests
            if (server is None or r.server == server) and (pattern is None or pattern.search(r.path))
        ]

    def clear_requests(self) -> None:
        """Forget the logged requests."""
        with self._lock:
            self._log.clear()


def _query_match(model: FakeModel, text: str) -> bool:
    needle = text.lower()
    haystack = [model.name.lower(), (model.creator or "").lower(), *(t.lower() for t in model.tags)]
    return any(needle in item for item in haystack)


def _sort_key(model: FakeModel, sort: str) -> tuple[float, int]:
    stats = model.stats
    latest = max((v.published_at for v in model.versions if v.published_at), default=_EPOCH).timestamp()
    image_count = sum(len(v.images) for v in model.versions)
    by_sort: dict[str, float] = {
        "Highest Rated": float(stats.get("thumbsUpCount") or 0),
        "Most Downloaded": float(stats.get("downloadCount") or 0),
        "Most Liked": float(stats.get("thumbsUpCount") or 0),
        "Most Discussed": float(stats.get("commentCount") or 0),
        "Most Collected": float(stats.get("collectedCount") or 0),
        "Most Images": float(image_count),
        "Newest": latest,
        "Oldest": -latest,
    }
    if sort == "Oldest":
        return (-by_sort[sort], model.id)
    return (-by_sort[sort], -model.id)


# --------------------------------------------------------------------------------------
# Demo catalogue and command line
# --------------------------------------------------------------------------------------


def seed_demo(fake: FakeCivitai) -> None:
    """Load the small demo catalogue (section 6's 424242 plus an embedding and a checkpoint).

    * 424242 "Paper Lantern Style" (LORA): 909001 v1.0 (SD 1.5: model file 808001 and
      training data 808002) and 909002 v2.0 SDXL (808003 fp16 primary, 808004 fp32).
    * 515151 "Ink Wash" (TextualInversion): 919001 v1.0, files named from the trained word.
    * 626262 "Harbor Mix" (Checkpoint): 929001 v3.0 with fp16 pruned (primary) and fp32
      full files (both named ``harborMix_v30.safetensors``, as Civitai would).
    """
    fp16 = {"format": "SafeTensor", "size": "pruned", "fp": "fp16"}
    fp32 = {"format": "SafeTensor", "size": "full", "fp": "fp32"}
    fake.add_model(
        424242,
        name="Paper Lantern Style",
        type="LORA",
        tags=["style", "lighting", "paper"],
        creator="lantern_maker",
        description="<p>Soft paper-lantern lighting style.</p>",
        supports_generation=True,
        stats={
            "downloadCount": 1834,
            "thumbsUpCount": 211,
            "thumbsDownCount": 2,
            "commentCount": 17,
            "tippedAmountCount": 450,
        },
    )
    meta = {"prompt": "paperlantern style, lantern festival at night", "steps": 28, "sampler": "Euler a"}
    fake.add_version(
        424242,
        909001,
        name="v1.0",
        base_model="SD 1.5",
        description="<p>First release.</p>",
        created_at="2025-11-20T08:00:00.000Z",
        published_at="2025-11-20T09:30:00.000Z",
        stats={"downloadCount": 631, "thumbsUpCount": 61, "thumbsDownCount": 1},
        files=[
            FakeFile(808001, "paper_lantern_v1.safetensors", size=151_113, metadata=fp16, primary=True),
            FakeFile(
                808002,
                "paperLanternStyle_v10_trainingData.zip",
                size=18_874,
                type="Training Data",
                metadata={"format": "Other"},
                pickle_scan_message=None,
            ),
        ],
        images=[FakeImage(70000001, width=512, height=768, meta=meta, hash="UKO2?U%2Tw=w]~RBVZRi};RPxuwH%3s8tLOt")],
    )
    fake.add_version(
        424242,
        909002,
        name="v2.0 SDXL",
        base_model="SDXL 1.0",
        trained_words=["paperlantern style"],
        description="<p>SDXL retrain.</p>",
        supports_generation=True,
        created_at="2026-03-02T10:15:00.000Z",
        published_at="2026-03-02T11:00:00.000Z",
        stats={"downloadCount": 1203, "thumbsUpCount": 150, "thumbsDownCount": 1},
        files=[
            FakeFile(808003, "paper_lantern_xl_v2.safetensors", size=228_504, metadata=fp16, primary=True),
            FakeFile(808004, "paper_lantern_xl_v2_fp32.safetensors", size=297_008, metadata=fp32),
        ],
        images=[FakeImage(70000002, width=832, height=1216, meta=meta)],
    )
    fake.add_model(
        515151,
        name="Ink Wash",
        type="TextualInversion",
        tags=["style", "ink"],
        creator="sumi_artist",
        description="<p>An ink wash painting embedding.</p>",
        stats={"downloadCount": 420, "thumbsUpCount": 77, "commentCount": 5},
    )
    fake.add_version(
        515151,
        919001,
        name="v1.0",
        base_model="SD 1.5",
        trained_words=["inkwash"],
        files=[
            FakeFile(818001, "ink_wash_embedding.safetensors", size=24_576, metadata={"format": "SafeTensor"}),
            FakeFile(
                818002, "ink_wash_negative.safetensors", size=12_288, type="Negative", metadata={"format": "SafeTensor"}
            ),
        ],
        images=[FakeImage(70000101, width=768, height=768)],
    )
    fake.add_model(
        626262,
        name="Harbor Mix",
        type="Checkpoint",
        tags=["base model", "realistic"],
        creator="harbor_dev",
        description="<p>A general purpose SD 1.5 merge.</p>",
        stats={"downloadCount": 9120, "thumbsUpCount": 830, "commentCount": 64},
    )
    fake.add_version(
        626262,
        929001,
        name="v3.0",
        base_model="SD 1.5",
        files=[
            FakeFile(828001, "harbor_mix_v3_pruned_fp16.safetensors", size=262_144, metadata=fp16, primary=True),
            FakeFile(828002, "harbor_mix_v3_full_fp32.safetensors", size=307_200, metadata=fp32),
        ],
        images=[FakeImage(70000201, width=512, height=768), FakeImage(70000202, type="video")],
    )


def _write_port_file(path: Path, payload: JsonObj) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(payload) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fake in the foreground until SIGTERM/SIGINT (``python -m ...fake_server``)."""
    parser = argparse.ArgumentParser(prog="python -m synapse_civitai.fake_server", description=main.__doc__)
    parser.add_argument("--port-file", type=Path, help="write {api_url, cdn_url} JSON here once listening")
    parser.add_argument("--api-port", type=int, default=0, help="API port (default: a free port)")
    parser.add_argument("--cdn-port", type=int, default=0, help="CDN port (default: a free port)")
    parser.add_argument("--seed-demo", action="store_true", help="load the demo catalogue (seed_demo)")
    parser.add_argument("--token", action="append", default=[], help="a valid API key (repeatable)")
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = parser.parse_args(argv)
    done = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    fake = FakeCivitai(api_port=args.api_port, cdn_port=args.cdn_port, verbose=args.verbose)
    if args.seed_demo:
        seed_demo(fake)
    for token in args.token:
        fake.valid_tokens.add(token)
    with fake:
        payload = {"api_url": fake.api_url, "cdn_url": fake.cdn_url}
        if args.port_file is not None:
            _write_port_file(args.port_file, payload)
        print(json.dumps(payload), flush=True)
        while not done.wait(0.2):
            pass
    if args.port_file is not None:
        args.port_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
