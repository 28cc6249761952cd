"""The HTTP API over real HTTP (issue 7): uvicorn on 127.0.0.1 started by the test, httpx as the client.

Every answer is validated with the same pydantic models the Store returns (synapse_core.results) and
the API's own models (bodies.py, jobs.py). The Civitai stand-in (FakeCivitai) plays the remote source.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
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
from pydantic import TypeAdapter

from synapse_civitai.fake_server import FakeCivitai, FakeFile
from synapse_core.api import create_app
from synapse_core.api.bodies import ErrorBody, JobAccepted, PluginInfo
from synapse_core.api.jobs import Job
from synapse_core.errors import InvalidInput, NotFound
from synapse_core.models import Profile, Runtime, UpdateChecks
from synapse_core.results import (
    DoctorReport,
    ImportResult,
    InitResult,
    InstallResult,
    PackDetails,
    PackSummary,
    RemoveResult,
    SearchResult,
    StatusReport,
    SwitchResult,
    UpdatePlan,
    UpdateResult,
)
from synapse_core.store import Store
from synapse_core.testing import lora_file, make_registry

SYNAPSE = Path(sys.executable).parent / "synapse"
UIS = ("a1111", "comfyui", "forge", "sdnext")
UI_PLUGINS = ",".join(UIS)
# Variables a developer may have set that would change what a subprocess sees.
_SCRUBBED_ENV = (
    "SYNAPSE_ROOT",
    "SYNAPSE_STRICT_PLUGINS",
    "SYNAPSE_DISABLE_PLUGINS",
    "SYNAPSE_DEBUG",
    "SYNAPSE_API_TOKEN",
    "CIVITAI_API_TOKEN",
)


# -- helpers (test modules are imported with --import-mode=importlib: they stay in this file) -----------------------


class LiveServer:
    """uvicorn serving ``app`` on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, app: FastAPI) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-test", daemon=True)
        self.url = ""

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn stopped while starting"
            assert time.monotonic() < deadline, "uvicorn did not start within 15 s"
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        assert not self.thread.is_alive(), "uvicorn did not stop"


Serve = Callable[[FastAPI], httpx.Client]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """``serve(app)``: start ``app`` on 127.0.0.1 and return an httpx client for its ``/api``."""
    with contextlib.ExitStack() as stack:

        def start(app: FastAPI) -> httpx.Client:
            live = stack.enter_context(LiveServer(app))
            return stack.enter_context(httpx.Client(base_url=f"{live.url}/api", timeout=30))

        yield start


def body(response: httpx.Response, status: int = 200) -> Any:
    """The JSON of a response that must have ``status``."""
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json()


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> ErrorBody:
    """The API's one error shape: ``{"error": {"code", "message"}}`` with an honest status."""
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    assert response.headers["content-type"].startswith("application/json")
    raw = response.json()
    assert set(raw["error"]) == {"code", "message"}, raw
    error = ErrorBody.model_validate(raw)
    if code is not None:
        assert error.error.code == code, raw
    assert error.error.message and "\n" not in error.error.message
    assert "Traceback" not in response.text
    return error


def wait_job(api: httpx.Client, accepted: httpx.Response, timeout: float = 30) -> Job:
    """Follow a 202 answer's job until it succeeds or fails."""
    started = JobAccepted.model_validate(body(accepted, 202))
    assert started.location == f"jobs/{started.job_id}"
    deadline = time.monotonic() + timeout
    while True:
        job = Job.model_validate(body(api.get(f"/jobs/{started.job_id}")))
        assert job.id == started.job_id and job.kind == started.kind
        if job.state in ("succeeded", "failed"):
            return job
        assert time.monotonic() < deadline, f"job {job.id} still {job.state} after {timeout} s"
        time.sleep(0.02)


def succeeded(job: Job) -> Any:
    """The result of a job that must have succeeded."""
    assert job.state == "succeeded", job.error
    assert job.error is None
    return job.result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a ``synapse`` subprocess: the four UI plugins only, no tokens."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env["SYNAPSE_LOAD_PLUGINS"] = UI_PLUGINS
    env.update(extra)
    return env


def runtime_of(root: Path) -> Runtime:
    return Runtime.model_validate_json((root / "data" / "runtime.json").read_bytes())


def active_target(root: Path, ui: str) -> str:
    return os.readlink(root / "data" / "views" / ui / "active")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """An initialised store with the four UI adapter plugins (no other entry point)."""
    registry = make_registry(entry_points=True, env={"SYNAPSE_LOAD_PLUGINS": UI_PLUGINS})
    assert sorted(registry.ui_adapters) == list(UIS), "UI adapter plugins are not installed: run 'make install'"
    store = Store(root=tmp_path / "store", registry=registry)
    store.init()
    return store


