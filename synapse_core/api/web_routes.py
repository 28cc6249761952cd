"""The routes the web page needs beyond the Store's own: the library's cards and filters,
previews and thumbnails, where a pack is exposed, its policy, disk use, recent jobs and
the session cookie that stands for the token in a browser."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from synapse_core.api.bodies import Body
from synapse_core.api.jobs import Job
from synapse_core.api.library import LibraryFacets, LibraryIndex, LibraryPage, LibraryQuery, SortKey
from synapse_core.api.previews import (
    THUMBNAIL_WIDTHS,
    PreviewFile,
    Thumbnails,
    cache_dir,
    media_type,
    pack_previews,
    preview_path,
    version_of,
)
from synapse_core.api.security import SESSION_COOKIE, RequestGuard
from synapse_core.errors import InvalidInput
from synapse_core.kinds import AssetKind
from synapse_core.models import Pack
from synapse_core.names import check_pack_name
from synapse_core.results import DuReport
from synapse_core.views import read_record

if TYPE_CHECKING:
    from synapse_core.api.routes import Api

MakeRouter = Callable[[str, str], APIRouter]
IMMUTABLE = "private, max-age=31536000, immutable"


class PolicyBody(Body):
    """POST /packs/{name}/policy"""

    policy: Literal["follow_latest", "pinned"]


class SessionBody(Body):
    """POST /session: the token, exchanged for a cookie the page's requests (images too) carry."""

    token: str = Field(min_length=1, max_length=4096)


class SessionInfo(BaseModel):
    """GET /session"""

    token_required: bool
    authenticated: bool


class Exposure(BaseModel):
    """Where one resource of a pack is in a UI's active view, or why it is not there."""

    ui: str
    profile: str
    resource_id: str
    kind: AssetKind | None = None
    path: str | None = None
    """Where the UI sees the file, relative to the view's root."""
    shadows: list[str] = Field(default_factory=list)
    """Packs whose file of the same name this one hides."""
    left_out: str | None = None
    """Why the view does not show it (shadowed, missing_blob, ...)."""
    detail: str | None = None


class WebState:
    """What the page's routes keep between requests: the library's cards and the thumbnails."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self._library: LibraryIndex | None = None

    @property
    def library(self) -> LibraryIndex:
        """The library index of the API's store, made on first use."""
        if self._library is None:
            self._library = LibraryIndex(self.api.store)
        return self._library

    @property
    def thumbnails(self) -> Thumbnails:
        """Thumbnails under the store's data/cache/."""
        return Thumbnails(cache_dir(self.api.store.layout))


def web_routers(api: Api, guard: RequestGuard, make_router: MakeRouter, open_router: MakeRouter) -> list[APIRouter]:
    """The page's routers: ``make_router`` guards like every API route, ``open_router`` without the
    token (the session route, which is how a browser presents it)."""
    state = WebState(api)
    return [
        _library_routes(make_router("/library", "library"), state),
        _pack_page_routes(make_router("/packs", "packs"), state),
        _store_routes(make_router("/store", "store"), api),
        _job_routes(make_router("/jobs", "misc"), api),
        _session_routes(open_router("/session", "session"), guard),
    ]


def _library_routes(r: APIRouter, state: WebState) -> APIRouter:
    @r.get("", response_model=LibraryPage)
    def library(
        q: str = Query("", max_length=500, description="words to find in names, file names, trigger words, creator"),
        kind: AssetKind | None = None,
        base_model: str | None = None,
        source: str | None = None,
        tag: str | None = None,
        installed: bool | None = None,
        updates: bool = False,
        sort: SortKey = "name",
        offset: int = Query(0, ge=0),
        limit: int = Query(100, ge=1, le=500),
    ) -> LibraryPage:
        """Packs as cards: filtered (all filters must match), sorted, one page of them."""
        query = LibraryQuery(
            text=q,
            kind=kind.value if kind else None,
            base_model=base_model,
            source=source,
            tag=tag,
            installed=installed,
            updates=updates,
            sort=sort,
            offset=offset,
            limit=limit,
        )
        return state.library.query(query)

    @r.get("/facets", response_model=LibraryFacets)
    def facets() -> LibraryFacets:
        """Every value the filters can take, with how many packs have it."""
        return state.library.facets()

    return r


