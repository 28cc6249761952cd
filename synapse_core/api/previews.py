"""A pack's preview images for the web page: the files with their ratings, and thumbnails
made on first request and kept under data/cache/thumbnails/ (pillow)."""

from __future__ import annotations

import hashlib
import logging
from io import BytesIO
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel

from synapse_core.errors import NotFound, StateFileInvalid
from synapse_core.layout import StoreLayout, read_model, write_bytes_atomic
from synapse_core.models import NsfwLevel, PreviewIndex, PreviewInfo

log = logging.getLogger("synapse")

THUMBNAIL_WIDTHS = (192, 384, 768)
"""The widths a thumbnail can be asked for (a fixed few, so the cache stays small)."""
MAX_SOURCE_PIXELS = 80_000_000
"""Larger images are served as they are, never decoded (a decompression bomb stays a file)."""
# Served inline only as these types; anything else (an .html or .svg a source named a preview)
# is a download, so it can never run as a page of this origin.
MEDIA_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".avif": "image/avif",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
}


class PreviewFile(BaseModel):
    """One preview as the page shows it."""

    file: str
    url: str
    """The original's address; add ``&w=`` (one of THUMBNAIL_WIDTHS) for a thumbnail."""
    media: Literal["image", "video", "other"]
    nsfw: NsfwLevel | None = None
    width: int | None = None
    height: int | None = None


def media_type(path: Path) -> str:
    """The type a preview is served as."""
    return MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")


def version_of(path: Path) -> str:
    """A short tag that changes whenever the file does (its ETag and the ``v=`` of its URL)."""
    st = path.stat()
    return hashlib.sha256(f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]


def pack_previews(layout: StoreLayout, pack: str, url_base: str) -> list[PreviewFile]:
    """The previews of a pack, in the source's order (files without a record come last, unrated)."""
    folder = layout.previews_dir(pack)
    if not folder.is_dir():
        return []
    files = {p.name: p for p in folder.iterdir() if p.is_file() and not p.is_symlink()}
    infos = {info.file: info for info in _index(layout, pack).previews if info.file in files}
    ordered = [*infos.values(), *(PreviewInfo(file=name) for name in sorted(files) if name not in infos)]
    out = []
    for info in ordered:
        path = files[info.file]
        kind = media_type(path).split("/")[0]
        out.append(
            PreviewFile(
                file=info.file,
                url=f"{url_base}/{quote(info.file, safe='')}?v={version_of(path)}",
                media=kind if kind in ("image", "video") else "other",
                nsfw=info.nsfw,
                width=info.width,
                height=info.height,
            )
        )
    return out


def _index(layout: StoreLayout, pack: str) -> PreviewIndex:
    path = layout.previews_index(pack)
    try:
        return read_model(path, PreviewIndex) if path.is_file() else PreviewIndex()
    except StateFileInvalid as exc:  # the files still show, unrated
        log.warning("%s", exc.message)
        return PreviewIndex()


def preview_path(layout: StoreLayout, pack: str, file: str) -> Path:
    """The file of one preview; a name that is not one of the pack's preview files is NotFound."""
    folder = layout.previews_dir(pack)
    path = folder / file
    if "/" in file or file in ("", ".", "..") or not path.is_file() or path.is_symlink():
        raise NotFound(f"pack '{pack}' has no preview {file!r}")
    return path


class Thumbnails:
    """Scaled-down WebP copies of previews, made once per (file version, width)."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir

    def get(self, source: Path, width: int) -> Path | None:
        """The thumbnail of ``source`` at ``width``, made now if needed; None when the file is not
        an image pillow can read (the original is served instead)."""
        key = hashlib.sha256(f"{source}:{version_of(source)}:{width}".encode()).hexdigest()[:32]
        target = self.cache_dir / key[:2] / f"{key}.webp"
        if target.is_file():
            return target
        data = _scaled(source, width)
        if data is None:
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(target, data)
        return target


def _scaled(source: Path, width: int) -> bytes | None:
    if media_type(source).split("/")[0] != "image":
        return None
    try:
        from PIL import Image, ImageOps
    except ImportError:  # the api extra brings pillow; without it the originals are served
        return None
    try:
        with Image.open(source) as image:
            if image.width * image.height > MAX_SOURCE_PIXELS:
                return None
            image.draft("RGB", (width, width * 3))  # JPEG: decode at a fraction of the size
            picture = ImageOps.exif_transpose(image)
            picture.thumbnail((width, width * 3))
            if picture.mode not in ("RGB", "RGBA"):
                picture = picture.convert("RGBA" if "A" in picture.getbands() else "RGB")
            out = BytesIO()
            picture.save(out, "WEBP", quality=80, method=4)
            return out.getvalue()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:  # not an image pillow knows
        log.debug("no thumbnail for %s: %s", source, exc)
        return None


def cache_dir(layout: StoreLayout) -> Path:
    """data/cache/thumbnails/"""
    return layout.data / "cache" / "thumbnails"