def add_local_packs(store: Store, folder: Path, *names: str) -> None:
    for seed, name in enumerate(names):
        store.import_pack(str(lora_file(folder / f"{name}.safetensors", seed=seed)))


# -- the README snippet and every endpoint ---------------------------------------------------------------------------


def test_readme_snippet_serves_every_endpoint_with_documented_shapes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    serve: Serve,
    sha256_of: Callable[[Path], str],
    assert_store_consistent: Callable[..., None],
) -> None:
    root = tmp_path / "store"
    monkeypatch.setenv("SYNAPSE_ROOT", str(root))
    monkeypatch.setenv("SYNAPSE_LOAD_PLUGINS", UI_PLUGINS)

    # the snippet of the README, as written
    from fastapi import FastAPI

    from synapse_core.api import create_store_routers

    app = FastAPI()
    for router in create_store_routers():
        app.include_router(router, prefix="/api")
    api = serve(app)

    assert_error(api.get("/store/status"), 409, "not_initialised")
    init = InitResult.model_validate(body(api.post("/store/init")))
    assert (init.root, init.created, init.uis) == (str(root), True, list(UIS))
    assert InitResult.model_validate(body(api.post("/store/init"))).created is False  # idempotent

    status = StatusReport.model_validate(body(api.get("/store/status")))
    assert [(u.ui, u.stack) for u in status.uis] == [(ui, ["global"]) for ui in UIS]
    assert (status.root, status.packs, status.blobs) == (str(root), 0, 0)

    # import: 202 with a job id; the job's result is an ImportResult, its progress counts bytes
    paper = lora_file(tmp_path / "files" / "paper.safetensors", seed=1)
    ink = lora_file(tmp_path / "files" / "ink.safetensors", seed=2)
    job = wait_job(api, api.post("/packs/import", json={"ref": str(paper)}))
    assert job.kind == "import"
    imported = ImportResult.model_validate(succeeded(job))
    assert (imported.pack, imported.source, imported.bytes_written) == ("paper", "local", paper.stat().st_size)
    assert [(r.kind, r.sha256, r.installed) for r in imported.resources] == [("lora", sha256_of(paper), True)]
    assert job.progress.done == job.progress.total == paper.stat().st_size
    imported = ImportResult.model_validate(
        succeeded(wait_job(api, api.post("/packs/import", json={"ref": str(ink), "name": "ink_wash"})))
    )
    assert imported.pack == "ink_wash"

    packs = TypeAdapter(list[PackSummary]).validate_python(body(api.get("/packs/")))
    assert [(p.name, p.provider, p.installed, p.policy) for p in packs] == [
        ("ink_wash", "local", True, "pinned"),
        ("paper", "local", True, "pinned"),
    ]
    details = PackDetails.model_validate(body(api.get("/packs/paper")))
    assert details.pack.name == "paper"
    assert details.lock.resources["main"].sha256 == sha256_of(paper)
    assert [r.installed for r in details.resources] == [True]

    installed = InstallResult.model_validate(succeeded(wait_job(api, api.post("/packs/paper/install"))))
    assert (installed.pack, installed.fetched, installed.present, installed.bytes_written) == ("paper", [], ["main"], 0)

    # use / back: each UI's stack, and the active link follows the top of the stack
    switched = SwitchResult.model_validate(body(api.post("/profiles/use", json={"pack": "paper", "uis": ["comfyui"]})))
    assert switched.uis == {"comfyui": ["global", "work__paper"]}
    switched = SwitchResult.model_validate(body(api.post("/profiles/use", json={"pack": "ink_wash"})))
    assert switched.uis["comfyui"] == ["global", "work__paper", "work__ink_wash"]
    assert switched.uis["a1111"] == ["global", "work__ink_wash"]
    assert {ui: active_target(root, ui) for ui in UIS} == dict.fromkeys(UIS, "profiles/work__ink_wash")
    switched = SwitchResult.model_validate(body(api.post("/profiles/back", json={"uis": ["comfyui"]})))
    assert switched.uis == {"comfyui": ["global", "work__paper"]}
    assert active_target(root, "comfyui") == "profiles/work__paper"
    # with sync, use is a background job whose result is the SwitchResult
    job = wait_job(api, api.post("/profiles/use", json={"pack": "paper", "uis": ["forge"], "sync": True}))
    assert job.kind == "use"
    assert SwitchResult.model_validate(succeeded(job)).uis == {"forge": ["global", "work__ink_wash", "work__paper"]}
    switched = SwitchResult.model_validate(body(api.post("/profiles/back", json={"uis": ["forge"]})))
    assert switched.uis == {"forge": ["global", "work__ink_wash"]}
    switched = SwitchResult.model_validate(body(api.post("/profiles/back")))  # no body: the default UI set
    assert switched.uis == {ui: ["global"] for ui in UIS}
    assert {ui: active_target(root, ui) for ui in UIS} == dict.fromkeys(UIS, "profiles/global")
    # (before the update check: tests/conftest.py's invariants do not know data/update-checks.json yet)
    assert_store_consistent(root)

    plan = UpdatePlan.model_validate(body(api.get("/updates/plan")))
    assert (plan.updates, plan.pinned) == ([], ["ink_wash", "paper"])
    result = UpdateResult.model_validate(body(api.post("/updates/apply", json={"all": True})))
    assert (result.applied, result.dry_run, result.plan.pinned) == ([], False, ["ink_wash", "paper"])

    found = SearchResult.model_validate(body(api.get("/search", params={"q": "PAP"})))
    assert ([p.name for p in found.local], found.remote) == (["paper"], [])
    found = SearchResult.model_validate(body(api.get("/search", params={"q": "a", "type": "checkpoint"})))
    assert found.local == []

    plugins = TypeAdapter(list[PluginInfo]).validate_python(body(api.get("/plugins")))
    by_name = {p.name: p for p in plugins}
    assert {*UIS, "local_source"} <= set(by_name)
    assert all(by_name[ui].status == "loaded" and not by_name[ui].builtin for ui in UIS)
    assert by_name["local_source"].contributes == {"source": ["local"]}

    report = DoctorReport.model_validate(body(api.post("/store/doctor")))
    assert report.problems == [] and report.plugin_failures == []
    report = DoctorReport.model_validate(body(api.post("/store/doctor", json={"verify_blobs": True})))
    assert "blob names match their bytes" in report.checks and report.problems == []

    removed = RemoveResult.model_validate(body(api.delete("/packs/ink_wash")))
    assert removed.pack == "ink_wash" and "global" in removed.profiles_changed
    assert_error(api.get("/packs/ink_wash"), 404, "not_found")
    assert [p["name"] for p in body(api.get("/packs/"))] == ["paper"]
    assert StatusReport.model_validate(body(api.get("/store/status"))).packs == 1
    UpdateChecks.model_validate_json((root / "data" / "update-checks.json").read_bytes())


