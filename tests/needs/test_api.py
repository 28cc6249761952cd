"""POST /api/workflows/needs and /api/workflows/install over real HTTP (uvicorn on 127.0.0.1): the
same report as the CLI's --json, from a JSON body or an uploaded image (the file as the body)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from needs.kit import comfy_png, model_record, ui_node, ui_workflow_1

from synapse_civitai.fake_server import FakeCivitai, FakeFile
from synapse_core.api import create_app
from synapse_core.api.jobs import Job
from synapse_core.store import Store
from synapse_core.testing import write_safetensors
from synapse_core.workflows.report import InstallForResult, NeedsReport


@pytest.fixture
def api(store: Store) -> Iterator[httpx.Client]:
    server = uvicorn.Server(uvicorn.Config(create_app(store), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}/api", timeout=30) as client:
        yield client
    server.should_exit = True
    thread.join(15)


@pytest.fixture
def workflow(fake: FakeCivitai, tmp_path: Path) -> dict[str, object]:
    content = write_safetensors(tmp_path / "m.safetensors", {"w": (500,)}, payload=b"\x01" * 1000).read_bytes()
    fake.add_model(940, name="Model 940", type="Checkpoint")
    fake.add_version(
        940,
        941,
        name="v1",
        files=[FakeFile(9400, "m.safetensors", content=content, primary=True, override_name="m.safetensors")],
    )
    url = f"{fake.api_url}/api/download/models/941"
    return ui_workflow_1(
        [
            ui_node(1, "CheckpointLoaderSimple", ["m.safetensors"]),
            ui_node(2, "LoraLoader", ["absent.safetensors", 1, 1]),
        ],
        models=[model_record("m.safetensors", url, "checkpoints")],
    )


def wait(api: httpx.Client, accepted: httpx.Response) -> Job:
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    deadline = time.monotonic() + 30
    while True:
        job = Job.model_validate(api.get(f"/jobs/{job_id}").json())
        if job.state in ("succeeded", "failed"):
            return job
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_needs_from_json_raw_image_and_upload_match_the_cli(api: httpx.Client, cli, workflow, tmp_path: Path) -> None:
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(workflow))
    from_cli = NeedsReport.model_validate_json(cli("needs", path, "--json", "--ui", "comfyui").stdout)
    as_json = api.post("/workflows/needs", params={"ui": "comfyui"}, json=workflow)
    assert as_json.status_code == 200, as_json.text
    report = NeedsReport.model_validate(as_json.json())
    assert report.models == from_cli.models and report.file == "request body"
    assert [m.status for m in report.models] == ["findable", "unresolvable"]
    image = comfy_png(workflow, None)
    raw = api.post("/workflows/needs", content=image, headers={"content-type": "image/png"})
    assert NeedsReport.model_validate(raw.json()).models == from_cli.models
    octets = api.post("/workflows/needs", content=image, headers={"content-type": "application/octet-stream"})
    assert NeedsReport.model_validate(octets.json()).container == "png"
    # a form's content type is refused for every state change (a cross-site form can send it)
    form = api.post("/workflows/needs", files={"file": ("shared.png", image, "image/png")})
    assert form.status_code == 415 and form.json()["error"]["code"] == "refused"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"json": {"hello": 1}}, "JSON, but not a workflow"),
        ({"content": b""}, "the request has no body"),
        ({"content": b"\x89PNG\r\n\x1a\n\x00\x00", "headers": {"content-type": "image/png"}}, "truncated"),
    ],
)
def test_bad_bodies_are_422_with_one_line(api: httpx.Client, kwargs, message: str) -> None:
    answer = api.post("/workflows/needs", **kwargs)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_input" and message in error["message"] and "\n" not in error["message"]


def test_install_needs_the_callers_consent_then_fetches(
    api: httpx.Client, store: Store, fake: FakeCivitai, workflow
) -> None:
    refused = api.post("/workflows/install", json=workflow)
    assert refused.status_code == 422 and "accept=NAME" in refused.json()["error"]["message"]
    skipped = wait(api, api.post("/workflows/install", params={"accept": "not-this-one"}, json=workflow))
    assert skipped.state == "succeeded" and InstallForResult.model_validate(skipped.result).done == []
    assert not fake.requests_for("cdn")
    job = wait(api, api.post("/workflows/install", params={"accept": "m.safetensors"}, json=workflow))
    assert job.state == "succeeded", job.error
    result = InstallForResult.model_validate(job.result)
    assert [i.name for i in result.done] == ["m.safetensors"]
    assert [m.status for m in result.report.models] == ["present", "unresolvable"]
    assert (store.layout.active_link("comfyui") / "models/checkpoints/m.safetensors").is_file()
