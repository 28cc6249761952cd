"""Test files in the real formats, built byte by byte (no imaging library: the metadata containers
are small, documented formats, and writing them here keeps every byte visible to the test).

* PNG (ISO/IEC 15948): signature, IHDR, tEXt / zTXt / iTXt chunks with CRCs, IDAT, IEND; ComfyUI's
  SaveImage writes ``prompt`` and ``workflow`` as text chunks (nodes.py ``SaveImage.save_images``),
  A1111 writes ``parameters`` (modules/images.py).
* JPEG with an APP1 Exif segment: a big-endian TIFF whose IFD0 points at an Exif IFD holding a
  ``UserComment`` ("UNICODE\\0" + UTF-16BE), as A1111 writes it through piexif.
* WebP (RIFF) with an EXIF chunk whose IFD0 Make/Model hold ``workflow:<json>`` and ``prompt:<json>``
  (ComfyUI comfy_extras/nodes_images.py ``SaveAnimatedWEBP``).
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(texts: dict[str, str], *, form: str = "tEXt") -> bytes:
    """A valid 1x1 RGB PNG carrying ``texts`` as ``form`` chunks (tEXt, zTXt or iTXt)."""
    out = PNG_SIGNATURE + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    for key, text in texts.items():
        keyword = key.encode("latin-1") + b"\x00"
        if form == "tEXt":
            body = keyword + text.encode("latin-1")
        elif form == "zTXt":
            body = keyword + b"\x00" + zlib.compress(text.encode("latin-1"))
        else:
            body = keyword + b"\x01\x00" + b"\x00" + b"\x00" + zlib.compress(text.encode("utf-8"))
        out += png_chunk(form.encode(), body)
    out += png_chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
    return out + png_chunk(b"IEND", b"")


def comfy_png(workflow: dict[str, Any] | None, prompt: dict[str, Any] | None) -> bytes:
    """A PNG as ComfyUI's SaveImage writes it: ``prompt`` first, then ``workflow``."""
    texts = {}
    if prompt is not None:
        texts["prompt"] = json.dumps(prompt)
    if workflow is not None:
        texts["workflow"] = json.dumps(workflow)
    return png(texts)


def _tiff(order: str, ifd0: list[tuple[int, int, bytes]], exif: list[tuple[int, int, bytes]] | None) -> bytes:
    """A TIFF block: IFD0 (and an Exif IFD it points at); entries are (tag, type, raw bytes)."""
    mark = b"MM" if order == ">" else b"II"

    def ifd(entries: list[tuple[int, int, bytes]], start: int) -> bytes:
        table_size = 2 + 12 * len(entries) + 4
        data = b""
        table = struct.pack(order + "H", len(entries))
        for tag, kind, raw in entries:
            count = len(raw) if kind in (2, 7) else len(raw) // 4
            if len(raw) <= 4:
                table += struct.pack(order + "HHI", tag, kind, count) + raw.ljust(4, b"\x00")
            else:
                table += struct.pack(order + "HHII", tag, kind, count, start + table_size + len(data))
                data += raw + (b"\x00" if len(raw) % 2 else b"")
        return table + struct.pack(order + "I", 0) + data

    header = mark + struct.pack(order + "HI", 42, 8)
    if exif is None:
        return header + ifd(ifd0, 8)
    first_size = len(ifd([*ifd0, (0x8769, 4, b"\x00\x00\x00\x00")], 8))
    pointer = (0x8769, 4, struct.pack(order + "I", 8 + first_size))
    return header + ifd([*ifd0, pointer], 8) + ifd(exif, 8 + first_size)


def user_comment(text: str) -> bytes:
    """An EXIF UserComment as piexif.helper.UserComment.dump(text, encoding='unicode')."""
    return b"UNICODE\x00" + text.encode("utf-16-be")


def jpeg_with_parameters(text: str) -> bytes:
    """A JPEG whose Exif UserComment holds A1111 infotext."""
    tiff = _tiff(">", [(0x0131, 2, b"test\x00")], [(0x9286, 7, user_comment(text))])
    app1 = b"Exif\x00\x00" + tiff
    jfif = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    segments = b"\xff\xe0" + struct.pack(">H", len(jfif) + 2) + jfif
    segments += b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
    scan = b"\xff\xda" + struct.pack(">H", 8) + b"\x01\x01\x00\x00\x3f\x00" + b"\x12\x34"
    return b"\xff\xd8" + segments + scan + b"\xff\xd9"


