"""/workflows: what a workflow or image needs, and fetching it (the CLI's ``needs`` and ``install --for``).

The file is the request body: the workflow JSON itself, or any file's bytes with its own content
type (``image/png``, ``image/jpeg``, ``image/webp``, ``application/octet-stream``): what
``fetch(url, {method: "POST", body: file})`` sends. Form content types (multipart, url-encoded,
text/plain) are refused for every state change by the request guard, since a cross-site form can
send them. Bodies larger than the reader accepts are refused before they are read in full.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from synapse_core.api.bodies import JobAccepted
from synapse_core.errors import InvalidInput
from synapse_core.store import Store
from synapse_core.workflows.containers import MAX_FILE_BYTES
from synapse_core.workflows.report import InstallForResult, NeedsReport

if TYPE_CHECKING:
    from synapse_core.api.routes import Api

_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object", "description": "A workflow (UI or API format)"}},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


async def _file(request: Request) -> tuple[bytes, str]:
    """The body's bytes and a label for messages; InvalidInput for a body too large or empty."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise InvalidInput(
                f"the body is larger than {MAX_FILE_BYTES >> 20} MiB; not a workflow or an image Synapse reads"
            )
        chunks.append(chunk)
    if not size:
        raise InvalidInput(
            "the request has no body: send the workflow JSON, or the image's bytes with its content type"
        )
    return b"".join(chunks), "request body"


def workflow_routes(r: APIRouter, api: Api) -> APIRouter:
    """Add the /workflows routes to ``r`` (``api`` is the routes module's ``Api``)."""

    @r.post("/needs", response_model=NeedsReport, openapi_extra=_BODY)
    async def needs(
        request: Request,
        ui: str | None = Query(default=None, description="The UI whose active view is checked."),
        offline: bool = Query(default=False, description="Do not ask sources."),
    ) -> NeedsReport:
        """Every model the workflow or image names, with its status (the CLI's ``needs --json``)."""
        from synapse_core.workflows.service import Workflows

        data, label = await _file(request)
        resolution = await run_in_threadpool(Workflows(api.store, offline=offline).needs, data, label, ui)
        return resolution.report

    @r.post("/install", status_code=202, response_model=JobAccepted, openapi_extra=_BODY)
    async def install(
        request: Request,
        ui: str | None = Query(default=None, description="The UI whose active view is checked."),
        accept: Annotated[
            list[str] | None, Query(description="Names of models (as the needs report gives them) to fetch.")
        ] = None,
        accept_all: bool = Query(default=False, description="Fetch every model the needs report offers."),
    ) -> JobAccepted:
        """Fetch what the file needs in the background; poll the job for an InstallForResult.

        Nothing is fetched that the caller did not name: pass ``accept`` for each model shown to the
        user (from ``POST /workflows/needs``), or ``accept_all=true`` after showing the whole list.
        """
        from synapse_core.workflows.service import Workflows

        if not accept and not accept_all:
            raise InvalidInput(
                "name the models to fetch with accept=NAME (from POST /workflows/needs), or pass accept_all=true"
            )
        from synapse_core.workflows.read import read_file

        data, label = await _file(request)
        api.store.layout.require_initialised()
        read_file(data, label, api.store.registry.graph_vocabularies, ui)  # bad input: 422 now, not a failed job
        accepted = None if accept_all else set(accept or ())

        def run(store: Store) -> InstallForResult:
            service = Workflows(store)
            return service.install(service.needs(data, label, ui), accepted)

        return api.start("install-for", run)

    return r