# -- errors ------------------------------------------------------------------------------------------------------------


def test_errors_are_json_with_honest_statuses(store: Store, serve: Serve, tmp_path: Path) -> None:
    add_local_packs(store, tmp_path / "files", "style")
    root = store.layout.root
    api = serve(create_app(store))
    state_before = sorted(p.relative_to(root) for p in (root / "state").rglob("*") if ".git" not in p.parts)

    # 404: unknown pack (with the close names), unknown UI, unknown job
    assert "did you mean style" in assert_error(api.get("/packs/styl"), 404, "not_found").error.message
    assert_error(api.delete("/packs/nope"), 404, "not_found")
    assert_error(api.post("/packs/nope/install"), 404, "not_found")
    assert_error(api.post("/profiles/use", json={"pack": "nope"}), 404, "not_found")
    assert_error(api.post("/profiles/use", json={"pack": "style", "uis": ["photoshop"]}), 404, "not_found")
    assert_error(api.post("/updates/apply", json={"packs": ["nope"]}), 404, "not_found")
    assert_error(api.get("/jobs/0123456789abcdef"), 404, "not_found")

    # 422: bodies and query strings that do not validate
    for bad in (
        {},
        {"pack": ""},
        {"pack": 3},
        {"pack": "style", "uis": "comfyui"},
        {"pack": "style", "surprise": True},
        [],
    ):
        assert_error(api.post("/profiles/use", json=bad), 422, "invalid_request")
    assert_error(
        api.post("/profiles/use", content=b'{"pack": ', headers={"content-type": "application/json"}),
        422,
        "invalid_request",
    )
    assert_error(api.post("/packs/import", json={"ref": "x", "kind": "spaceship"}), 422, "invalid_request")
    assert_error(api.post("/packs/import", json={"ref": "x", "policy": "sometimes"}), 422, "invalid_request")
    assert_error(api.post("/packs/import", json={"ref": ""}), 422, "invalid_request")
    assert_error(api.post("/store/doctor", json={"fix": "please"}), 422, "invalid_request")
    assert_error(api.get("/search"), 422, "invalid_request")
    assert_error(api.get("/search", params={"q": "x", "type": "spaceship"}), 422, "invalid_request")
    # 422: input the store refuses
    assert_error(api.post("/updates/apply", json={}), 422, "invalid_input")  # neither packs nor all
    assert_error(api.post("/updates/apply", json={"packs": ["style"]}), 422, "invalid_input")  # pinned
    assert_error(api.post("/updates/apply", json={"all": True, "choose": ["main"]}), 422, "invalid_input")
    assert_error(api.post("/profiles/use", json={"pack": "style", "uis": ["comfyui"], "ui_set": "all"}), 422)

    # 422: names that cannot be pack names are bad input, never paths joined into the store
    for name in ("../packs/style", "a/b", "..", "work__style", "con", " style"):
        assert_error(api.post("/profiles/use", json={"pack": name}), 422, "invalid_input")
        assert_error(api.post("/updates/apply", json={"packs": [name]}), 422, "invalid_input")
        assert_error(api.post("/packs/import", json={"ref": "x", "name": name}), 422, "invalid_input")
    for name in ("..style", "a..b", "work__style", "con", "style."):
        assert_error(api.get(f"/packs/{name}"), 422, "invalid_input")
        assert_error(api.delete(f"/packs/{name}"), 422, "invalid_input")
        assert_error(api.post(f"/packs/{name}/install"), 422, "invalid_input")

    # 409: nothing to go back to
    assert_error(api.post("/profiles/back"), 409, "conflict")

    # none of it changed the store
    state_after = sorted(p.relative_to(root) for p in (root / "state").rglob("*") if ".git" not in p.parts)
    assert state_after == state_before
    assert sorted(p.name for p in (root / "data" / "views" / "comfyui" / "profiles").iterdir()) == ["global"]
    assert runtime_of(root).ui["comfyui"].stack == ["global"]


