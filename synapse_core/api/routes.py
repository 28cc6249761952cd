"""The routers: one per area, each a thin shell over the Store."""

from __future__ import annotations

from collections.abc import Callable, Collection, Coroutine
from typing import Any

import attrs
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from synapse_core.api.bodies import (
    ApplyBody,
    BackBody,
    DoctorBody,
    ErrorBody,
    ImportBody,
    JobAccepted,
    PluginInfo,
    UseBody,
)
from synapse_core.api.jobs import Job, JobManager, JobProgressReporter
from synapse_core.api.security import RequestGuard, read_bounded_body
from synapse_core.api.web_routes import web_routers
from synapse_core.api.workflow_routes import workflow_routes
from synapse_core.errors import (
    Conflict,
    IntegrityError,
    InvalidInput,
    NotFound,
    NotInitialised,
    SourceError,
    SynapseError,
    UpstreamGone,
)
from synapse_core.kinds import AssetKind
from synapse_core.names import check_pack_name
from synapse_core.results import (
    DoctorReport,
    InitResult,
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
from synapse_core.updates import AmbiguousUpdate

ERROR_STATUS: list[tuple[type[SynapseError], int]] = [
    (NotFound, 404),
    (InvalidInput, 422),
    (AmbiguousUpdate, 409),
    (NotInitialised, 409),
    (Conflict, 409),
    (UpstreamGone, 424),
    (SourceError, 502),
    (IntegrityError, 502),
]
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422, 424, 502)}


def error_response(status: int, code: str, message: str, plan: BaseModel | None = None) -> JSONResponse:
    """The one error shape of the API."""
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if plan is not None:
        body["plan"] = plan.model_dump(mode="json")
    return JSONResponse(status_code=status, content=body)


def pack_name(name: str) -> str:
    """A pack name from a request: one that could not name a pack (``..``, ``/``) is bad input (422),
    never a path joined into the store."""
    return check_pack_name(name)


def status_of(exc: SynapseError) -> int:
    """The HTTP status of an error, by its class."""
    return next((status for cls, status in ERROR_STATUS if isinstance(exc, cls)), 400)


