"""`make bench` figure for the web page: the library of N packs (each with a preview) is
interactive in headless Chromium within 1.5x the time the same browser takes to load a static
HTML file listing those N names and thumbnails, measured in the same run.

"Interactive" is the page's own mark: the first page of cards is laid out and the thumbnails
on screen have loaded (``body[data-ready=library]``). The baseline is the ``load`` event of the
static file (every thumbnail loaded). Each run uses a fresh browser context (no HTTP cache);
``synapse serve`` keeps running between runs, as it does for a user.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from html import escape
from pathlib import Path

from synapse_core.testing import CHROMIUM, CHROMIUM_ARGS


def _preview(n: int) -> bytes:
    from PIL import Image

    image = Image.new("RGB", (512, 640), ((n * 37) % 256, (n * 91) % 256, 160))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _store(root: Path, packs: int) -> None:
    from synapse_core.testing import add_bare_packs, make_store

    shutil.rmtree(root, ignore_errors=True)
    store = make_store(root, entry_points=False)
    add_bare_packs(store, packs, preview=_preview(1))


def _static_page(folder: Path, packs: int) -> Path:
    """The baseline: one HTML file listing every name and its 384-px thumbnail (as the page's)."""
    from PIL import Image

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with Image.open(io.BytesIO(_preview(1))) as image:
        image.thumbnail((384, 384 * 3))
        image.save(folder / "thumb.webp", "WEBP", quality=80)
    thumb = (folder / "thumb.webp").read_bytes()
    cards = []
    for i in range(packs):
        (folder / f"t{i}.webp").write_bytes(thumb)  # one file each, as each pack has its own
        name = escape(f"bulk_{i:05d}")
        cards.append(f'<li><img src="t{i}.webp" width="180" height="225" alt=""><span>{name}</span></li>')
    page = folder / "index.html"
    page.write_text(
        "<!doctype html><meta charset=utf-8><title>static</title><style>ul{display:flex;flex-wrap:wrap;gap:14px;"
        "list-style:none}li{width:180px}img{object-fit:cover;display:block}</style><ul>" + "".join(cards) + "</ul>"
    )
    return page


def bench_web(runs: int, packs: int, work: Path, synapse: str, report: Callable[..., bool]) -> bool:
    """The library page with ``packs`` packs vs a static file of the same names and thumbnails."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("web page: playwright is missing from the bench venv (make bench installs it)")
        return False
    if not Path(CHROMIUM).exists():
        print(f"web page: {CHROMIUM} is missing (make system-deps)")
        return False
    root = work / "web-store"
    _store(root, packs)
    static = _static_page(work / "web-static", packs)
    log = work / "web-serve.log"
    env = {**os.environ, "SYNAPSE_LOAD_PLUGINS": ""}
    server = subprocess.Popen([synapse, "--root", str(root), "serve", "--port", "0"], env=env, stderr=log.open("w"))
    try:
        url = _wait_for_url(log, server)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
            page_times, static_times, thumbs_at_ready = [], [], []
            for _ in range(runs):
                for which in ("page", "static"):
                    context = browser.new_context(viewport={"width": 1280, "height": 800})
                    tab = context.new_page()
                    start = time.perf_counter()
                    if which == "static":
                        tab.goto(static.as_uri(), wait_until="load", timeout=120_000)
                        static_times.append(time.perf_counter() - start)
                    else:
                        tab.goto(url)
                        tab.wait_for_selector("body[data-ready=library]", timeout=120_000)
                        page_times.append(time.perf_counter() - start)
                        thumbs_at_ready.append(
                            tab.evaluate(
                                "() => [...document.querySelectorAll('.grid img')]"
                                ".filter(i => i.complete && i.naturalWidth > 0).length"
                            )
                        )
                        on_screen = tab.evaluate(
                            "() => [...document.querySelectorAll('.grid img')].filter(i => {"
                            "const r = i.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight }).length"
                        )
                        assert thumbs_at_ready[-1] >= on_screen > 0, (thumbs_at_ready[-1], on_screen)
                    context.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=15)
    ok = report(
        f"web library ({packs} packs) interactive",
        min(page_times),
        min(static_times),
        1.5,
        f"static HTML of {packs} names + thumbnails",
    )
    print(f"  note: the first run (cards built, thumbnails made) took {page_times[0]:.3f}s")
    shown = max(thumbs_at_ready)
    first = shown < packs
    print(
        f"{'  thumbnails loaded when interactive':<34} {shown:5d} of {packs} (the first screenful, before all)"
        f" {'ok' if first else 'OVER'}"
    )
    return ok and first


def _wait_for_url(log: Path, server: subprocess.Popen[bytes]) -> str:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = re.search(r"on (http://127\.0\.0\.1:\d+/) ", log.read_text())
        if match:
            try:
                httpx.get(match.group(1), timeout=60)  # up (the library's cards are built by the first run)
                return match.group(1)
            except httpx.TransportError:
                pass
        if server.poll() is not None:
            sys.exit(f"synapse serve exited: {log.read_text()}")
        time.sleep(0.05)
    sys.exit(f"synapse serve did not answer: {log.read_text()}")