def test_unknown_paths_and_methods_answer_in_the_error_shape(store: Store, serve: Serve) -> None:
    api = serve(create_app(store))
    assert_error(api.get("/no/such/thing"), 404, "not_found")
    refused = api.put("/store/init")
    assert_error(refused, 405, "method_not_allowed")
    assert refused.headers["allow"] == "POST"


def test_a_failed_job_is_reported_and_never_lost(store: Store, serve: Serve, tmp_path: Path) -> None:
    api = serve(create_app(store))
    missing = tmp_path / "nowhere" / "gone.safetensors"
    failed = wait_job(api, api.post("/packs/import", json={"ref": str(missing)}))
    assert failed.state == "failed" and failed.result is None
    assert failed.error is not None and failed.error.code == "invalid_input"
    assert str(missing) in failed.error.message

    empty = tmp_path / "empty"
    empty.mkdir()
    no_models = wait_job(api, api.post("/packs/import", json={"ref": str(empty)}))
    assert no_models.state == "failed" and no_models.error is not None
    assert "holds no model files" in no_models.error.message

    lora = lora_file(tmp_path / "files" / "style.safetensors")
    assert ImportResult.model_validate(succeeded(wait_job(api, api.post("/packs/import", json={"ref": str(lora)}))))
    taken = wait_job(api, api.post("/packs/import", json={"ref": str(lora)}))  # the name is taken now
    assert taken.state == "failed" and taken.error is not None and "style" in taken.error.message

    # later jobs do not push earlier failures out
    for job in (failed, no_models, taken):
        assert Job.model_validate(body(api.get(f"/jobs/{job.id}"))) == job
    assert [p["name"] for p in body(api.get("/packs/"))] == ["style"]


def test_api_on_an_uninitialised_store_says_so(tmp_path: Path, serve: Serve) -> None:
    registry = make_registry(entry_points=True, env={"SYNAPSE_LOAD_PLUGINS": UI_PLUGINS})
    api = serve(create_app(Store(root=tmp_path / "store", registry=registry)))
    for response in (
        api.get("/store/status"),
        api.get("/packs/"),
        api.get("/packs/style"),
        api.post("/packs/import", json={"ref": str(tmp_path)}),
        api.post("/packs/style/install"),
        api.post("/profiles/use", json={"pack": "style"}),
        api.post("/profiles/back"),
        api.get("/updates/plan"),
        api.get("/search", params={"q": "x"}),
        api.post("/store/doctor"),
    ):
        assert_error(response, 409, "not_initialised")
    assert not (tmp_path / "store" / "state").exists()


def test_store_refuses_pack_names_that_are_paths(store: Store, tmp_path: Path) -> None:
    add_local_packs(store, tmp_path / "files", "style")
    with pytest.raises((NotFound, InvalidInput)):
        store.show("../packs/style")


