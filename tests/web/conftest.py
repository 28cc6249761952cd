"""Fixtures of the web page's tests: a store built from the Civitai stand-in and local files,
``synapse serve`` on a free loopback port, and Debian's headless Chromium driven by Playwright.

Nothing here reaches the internet: the fake Civitai listens on 127.0.0.1, Chromium starts with
its background networking off, and the page under test only talks to its own origin.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from PIL import Image

from synapse_civitai.fake_server import FakeCivitai, FakeFile, FakeImage
from synapse_core.store import Store
from synapse_core.testing import CHROMIUM, CHROMIUM_ARGS, add_bare_packs, lora_file, make_registry, make_store

SYNAPSE = Path(sys.executable).parent / "synapse"
PLUGINS = "a1111,comfyui,forge,sdnext,civitai"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
_SCRUBBED_ENV = (
    "SYNAPSE_ROOT",
    "SYNAPSE_STRICT_PLUGINS",
    "SYNAPSE_DISABLE_PLUGINS",
    "SYNAPSE_DEBUG",
    "SYNAPSE_API_TOKEN",
    "CIVITAI_API_TOKEN",
    "SYNAPSE_CIVITAI_URL",
)


def picture(color: tuple[int, int, int], size: tuple[int, int] = (512, 640), fmt: str = "JPEG") -> bytes:
    """A real image (a gradient of ``color``), so thumbnails are made from decodable bytes."""
    image = Image.new("RGB", size, color)
    for y in range(0, size[1], 8):
        shade = tuple(min(255, c + y * 60 // size[1]) for c in color)
        image.paste(shade, (0, y, size[0], y + 8))  # type: ignore[arg-type]
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def seed_catalogue(fake: FakeCivitai) -> None:
    """Four models with real preview bytes: a LoRA with a newer version, two LoRAs with trigger
    words (one rated explicit) and an embedding."""
    fp16 = {"format": "SafeTensor", "size": "pruned", "fp": "fp16"}
    fp32 = {"format": "SafeTensor", "size": "full", "fp": "fp32"}
    fake.add_model(8001, name="Paper Lantern Style", type="LORA", tags=["style", "lighting"], creator="lantern_maker")
    fake.add_version(
        8001,
        8101,
        name="v1.0",
        base_model="SD 1.5",
        trained_words=["paperlantern style"],
        files=[FakeFile(81011, "paper_lantern_v1.safetensors", size=150_000, metadata=fp16, primary=True)],
        images=[FakeImage(8000101, content=picture((200, 120, 60)))],
    )
    fake.add_version(
        8001,
        8102,
        name="v2.0 SDXL",
        base_model="SDXL 1.0",
        trained_words=["paperlantern style"],
        files=[
            FakeFile(81021, "paper_lantern_xl_v2.safetensors", size=220_000, metadata=fp16, primary=True),
            FakeFile(81022, "paper_lantern_xl_v2_fp32.safetensors", size=290_000, metadata=fp32),
        ],
        images=[FakeImage(8000201, content=picture((220, 160, 60)))],
    )
    fake.add_model(
        7001,
        name="Neon Alley",
        type="LORA",
        tags=["city", "neon"],
        creator="night_owl",
        description="<p>Neon <b>city</b> nights.</p><script>window.pwned = true</script><img src=x onerror=alert(1)>",
    )
    fake.add_version(
        7001,
        7101,
        name="v1",
        base_model="SDXL 1.0",
        trained_words=["neonalley", "rain-soaked street"],
        files=[FakeFile(71011, "neon_alley_v1.safetensors", size=64_000, primary=True)],
        images=[FakeImage(7000101, content=picture((30, 40, 120))), FakeImage(7000102, content=picture((120, 30, 90)))],
    )
    fake.add_model(7002, name="Velvet Portrait", type="LORA", tags=["portrait"], creator="studio_v")
    fake.add_version(
        7002,
        7201,
        name="v1",
        base_model="Pony",
        trained_words=["velvetportrait"],
        files=[FakeFile(72011, "velvet_portrait.safetensors", size=48_000, primary=True)],
        images=[FakeImage(7000201, nsfw_level=8, content=picture((160, 40, 40)))],
    )
    fake.add_model(8003, name="Ink Wash", type="TextualInversion", tags=["style", "ink"], creator="sumi_artist")
    fake.add_version(
        8003,
        8301,
        name="v1.0",
        base_model="SD 1.5",
        trained_words=["inkwash"],
        files=[FakeFile(83011, "inkwash.safetensors", size=24_576, primary=True)],
        images=[FakeImage(8000301, content=picture((70, 70, 70)))],
    )


def build_store(root: Path, fake: FakeCivitai, files: Path) -> Store:
    """A store with Civitai packs (installed, one missing its file, one with an update) and local LoRAs."""
    registry = make_registry(entry_points=True, env={"SYNAPSE_LOAD_PLUGINS": PLUGINS})
    assert "civitai" in registry.sources, "the Civitai plugin is not installed: run 'make install'"
    store = Store(root=root, registry=registry)
    store.init()
    store.import_pack("https://civitai.com/models/8001?modelVersionId=8101", policy="follow_latest", sync=True)
    store.import_pack("civitai:7001", sync=True)
    store.import_pack("civitai:7002")  # its file stays missing
    store.import_pack("urn:air:sd1:embedding:civitai:8003@8301", name="InkWash", sync=True)
    for seed, name in enumerate(("sketch_lines", "watercolor_wash", "pixel_art")):
        store.import_pack(str(lora_file(files / f"{name}.safetensors", seed=seed + 10)))
    store.check_updates()  # Paper Lantern follows the latest: v2.0 is out
    return store


class Site:
    """``synapse serve --port 0`` over a store, as a user starts it; ``url`` is what it printed."""

    def __init__(self, root: Path, env: dict[str, str], log: Path) -> None:
        self.root = root
        self.log = log
        self.process = subprocess.Popen(
            [str(SYNAPSE), "--root", str(root), "serve", "--port", "0"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
            text=True,
        )
        self.url = self._wait_for_url()

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            match = re.search(r"on (http://127\.0\.0\.1:\d+/) ", self.log.read_text())
            if match:
                url = match.group(1)
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(url, timeout=5).status_code == 200:
                        return url
            assert self.process.poll() is None, f"synapse serve exited: {self.log.read_text()}"
            time.sleep(0.05)
        raise AssertionError(f"synapse serve did not answer within 30 s: {self.log.read_text()}")

    def stop(self) -> str:
        """Stop the server; its stderr."""
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.log.read_text()


def serve_env(fake: FakeCivitai, **extra: str) -> dict[str, str]:
    """The environment of ``synapse serve``: every UI plugin and Civitai at the fake, no tokens."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env.update(SYNAPSE_LOAD_PLUGINS=PLUGINS, SYNAPSE_CIVITAI_URL=fake.api_url, SYNAPSE_CIVITAI_BACKOFF="0.01")
    env.update(extra)
    return env


