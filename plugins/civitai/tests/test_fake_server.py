"""Tests of the fake Civitai server itself, over real HTTP with the standard library only.

They use ``http.client`` (no redirect following, raw headers) so that a bug in our own
Civitai client can't hide a bug in the fake.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from synapse_civitai import fake_server
from synapse_civitai.fake_server import FakeCivitai, FakeFile, FakeImage, filenamize, seed_demo

BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
TOOL_UA = "synapse-tests/1.0"
UNICODE_NAME = "lanterne_été_✨.safetensors"
BIG_SIZE = 3 * 2**20 + 5


@dataclass
class Answer:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


def call(url: str, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None) -> Answer:
    """One request, no redirect following."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target, body=body, headers={"User-Agent": TOOL_UA, **(headers or {})})
        resp = conn.getresponse()
        return Answer(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def _seed_extra(fake: FakeCivitai) -> None:
    fake.add_model(700001, name="Été Lights", type="LORA")
    fake.add_version(700001, 710001, name="v1", files=[FakeFile(720001, UNICODE_NAME, size=1000, primary=True)])
    fake.add_model(700002, name="Gated", type="LORA")
    fake.add_version(
        700002,
        710002,
        name="v1",
        availability="EarlyAccess",
        early_access_deadline="2099-01-01T00:00:00Z",
        files=[FakeFile(720002, "gated.safetensors", size=64)],
    )
    fake.add_model(700003, name="Members Only", type="LORA")
    fake.add_version(
        700003, 710003, name="v1", require_auth=True, files=[FakeFile(720003, "auth.safetensors", size=64)]
    )
    fake.add_model(700004, name="No Downloads", type="LORA")
    fake.add_version(
        700004, 710004, name="v1", usage_control="Generation", files=[FakeFile(720004, "gen.safetensors", size=64)]
    )
    fake.add_model(700005, name="Old Thing", type="LORA", mode="Archived")
    fake.add_version(700005, 710005, name="v1", files=[FakeFile(720005, "old.safetensors", size=64)])
    fake.add_model(700006, name="Draft", type="LORA")
    fake.add_version(700006, 710006, name="v1", published=False, files=[FakeFile(720006, "draft.safetensors", size=64)])
    fake.add_model(700007, name="Empty", type="LORA")
    fake.add_version(700007, 710007, name="v1")
    fake.add_model(700008, name="Big", type="Checkpoint", nsfw=True)
    fake.add_version(700008, 710008, name="v1", files=[FakeFile(720008, "big.safetensors", size=BIG_SIZE)])
    fake.add_model(700009, name="Reupload New", type="LORA")
    fake.add_version(
        700009,
        710009,
        name="v1",
        published_at="2025-01-01T00:00:00Z",
        files=[FakeFile(720009, "dup.safetensors", content=b"same bytes")],
    )
    fake.add_model(700010, name="Reupload Old", type="LORA")
    fake.add_version(
        700010,
        710010,
        name="v1",
        published_at="2024-06-01T00:00:00Z",
        files=[FakeFile(720010, "dup.safetensors", content=b"same bytes")],
    )
    fake.add_model(700011, name="Scanning", type="LORA")
    fake.add_version(700011, 710011, name="v1", files=[FakeFile(720011, "pending.safetensors", size=32, hashes={})])
    fake.add_token("tok-valid", username="tester")


@pytest.fixture(scope="module")
def shared_fake() -> Iterator[FakeCivitai]:
    with FakeCivitai() as fake:
        seed_demo(fake)
        _seed_extra(fake)
        yield fake


@pytest.fixture
def fake(shared_fake: FakeCivitai) -> Iterator[FakeCivitai]:
    """The shared fake with knobs, injections and the request log reset after each test."""
    yield shared_fake
    shared_fake.clear_injections()
    shared_fake.clear_requests()
    shared_fake.blocked_tokens.clear()
    shared_fake.download_limit = None
    shared_fake.reset_download_counts()
    shared_fake.storage_failures = 0
    shared_fake.search_overloads = 0
    shared_fake.signed_url_ttl = 86400
    shared_fake.disposition_style = "raw"
    shared_fake.unauthenticated_download = True


def stored_file(fake: FakeCivitai, file_id: int) -> FakeFile:
    found = fake.get_file(file_id)
    assert found is not None
    return found[0]


def api(fake: FakeCivitai, path: str, **kwargs: Any) -> Answer:
    return call(fake.api_url + path, **kwargs)


def download(fake: FakeCivitai, query: str = "", version: int = 909002, **kwargs: Any) -> Answer:
    return api(fake, f"/api/download/models/{version}{query}", **kwargs)


def follow(fake: FakeCivitai, query: str = "", version: int = 909002, **kwargs: Any) -> tuple[Answer, Answer]:
    first = download(fake, query, version)
    assert first.status == 307, first.body
    location = first.header("Location") or ""
    assert location.startswith(fake.cdn_url + "/")
    return first, call(location, **kwargs)


# -- /api/v1/models/{id} -------------------------------------------------------------------


def test_model_detail_follows_section_6_shape(fake: FakeCivitai) -> None:
    answer = api(fake, "/api/v1/models/424242")
    assert answer.status == 200
    assert answer.header("Content-Type") == "application/json; charset=utf-8"
    assert answer.header("Cache-Control") == "public, s-maxage=300, stale-while-revalidate=150"
    assert answer.header("Access-Control-Allow-Origin") == "*"
    model = answer.json()
    assert model["type"] == "LORA"
    assert model["creator"]["username"] == "lantern_maker"
    newest, older = model["modelVersions"]
    assert (newest["id"], newest["index"], older["id"], older["index"]) == (909002, 0, 909001, 1)
    for version in (newest, older):
        assert "modelId" not in version and "updatedAt" not in version
        assert version["downloadUrl"] == f"{fake.api_url}/api/download/models/{version['id']}"
    assert "trainedWords" not in older  # removeEmpty drops empty arrays
    primary, fp32 = newest["files"]
    assert primary["primary"] is True and "primary" not in fp32
    assert primary["downloadUrl"] == newest["downloadUrl"]
    assert fp32["downloadUrl"].endswith("/909002?type=Model&format=SafeTensor&size=full&fp=fp32")
    assert older["files"][1]["downloadUrl"].endswith("/909001?type=Training%20Data")
    assert primary["sizeKB"] == 228_504 / 1024
    assert len(primary["hashes"]["SHA256"]) == 64 and primary["hashes"]["SHA256"].isupper()
    assert primary["hashes"]["AutoV2"] == primary["hashes"]["SHA256"][:10]
    assert "AutoV1" not in primary["hashes"]  # under 2 MiB
    image = older["images"][0]
    assert image["url"].startswith(fake.cdn_url + "/images/") and image["url"].endswith("/original=true/70000001.jpeg")
    assert "meta" not in image and "id" not in image


def test_model_detail_errors(fake: FakeCivitai) -> None:
    for raw in ("abc", "0", "2147483648", "1.5"):
        answer = api(fake, f"/api/v1/models/{raw}")
        assert answer.status == 400, raw
        assert isinstance(answer.json()["error"], str)
    assert api(fake, "/api/v1/models/123").json() == {"error": "No model with id 123"}
    assert api(fake, "/api/v1/models/700006").status == 404  # only an unpublished version
    assert api(fake, "/api/v1/models/700007").status == 404  # only a version without files


def test_archived_model_omits_files_and_download_url(fake: FakeCivitai) -> None:
    model = api(fake, "/api/v1/models/700005").json()
    assert model["mode"] == "Archived"
    version = model["modelVersions"][0]
    assert "files" not in version and "downloadUrl" not in version


def test_images_and_avatar_are_served_by_the_cdn(fake: FakeCivitai) -> None:
    model = api(fake, "/api/v1/models/424242").json()
    image = call(model["modelVersions"][0]["images"][0]["url"])
    assert image.status == 200 and image.body.startswith(b"\xff\xd8\xff")
    assert image.header("Content-Type") == "image/jpeg"
    assert call(model["creator"]["image"]).body.startswith(b"\xff\xd8\xff")
    video = api(fake, "/api/v1/models/626262").json()["modelVersions"][0]["images"][1]["url"]
    assert video.endswith("/70000202.mp4") and call(video).header("Content-Type") == "video/mp4"


# -- /api/v1/model-versions ----------------------------------------------------------------


def test_model_version_standalone_shape_and_host_echo(fake: FakeCivitai) -> None:
    answer = api(fake, "/api/v1/model-versions/909002", headers={"Host": "civitai.red"})
    assert answer.status == 200
    version = answer.json()
    assert version["modelId"] == 424242 and "updatedAt" in version
    assert version["air"] == "urn:air:sdxl:lora:civitai:424242@909002"
    assert version["model"] == {"name": "Paper Lantern Style", "type": "LORA", "nsfw": False, "poi": False}
    assert version["downloadUrl"] == "http://civitai.red/api/download/models/909002"
    assert [f["primary"] for f in version["files"]] == [True, False]
    assert version["files"][1]["downloadUrl"].startswith("http://civitai.red/api/download/models/909002?type=Model")
    assert set(version["stats"]) == {"downloadCount", "thumbsUpCount"}
    assert version["images"][0]["meta"]["steps"] == 28
    assert api(fake, "/api/v1/model-versions/909001").json()["air"] == "urn:air:sd1:lora:civitai:424242@909001"


def test_model_version_errors(fake: FakeCivitai) -> None:
    assert api(fake, "/api/v1/model-versions/abc").status == 400
    assert api(fake, "/api/v1/model-versions/0").json() == {"error": "Missing modelVersionId"}
    assert api(fake, "/api/v1/model-versions/999").json() == {"error": "Model not found"}
    assert api(fake, "/api/v1/model-versions/710006").json() == {"error": "Model not found"}
    missing = api(fake, "/api/v1/model-versions/710007")
    assert (missing.status, missing.json()) == (404, {"error": "Missing model file"})
    assert api(fake, "/api/v1/model-versions/909002", method="POST").status == 405


def test_early_access_fields(fake: FakeCivitai) -> None:
    version = api(fake, "/api/v1/model-versions/710002").json()
    assert version["availability"] == "EarlyAccess"
    assert version["paidAccess"] == {"permanent": False, "endsAt": "2099-01-01T00:00:00.000Z"}
    assert api(fake, "/api/v1/model-versions/909002").json()["paidAccess"] is None


def test_by_hash_matches_any_hash_case_insensitively(fake: FakeCivitai) -> None:
    hashes = stored_file(fake, 808001).api_hashes()
    for value in (hashes["SHA256"].lower(), hashes["AutoV2"].lower(), hashes["CRC32"]):
        answer = api(fake, f"/api/v1/model-versions/by-hash/{value}")
        assert answer.status == 200 and answer.json()["id"] == 909001
        assert answer.header("Cache-Control") == "public, s-maxage=3600, stale-while-revalidate=1800"
    assert api(fake, "/api/v1/model-versions/by-hash/DEADBEEF").json() == {"error": "Model not found"}
    duplicate = hashlib.sha256(b"same bytes").hexdigest()
    assert api(fake, f"/api/v1/model-versions/by-hash/{duplicate}").json()["id"] == 710010  # oldest published


def test_hashes_pending_are_empty_and_unmatchable(fake: FakeCivitai) -> None:
    version = api(fake, "/api/v1/model-versions/710011").json()
    assert version["files"][0]["hashes"] == {}
    sha = fake.file_sha256(720011)
    assert api(fake, f"/api/v1/model-versions/by-hash/{sha}").status == 404


def test_by_hash_bulk(fake: FakeCivitai) -> None:
    wanted = [fake.file_sha256(808001).upper(), fake.file_sha256(808003), "0" * 64]
    answer = api(
        fake,
        "/api/v1/model-versions/by-hash",
        method="POST",
        body=json.dumps(wanted).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert answer.status == 200
    assert sorted(v["id"] for v in answer.json()) == [909001, 909002]
    bad = api(
        fake,
        "/api/v1/model-versions/by-hash",
        method="POST",
        body=b'["abc"]',
        headers={"Content-Type": "application/json"},
    )
    assert bad.status == 400
    assert bad.json()["error"].startswith("Request must include an array of SHA256 Hashes.")


def test_big_file_hashes_include_autov1(fake: FakeCivitai) -> None:
    file = api(fake, "/api/v1/model-versions/710008").json()["files"][0]
    content = stored_file(fake, 720008)
    window = content.read(2**20, 64 * 1024)
    assert file["hashes"]["AutoV1"] == hashlib.sha256(window).hexdigest()[:8].upper()
    assert file["name"] == "big_v1.safetensors"  # checkpoint names come from getDownloadFilename


# -- /api/v1/models (list) -----------------------------------------------------------------


def test_list_filters_and_repeated_types(fake: FakeCivitai) -> None:
    items = api(fake, "/api/v1/models?types=TextualInversion&types=Checkpoint").json()["items"]
    assert {m["id"] for m in items} == {515151, 626262}  # the nsfw checkpoint is filtered out
    with_nsfw = api(fake, "/api/v1/models?types=Checkpoint&nsfw=true").json()["items"]
    assert {m["id"] for m in with_nsfw} == {626262, 700008}
    assert [m["id"] for m in api(fake, "/api/v1/models?ids=424242,515151&sort=Newest").json()["items"]] == [
        424242,
        515151,
    ]
    assert {m["id"] for m in api(fake, "/api/v1/models?username=Lantern_Maker").json()["items"]} == {424242}
    assert {m["id"] for m in api(fake, "/api/v1/models?baseModels=SDXL%201.0").json()["items"]} == {424242}
    comma = api(fake, "/api/v1/models?types=LORA,Checkpoint")
    assert comma.status == 400 and comma.json()["error"]["name"] == "ZodError"


def test_list_pagination_with_cursor_and_next_page(fake: FakeCivitai) -> None:
    everything = [m["id"] for m in api(fake, "/api/v1/models?sort=Most%20Downloaded").json()["items"]]
    seen: list[int] = []
    url: str | None = f"{fake.api_url}/api/v1/models?limit=2&sort=Most%20Downloaded"
    while url:
        page = call(url).json()
        seen += [m["id"] for m in page["items"]]
        url = page["metadata"].get("nextPage")
        if url:
            assert url.startswith(fake.api_url + "/api/v1/models?") and "cursor=" in url
            assert parse_qs(urlsplit(url).query)["cursor"] == [page["metadata"]["nextCursor"]]
    assert seen == everything and len(everything) > 4


def test_list_page_mode_and_limits(fake: FakeCivitai) -> None:
    metadata = api(fake, "/api/v1/models?limit=2&page=1").json()["metadata"]
    assert (metadata["currentPage"], metadata["pageSize"]) == (1, 2)
    capped = api(fake, "/api/v1/models?limit=100&page=11")
    assert capped.status == 429
    assert capped.json() == {"error": "You've requested too many pages, please use cursors instead"}
    mixed = api(fake, "/api/v1/models?query=lantern&page=1")
    assert mixed.json() == {"error": "Cannot use page param with query search. Use cursor-based pagination."}
    assert api(fake, "/api/v1/models?limit=101").status == 400
    assert api(fake, "/api/v1/models?sort=Best").status == 400
    assert api(fake, "/api/v1/models?favorites=true").json() == {"error": "Unauthorized"}
    found = api(fake, "/api/v1/models?query=LANTERN").json()
    assert [m["id"] for m in found["items"]] == [424242] and found["metadata"] == {}


def test_list_search_overload(fake: FakeCivitai) -> None:
    fake.search_overloads = 1
    answer = api(fake, "/api/v1/models?query=ink")
    assert (answer.status, answer.header("Retry-After")) == (503, "2")
    assert api(fake, "/api/v1/models?query=ink").status == 200


def test_enums_and_me(fake: FakeCivitai) -> None:
    enums = api(fake, "/api/v1/enums").json()
    assert "LORA" in enums["ModelType"] and "Training Data" in enums["ModelFileType"]
    assert "SD 1.5" in enums["BaseModel"]
    assert api(fake, "/api/v1/me").json() == {"error": "Unauthorized"}
    assert api(fake, "/api/v1/me?token=nope").status == 401
    me = api(fake, "/api/v1/me", headers={"Authorization": "Bearer tok-valid"})
    assert me.status == 200 and me.json()["username"] == "tester"
    # The header wins over ?token= even when the header's key is unknown.
    assert api(fake, "/api/v1/me?token=tok-valid", headers={"Authorization": "Bearer nope"}).status == 401


# -- download: selection and storage -------------------------------------------------------


def test_download_redirects_to_signed_cdn_url(fake: FakeCivitai) -> None:
    first, stored = follow(fake)
    assert first.header("Cache-Control") == "no-store, max-age=0"
    assert first.body.decode() == first.header("Location")
    query = parse_qs(urlsplit(first.header("Location") or "").query)
    assert "X-Amz-Signature" in query and query["X-Amz-Expires"] == ["86400"]
    assert stored.status == 200
    assert hashlib.sha256(stored.body).hexdigest() == fake.file_sha256(808003)
    assert stored.header("Content-Length") == str(len(stored.body)) == "228504"
    assert stored.header("Content-Type") == "application/octet-stream"
    assert stored.header("Accept-Ranges") == "bytes"
    assert stored.header("Cache-Control") == "no-store"
    assert stored.header("Content-Disposition") == 'attachment; filename="paper_lantern_xl_v2.safetensors"'


def test_content_disposition_is_raw_utf8(fake: FakeCivitai) -> None:
    _, stored = follow(fake, version=710001)
    raw = (stored.header("Content-Disposition") or "").encode("latin-1")
    assert raw == f'attachment; filename="{UNICODE_NAME}"'.encode()
    fake.disposition_style = "rfc5987"
    _, stored = follow(fake, version=710001)
    assert f"filename*=UTF-8''{quote(UNICODE_NAME, safe='')}" in (stored.header("Content-Disposition") or "")


@pytest.mark.parametrize(
    ("query", "file_id"),
    [
        ("", 808003),
        ("?type=Model&format=SafeTensor&size=full&fp=fp32", 808004),
        ("?fileId=808004", 808004),
        ("?fileId=808004&fp=fp16", 808004),  # fileId skips the misalignment check
        ("?format=SafeTensor&size=pruned", 808003),
    ],
)
def test_download_file_selection(fake: FakeCivitai, query: str, file_id: int) -> None:
    location = download(fake, query).header("Location") or ""
    assert urlsplit(location).path.startswith(f"/model/{file_id}/")


@pytest.mark.parametrize("query", ["?fp=fp32", "?format=PickleTensor", "?type=VAE", "?fileId=808001"])
def test_download_misalignment_is_file_not_found(fake: FakeCivitai, query: str) -> None:
    answer = download(fake, query)
    assert (answer.status, answer.json()) == (404, {"error": "File not found"})


def test_every_listed_download_url_resolves_to_its_file(fake: FakeCivitai) -> None:
    for model_id in (424242, 515151, 626262):
        for version in api(fake, f"/api/v1/models/{model_id}").json()["modelVersions"]:
            for file in version["files"]:
                answer = call(file["downloadUrl"])
                assert urlsplit(answer.header("Location") or "").path.startswith(f"/model/{file['id']}/")


def test_download_names_follow_get_download_filename(fake: FakeCivitai) -> None:
    names = {f["id"]: f["name"] for v in api(fake, "/api/v1/models/515151").json()["modelVersions"] for f in v["files"]}
    assert names == {818001: "inkwash.safetensors", 818002: "inkwash-neg.safetensors"}
    names = {f["id"]: f["name"] for f in api(fake, "/api/v1/model-versions/929001").json()["files"]}
    assert names == {828001: "harborMix_v30.safetensors", 828002: "harborMix_v30.safetensors"}
    assert filenamize("Paper Lantern Style") == "paperLanternStyle"
    assert filenamize("v2.0 SDXL") == "v20Sdxl"
    _, stored = follow(fake, "?fileId=828002", version=929001)
    assert stored.header("Content-Disposition") == 'attachment; filename="harborMix_v30.safetensors"'


def test_range_requests(fake: FakeCivitai) -> None:
    first, full = follow(fake)
    location = first.header("Location") or ""
    size = len(full.body)
    part = call(location, headers={"Range": "bytes=1000-"})
    assert part.status == 206 and part.body == full.body[1000:]
    assert part.header("Content-Range") == f"bytes 1000-{size - 1}/{size}"
    assert part.header("Content-Length") == str(size - 1000)
    assert call(location, headers={"Range": "bytes=0-9"}).body == full.body[:10]
    assert call(location, headers={"Range": "bytes=-10"}).body == full.body[-10:]
    unsatisfiable = call(location, headers={"Range": f"bytes={size}-"})
    assert unsatisfiable.status == 416 and unsatisfiable.header("Content-Range") == f"bytes */{size}"
    stale = call(location, headers={"Range": "bytes=10-", "If-Range": '"other"'})
    assert stale.status == 200 and stale.body == full.body
    head = call(location, method="HEAD")
    assert head.status == 200 and head.body == b"" and head.header("Content-Length") == str(size)


def test_cdn_rejects_authorization_and_bad_signatures(fake: FakeCivitai) -> None:
    location = download(fake).header("Location") or ""
    rejected = call(location, headers={"Authorization": "Bearer tok-valid"})
    assert rejected.status == 400
    assert b"<Code>InvalidRequest</Code>" in rejected.body and b"x-amz-content-sha256" in rejected.body
    tampered = location.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert call(tampered).status == 403
    fake.signed_url_ttl = -1
    expired = call(download(fake).header("Location") or "")
    assert expired.status == 403 and b"expired" in expired.body


# -- download: the error table of section 1.6 ----------------------------------------------


def test_download_not_found_in_both_branches(fake: FakeCivitai) -> None:
    tool = download(fake, version=999)
    assert (tool.status, tool.json(), tool.header("Cache-Control")) == (
        404,
        {"error": "File not found"},
        "no-store, max-age=0",
    )
    browser = download(fake, version=999, headers={"User-Agent": BROWSER_UA})
    assert (browser.status, browser.body, browser.header("Content-Type")) == (404, b"File not found", None)
    assert download(fake, version=710006).status == 404  # unpublished


def test_download_bad_query_is_json_in_both_branches(fake: FakeCivitai) -> None:
    for headers in ({}, {"User-Agent": BROWSER_UA}):
        for query in ("?type=Bogus", "?size=huge", "?fileId=abc"):
            answer = download(fake, query, headers=headers)
            assert answer.status == 400 and isinstance(answer.json()["error"], str)
    assert api(fake, "/api/download/models/abc").status == 400


def test_download_early_access(fake: FakeCivitai) -> None:
    tool = download(fake, version=710002)
    assert tool.status == 403
    assert tool.json() == {
        "error": "Early Access",
        "deadline": "2099-01-01T00:00:00.000Z",
        "message": "This asset is in Early Access. You can use Buzz access it now!",
    }
    browser = download(fake, version=710002, headers={"User-Agent": BROWSER_UA})
    assert (browser.status, browser.header("Location")) == (307, "/model-versions/710002")
    fake.grant("tok-valid", 710002)
    granted = download(fake, "?token=tok-valid", version=710002)
    assert granted.status == 307 and (granted.header("Location") or "").startswith(fake.cdn_url)


def test_download_login_required(fake: FakeCivitai) -> None:
    tool = download(fake, version=710003)
    assert (tool.status, tool.json()) == (
        401,
        {"error": "Unauthorized", "message": "The creator of this asset requires you to be logged in to download it"},
    )
    browser = download(fake, version=710003, headers={"User-Agent": BROWSER_UA})
    assert browser.status == 307
    assert browser.header("Location") == "/login?returnUrl=%2Fmodel-versions%2F710003&reason=download-auth"
    assert call(fake.api_url + "/login?returnUrl=x").body.startswith(b"<!DOCTYPE html>")
    assert download(fake, "?token=unknown", version=710003).status == 401  # unknown key = anonymous
    assert download(fake, "?token=tok-valid", version=710003).status == 307
    assert download(fake, version=710003, headers={"Authorization": "Bearer tok-valid"}).status == 307
    header_wins = download(fake, "?token=tok-valid", version=710003, headers={"Authorization": "Bearer nope"})
    assert header_wins.status == 401
    fake.unauthenticated_download = False
    assert download(fake).status == 401


def test_download_disabled_archived_blocked_limited(fake: FakeCivitai) -> None:
    for headers in ({}, {"User-Agent": BROWSER_UA}):
        disabled = download(fake, version=710004, headers=headers)
        assert disabled.status == 401
        assert disabled.json()["message"] == "The creator of this asset has disabled downloads on this file"
    assert download(fake, version=710005).json() == {"error": "Model archived, not available for download"}
    assert download(fake, version=710005, headers={"User-Agent": BROWSER_UA}).body.startswith(b"Model archived")
    fake.blocked_tokens.add("tok-valid")
    assert download(fake, "?token=tok-valid").json() == {"error": "Forbidden"}
    fake.download_limit = 1
    fake.reset_download_counts()
    assert download(fake).status == 307
    limited = download(fake)
    assert limited.status == 429 and "unusual amount of downloading" in limited.json()["error"]


def test_storage_resolve_failure_is_uncached_404(fake: FakeCivitai) -> None:
    fake.storage_failures = 1
    failed = download(fake)
    assert (failed.status, failed.header("Cache-Control")) == (404, "private, no-store")
    assert download(fake).status == 307


# -- failure injection and the request log --------------------------------------------------


def test_inject_status_with_retry_after(fake: FakeCivitai) -> None:
    knob = fake.inject(r"^/api/v1/models/424242$", status=503, times=2, headers={"Retry-After": "1"})
    for _ in range(2):
        answer = api(fake, "/api/v1/models/424242")
        assert (answer.status, answer.header("Retry-After")) == (503, "1")
    assert api(fake, "/api/v1/models/424242").status == 200
    assert knob.hits == 2
    fake.inject(r"^/api/v1/models/424242$", status=429)
    bare = api(fake, "/api/v1/models/424242")
    assert (bare.status, bare.header("Retry-After")) == (429, None)


def test_inject_cloudflare_html(fake: FakeCivitai) -> None:
    fake.inject_html(r"^/api/v1/model-versions/by-hash/", status=403)
    answer = api(fake, "/api/v1/model-versions/by-hash/ABCDEF")
    assert answer.status == 403 and b"Just a moment..." in answer.body
    assert (answer.header("Content-Type") or "").startswith("text/html")
    assert answer.header("cf-mitigated") == "challenge"
    fake.inject_html(r"^/model/", status=200, page="login", server="cdn")
    _, stored = follow(fake)
    assert stored.status == 200 and (stored.header("Content-Type") or "").startswith("text/html")


def test_truncated_body_then_resume_with_range(fake: FakeCivitai) -> None:
    location = download(fake).header("Location") or ""
    fake.inject(r"^/model/", server="cdn", truncate_after=1000)
    parts = urlsplit(location)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    conn.request("GET", f"{parts.path}?{parts.query}")
    resp = conn.getresponse()
    with pytest.raises(http.client.IncompleteRead) as caught:
        resp.read()
    conn.close()
    assert len(caught.value.partial) == 1000
    rest = call(location, headers={"Range": "bytes=1000-"})
    assert rest.status == 206
    whole = caught.value.partial + rest.body
    assert hashlib.sha256(whole).hexdigest() == fake.file_sha256(808003)
    ranged = [r for r in fake.requests_for("cdn", r"^/model/") if r.header("Range")]
    assert [r.header("range") for r in ranged] == ["bytes=1000-"]
    assert all(r.header("Authorization") is None for r in fake.requests_for("cdn"))


def test_ignore_range_and_missing_content_length(fake: FakeCivitai) -> None:
    location = download(fake).header("Location") or ""
    fake.inject(r"^/model/", server="cdn", ignore_range=True)
    full = call(location, headers={"Range": "bytes=1000-"})
    assert full.status == 200 and len(full.body) == 228_504
    fake.inject(r"^/model/", server="cdn", omit_content_length=True)
    unsized = call(location)
    assert unsized.status == 200 and unsized.header("Content-Length") is None and len(unsized.body) == 228_504


def test_slow_body(fake: FakeCivitai) -> None:
    fake.inject(r"/api/v1/enums", slow_bytes_per_sec=20_000)
    started = time.monotonic()
    answer = api(fake, "/api/v1/enums")
    assert answer.status == 200 and json.loads(answer.body)
    assert time.monotonic() - started >= len(answer.body) / 20_000 * 0.8


def test_request_log_records_queries_and_headers(fake: FakeCivitai) -> None:
    api(fake, "/api/v1/models?types=LORA&types=Checkpoint", headers={"X-Probe": "1"})
    record = fake.requests_for("api", r"^/api/v1/models$")[-1]
    assert record.server == "api" and record.method == "GET" and record.status == 200
    assert record.query == {"types": ["LORA", "Checkpoint"]}
    assert record.header("x-probe") == "1" and record.headers["user-agent"] == TOOL_UA


# -- FakeFile content ----------------------------------------------------------------------


def test_generated_content_is_deterministic_and_streamable() -> None:
    file = FakeFile(5, "x.bin", size=BIG_SIZE)
    again = FakeFile(5, "y.bin", size=BIG_SIZE)
    other = FakeFile(6, "z.bin", size=BIG_SIZE)
    whole = file.read()
    assert len(whole) == BIG_SIZE and whole == again.read() and whole != other.read()
    assert b"".join(file.iter_bytes(chunk_size=77_777)) == whole
    assert file.read(2**20 - 3, 10) == whole[2**20 - 3 : 2**20 + 7]  # across a block boundary
    assert file.sha256_hex() == hashlib.sha256(whole).hexdigest()
    assert file.api_hashes()["CRC32"] and file.size_kb == BIG_SIZE / 1024
    assert "AutoV1" not in FakeFile(7, "s.bin", size=2**21 - 1).api_hashes()
    assert FakeFile(8, "c.bin", content=b"abc").api_hashes()["SHA256"] == hashlib.sha256(b"abc").hexdigest().upper()
    with pytest.raises(ValueError):
        FakeFile(9, "none.bin")


def test_fake_image_url_and_bytes() -> None:
    image = FakeImage(42, type="video")
    assert image.url("http://cdn").endswith("/original=true/42.mp4")
    assert FakeImage(43).body().startswith(b"\xff\xd8\xff")


def test_a_fresh_fake_stops_cleanly() -> None:
    with FakeCivitai() as fake:
        fake.add_model(1, name="Solo", type="LORA", creator=None)
        fake.add_version(1, 2, name="v1", files=[FakeFile(3, "solo.safetensors", size=10)])
        assert "creator" not in api(fake, "/api/v1/models/1").json()
        url = fake.api_url
    with pytest.raises(OSError):
        call(url + "/api/v1/enums")


# -- command line ----------------------------------------------------------------------------


def test_cli_writes_port_file_and_stops_on_sigterm(tmp_path: Path) -> None:
    port_file = tmp_path / "ports.json"
    package_root = Path(fake_server.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package_root), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "synapse_civitai.fake_server", "--port-file", str(port_file), "--seed-demo"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not port_file.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        urls = json.loads(port_file.read_text())
        assert set(urls) == {"api_url", "cdn_url"}
        assert call(urls["api_url"] + "/api/v1/models/424242").json()["name"] == "Paper Lantern Style"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert json.loads(out) == urls
    assert not port_file.exists()