# -- the Civitai source through the API ------------------------------------------------------------------------------


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCivitai]:
    """A fake Civitai on 127.0.0.1 that the in-process Civitai client talks to."""
    with FakeCivitai() as server:
        monkeypatch.setenv("SYNAPSE_CIVITAI_URL", server.api_url)
        monkeypatch.setenv("SYNAPSE_CIVITAI_BACKOFF", "0.01")
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
        monkeypatch.delenv("CIVITAI_API_TOKEN", raising=False)
        yield server


@pytest.fixture
def civitai_api(tmp_path: Path, fake: FakeCivitai, serve: Serve) -> httpx.Client:
    registry = make_registry(entry_points=True, env={"SYNAPSE_LOAD_PLUGINS": f"{UI_PLUGINS},civitai"})
    assert "civitai" in registry.sources, "the Civitai plugin is not installed: run 'make install'"
    store = Store(root=tmp_path / "store", registry=registry)
    store.init()
    return serve(create_app(store))


def test_ambiguous_update_is_409_with_the_candidates(civitai_api: httpx.Client, fake: FakeCivitai) -> None:
    api = civitai_api
    fake.add_model(7100, name="Lantern Glow", type="LORA")
    fake.add_version(7100, 7101, name="v1", files=[FakeFile(71011, "glow_v1.safetensors", size=40_000)])
    job = wait_job(
        api, api.post("/packs/import", json={"ref": "civitai:7100", "policy": "follow_latest", "sync": True})
    )
    imported = ImportResult.model_validate(succeeded(job))
    name, resource = imported.pack, imported.resources[0].id
    assert imported.source == "civitai" and imported.resources[0].installed
    assert job.progress.done == job.progress.total == 40_000
    assert UpdatePlan.model_validate(body(api.get("/updates/plan"))).current == [name]

    # the newer version has two files of the same kind and no metadata to choose by
    fake.add_version(
        7100,
        7102,
        name="v2",
        files=[
            FakeFile(71021, "glow_v2_a.safetensors", size=30_000),
            FakeFile(71022, "glow_v2_b.safetensors", size=31_000),
        ],
    )
    plan = UpdatePlan.model_validate(body(api.get("/updates/plan")))
    assert [(u.pack, u.latest_version_id) for u in plan.updates] == [(name, "7102")]
    refused = api.post("/updates/apply", json={"packs": [name]})
    error = assert_error(refused, 409, "ambiguous_update")
    assert "71021" in error.error.message and "71022" in error.error.message
    assert error.plan is not None
    in_body = UpdatePlan.model_validate(error.plan)
    [change] = in_body.updates[0].resources
    assert change.ambiguous and {c.file_id for c in change.candidates} == {"71021", "71022"}
    assert PackDetails.model_validate(body(api.get(f"/packs/{name}"))).lock.resources[resource].file_id == "71011"

    # a dry run shows the ambiguous plan without failing; the choice applies it (with sync: a job)
    dry = UpdateResult.model_validate(body(api.post("/updates/apply", json={"packs": [name], "dry_run": True})))
    assert dry.dry_run and dry.applied == [] and dry.plan.updates[0].resources[0].ambiguous
    choice = [f"{resource}=71021"]
    job = wait_job(api, api.post("/updates/apply", json={"packs": [name], "choose": choice, "sync": True}))
    assert job.kind == "update"
    applied = UpdateResult.model_validate(succeeded(job))
    assert (applied.applied, applied.installed) == ([name], [name])
    assert job.progress.done == job.progress.total == 30_000
    details = PackDetails.model_validate(body(api.get(f"/packs/{name}")))
    assert details.lock.resources[resource].file_id == "71021" and all(r.installed for r in details.resources)
    assert UpdatePlan.model_validate(body(api.get("/updates/plan"))).current == [name]


def test_choosing_the_second_of_two_candidates_installs_it(civitai_api: httpx.Client, fake: FakeCivitai) -> None:
    api = civitai_api
    fake.add_model(7300, name="Twin Files", type="LORA")
    fake.add_version(7300, 7301, name="v1", files=[FakeFile(73011, "twin_v1.safetensors", size=10_000)])
    job = wait_job(api, api.post("/packs/import", json={"ref": "civitai:7300", "policy": "follow_latest"}))
    imported = ImportResult.model_validate(succeeded(job))
    name, resource = imported.pack, imported.resources[0].id
    fake.add_version(
        7300,
        7302,
        name="v2",
        files=[
            FakeFile(73021, "twin_v2_a.safetensors", size=11_000),
            FakeFile(73022, "twin_v2_b.safetensors", size=12_000),
        ],
    )
    assert_error(api.post("/updates/apply", json={"packs": [name]}), 409, "ambiguous_update")
    choice = [f"{resource}=73022"]
    job = wait_job(api, api.post("/updates/apply", json={"packs": [name], "choose": choice, "sync": True}))
    assert UpdateResult.model_validate(succeeded(job)).installed == [name]
    details = PackDetails.model_validate(body(api.get(f"/packs/{name}")))
    assert details.lock.resources[resource].file_id == "73022" and all(r.installed for r in details.resources)


