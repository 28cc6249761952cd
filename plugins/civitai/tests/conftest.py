"""Fixtures for the Civitai plugin's tests: a fresh fake Civitai on loopback per test, a store,
and the real ``synapse`` CLI run as a subprocess against them.

Nothing here touches the internet: ``SYNAPSE_CIVITAI_URL`` points at the fake's API port, and
the fake's download endpoint redirects to its second ("storage") port. The user's config and
cache folders are redirected into the test's temp folder, so a developer's real Civitai key is
never read and credentials are never written outside ``tmp_path``.

Test modules are imported with ``--import-mode=importlib``, so helpers are handed out as
fixtures rather than imported from this file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from synapse_civitai.fake_server import FakeCivitai, FakeFile, FakeImage, seed_demo
from synapse_core.store import Store
from synapse_core.testing import make_registry

SYNAPSE = Path(sys.executable).parent / "synapse"
# Variables a developer may have set that would change what a test sees.
_SCRUBBED_ENV = (
    "SYNAPSE_ROOT",
    "SYNAPSE_STRICT_PLUGINS",
    "SYNAPSE_DISABLE_PLUGINS",
    "SYNAPSE_LOAD_PLUGINS",
    "SYNAPSE_DEBUG",
    "CIVITAI_API_TOKEN",
    "SYNAPSE_CIVITAI_URL",
    "SYNAPSE_CIVITAI_BACKOFF",
)

RunCli = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def fake() -> Iterator[FakeCivitai]:
    """A started fake Civitai (API + storage CDN on 127.0.0.1) holding the demo catalogue.

    * 424242 "Paper Lantern Style" (LORA): 909001 v1.0 (808001 model, 808002 training data),
      909002 v2.0 SDXL, the latest (808003 fp16 primary, 808004 fp32).
    * 515151 "Ink Wash" (TextualInversion): 919001 (818001, 818002 Negative).
    * 626262 "Harbor Mix" (Checkpoint): 929001 (828001 fp16 primary, 828002 fp32), an image and a video.
    """
    with FakeCivitai() as server:
        seed_demo(server)
        yield server


@pytest.fixture
def env(
    fake: FakeCivitai, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The environment of a CLI run (also applied to this process for in-process stores).

    Points the client at the fake, keeps the credentials file and caches under tmp, makes
    backoff fast, and removes any Civitai token the developer may have set.
    """
    settings = {
        "SYNAPSE_CIVITAI_URL": fake.api_url,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CACHE_HOME": str(tmp_path_factory.getbasetemp() / "xdg-cache"),
        "SYNAPSE_CIVITAI_BACKOFF": "0.01",
    }
    for key in _SCRUBBED_ENV:
        monkeypatch.delenv(key, raising=False)
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    base = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    base.update(settings)
    return base


@pytest.fixture
def root(tmp_path: Path, env: dict[str, str]) -> Path:
    """An initialised store root (plugins from entry points, so the Civitai source is there)."""
    path = tmp_path / "store"
    Store(root=path, registry=make_registry(entry_points=True, env=env)).init()
    return path


@pytest.fixture
def synapse(env: dict[str, str], root: Path, tmp_path: Path) -> RunCli:
    """Run the installed ``synapse`` console script against ``root`` and the fake.

    ``synapse("import", ref, "--json", env={"CIVITAI_API_TOKEN": t}, input="...")``; pass
    ``root=None`` to leave out ``--root``. Returns the CompletedProcess (text mode, pipes).
    """
    assert SYNAPSE.exists(), f"{SYNAPSE} is missing: run 'make install'"
    default_root, base_env = root, env

    def run(
        *args: str | Path,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float = 60,
        root: Path | None = default_root,
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(SYNAPSE)]
        if root is not None:
            argv += ["--root", str(root)]
        argv += [str(a) for a in args]
        full_env = {**base_env, **(env or {})}
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=full_env,
            cwd=tmp_path,
            input=input,
            timeout=timeout,
            check=False,
        )

    return run


@pytest.fixture
def add_model(fake: FakeCivitai) -> Callable[..., FakeFile]:
    """``add_model(model_id, version_id, file_id, size=..., type="LORA", name=..., **version)``:
    a one-version, one-file model on the fake (with one preview image); returns its file."""

    def add(
        model_id: int,
        version_id: int,
        file_id: int,
        *,
        size: int = 4096,
        type: str = "LORA",
        name: str | None = None,
        file_name: str | None = None,
        file_type: str = "Model",
        hashes: dict[str, str] | None = None,
        model: Mapping[str, Any] | None = None,
        **version: Any,
    ) -> FakeFile:
        file = FakeFile(
            file_id,
            file_name or f"file_{file_id}.safetensors",
            size=size,
            type=file_type,
            metadata={"format": "SafeTensor", "size": "pruned", "fp": "fp16"},
            primary=True,
            hashes=hashes,
        )
        fake.add_model(model_id, name=name or f"Model {model_id}", type=type, **dict(model or {}))
        version.setdefault("images", [FakeImage(model_id * 10)])
        fake.add_version(model_id, version_id, name="v1", files=[file], **version)
        return file

    return add