class SynapseRoute(APIRoute):
    """Maps Synapse errors, validation errors and HTTP errors to the API's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        guards: list[Callable[[Request], None]] = [  # the guard, or its check_request (routes without a token)
            d.dependency
            for d in self.dependencies
            if d.dependency is not None
            and (
                isinstance(d.dependency, RequestGuard)
                or isinstance(getattr(d.dependency, "__self__", None), RequestGuard)
            )
        ]

        async def route(request: Request) -> Response:
            try:
                for guard in guards:  # before the body is read: a refused request sends it in vain
                    guard(request)
                await read_bounded_body(request)
                return await handler(request)
            except AmbiguousUpdate as exc:
                return error_response(409, exc.code, exc.message, exc.plan)
            except SynapseError as exc:
                return error_response(status_of(exc), exc.code, exc.message)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                where = ".".join(str(p) for p in first.get("loc", ()))
                return error_response(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")
            except HTTPException as exc:
                return error_response(exc.status_code, "refused", str(exc.detail))

        return route


class Api:
    """What every route needs: the store, its job manager and the request guard."""

    def __init__(self, store: Store | None, jobs: JobManager) -> None:
        self._store = store
        self.jobs = jobs

    @property
    def store(self) -> Store:
        """The store (SYNAPSE_ROOT or ~/.synapse unless one was given)."""
        if self._store is None:
            self._store = Store()
        return self._store

    def start(self, kind: str, work: Callable[[Store], BaseModel]) -> JobAccepted:
        """Run ``work`` on a Store of its own (same root and plugins) that reports progress."""
        root, registry = self.store.layout.root, self.store.registry

        def run(progress: JobProgressReporter) -> BaseModel:
            return work(Store(root=root, registry=registry, progress=progress))

        job = self.jobs.submit(kind, run)
        return JobAccepted(job_id=job.id, kind=kind, location=f"jobs/{job.id}")


def create_store_routers(
    store: Store | None = None,
    *,
    allowed_hosts: Collection[str] = (),
    allowed_origins: Collection[str] | None = None,
    token: str | None = None,
    jobs: JobManager | None = None,
) -> list[APIRouter]:
    """The routers of the Synapse API, ready for ``app.include_router(router, prefix="/api")``.

    Requests are refused unless their Host is loopback or in ``allowed_hosts``;
    state-changing cross-origin requests are refused unless the origin is allowed
    (default: the store config's ``allowed_origins``); with ``token``, every request
    needs ``Authorization: Bearer <token>``.
    """
    api = Api(store, jobs or JobManager())
    if allowed_origins is None:
        allowed_origins = _config_origins(store)
    guard = RequestGuard(allowed_hosts, allowed_origins, token)

    def router(prefix: str, tag: str) -> APIRouter:
        return APIRouter(
            prefix=prefix, tags=[tag], route_class=SynapseRoute, dependencies=[Depends(guard)], responses=ERRORS
        )

    def open_router(prefix: str, tag: str) -> APIRouter:  # no token: the route that takes it
        return APIRouter(
            prefix=prefix,
            tags=[tag],
            route_class=SynapseRoute,
            dependencies=[Depends(guard.check_request)],
            responses=ERRORS,
        )

    routers = [
        _store_routes(router("/store", "store"), api),
        _pack_routes(router("/packs", "packs"), api),
        _profile_routes(router("/profiles", "profiles"), api),
        _update_routes(router("/updates", "updates"), api),
        _misc_routes(router("", "misc"), api),
        *web_routers(api, guard, router, open_router),
        workflow_routes(router("/workflows", "workflows"), api),
    ]
    return routers


def _config_origins(store: Store | None) -> list[str]:
    try:
        target = store or Store()
        return list(target.files.config().allowed_origins) if target.layout.is_initialised() else []
    except SynapseError:
        return []


def _store_routes(r: APIRouter, api: Api) -> APIRouter:
    @r.post("/init", response_model=InitResult)
    def init() -> InitResult:
        """Create the store (idempotent)."""
        return api.store.init()

    @r.get("/status", response_model=StatusReport)
    def status() -> StatusReport:
        """Each UI's stack, active view, shadowed entries and missing files."""
        return api.store.status()

    @r.post("/doctor", response_model=DoctorReport)
    def doctor(body: DoctorBody | None = None) -> DoctorReport:
        """Check (and with fix, repair) the store's invariants."""
        body = body or DoctorBody()
        return api.store.doctor(verify_blobs=body.verify_blobs, fix=body.fix, rebuild_views=body.rebuild_views)

    return r


def _pack_routes(r: APIRouter, api: Api) -> APIRouter:
    @r.get("/", response_model=list[PackSummary])
    def list_packs() -> list[PackSummary]:
        """Every pack."""
        return api.store.list_packs()

    @r.get("/{name}", response_model=PackDetails)
    def show(name: str) -> PackDetails:
        """One pack: metadata, lock, installed resources."""
        return api.store.show(pack_name(name))

    @r.post("/import", status_code=202, response_model=JobAccepted)
    def import_pack(body: ImportBody) -> JobAccepted:
        """Import a reference in the background; poll the job for the ImportResult."""
        api.store.layout.require_initialised()
        if body.name is not None:
            pack_name(body.name)
        return api.start(
            "import",
            lambda s: s.import_pack(
                body.ref,
                name=body.name,
                kind=body.kind,
                policy=body.policy,
                file_ids=tuple(body.file_ids),
                all_files=body.all_files,
                prefer=body.prefer,
                sync=body.sync,
                identify=body.identify,
                video_previews=body.video_previews,
            ),
        )

    @r.post("/{name}/install", status_code=202, response_model=JobAccepted)
    def install(name: str) -> JobAccepted:
        """Fetch a pack's missing files in the background."""
        api.store.layout.require_initialised()
        api.store.files.pack(pack_name(name))
        return api.start("install", lambda s: s.install(name))

    @r.delete("/{name}", response_model=RemoveResult)
    def remove(name: str) -> RemoveResult:
        """Remove a pack from state and profiles (files stay until gc)."""
        return api.store.remove(pack_name(name))

    return r


def _profile_routes(r: APIRouter, api: Api) -> APIRouter:
    @r.post("/use", response_model=SwitchResult, responses={202: {"model": JobAccepted}})
    def use(body: UseBody) -> SwitchResult | JSONResponse:
        """Switch UIs to a pack's work profile (with sync: a background job)."""
        pack_name(body.pack)
        if body.sync:
            accepted = api.start("use", lambda s: s.use(body.pack, uis=body.uis, ui_set=body.ui_set, sync=True))
            return JSONResponse(status_code=202, content=accepted.model_dump())
        return api.store.use(body.pack, uis=body.uis, ui_set=body.ui_set)

    @r.post("/back", response_model=SwitchResult)
    def back(body: BackBody | None = None) -> SwitchResult:
        """Pop each chosen UI's profile stack."""
        body = body or BackBody()
        return api.store.back(uis=body.uis, ui_set=body.ui_set)

    return r


def _update_routes(r: APIRouter, api: Api) -> APIRouter:
    @r.get("/plan", response_model=UpdatePlan)
    def plan() -> UpdatePlan:
        """Newer versions of packs that follow the latest (changes no pack)."""
        return api.store.check_updates()

    @r.post("/apply", response_model=UpdateResult, responses={202: {"model": JobAccepted}})
    def apply(body: ApplyBody) -> UpdateResult | JSONResponse:
        """Apply updates; 409 with the plan when a choice is needed; with sync: a background job."""
        for name in body.packs:
            pack_name(name)

        def run(s: Store) -> UpdateResult:
            return s.update(
                body.packs,
                all_packs=body.all,
                dry_run=body.dry_run,
                choose=body.choose,
                sync=body.sync,
                allow_base_change=body.allow_base_change,
            )

        if body.sync and not body.dry_run:
            return JSONResponse(status_code=202, content=api.start("update", run).model_dump())
        return run(api.store)

    return r


def _misc_routes(r: APIRouter, api: Api) -> APIRouter:
    @r.get("/search", response_model=SearchResult)
    def search(
        q: str, remote: bool = False, type: AssetKind | None = None, base_model: str | None = None
    ) -> SearchResult:
        """Packs matching a query; remote=true asks sources too."""
        return api.store.search(q, remote=remote, kind=type, base_model=base_model)

    @r.get("/plugins", response_model=list[PluginInfo])
    def plugins() -> list[PluginInfo]:
        """Every plugin with what it contributes and its load status."""
        return [PluginInfo(**attrs.asdict(record)) for record in api.store.registry.records]

    @r.get("/jobs/{job_id}", response_model=Job)
    def job(job_id: str) -> Job:
        """A background job's state, progress and result or error."""
        found = api.jobs.get(job_id)
        if found is None:
            raise NotFound(f"no job {job_id}")
        return found

    return r