def test_source_failures_are_502_or_a_failed_job_with_the_code(civitai_api: httpx.Client, fake: FakeCivitai) -> None:
    api = civitai_api
    fake.add_model(7200, name="Harbor Light", type="LORA")
    fake.add_version(7200, 7201, name="v1", files=[FakeFile(72011, "harbor_v1.safetensors", size=20_000)])
    name = ImportResult.model_validate(
        succeeded(wait_job(api, api.post("/packs/import", json={"ref": "civitai:7200", "policy": "follow_latest"})))
    ).pack

    # Civitai answers 500 to every question: the plan names the failure, applying it is 502
    fake.inject(r"^/api/v1/models", status=500, times=None)
    plan = UpdatePlan.model_validate(body(api.get("/updates/plan")))
    assert [note.pack for note in plan.failed] == [name]
    assert_error(api.post("/updates/apply", json={"packs": [name]}), 502, "source_failed")
    failed = wait_job(api, api.post("/packs/import", json={"ref": "civitai:7200", "name": "again"}))
    assert failed.state == "failed" and failed.error is not None and failed.error.code == "source_failed"
    fake.clear_injections()

    # a model Civitai does not know (404): the import job fails and says the upstream is gone
    gone = wait_job(api, api.post("/packs/import", json={"ref": "civitai:999999"}))
    assert gone.state == "failed" and gone.error is not None and gone.error.code == "upstream_gone"
    assert "999999" in gone.error.message

    # the file's download answers 404: the install job fails, the pack is kept and marked removed upstream
    fake.inject(r"^/api/download/models/", status=404, times=None)
    install = wait_job(api, api.post(f"/packs/{name}/install"))
    assert install.state == "failed" and install.error is not None and install.error.code == "upstream_gone"
    details = PackDetails.model_validate(body(api.get(f"/packs/{name}")))
    assert details.pack.upstream == "removed" and not details.resources[0].installed
    assert Job.model_validate(body(api.get(f"/jobs/{install.id}"))) == install
    # with the file missing, using the pack is refused as bad input and nothing is switched
    assert_error(api.post("/profiles/use", json={"pack": name}), 422, "invalid_input")


# -- concurrency ---------------------------------------------------------------------------------------------------------