@contextlib.contextmanager
def _running_site(base: Path, **env: str) -> Iterator[tuple[Site, FakeCivitai, Store]]:
    """A fake Civitai, a store built from it under ``base`` and ``synapse serve`` over it."""
    with FakeCivitai() as fake:
        seed_catalogue(fake)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SYNAPSE_CIVITAI_URL", fake.api_url)
            mp.setenv("SYNAPSE_CIVITAI_BACKOFF", "0.01")
            store = build_store(base / "store", fake, base / "files")
        site = Site(store.layout.root, serve_env(fake, **env), base / "serve.log")
        try:
            yield site, fake, store
        finally:
            err = site.stop()
            assert "Traceback" not in err, err


@pytest.fixture(scope="module")
def shared_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, FakeCivitai, Store]]:
    """One site for the tests of a module that change nothing."""
    with _running_site(tmp_path_factory.mktemp("web-site")) as site:
        yield site


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Site, FakeCivitai, Store]]:
    """A site of this test's own (for tests that change the store)."""
    with _running_site(tmp_path) as running:
        yield running


@pytest.fixture
def running_site() -> Callable[..., contextlib.AbstractContextManager[tuple[Site, FakeCivitai, Store]]]:
    """``with running_site(base, **env) as (site, fake, store)``: a site with extra server environment."""
    return _running_site


@pytest.fixture(scope="module")
def big_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, int]]:
    """``synapse serve`` over a store of 600 packs, each with a preview."""
    base = tmp_path_factory.mktemp("web-big")
    store = make_store(base / "store", entry_points=False)
    count = 600
    add_bare_packs(store, count, preview=picture((90, 120, 150), (256, 320), "PNG"))
    site = Site(store.layout.root, serve_env_plain(), base / "serve.log")
    try:
        yield site, count
    finally:
        assert "Traceback" not in site.stop()


def serve_env_plain() -> dict[str, str]:
    """The environment of ``synapse serve`` with no plugin beyond the built-ins."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env["SYNAPSE_LOAD_PLUGINS"] = ""
    return env


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless (one per test worker)."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        yield chromium
        chromium.close()


class PageErrors:
    """Every uncaught error and console error of a page (a test ends with none)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page: Any) -> None:
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(f"console: {msg.text}"))


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """``open_page(url, width=1280, height=800)``: a fresh browser context and page at ``url``, with the
    clipboard allowed; fails the test if the page logged an error."""
    contexts = []
    errors = PageErrors()

    def open_(url: str, width: int = 1280, height: int = 800, expect_errors: bool = False) -> Any:
        context = browser.new_context(viewport={"width": width, "height": height})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url.rstrip("/"))
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        if not expect_errors:
            errors.watch(page)
        page.goto(url)
        return page

    yield open_
    for context in contexts:
        context.close()
    # 401 answers before sign-in are logged by Chromium as failed resources; they are expected
    assert not [e for e in errors.errors if "401" not in e], errors.errors


@pytest.fixture
def screenshot() -> Callable[[Any, str], Path]:
    """``screenshot(page, "library")``: build/screenshots/library.png (README copies come from there)."""

    def shoot(page: Any, name: str, full_page: bool = False) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return shoot


class LiveApp:
    """An app served by uvicorn on 127.0.0.1 (a free port) in a thread, for the API tests."""

    def __init__(self, app: FastAPI) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-web-test", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture
def serve_app() -> Iterator[Callable[[FastAPI], httpx.Client]]:
    """``serve_app(app)``: an httpx client at the app's root, served over real HTTP."""
    with contextlib.ExitStack() as stack:

        def start(app: FastAPI) -> httpx.Client:
            url = stack.enter_context(LiveApp(app))
            return stack.enter_context(httpx.Client(base_url=url, timeout=30))

        yield start