def comfy_webp(workflow: dict[str, Any], prompt: dict[str, Any]) -> bytes:
    """A WebP as ComfyUI's SaveAnimatedWEBP tags it: Make = workflow:..., Model = prompt:..."""
    entries = [
        (0x010F, 2, ("workflow:" + json.dumps(workflow)).encode() + b"\x00"),
        (0x0110, 2, ("prompt:" + json.dumps(prompt)).encode() + b"\x00"),
    ]
    exif = _tiff("<", entries, None)
    vp8l = b"\x2f\x00\x00\x00\x00\x88\x88\x08"  # a 1x1 lossless bitstream header
    chunks = b"VP8L" + struct.pack("<I", len(vp8l)) + vp8l
    chunks += b"EXIF" + struct.pack("<I", len(exif)) + exif + (b"\x00" if len(exif) % 2 else b"")
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WEBP" + chunks


# -- workflows ----------------------------------------------------------------------------------


def ui_node(node_id: int, node_type: str, widgets: list[Any] | dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A node of the UI format as the frontend saves it."""
    node: dict[str, Any] = {
        "id": node_id,
        "type": node_type,
        "pos": [100 * node_id, 100],
        "size": [315, 98],
        "flags": {},
        "order": node_id,
        "mode": 0,
        "inputs": [],
        "outputs": [],
        "properties": {"Node name for S&R": node_type, "cnr_id": "comfy-core", "ver": "0.3.64"},
        "widgets_values": widgets,
    }
    node.update(extra)
    return node


def ui_workflow_04(nodes: list[dict[str, Any]], links: list[list[Any]] | None = None, **extra: Any) -> dict[str, Any]:
    """A UI-format 0.4 workflow (links as 6-tuples)."""
    data: dict[str, Any] = {
        "last_node_id": max((n["id"] for n in nodes if isinstance(n["id"], int)), default=0),
        "last_link_id": max((link[0] for link in links or []), default=0),
        "nodes": nodes,
        "links": links or [],
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 1, "offset": [0, 0]}, "frontendVersion": "1.28.6"},
        "version": 0.4,
    }
    data.update(extra)
    return data


def ui_workflow_1(
    nodes: list[dict[str, Any]], links: list[dict[str, Any]] | None = None, **extra: Any
) -> dict[str, Any]:
    """A UI-format 1 workflow (links as objects)."""
    data: dict[str, Any] = {
        "id": "3f2c9a44-6a7e-4b0e-9b8f-2f2c0a7d1e10",
        "revision": 0,
        "version": 1,
        "state": {"lastGroupId": 0, "lastNodeId": 40, "lastLinkId": 40, "lastRerouteId": 0},
        "nodes": nodes,
        "links": links or [],
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 1, "offset": [0, 0]}},
    }
    data.update(extra)
    return data


def link_object(
    link_id: int, origin: int, origin_slot: int, target: int, target_slot: int, kind: str
) -> dict[str, Any]:
    return {
        "id": link_id,
        "origin_id": origin,
        "origin_slot": origin_slot,
        "target_id": target,
        "target_slot": target_slot,
        "type": kind,
    }


def model_record(name: str, url: str, directory: str, sha256: str | None = None) -> dict[str, Any]:
    """An entry of ``properties.models`` / the top-level ``models``."""
    record: dict[str, Any] = {"name": name, "url": url, "directory": directory}
    if sha256 is not None:
        record.update(hash=sha256, hash_type="SHA256")
    return record


def api_node(class_type: str, inputs: dict[str, Any], title: str | None = None) -> dict[str, Any]:
    return {"class_type": class_type, "inputs": inputs, "_meta": {"title": title or class_type}}


def infotext(prompt: str, negative: str, params: dict[str, str]) -> str:
    """A1111 create_infotext: prompt, 'Negative prompt: ...', one line of 'Key: value' pairs."""

    def quote(value: str) -> str:
        return json.dumps(value, ensure_ascii=False) if any(c in value for c in ",:\n") else value

    line = ", ".join(f"{k}: {quote(v)}" for k, v in params.items())
    return f"{prompt}\nNegative prompt: {negative}\n{line}"