def test_two_clients_switching_at_once_keep_runtime_and_links_consistent(
    store: Store, serve: Serve, tmp_path: Path
) -> None:
    add_local_packs(store, tmp_path / "files", "paper", "ink")
    root = store.layout.root
    first = serve(create_app(store))
    second = stack_client = httpx.Client(base_url=first.base_url, timeout=30)
    with stack_client:
        for _ in range(4):
            barrier = threading.Barrier(2)
            answers: dict[str, httpx.Response] = {}

            def switch(client: httpx.Client, pack: str, answers: dict[str, httpx.Response], barrier=barrier) -> None:
                barrier.wait()
                answers[pack] = client.post("/profiles/use", json={"pack": pack})

            threads = [
                threading.Thread(target=switch, args=(first, "paper", answers)),
                threading.Thread(target=switch, args=(second, "ink", answers)),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            results = [SwitchResult.model_validate(body(answers[pack])) for pack in ("paper", "ink")]

            runtime = runtime_of(root)
            stacks = {ui: runtime.ui[ui].stack for ui in UIS}
            final = stacks["a1111"]
            assert all(stack == final for stack in stacks.values()), stacks
            assert final[-1] in ("work__paper", "work__ink")
            # serialised: the later switch saw the earlier one (no lost update)
            shorter, longer = sorted((r.uis["a1111"] for r in results), key=len)
            assert longer == final and shorter == final[: len(shorter)] and len(shorter) < len(longer)
            for ui in UIS:
                assert active_target(root, ui) == f"profiles/{final[-1]}"
                assert (root / "data" / "views" / ui / "active").resolve().is_dir()
    assert DoctorReport.model_validate(body(first.post("/store/doctor"))).problems == []


def test_cli_and_api_import_at_the_same_time(
    store: Store, serve: Serve, tmp_path: Path, assert_store_consistent: Callable[..., None]
) -> None:
    root = store.layout.root
    api = serve(create_app(store))
    files = tmp_path / "files"
    cli_file = lora_file(files / "from_cli.safetensors", seed=100)
    api_files = [lora_file(files / f"from_api_{n}.safetensors", seed=n) for n in range(5)]

    cli = subprocess.Popen(
        [str(SYNAPSE), "--root", str(root), "import", str(cli_file), "--json"],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        accepted = [api.post("/packs/import", json={"ref": str(path)}) for path in api_files]
        jobs = [wait_job(api, response) for response in accepted]
        out, err = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 0, err
    assert ImportResult.model_validate_json(out).pack == "from_cli"
    assert sorted(ImportResult.model_validate(succeeded(job)).pack for job in jobs) == [
        f"from_api_{n}" for n in range(5)
    ]

    names = {"from_cli", *(f"from_api_{n}" for n in range(5))}
    global_profile = Profile.model_validate_json((root / "state" / "profiles" / "global" / "profile.json").read_bytes())
    assert set(global_profile.packs) == names and len(global_profile.packs) == len(names)
    assert {p["name"] for p in body(api.get("/packs/"))} == names
    assert DoctorReport.model_validate(body(api.post("/store/doctor"))).problems == []
    assert_store_consistent(root)


# -- safe defaults -------------------------------------------------------------------------------------------------------


def test_foreign_hosts_and_cross_origin_changes_are_refused(store: Store, serve: Serve, tmp_path: Path) -> None:
    add_local_packs(store, tmp_path / "files", "paper", "ink")
    config = store.files.config()
    config.allowed_origins = ["http://ui.example:3000"]
    store.files.save_config(config)
    root = store.layout.root
    api = serve(create_app(store))  # the routers read allowed_origins from the store's config
    host = api.base_url.netloc.decode()
    port = host.rsplit(":", 1)[1]

    # DNS rebinding: a Host that is not the served host or localhost
    for evil in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", f"localhost.evil.example:{port}"):
        assert_error(api.get("/store/status", headers={"Host": evil}), 403, "refused")
        assert_error(api.post("/profiles/use", json={"pack": "paper"}, headers={"Host": evil}), 403, "refused")
    assert StatusReport.model_validate(body(api.get("/store/status", headers={"Host": f"localhost:{port}"})))

    # a page on another origin cannot change state
    for origin in ("http://evil.example", "null", "http://127.0.0.1:1", f"http://localhost.evil.example:{port}"):
        headers = {"Origin": origin}
        assert_error(api.post("/profiles/use", json={"pack": "paper"}, headers=headers), 403, "refused")
        assert_error(api.delete("/packs/ink", headers=headers), 403, "refused")
        assert_error(api.post("/packs/import", json={"ref": str(tmp_path)}, headers=headers), 403, "refused")
        # reading is fine from anywhere (no CORS headers: the page cannot read the answer anyway)
        assert [p["name"] for p in body(api.get("/packs/", headers=headers))] == ["ink", "paper"]
    no_origin_cross_site = {"Sec-Fetch-Site": "cross-site"}
    assert_error(api.post("/profiles/use", json={"pack": "paper"}, headers=no_origin_cross_site), 403, "refused")
    assert runtime_of(root).ui["comfyui"].stack == ["global"]
    assert store.files.pack_names() == ["ink", "paper"]

    # same origin, an origin allowed in state/config.json, and non-browser clients may
    same = SwitchResult.model_validate(
        body(api.post("/profiles/use", json={"pack": "paper"}, headers={"Origin": f"http://{host}"}))
    )
    assert same.uis["comfyui"] == ["global", "work__paper"]
    allowed = api.post("/profiles/use", json={"pack": "ink"}, headers={"Origin": "http://ui.example:3000"})
    assert SwitchResult.model_validate(body(allowed)).uis["comfyui"] == ["global", "work__paper", "work__ink"]
    assert SwitchResult.model_validate(body(api.post("/profiles/back", json={"uis": ["comfyui"]})))


def test_a_token_is_required_when_the_app_has_one(store: Store, serve: Serve) -> None:
    api = serve(create_app(store, allowed_hosts=["synapse.lan"], token="t"))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic t"}, {"Authorization": "t"}):
        assert_error(api.get("/store/status", headers=headers), 401, "refused")
        assert_error(api.post("/store/init", headers=headers), 401, "refused")
    good = {"Authorization": "Bearer t"}
    assert StatusReport.model_validate(body(api.get("/store/status", headers=good)))
    assert StatusReport.model_validate(body(api.get("/store/status", headers={**good, "Host": "synapse.lan:8765"})))
    assert InitResult.model_validate(body(api.post("/store/init", headers=good))).created is False
    assert_error(api.get("/store/status", headers={**good, "Host": "evil.example"}), 403, "refused")


# -- synapse serve -------------------------------------------------------------------------------------------------------


def test_serve_beyond_loopback_without_a_token_refuses_to_start(store: Store) -> None:
    port = free_port()
    result = subprocess.run(
        [str(SYNAPSE), "--root", str(store.layout.root), "serve", "--host", "0.0.0.0", "--port", str(port)],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "SYNAPSE_API_TOKEN" in lines[0] and "0.0.0.0" in lines[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


EXPECTED_OPERATIONS = {
    ("/api/store/init", "post"): "InitResult",
    ("/api/store/status", "get"): "StatusReport",
    ("/api/store/doctor", "post"): "DoctorReport",
    ("/api/packs/", "get"): "PackSummary",
    ("/api/packs/{name}", "get"): "PackDetails",
    ("/api/packs/import", "post"): "JobAccepted",
    ("/api/packs/{name}/install", "post"): "JobAccepted",
    ("/api/packs/{name}", "delete"): "RemoveResult",
    ("/api/profiles/use", "post"): "SwitchResult",
    ("/api/profiles/back", "post"): "SwitchResult",
    ("/api/updates/plan", "get"): "UpdatePlan",
    ("/api/updates/apply", "post"): "UpdateResult",
    ("/api/search", "get"): "SearchResult",
    ("/api/plugins", "get"): "PluginInfo",
    ("/api/jobs/{job_id}", "get"): "Job",
}


def _refs(schema: Any) -> set[str]:
    """Every component a (response) schema refers to."""
    text = json.dumps(schema)
    return {part.split('"')[0] for part in text.split("#/components/schemas/")[1:]}


def test_synapse_serve_answers_and_documents_every_model(store: Store, tmp_path: Path) -> None:
    add_local_packs(store, tmp_path / "files", "paper")
    port = free_port()
    server = subprocess.Popen(
        [str(SYNAPSE), "--root", str(store.layout.root), "serve", "--port", str(port)],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api", timeout=10) as api:
            deadline = time.monotonic() + 30
            while True:
                assert server.poll() is None, f"synapse serve exited: {server.communicate()}"
                try:
                    status = api.get("/store/status")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "synapse serve did not answer within 30 s"
                    time.sleep(0.05)
            report = StatusReport.model_validate(body(status))
            assert report.root == str(store.layout.root) and report.packs == 1
            assert [p.name for p in TypeAdapter(list[PackSummary]).validate_python(body(api.get("/packs/")))] == [
                "paper"
            ]
            assert_error(api.get("/packs/nope"), 404, "not_found")
            assert_error(api.get("/nothing/here"), 404, "not_found")
            assert_error(api.get("/store/status", headers={"Host": "evil.example"}), 403, "refused")

            openapi = body(api.get("/openapi.json"))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            _, err = server.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            _, err = server.communicate()
    # uvicorn shuts down cleanly, then re-raises SIGTERM (exit status -15)
    assert server.returncode in (0, -signal.SIGTERM), err
    assert "Traceback" not in err and f"http://127.0.0.1:{port}/api" in err

    components = openapi["components"]["schemas"]
    for model in (
        "ErrorBody",
        "ErrorDetail",
        "ImportBody",
        "UseBody",
        "BackBody",
        "ApplyBody",
        "DoctorBody",
        "ResourceStatus",
        "UIStatus",
        "PackUpdate",
        "FileChoice",
        *EXPECTED_OPERATIONS.values(),
    ):
        assert model in components, f"{model} is not documented"
    documented = {(path, method) for path, item in openapi["paths"].items() for method in item}
    assert set(EXPECTED_OPERATIONS) <= documented, set(EXPECTED_OPERATIONS) - documented
    for (path, method), model in EXPECTED_OPERATIONS.items():
        operation = openapi["paths"][path][method]
        success = "202" if model == "JobAccepted" else "200"
        assert model in _refs(operation["responses"][success]), (path, method, operation["responses"][success])
        for status in ("403", "404", "409", "422"):
            assert _refs(operation["responses"][status]) == {"ErrorBody"}, (path, method, status)
    assert _refs(openapi["paths"]["/api/packs/import"]["post"]["requestBody"]) == {"ImportBody"}
    assert "JobAccepted" in _refs(openapi["paths"]["/api/profiles/use"]["post"]["responses"]["202"])


def test_the_cli_does_not_import_the_api_extra(store: Store) -> None:
    probe = (
        "import sys\n"
        "from synapse_core.cli.main import main\n"
        f"sys.argv = ['synapse', '--root', {str(store.layout.root)!r}, 'status', '--json']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "loaded = sorted(m for m in ('fastapi', 'uvicorn', 'starlette') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=cli_env(), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