def _pack_page_routes(r: APIRouter, state: WebState) -> APIRouter:
    @r.get("/{name}/previews", response_model=list[PreviewFile])
    def previews(name: str) -> list[PreviewFile]:
        """A pack's previews with their ratings, in the source's order."""
        store = state.api.store
        store.show(check_pack_name(name))  # NotFound with close names
        return pack_previews(store.layout, name, f"/api/packs/{name}/previews")

    @r.get(
        "/{name}/previews/{file}",
        response_class=Response,
        responses={200: {"content": {"image/webp": {}, "image/jpeg": {}}}, 304: {"description": "not modified"}},
    )
    def preview(
        name: str,
        file: str,
        request: Request,
        w: int | None = Query(None, description=f"a thumbnail this wide: one of {THUMBNAIL_WIDTHS}"),
        v: str | None = Query(None, max_length=64, description="the version the URL was made for"),
    ) -> Response:
        """A preview file, or a WebP thumbnail of it with ``w``; ETag and long caching for a current ``v``."""
        store = state.api.store
        store.layout.require_initialised()
        if w is not None and w not in THUMBNAIL_WIDTHS:
            raise InvalidInput(f"w={w}: thumbnails are {', '.join(map(str, THUMBNAIL_WIDTHS))} pixels wide")
        path = preview_path(store.layout, check_pack_name(name), file)
        version = version_of(path)
        etag = f'"{version}-{w or 0}"'
        caching = IMMUTABLE if v == version else "no-cache"
        headers = {"ETag": etag, "Cache-Control": caching, "Content-Security-Policy": "default-src 'none'; sandbox"}
        if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
            return Response(status_code=304, headers=headers)
        thumbnail = state.thumbnails.get(path, w) if w else None
        served, kind = (thumbnail, "image/webp") if thumbnail else (path, media_type(path))
        if kind == "application/octet-stream":
            headers["Content-Disposition"] = "attachment"
        return FileResponse(served, media_type=kind, headers=headers)

    @r.get("/{name}/exposure", response_model=list[Exposure])
    def exposure(name: str) -> list[Exposure]:
        """Where each resource of the pack is in each UI's active view, what it shadows or why it is left out."""
        store = state.api.store
        details = store.show(check_pack_name(name))
        out: list[Exposure] = []
        for profile in store.list_profiles():
            for ui in profile.active_in:
                record = read_record(store.views.tree_path(ui, profile.name))
                if record is None:
                    continue
                entries = [e for e in record.plan.entries.values() if e.get("pack") == name]
                out += [
                    Exposure(
                        ui=ui,
                        profile=profile.name,
                        resource_id=str(e["resource_id"]),
                        path=str(e["path"]),
                        shadows=[str(p) for p in e.get("shadows", [])],
                    )
                    for e in entries
                ]
                shown = {str(e["resource_id"]) for e in entries}
                out += [
                    Exposure(
                        ui=ui,
                        profile=profile.name,
                        resource_id=o["resource_id"],
                        left_out=o["reason"],
                        detail=o["detail"],
                    )
                    for o in record.plan.left_out
                    if o.get("pack") == name and o.get("resource_id") not in shown
                ]
        kinds = {r.id: r.kind for r in details.pack.resources}
        for item in out:
            item.kind = kinds.get(item.resource_id)
        return sorted(out, key=lambda e: (e.ui, e.resource_id))

    @r.post("/{name}/policy", response_model=Pack)
    def policy(name: str, body: PolicyBody) -> Pack:
        """Make the pack follow the latest version or stay pinned."""
        return state.api.store.set_policy(check_pack_name(name), body.policy)

    return r


def _store_routes(r: APIRouter, api: Api) -> APIRouter:
    @r.get("/du", response_model=DuReport)
    def du() -> DuReport:
        """Bytes per pack, bytes shared between packs, and what deduplication saved."""
        return api.store.du()

    return r


def _job_routes(r: APIRouter, api: Api) -> APIRouter:
    @r.get("", response_model=list[Job])
    def jobs(limit: int = Query(50, ge=1, le=500)) -> list[Job]:
        """The newest jobs first (this server's, since it started)."""
        return api.jobs.recent(limit)

    return r


def _session_routes(r: APIRouter, guard: RequestGuard) -> APIRouter:
    @r.get("", response_model=SessionInfo)
    def session(request: Request) -> SessionInfo:
        """Whether a token is needed here and whether this browser has presented it."""
        return SessionInfo(token_required=guard.token is not None, authenticated=guard.authenticated(request))

    @r.post("", status_code=204, response_class=Response, responses={401: {}})
    def login(body: SessionBody, request: Request) -> Response:
        """Exchange the token for an HttpOnly, SameSite=Strict cookie (the page's images need one)."""
        if guard.token is None:
            return Response(status_code=204)
        if not guard.token_matches(body.token):
            raise HTTPException(401, detail="that is not this server's SYNAPSE_API_TOKEN")
        response = Response(status_code=204)
        response.set_cookie(
            SESSION_COOKIE,
            guard.session_value(),
            httponly=True,
            samesite="strict",
            path="/api",
            secure=request.url.scheme == "https",
        )
        return response

    return r
