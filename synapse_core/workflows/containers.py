"""The texts embedded in a workflow file or an image: PNG text chunks, WebP and JPEG EXIF/XMP.

Only metadata is read, never pixels. Every length in the file is checked against the bytes
that are there, compressed chunks are inflated to a bounded size, and a damaged file gives
:class:`~synapse_core.errors.InvalidInput` with one line saying what is wrong (or, when the
metadata came before the damage, a warning beside what was found).

Keys found: ``workflow`` and ``prompt`` (node graphs), ``parameters`` (generation parameters),
``json`` (a plain JSON file). PNG: the keyword of each tEXt/zTXt/iTXt chunk. WebP/JPEG EXIF:
IFD0 strings written as ``<key>:<text>``, and the Exif ``UserComment`` as ``parameters``;
XMP: ``UserComment`` or ``parameters`` elements or attributes.
"""

from __future__ import annotations

import re
import struct
import zlib
from html import unescape

import attrs

from synapse_core.errors import InvalidInput

MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_TEXT_BYTES = 64 * 1024 * 1024
"""The most one inflated text may hold (a compressed chunk cannot grow past it)."""

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EXIF_USER_COMMENT = 0x9286
_EXIF_IFD_POINTER = 0x8769
_TIFF_ASCII, _TIFF_UNDEFINED = 2, 7
_GRAPH_KEYS = ("workflow", "prompt")


@attrs.define
class Embedded:
    """What a file carries: its container and each text by key."""

    container: str
    """``json``, ``text``, ``png``, ``webp`` or ``jpeg``."""
    texts: dict[str, str] = attrs.Factory(dict)
    warnings: list[str] = attrs.Factory(list)


def read_embedded(data: bytes, label: str) -> Embedded:
    """The texts of a file's bytes; ``label`` names the file in messages."""
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(f"{label}: larger than {MAX_FILE_BYTES >> 20} MiB; not a workflow or an image Synapse reads")
    if data.startswith(PNG_SIGNATURE):
        return _png(data, label)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp(data, label)
    if data[:2] == b"\xff\xd8":
        return _jpeg(data, label)
    text = _as_text(data)
    if text is None:
        raise InvalidInput(f"{label}: not a workflow (JSON) and not a PNG, WebP or JPEG image")
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        return Embedded("json", {"json": text})
    return Embedded("text", {"parameters": text})


