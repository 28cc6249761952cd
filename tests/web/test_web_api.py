"""The API routes the web page needs (library, facets, previews and thumbnails, exposure, policy,
disk use, jobs with speed and ETA, the session cookie) and the page's own files and safety,
over real HTTP (uvicorn on 127.0.0.1) with httpx."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import httpx
import pytest
from PIL import Image
from pydantic import TypeAdapter

from synapse_core.api import create_app
from synapse_core.api.jobs import Job, JobProgressReporter
from synapse_core.api.library import LibraryFacets, LibraryPage
from synapse_core.api.previews import PreviewFile
from synapse_core.api.web_routes import Exposure
from synapse_core.models import Pack
from synapse_core.results import DuReport
from synapse_core.store import Store
from synapse_core.testing import add_bare_packs, lora_file, make_store


def png(size: tuple[int, int] = (600, 900), color: tuple[int, int, int] = (10, 90, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def library_store(tmp_path: Path) -> Store:
    """Two local LoRAs (one with a preview and metadata), a copy sharing a blob, and 30 bare packs."""
    store = make_store(tmp_path / "store", entry_points=False)
    files = tmp_path / "files"
    store.import_pack(str(lora_file(files / "paper.safetensors", seed=1)), name="Paper")
    store.import_pack(str(lora_file(files / "ink.safetensors", seed=2)), name="Ink")
    store.import_pack(str(lora_file(files / "paper.safetensors", seed=1)), name="PaperCopy")
    with store.mutation("metadata"):
        pack = store.files.pack("Paper")
        pack.trigger_words, pack.creator, pack.tags, pack.base_model = ["lanternglow"], "maker", ["style"], "SDXL 1.0"
        store.files.save_pack(pack)
        folder = store.layout.previews_dir("Paper")
        folder.mkdir(parents=True)
        (folder / "a.png").write_bytes(png())
        (folder / "b.html").write_text("<script>alert(1)</script>")
    add_bare_packs(store, 30, preview=png((64, 64)))
    return store


def test_library_filters_sorts_and_pages(library_store: Store, serve_app) -> None:
    client = serve_app(create_app(library_store))

    def names(**params: object) -> list[str]:
        response = client.get("/api/library", params={"limit": 500, **params})
        assert response.status_code == 200, response.text
        return [i.name for i in LibraryPage.model_validate(response.json()).items]

    everything = names()
    assert len(everything) == 33 and everything[:3] == ["bulk_00000", "bulk_00001", "bulk_00002"]
    assert names(q="lanternglow") == ["Paper"]  # a trigger word
    assert names(q="ink.safetensors") == ["Ink"]  # a file name
    assert names(q="MAKER") == ["Paper"]  # the creator, any case
    assert names(q="paper ink") == []  # every word must match
    assert names(base_model="SDXL 1.0") == [*[f"bulk_{i:05d}" for i in range(1, 30, 4)], "Paper"]
    assert names(tag="style") == ["Paper"]
    assert names(source="local", installed="true") == ["Ink", "Paper", "PaperCopy"]
    assert len(names(installed="false")) == 30  # the bare packs have no blobs
    assert names(kind="embedding") == []
    assert names(sort="-size")[:1] == ["bulk_00029"] and names(sort="-name")[0] == "PaperCopy"
    page = LibraryPage.model_validate(client.get("/api/library", params={"offset": 10, "limit": 5}).json())
    assert page.total == 33 and page.offset == 10 and [i.name for i in page.items] == everything[10:15]
    item = LibraryPage.model_validate(client.get("/api/library", params={"q": "lanternglow"}).json()).items[0]
    assert item.installed and item.missing == 0 and item.preview is not None and item.preview.file == "a.png"
    # a change on disk shows at once (the cards are rebuilt from changed files only)
    library_store.set_policy("Ink", "follow_latest")
    ink = LibraryPage.model_validate(client.get("/api/library", params={"q": "ink"}).json()).items
    assert [(i.name, i.policy) for i in ink] == [("Ink", "follow_latest")]
    library_store.remove("Ink")
    assert "Ink" not in names()
    for bad in ({"sort": "random"}, {"limit": 0}, {"limit": 501}, {"offset": -1}, {"kind": "nope"}):
        assert client.get("/api/library", params=bad).status_code == 422, bad


def test_facets_count_every_filter_value(library_store: Store, serve_app) -> None:
    client = serve_app(create_app(library_store))
    facets = LibraryFacets.model_validate(client.get("/api/library/facets").json())
    assert facets.packs == 33 and facets.installed == 3 and facets.missing == 30 and facets.updates == 0
    assert {f.value: f.count for f in facets.sources} == {"local": 33}
    assert {f.value: f.count for f in facets.kinds} == {"lora": 33}
    assert {f.value: f.count for f in facets.base_models}["SDXL 1.0"] == 9


def test_previews_and_thumbnails_have_etags_and_safe_types(library_store: Store, serve_app) -> None:
    client = serve_app(create_app(library_store))
    previews = TypeAdapter(list[PreviewFile]).validate_python(client.get("/api/packs/Paper/previews").json())
    assert [(p.file, p.media) for p in previews] == [("a.png", "image"), ("b.html", "other")]
    original = client.get(previews[0].url)
    assert original.status_code == 200 and original.headers["content-type"] == "image/png"
    assert original.content == png() and "immutable" in original.headers["cache-control"]
    thumb = client.get(previews[0].url + "&w=192")
    assert thumb.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert image.size == (192, 288)
    cached = list((library_store.layout.data / "cache" / "thumbnails").rglob("*.webp"))
    assert len(cached) == 1
    again = client.get(previews[0].url + "&w=192", headers={"If-None-Match": thumb.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    # an old version in the URL is not cached for long; a changed file has a new ETag
    stale = client.get("/api/packs/Paper/previews/a.png?v=old&w=192")
    assert stale.headers["cache-control"] == "no-cache" and stale.headers["etag"] == thumb.headers["etag"]
    (library_store.layout.previews_dir("Paper") / "a.png").write_bytes(png(color=(200, 0, 0)))
    changed = client.get("/api/packs/Paper/previews/a.png?w=192", headers={"If-None-Match": thumb.headers["etag"]})
    assert changed.status_code == 200 and changed.headers["etag"] != thumb.headers["etag"]
    # a file a source named .html is never a page of this origin
    html = client.get(previews[1].url)
    assert html.headers["content-type"] == "application/octet-stream"
    assert html.headers["content-disposition"] == "attachment" and "sandbox" in html.headers["content-security-policy"]
    for bad, status in (
        ("/api/packs/Paper/previews/..%2Fpack.json", 404),
        ("/api/packs/Paper/previews/nope.png", 404),
        ("/api/packs/Nope/previews", 404),
        ("/api/packs/Paper/previews/a.png?w=100", 422),
    ):
        response = client.get(bad)
        assert response.status_code == status and "error" in response.json(), (bad, response.text)
    assert client.get("/api/packs/Ink/previews").json() == []


def test_exposure_policy_and_du(tmp_path: Path, serve_app) -> None:
    store = make_store(tmp_path / "store", entry_points=True)
    if "comfyui" not in store.registry.ui_adapters:
        pytest.skip("the ComfyUI plugin is not installed")
    files = tmp_path / "files"
    store.import_pack(str(lora_file(files / "a" / "style.safetensors", seed=1)), name="First")
    store.import_pack(str(lora_file(files / "b" / "style.safetensors", seed=2)), name="Second")
    client = serve_app(create_app(store))
    first = TypeAdapter(list[Exposure]).validate_python(client.get("/api/packs/First/exposure").json())
    comfy = next(e for e in first if e.ui == "comfyui")
    assert comfy.path is None and comfy.left_out == "shadowed" and "Second" in (comfy.detail or "")
    second = next(
        e
        for e in TypeAdapter(list[Exposure]).validate_python(client.get("/api/packs/Second/exposure").json())
        if e.ui == "comfyui"
    )
    assert (
        second.path == "models/loras/style.safetensors" and second.shadows == ["First"] and second.profile == "global"
    )
    changed = client.post("/api/packs/First/policy", json={"policy": "follow_latest"})
    assert Pack.model_validate(changed.json()).policy == "follow_latest"
    assert store.show("First").pack.policy == "follow_latest"
    assert client.post("/api/packs/First/policy", json={"policy": "sometimes"}).status_code == 422
    du = DuReport.model_validate(client.get("/api/store/du").json())
    assert du == store.du()


def test_job_progress_has_speed_and_eta() -> None:
    now = [100.0]
    job = Job(id="j", kind="import")
    reporter = JobProgressReporter(job, threading.Lock(), clock=lambda: now[0])
    reporter.add_total("big.safetensors", 10_000_000)
    reporter.advance(1_000_000)
    assert job.progress.bytes_per_second is None and job.progress.eta_seconds is None
    now[0] += 1
    reporter.advance(2_000_000)
    assert job.progress.bytes_per_second == pytest.approx(2_000_000)
    assert job.progress.eta_seconds == pytest.approx(3.5) and job.progress.current == "big.safetensors"
    # the speed is measured over the last few seconds, not since the start
    now[0] += 10
    reporter.advance(1_000_000)
    assert job.progress.bytes_per_second == pytest.approx(100_000)  # a pause counts
    now[0] += 1
    reporter.advance(4_000_000)
    assert job.progress.bytes_per_second == pytest.approx(4_000_000)
    unknown = Job(id="u", kind="import")
    other = JobProgressReporter(unknown, threading.Lock(), clock=lambda: now[0])
    other.add_total("x", None)
    other.advance(5)
    now[0] += 1
    other.advance(5)
    assert unknown.progress.total is None and unknown.progress.eta_seconds is None


def test_jobs_are_listed_newest_first(library_store: Store, serve_app, tmp_path: Path) -> None:
    client = serve_app(create_app(library_store))
    ids = []
    for seed in (5, 6):
        ref = str(lora_file(tmp_path / "more" / f"m{seed}.safetensors", seed=seed))
        ids.append(client.post("/api/packs/import", json={"ref": ref}).json()["job_id"])
    listed = TypeAdapter(list[Job]).validate_python(client.get("/api/jobs").json())
    assert [j.id for j in listed][:2] == ids[::-1]


def test_the_page_is_served_with_its_safety_headers(library_store: Store, serve_app) -> None:
    client = serve_app(create_app(library_store))
    index = client.get("/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/app.js">' in index.text
    csp = index.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert index.headers["x-frame-options"] == "DENY" and index.headers["x-content-type-options"] == "nosniff"
    script = client.get("/static/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert client.get("/static/app.js", headers={"If-None-Match": script.headers["etag"]}).status_code == 304
    for missing in ("/static/nope.js", "/static/../__init__.py", "/static/%2e%2e/__init__.py"):
        assert client.get(missing).status_code == 404, missing
    # a rebinding attack's Host is refused for the page too
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 403


def test_state_changes_refuse_what_a_form_can_send(library_store: Store, serve_app) -> None:
    client = serve_app(create_app(library_store))
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        response = client.post("/api/store/doctor", content=b"{}", headers={"Content-Type": content_type})
        assert response.status_code == 415, (content_type, response.text)
        assert response.json()["error"]["code"] == "refused"
    assert client.post("/api/store/doctor", json={}).status_code == 200
    assert client.post("/api/store/doctor").status_code == 200  # no body: non-browser clients


def test_the_session_cookie_stands_for_the_token(library_store: Store, serve_app) -> None:
    client = serve_app(create_app(library_store, token="tok-42"))
    assert client.get("/api/library").status_code == 401
    assert client.get("/").status_code == 200  # the page itself holds no data
    assert client.get("/api/session").json() == {"token_required": True, "authenticated": False}
    refused = client.post("/api/session", json={"token": "nope"})
    assert refused.status_code == 401 and "set-cookie" not in refused.headers
    assert (
        client.post("/api/session", json={"token": "tok-42"}, headers={"Origin": "http://evil.example"}).status_code
        == 403
    )
    accepted = client.post("/api/session", json={"token": "tok-42"})
    assert accepted.status_code == 204
    cookie = accepted.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/api" in cookie and "tok-42" not in cookie
    assert client.get("/api/library").status_code == 200
    assert client.get("/api/session").json() == {"token_required": True, "authenticated": True}
    assert (
        httpx.get(str(client.base_url.join("/api/library")), cookies={"synapse_session": "forged"}).status_code == 401
    )
    assert client.get("/api/library", headers={"Authorization": "Bearer tok-42"}).status_code == 200


def test_the_wheel_ships_the_page(tmp_path: Path) -> None:
    """pip install alone serves the page: every static file is in the wheel hatch builds."""
    import subprocess
    import sys
    import zipfile

    import synapse_core.web

    repo = Path(__file__).resolve().parents[2]
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=repo,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("synapse_store-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    static = Path(synapse_core.web.__file__).parent / "static"
    expected = {f"synapse_core/web/static/{p.relative_to(static).as_posix()}" for p in static.rglob("*") if p.is_file()}
    assert expected and expected <= shipped, expected - shipped
