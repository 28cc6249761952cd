"""A property-based run against the API's OpenAPI schema (schemathesis): no operation answers 5xx (issue 7).

The schema is the one the app serves (checked against the live server); requests go over real HTTP to
uvicorn on 127.0.0.1, serving a temp store with the four UI plugins and two local packs. Both valid and
invalid requests are generated (schemathesis' positive and negative modes). Background jobs started by a
202 answer are followed to their end: a job that fails with code "internal" is the job's 500.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from synapse_core.api import create_app
from synapse_core.api.jobs import Job
from synapse_core.store import Store
from synapse_core.testing import lora_file, make_registry

UI_PLUGINS = "a1111,comfyui,forge,sdnext"

# The schema, from an app over a store that does not exist (building the schema reads nothing).
SCHEMA_APP = create_app(Store(root=Path("/nonexistent/synapse-openapi-only"), registry=make_registry()))
schema = schemathesis.openapi.from_dict(SCHEMA_APP.openapi())


class Live:
    """The app over a real store, served by uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, root: Path, files: Path) -> None:
        registry = make_registry(entry_points=True, env={"SYNAPSE_LOAD_PLUGINS": UI_PLUGINS})
        self.store = Store(root=root, registry=registry)
        self.store.init()
        self.files = files
        self.model = lora_file(files / "models" / "sketch.safetensors", seed=7)
        for seed, name in enumerate(("paper", "ink")):
            self.store.import_pack(str(lora_file(files / f"{name}.safetensors", seed=seed)))
        (files / "empty").mkdir()
        config = uvicorn.Config(create_app(self.store), host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-schema", daemon=True)
        self.url = ""

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)

    def safe_ref(self, generated: str) -> str:
        """The import job reads local paths on the server's machine: a generated ref such as "/", "~" or
        "." would walk the whole disk (or the checkout) in the background. URL-like refs go to the sources as
        generated (no source plugin that talks to the network is loaded); every other ref becomes, by its hash,
        a model file, a missing file or an empty folder under the test's temp folder."""
        if "://" in generated and not generated.lower().startswith("file:"):
            return generated
        choices = (self.model, self.files / "missing.safetensors", self.files / "empty", self.files / "models")
        return str(choices[hashlib.sha256(generated.encode()).digest()[0] % len(choices)])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    base = tmp_path_factory.mktemp("api-schema")
    server = Live(base / "store", base / "files")
    server.start()
    try:
        served = httpx.get(f"{server.url}/api/openapi.json", timeout=10).json()
        assert served == schema.raw_schema, "the served OpenAPI schema is not the one the tests were generated from"
        yield server
    finally:
        server.stop()


def follow_job(url: str, job_id: str) -> Job:
    deadline = time.monotonic() + 30
    while True:
        job = Job.model_validate(httpx.get(f"{url}/api/jobs/{job_id}", timeout=10).json())
        if job.state in ("succeeded", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.02)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_request_makes_the_api_fail(case: schemathesis.Case, live: Live) -> None:
    if (
        case.operation.path == "/api/packs/import"
        and isinstance(case.body, dict)
        and isinstance(case.body.get("ref"), str)
    ):
        case.body["ref"] = live.safe_ref(case.body["ref"])
    response = case.call(base_url=live.url, timeout=30)
    assert response.status_code < 500, f"{case.operation.label}: {response.status_code} {response.text[:500]}"
    case.validate_response(response, checks=[not_a_server_error])
    if response.status_code == 202:
        job = follow_job(live.url, response.json()["job_id"])
        assert job.state in ("succeeded", "failed"), f"job {job.id} ({job.kind}) is still {job.state}"
        assert job.error is None or job.error.code != "internal", f"{case.operation.label}: job {job.error}"