def _as_text(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    if "\x00" in text or not text.strip():
        return None
    return text


def _inflate(payload: bytes, label: str, what: str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(payload, MAX_TEXT_BYTES)
    except zlib.error as exc:
        raise InvalidInput(f"{label}: {what} does not inflate ({exc}); the file is damaged") from exc
    if inflater.unconsumed_tail:
        raise InvalidInput(f"{label}: {what} inflates to more than {MAX_TEXT_BYTES >> 20} MiB; refused")
    return out


# -- PNG --------------------------------------------------------------------------------------


def _png(data: bytes, label: str) -> Embedded:
    found = Embedded("png")
    position = len(PNG_SIGNATURE)
    while position < len(data):
        if position + 8 > len(data):
            _truncated(found, label, f"PNG is truncated at byte {position} (inside a chunk header)")
            break
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        end = position + 12 + length
        if end > len(data):
            name = kind.decode("latin-1", "replace")
            _truncated(found, label, f"PNG is truncated at byte {len(data)} (chunk {name!r} needs {end})")
            break
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            if zlib.crc32(kind + body) != crc:
                found.warnings.append(f"{label}: a {kind.decode()} chunk has a bad checksum and was skipped")
            else:
                key, text = _png_text(kind, body, label)
                if key and key not in found.texts:
                    found.texts[key] = text
        if kind == b"IEND":
            break
        position = end
    return found


def _truncated(found: Embedded, label: str, message: str) -> None:
    if not found.texts:
        raise InvalidInput(f"{label}: {message}, before any metadata; get the file again")
    found.warnings.append(f"{label}: {message}; read the metadata before it")


def _png_text(kind: bytes, body: bytes, label: str) -> tuple[str, str]:
    keyword, sep, rest = body.partition(b"\x00")
    if not sep:
        return "", ""
    key = keyword.decode("latin-1")
    if kind == b"tEXt":
        return key, rest.decode("latin-1")
    if kind == b"zTXt":
        return key, _inflate(rest[1:], label, f"zTXt chunk {key!r}").decode("latin-1")
    if len(rest) < 2:
        return "", ""
    compressed = rest[0] == 1
    _language, _, rest = rest[2:].partition(b"\x00")
    _translated, _, text = rest.partition(b"\x00")
    if compressed:
        text = _inflate(text, label, f"iTXt chunk {key!r}")
    return key, text.decode("utf-8", "replace")


# -- WebP -------------------------------------------------------------------------------------


def _webp(data: bytes, label: str) -> Embedded:
    found = Embedded("webp")
    (riff_size,) = struct.unpack("<I", data[4:8])
    stop = min(len(data), 8 + riff_size)
    position = 12
    while position + 8 <= stop:
        kind = data[position : position + 4]
        (length,) = struct.unpack("<I", data[position + 4 : position + 8])
        body_end = position + 8 + length
        if body_end > len(data):
            _truncated(found, label, f"WebP is truncated at byte {len(data)} (chunk {kind!r} needs {body_end})")
            break
        body = data[position + 8 : body_end]
        if kind == b"EXIF":
            _exif_texts(body[6:] if body.startswith(b"Exif\x00\x00") else body, found, label)
        elif kind == b"XMP ":
            _xmp_texts(body, found)
        position = body_end + (length & 1)
    if stop < 8 + riff_size and not found.texts:
        raise InvalidInput(f"{label}: WebP is truncated ({len(data)} of {8 + riff_size} bytes); get the file again")
    return found


# -- JPEG -------------------------------------------------------------------------------------


def _jpeg(data: bytes, label: str) -> Embedded:
    found = Embedded("jpeg")
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            break
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            position += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan: metadata segments come before it
            break
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        end = position + 2 + length
        if length < 2 or end > len(data):
            _truncated(found, label, f"JPEG is truncated at byte {len(data)} (a segment needs {end})")
            break
        body = data[position + 4 : end]
        if marker == 0xE1 and body.startswith(b"Exif\x00\x00"):
            _exif_texts(body[6:], found, label)
        elif marker == 0xE1 and body.startswith(b"http://ns.adobe.com/xap/1.0/\x00"):
            _xmp_texts(body[29:], found)
        elif marker == 0xFE and "parameters" not in found.texts:  # a comment segment
            comment = _as_text(body)
            if comment:
                found.texts["parameters"] = comment
        position = end
    return found


# -- EXIF (TIFF) and XMP ----------------------------------------------------------------------


def _exif_texts(tiff: bytes, found: Embedded, label: str) -> None:
    """IFD0 strings ``workflow:...``/``prompt:...`` and the Exif IFD's UserComment."""
    if tiff[:2] not in (b"II", b"MM") or len(tiff) < 8:
        found.warnings.append(f"{label}: the EXIF block is not TIFF data; skipped")
        return
    order = "<" if tiff[:2] == b"II" else ">"
    (first,) = struct.unpack(order + "I", tiff[4:8])
    entries = _ifd(tiff, order, first)
    for tag, (kind, value) in entries.items():
        if kind == _TIFF_ASCII:
            text = value.rstrip(b"\x00").decode("utf-8", "replace")
            key, sep, rest = text.partition(":")
            if sep and key in _GRAPH_KEYS and key not in found.texts:
                found.texts[key] = rest
        elif tag == _EXIF_USER_COMMENT and kind == _TIFF_UNDEFINED:
            _user_comment(value, found)
    pointer = entries.get(_EXIF_IFD_POINTER)
    if pointer is not None and len(pointer[1]) >= 4:
        (offset,) = struct.unpack(order + "I", pointer[1][:4])
        comment = _ifd(tiff, order, offset).get(_EXIF_USER_COMMENT)
        if comment is not None:
            _user_comment(comment[1], found)


_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 9: 4, 10: 8}


def _ifd(tiff: bytes, order: str, offset: int) -> dict[int, tuple[int, bytes]]:
    """Tag -> (type, raw value bytes) of one IFD; entries pointing outside the data are skipped."""
    if offset + 2 > len(tiff):
        return {}
    (count,) = struct.unpack(order + "H", tiff[offset : offset + 2])
    entries: dict[int, tuple[int, bytes]] = {}
    for index in range(count):
        start = offset + 2 + 12 * index
        if start + 12 > len(tiff):
            break
        tag, kind, number = struct.unpack(order + "HHI", tiff[start : start + 8])
        size = _TYPE_SIZES.get(kind, 1) * number
        if size <= 4:
            raw = tiff[start + 8 : start + 8 + size]
        else:
            (where,) = struct.unpack(order + "I", tiff[start + 8 : start + 12])
            if where + size > len(tiff):
                continue
            raw = tiff[where : where + size]
        entries[tag] = (kind, raw)
    return entries


def _user_comment(raw: bytes, found: Embedded) -> None:
    """An EXIF UserComment: an 8-byte character-code prefix, then the text."""
    prefix, body = raw[:8], raw[8:]
    if prefix == b"UNICODE\x00":
        # piexif (A1111) writes UTF-16 big-endian; some writers follow the TIFF byte order
        little = body[1::2].count(0) > body[0::2].count(0)
        text = body.decode("utf-16-le" if little else "utf-16-be", "replace")
    elif prefix.startswith(b"ASCII") or prefix == b"\x00" * 8:
        text = body.decode("utf-8", "replace")
    else:
        text = raw.decode("utf-8", "replace")
    text = text.rstrip("\x00")
    if text.strip() and "parameters" not in found.texts:
        found.texts["parameters"] = text


_XMP_ELEMENT = re.compile(
    r"<(?:[\w-]+:)?(UserComment|parameters)\b[^>]*>(.*?)</(?:[\w-]+:)?\1>", re.DOTALL | re.IGNORECASE
)
_XMP_ATTRIBUTE = re.compile(r"\b(?:[\w-]+:)?(UserComment|parameters)=\"([^\"]*)\"", re.IGNORECASE)
_XML_TAG = re.compile(r"<[^>]+>")


def _xmp_texts(body: bytes, found: Embedded) -> None:
    text = body.decode("utf-8", "replace")
    match = _XMP_ELEMENT.search(text) or _XMP_ATTRIBUTE.search(text)
    if match is None or "parameters" in found.texts:
        return
    value = unescape(_XML_TAG.sub("", match.group(2))).strip()  # rdf:Alt/rdf:li wrappers dropped
    if value:
        found.texts["parameters"] = value
