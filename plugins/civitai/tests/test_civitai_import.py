"""`synapse import` / `install` / `search` / `identify` / `civitai login` against the fake Civitai,
through the real CLI (and, for the wide kind matrix, the in-process Store)."""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from civitai_checks import assert_blob, assert_secret_absent, blobs, failed, ok, pack_files

from synapse_civitai.fake_server import FakeCivitai, FakeFile
from synapse_core.errors import SynapseError
from synapse_core.store import Store
from synapse_core.testing import make_registry

PACK = "PaperLanternStyle"
TOKEN = "civitai-key-4b1d9f0e7a2c6d83"

# ref, version id, file id, policy ("{api}" is the fake's own origin: links copied from its answers)
REFERENCE_FORMS = [
    ("https://civitai.com/models/424242", 909002, 808003, "follow_latest"),
    ("https://civitai.com/models/424242/paper-lantern-style", 909002, 808003, "follow_latest"),
    ("https://civitai.com/models/424242?modelVersionId=909001", 909001, 808001, "pinned"),
    ("https://www.civitai.com/models/424242/paper-lantern-style?modelVersionId=909001", 909001, 808001, "pinned"),
    ("https://civitai.red/models/424242", 909002, 808003, "follow_latest"),
    ("https://www.civitai.red/models/424242?modelVersionId=909002", 909002, 808003, "pinned"),
    ("https://civitai.com/model-versions/909001", 909001, 808001, "pinned"),
    ("https://civitai.com/api/download/models/909002", 909002, 808003, "pinned"),
    (
        "https://civitai.com/api/download/models/909002?type=Model&format=SafeTensor&size=full&fp=fp32",
        909002,
        808004,
        "pinned",
    ),
    ("https://civitai.com/api/download/models/909002?fileId=808004", 909002, 808004, "pinned"),
    ("{api}/api/download/models/909001", 909001, 808001, "pinned"),
    ("urn:air:sdxl:lora:civitai:424242@909002", 909002, 808003, "pinned"),
    ("urn:air:sdxl:lora:civitai:424242@909002+808004", 909002, 808004, "pinned"),
    ("urn:air:sd1:lora:civitai:424242@909001.safetensors", 909001, 808001, "pinned"),
    ("civitai:424242", 909002, 808003, "follow_latest"),
    ("civitai:424242@909001", 909001, 808001, "pinned"),
]


@pytest.mark.parametrize(("ref", "version_id", "file_id", "policy"), REFERENCE_FORMS)
def test_import_and_install_from_every_reference_form(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any], ref: str, version_id: int, file_id: int, policy: str
) -> None:
    ref = ref.replace("{api}", fake.api_url)
    file, version = fake.get_file(file_id)
    expected_sha = fake.file_sha256(file_id)

    # --sync: import and install in one run (`synapse install` itself is run by the other tests)
    imported = ok(synapse("import", ref, "--sync", "--json"))
    assert imported["pack"] == PACK and imported["source"] == "civitai"
    assert [(r["sha256"], r["installed"]) for r in imported["resources"]] == [(expected_sha, True)]

    pack, lock = pack_files(root, PACK)
    assert pack["source"]["provider"] == "civitai"
    assert pack["source"]["metadata"]["model_id"] == 424242
    assert pack["source"]["version_id"] == str(version_id)
    assert pack["source"]["url"].endswith("/models/424242")
    assert pack["policy"] == policy
    [(rid, locked)] = lock["resources"].items()
    assert rid == pack["resources"][0]["id"]
    api_file = _api_file(fake, version_id, file_id)
    assert locked["version_id"] == str(version_id)
    assert locked["file_id"] == str(file_id)
    assert locked["file_name"] == api_file["name"]
    assert locked["sha256"] == expected_sha == api_file["hashes"]["SHA256"].lower()
    assert locked["size"] == file.byte_size
    assert f"/api/download/models/{version_id}" in locked["url"]
    assert pack["resources"][0]["expose"] == api_file["name"]
    assert_blob(root, expected_sha)
    assert fake.requests_for("cdn", rf"^/model/{file_id}/"), "the bytes came from the storage host"

    previews = root / "state" / "packs" / PACK / "resources" / "previews"
    saved = {p.name: p.read_bytes() for p in previews.iterdir()}
    assert saved == {f"{i.id}.jpeg": i.body() for i in version.images}


def _api_file(fake: FakeCivitai, version_id: int, file_id: int) -> dict[str, Any]:
    """The file as the API describes it (name, hashes), read with plain httpx."""
    import httpx

    body = httpx.get(f"{fake.api_url}/api/v1/model-versions/{version_id}").json()
    return next(f for f in body["files"] if f["id"] == file_id)


def test_pin_and_follow_override_the_default_policy(root: Path, synapse: Callable[..., Any]) -> None:
    ok(synapse("import", "civitai:424242", "--pin", "--name", "Pinned"))
    ok(synapse("import", "civitai:424242@909001", "--follow", "--name", "Following"))
    assert pack_files(root, "Pinned")[0]["policy"] == "pinned"
    assert pack_files(root, "Pinned")[0]["source"]["version_id"] == "909002"
    assert pack_files(root, "Following")[0]["policy"] == "follow_latest"
    assert pack_files(root, "Following")[0]["source"]["version_id"] == "909001"


def test_pack_json_records_the_civitai_metadata(fake: FakeCivitai, root: Path, synapse: Callable[..., Any]) -> None:
    imported = ok(synapse("import", "https://civitai.com/models/424242", "--json"))
    assert [r["installed"] for r in imported["resources"]] == [False], "import alone downloads nothing"
    assert not fake.requests_for("cdn", r"^/model/"), "no model bytes are fetched by import"
    pack, lock = pack_files(root, PACK)
    model = fake.get_model(424242)
    version = fake.get_version(909002)
    assert model is not None and version is not None
    assert pack["name"] == PACK
    assert pack["creator"] == model.creator == "lantern_maker"
    assert pack["tags"] == model.tags
    assert pack["trigger_words"] == version.trained_words == ["paperlantern style"]
    assert pack["base_model"] == version.base_model
    assert pack["description"] == model.description
    assert pack["source"]["version_name"] == version.name
    assert pack["upstream"] == "ok"
    assert [r["kind"] for r in pack["resources"]] == ["lora"]
    installed = ok(synapse("install", PACK, "--json"))
    assert installed["fetched"] == ["main"]
    sha = lock["resources"]["main"]["sha256"]
    assert sha == fake.file_sha256(808003)
    assert (root / "data" / "blobs" / "sha256" / sha[:2] / sha).is_file()
    assert ok(synapse("install", PACK, "--json"))["fetched"] == []  # nothing left to fetch


def test_a_model_without_creator_or_trigger_words(fake: FakeCivitai, root: Path, synapse: Callable[..., Any]) -> None:
    """The civitai account's models have no `creator`; empty arrays are absent from /models (removeEmpty)."""
    fake.add_model(600001, name="Official VAE", type="VAE", creator=None)
    fake.add_version(
        600001, 610001, name="v1", files=[FakeFile(620001, "official.vae.safetensors", size=2048, type="VAE")]
    )
    ok(synapse("import", "civitai:600001"))
    pack, lock = pack_files(root, "OfficialVAE")
    assert pack["creator"] is None and pack["trigger_words"] == [] and pack["tags"] == []
    assert [r["kind"] for r in pack["resources"]] == ["vae"]
    assert lock["resources"]["main"]["sha256"] == fake.file_sha256(620001)
    assert not (root / "state" / "packs" / "OfficialVAE" / "resources" / "previews").exists()


@pytest.mark.parametrize(
    ("civitai_type", "file_type", "kind"),
    [
        ("LORA", "Model", "lora"),
        ("LoCon", "Model", "lora"),
        ("DoRA", "Model", "lora"),
        ("TextualInversion", "Model", "embedding"),
        ("Checkpoint", "Model", "checkpoint"),
        ("Checkpoint", "Pruned Model", "checkpoint"),
        ("Checkpoint", "Diffusion Model", "diffusion_model"),
        ("Checkpoint", "UNet", "diffusion_model"),
        ("Hypernetwork", "Model", "hypernetwork"),
        ("Controlnet", "Model", "controlnet"),
        ("Upscaler", "Model", "upscaler"),
        ("MotionModule", "Model", "motion_module"),
        ("VAE", "Model", "vae"),
        ("Wildcards", "Model", "other"),
        ("Detection", "Model", "detection"),
        ("AestheticGradient", "Model", "other"),
        ("SomethingCivitaiAddsNextYear", "Model", "other"),
    ],
)
def test_kind_mapping(
    fake: FakeCivitai, root: Path, env: dict[str, str], civitai_type: str, file_type: str, kind: str
) -> None:
    fake.add_model(610000, name="Kind Probe", type=civitai_type, tags=["probe"])
    fake.add_version(
        610000,
        611000,
        name="v1",
        files=[FakeFile(612000, "probe.safetensors", size=1024, type=file_type, primary=True)],
    )
    store = Store(root=root, registry=make_registry(entry_points=True, env=env))
    result = store.import_pack("civitai:610000")
    assert [r.kind.value for r in result.resources] == [kind]
    assert [r.kind.value for r in store.show(result.pack).pack.resources] == [kind]


def test_file_choice_options(fake: FakeCivitai, root: Path, synapse: Callable[..., Any]) -> None:
    ok(synapse("import", "civitai:424242", "--file", "808004", "--name", "ByFile"))
    ok(synapse("import", "civitai:424242", "--prefer", "fp=fp32", "--name", "ByPrefer"))
    ok(synapse("import", "civitai:424242@909001", "--all-files", "--name", "AllFiles"))
    for name in ("ByFile", "ByPrefer"):
        _, lock = pack_files(root, name)
        assert [r["file_id"] for r in lock["resources"].values()] == ["808004"], name
        assert [r["sha256"] for r in lock["resources"].values()] == [fake.file_sha256(808004)]
    pack, lock = pack_files(root, "AllFiles")
    assert sorted(r["file_id"] for r in lock["resources"].values()) == ["808001", "808002"]
    kinds = {lock["resources"][r["id"]]["file_id"]: r["kind"] for r in pack["resources"]}
    assert kinds == {"808001": "lora", "808002": "other"}  # the training data zip is not a LoRA
    assert len({r["expose"] for r in pack["resources"]}) == 2
    ok(synapse("install", "AllFiles"))
    for file_id in (808001, 808002):
        sha = fake.file_sha256(file_id)
        assert (root / "data" / "blobs" / "sha256" / sha[:2] / sha).is_file()


def test_all_files_of_a_version_get_distinct_names(fake: FakeCivitai, root: Path, synapse: Callable[..., Any]) -> None:
    """Civitai names both Harbor Mix files harborMix_v30.safetensors: a pack must not hide one behind the other."""
    names = {f["name"] for f in (_api_file(fake, 929001, 828001), _api_file(fake, 929001, 828002))}
    assert len(names) == 1  # the premise: the API gives them the same name
    ok(synapse("import", "civitai:626262", "--all-files", "--sync"))
    pack, lock = pack_files(root, "HarborMix")
    exposed = [r["expose"] for r in pack["resources"]]
    assert len(set(exposed)) == 2 and all(e.endswith(".safetensors") for e in exposed)
    assert sorted(r["sha256"] for r in lock["resources"].values()) == sorted(
        fake.file_sha256(i) for i in (828001, 828002)
    )
    status = ok(synapse("status", "--json"))
    assert all(ui["shadowed"] == [] and ui["entries"] == 2 for ui in status["uis"]), status


def test_files_that_share_a_download_url_are_locked_by_file_id(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any]
) -> None:
    """Two non-primary files with the same type and metadata share `downloadUrl` (?type=...&format=...),
    which Civitai resolves to one of them: the lock must name each file."""
    meta = {"format": "SafeTensor", "size": "full", "fp": "fp32"}
    fake.add_model(660101, name="Twins", type="LORA")
    fake.add_version(
        660101,
        661101,
        name="v1",
        files=[
            FakeFile(662101, "main.safetensors", size=1000, primary=True),
            FakeFile(662102, "twin_a.safetensors", size=2000, metadata=meta),
            FakeFile(662103, "twin_b.safetensors", size=3000, metadata=meta),
        ],
    )
    ok(synapse("import", "civitai:660101", "--all-files", "--sync"))
    _, lock = pack_files(root, "Twins")
    by_file = {int(r["file_id"]): r for r in lock["resources"].values()}
    assert {i: r["sha256"] for i, r in by_file.items()} == {i: fake.file_sha256(i) for i in (662101, 662102, 662103)}


def test_file_choices_that_match_nothing_are_clear_errors(root: Path, synapse: Callable[..., Any]) -> None:
    err = failed(synapse("import", "civitai:424242", "--file", "123"))
    assert "123" in err and "808003" in err and "808004" in err  # it lists the version's files
    err = failed(synapse("import", "civitai:424242", "--prefer", "fp=bf16"))
    assert "fp=bf16" in err and "808003" in err
    assert not list((root / "state" / "packs").iterdir())


def test_a_name_clash_is_a_clear_error_and_name_resolves_it(root: Path, synapse: Callable[..., Any]) -> None:
    ok(synapse("import", "civitai:424242"))
    err = failed(synapse("import", "civitai:424242@909001"))
    assert PACK in err and "--name" in err
    ok(synapse("import", "civitai:424242@909001", "--name", "PaperLanternV1"))
    assert sorted(p.name for p in (root / "state" / "packs").iterdir()) == [PACK, "PaperLanternV1"]


def test_pack_names_are_sanitised_from_the_model_name(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any]
) -> None:
    fake.add_model(620001, name="../Été: Lights / v2 *best*", type="LORA")
    fake.add_version(620001, 621001, name="v1", files=[FakeFile(622001, "ete.safetensors", size=1000)])
    name = ok(synapse("import", "civitai:620001", "--json"))["pack"]
    assert "/" not in name and ".." not in name and "*" not in name and ":" not in name
    assert "Été" in name  # unicode kept
    assert (root / "state" / "packs" / name / "pack.json").is_file()


def test_unsafe_file_names_from_civitai_are_made_safe(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any]
) -> None:
    fake.add_model(630001, name="Evil Names", type="LORA")
    fake.add_version(
        630001,
        631001,
        name="v1",
        files=[FakeFile(632001, "x.safetensors", size=1000, override_name="../..\\CON\x07:été?.safetensors")],
    )
    ok(synapse("import", "civitai:630001"))
    pack, lock = pack_files(root, "EvilNames")
    for name in (pack["resources"][0]["expose"], lock["resources"]["main"]["file_name"]):
        assert "/" not in name and "\\" not in name and ".." not in name and "\x07" not in name
        assert not name.upper().startswith("CON.")
        assert "été" in name
    ok(synapse("install", "EvilNames"))


def test_previews_skip_videos(fake: FakeCivitai, root: Path, synapse: Callable[..., Any]) -> None:
    result = ok(synapse("import", "civitai:626262", "--json"))
    assert result["previews"] == 1
    folder = root / "state" / "packs" / "HarborMix" / "resources" / "previews"
    image = fake.get_version(929001).images[0]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {f"{image.id}.jpeg": image.body()}
    assert not any(r.path.endswith(".mp4") for r in fake.requests_for("cdn")), "the video was not fetched"


def test_video_previews_are_kept_when_asked(fake: FakeCivitai, root: Path, synapse: Callable[..., Any]) -> None:
    result = ok(synapse("import", "civitai:626262", "--video-previews", "--json"))
    assert result["previews"] == 2
    folder = root / "state" / "packs" / "HarborMix" / "resources" / "previews"
    names = sorted(p.name for p in folder.iterdir())
    assert [n.rsplit(".", 1)[1] for n in names] == ["jpeg", "mp4"], names
    assert any(r.path.endswith(".mp4") for r in fake.requests_for("cdn")), "the video was fetched"


def test_a_preview_failure_never_fails_the_import(fake: FakeCivitai, root: Path, synapse: Callable[..., Any]) -> None:
    fake.inject(r"^/images/", 500, times=None, server="cdn")
    run = synapse("import", "civitai:424242", "--json")
    result = ok(run)
    assert result["previews"] == 0
    assert any("preview" in w for w in result["warnings"]), result["warnings"]
    assert fake.requests_for("cdn", r"^/images/"), "a preview was attempted"
    assert pack_files(root, PACK)[1]["resources"]["main"]["sha256"] == fake.file_sha256(808003)
    ok(synapse("install", PACK))


def test_a_model_that_does_not_exist(root: Path, synapse: Callable[..., Any]) -> None:
    err = failed(synapse("import", "https://civitai.com/models/999999"))
    assert "999999" in err and "not found" in err.lower()
    err = failed(synapse("import", "civitai:424242@999998"))
    assert "999998" in err
    assert not list((root / "state" / "packs").iterdir())


def test_a_bad_reference_is_a_clear_error(root: Path, synapse: Callable[..., Any]) -> None:
    run = synapse("import", "https://civitai.com/images/123")
    err = failed(run)
    assert "civitai.com/models/ID" in err
    assert run.returncode == 2  # invalid input


def test_importing_an_archived_model_says_it_is_archived(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any]
) -> None:
    """Archived models keep their page but lose files and downloadUrl (civitai-api.md 2.1, 5.2)."""
    fake.get_model(424242).mode = "Archived"
    for ref in ("civitai:424242", "civitai:424242@909001"):
        err = failed(synapse("import", ref))
        assert "archived" in err.lower(), err
    assert not list((root / "state" / "packs").iterdir())


def test_a_file_without_a_sha256_from_civitai_is_hashed_here(
    fake: FakeCivitai, add_model: Callable[..., FakeFile], root: Path, synapse: Callable[..., Any]
) -> None:
    """While Civitai is still scanning, `hashes` is {}: say so, and keep the hash computed here."""
    add_model(640001, 641001, 642001, size=50_000, hashes={}, name="Fresh Upload")
    run = synapse("import", "civitai:640001", "--json")
    result = ok(run)
    assert any("sha256" in w for w in result["warnings"]), result
    _, lock = pack_files(root, "FreshUpload")
    assert lock["resources"]["main"]["sha256"] == fake.file_sha256(642001)
    assert lock["resources"]["main"]["size"] == 50_000
    assert_blob(root, fake.file_sha256(642001))


# -- search and identify -------------------------------------------------------------------------------------------


def test_remote_search_returns_the_fakes_model(fake: FakeCivitai, synapse: Callable[..., Any]) -> None:
    result = ok(synapse("search", "paper", "--remote", "--json"))
    hits = {h["ref"]: h for h in result["remote"]}
    model = fake.get_model(424242)
    assert model is not None
    assert "civitai:424242" in hits, result
    hit = hits["civitai:424242"]
    assert hit["name"] == model.name and hit["source"] == "civitai" and hit["kind"] == "lora"
    assert hit["creator"] == model.creator and hit["base_model"] == fake.get_version(909002).base_model
    assert "civitai:626262" not in hits  # Harbor Mix does not match "paper"
    assert result["errors"] == []
    assert fake.requests_for("api", r"^/api/v1/models$")[-1].param("query") == "paper"


def test_remote_search_filters_by_type_and_base_model(fake: FakeCivitai, synapse: Callable[..., Any]) -> None:
    fake.add_model(650001, name="Paper Cut Mix", type="Checkpoint", tags=["paper"])
    fake.add_version(
        650001, 651001, name="v1", base_model="SDXL 1.0", files=[FakeFile(652001, "pc.safetensors", size=10)]
    )
    refs = lambda r: sorted(h["ref"] for h in r["remote"])  # noqa: E731
    assert refs(ok(synapse("search", "paper", "--remote", "--json"))) == ["civitai:424242", "civitai:650001"]
    assert refs(ok(synapse("search", "paper", "--remote", "--type", "checkpoint", "--json"))) == ["civitai:650001"]
    assert refs(ok(synapse("search", "paper", "--remote", "--type", "lora", "--json"))) == ["civitai:424242"]
    lora_request = fake.requests_for("api", r"^/api/v1/models$")[-1]
    assert "LORA" in lora_request.query["types"] and "," not in "".join(lora_request.query["types"])
    by_base = ok(synapse("search", "paper", "--remote", "--base-model", "SD 1.5", "--json"))
    assert refs(by_base) == ["civitai:424242"]  # its v1.0 is SD 1.5; Paper Cut Mix is SDXL only


def test_remote_search_by_a_kind_civitai_has_no_type_for_finds_nothing_else(synapse: Callable[..., Any]) -> None:
    """--type text_encoder must not return LoRAs: the kind filter applies to remote hits too."""
    result = ok(synapse("search", "paper", "--remote", "--type", "text_encoder", "--json"))
    assert [h for h in result["remote"] if h["kind"] != "text_encoder"] == []


def test_local_search_finds_imported_packs_by_trigger_word(root: Path, synapse: Callable[..., Any]) -> None:
    ok(synapse("import", "civitai:424242"))
    result = ok(synapse("search", "paperlantern", "--json"))
    assert [p["name"] for p in result["local"]] == [PACK]
    assert result["remote"] == []


def test_a_search_overload_is_retried(fake: FakeCivitai, synapse: Callable[..., Any]) -> None:
    fake.inject(r"^/api/v1/models$", 503, times=1)
    result = ok(synapse("search", "paper", "--remote", "--json"))
    assert "civitai:424242" in {h["ref"] for h in result["remote"]}
    assert len(fake.requests_for("api", r"^/api/v1/models$")) == 2


def test_identify_finds_a_file_by_hash(
    fake: FakeCivitai, tmp_path: Path, root: Path, synapse: Callable[..., Any]
) -> None:
    local = tmp_path / "downloads" / "mystery.safetensors"
    local.parent.mkdir()
    local.write_bytes(fake.get_file(808001)[0].read())
    unknown = tmp_path / "downloads" / "unknown.safetensors"
    unknown.write_bytes(b"not on civitai" * 100)
    found = ok(synapse("identify", local, unknown, "--json"))
    by_path = {Path(f["path"]).name: f for f in found}
    hit = by_path["mystery.safetensors"]
    assert hit["sha256"] == fake.file_sha256(808001)
    assert hit["source"] == "civitai" and hit["version_id"] == "909001"
    assert hit["ref"].endswith("/models/424242")
    assert by_path["unknown.safetensors"]["source"] is None
    # the hash is remembered by device/inode/size/mtime, so a second run need not read the file again
    cache = (root / "data" / "hash-cache.json").read_text()
    assert hit["sha256"] in cache
    again = ok(synapse("identify", local, "--json"))
    assert again[0]["sha256"] == hit["sha256"]


def test_import_identify_gives_a_local_file_the_civitai_metadata(
    fake: FakeCivitai, tmp_path: Path, root: Path, synapse: Callable[..., Any]
) -> None:
    local = tmp_path / "downloads" / "renamed_by_me.safetensors"
    local.parent.mkdir()
    local.write_bytes(fake.get_file(808003)[0].read())
    result = ok(synapse("import", local, "--identify", "--name", "FromDisk", "--json"))
    assert result["warnings"] == []
    pack, lock = pack_files(root, "FromDisk")
    assert pack["source"]["provider"] == "civitai"
    assert pack["source"]["metadata"]["model_id"] == 424242 and pack["source"]["version_id"] == "909002"
    assert pack["trigger_words"] == ["paperlantern style"]
    assert pack["tags"] == ["style", "lighting", "paper"] and pack["creator"] == "lantern_maker"
    assert pack["base_model"] == "SDXL 1.0"
    assert [r["kind"] for r in pack["resources"]] == ["lora"]
    [locked] = lock["resources"].values()
    assert locked["sha256"] == fake.file_sha256(808003)
    assert locked["version_id"] == "909002" and locked["file_id"] == "808003"
    assert "/api/download/models/909002" in locked["url"]
    assert_blob(root, fake.file_sha256(808003))


def test_import_identify_of_an_unknown_file_keeps_local_metadata(
    tmp_path: Path, root: Path, synapse: Callable[..., Any]
) -> None:
    local = tmp_path / "mine.safetensors"
    local.write_bytes(os.urandom(2048))
    result = ok(synapse("import", local, "--identify", "--json"))
    assert any("no source knows" in w for w in result["warnings"])
    pack, _ = pack_files(root, result["pack"])
    assert pack["source"]["provider"] == "local"


# -- credentials -----------------------------------------------------------------------------------------------


def test_login_status_logout(
    fake: FakeCivitai, tmp_path: Path, env: dict[str, str], root: Path, synapse: Callable[..., Any]
) -> None:
    outputs = []
    run = synapse("civitai", "status", root=None)
    outputs += [run.stdout, run.stderr]
    assert "no key" in ok(run)

    run = synapse("civitai", "login", "--token-stdin", input=TOKEN + "\n", root=None)
    outputs += [run.stdout, run.stderr]
    ok(run)
    credentials = Path(env["XDG_CONFIG_HOME"]) / "synapse" / "credentials.toml"
    assert credentials.is_file()
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert tomllib.loads(credentials.read_text())["civitai"]["token"] == TOKEN
    assert not credentials.resolve().is_relative_to(root.resolve())

    run = synapse("civitai", "status", root=None)
    outputs += [run.stdout, run.stderr]
    assert "stored" in ok(run) and str(credentials) in run.stdout

    # the stored key is used for gated downloads
    fake.add_token(TOKEN)
    fake.get_version(909002).require_auth = True
    for args in (("import", "civitai:424242"), ("install", PACK), ("show", PACK), ("list",)):
        run = synapse(*args)
        outputs += [run.stdout, run.stderr]
        ok(run)
    assert fake.requests_for("api", r"^/api/download/")[-1].header("authorization") == f"Bearer {TOKEN}"

    run = synapse("civitai", "status", root=None, env={"CIVITAI_API_TOKEN": "other-key"})
    outputs += [run.stdout, run.stderr]
    assert "CIVITAI_API_TOKEN" in ok(run)

    run = synapse("civitai", "logout", root=None)
    outputs += [run.stdout, run.stderr]
    ok(run)
    assert not credentials.exists() or TOKEN not in credentials.read_text()
    run = synapse("civitai", "status", root=None)
    outputs += [run.stdout, run.stderr]
    assert "no key" in ok(run)
    assert_secret_absent(TOKEN, root, *outputs)


def test_login_rejects_an_empty_key(env: dict[str, str], synapse: Callable[..., Any]) -> None:
    failed(synapse("civitai", "login", "--token-stdin", input="\n", root=None))
    assert not (Path(env["XDG_CONFIG_HOME"]) / "synapse" / "credentials.toml").exists()


def test_a_login_error_names_the_variable_in_process(fake: FakeCivitai, root: Path, env: dict[str, str]) -> None:
    """The same through the Store API: UpstreamGone is not raised, the pack stays 'ok'."""
    fake.get_version(909002).require_auth = True
    store = Store(root=root, registry=make_registry(entry_points=True, env=env))
    store.import_pack("civitai:424242")
    with pytest.raises(SynapseError) as caught:
        store.install(PACK)
    assert "CIVITAI_API_TOKEN" in caught.value.message
    assert store.show(PACK).pack.upstream == "ok"
    assert blobs(root) == []


def test_link_and_move_are_for_local_files_and_say_so(synapse: Callable[..., Any]) -> None:
    result = ok(synapse("import", "civitai:424242", "--link", "--json"))
    assert "--link applies to local files only; civitai files are downloaded" in result["warnings"]


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b"null",
        b'{"id": 424242, "name": "x", "type": "LORA", "modelVersions": "oops"}',
        b'{"id": 424242, "name": "x", "type": "LORA", "modelVersions": [{"id": 1, "files": [{"id": "a"}]}]}',
    ],
)
def test_model_data_of_an_unexpected_shape_is_one_line(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any], body: bytes
) -> None:
    fake.inject(r"^/api/v1/models/", 200, times=None, body=body, content_type="application/json")
    assert "unexpected shape" in failed(synapse("import", "civitai:424242"))
    assert blobs(root) == []


def test_search_data_of_an_unexpected_shape_is_a_warning_beside_local_results(
    fake: FakeCivitai, synapse: Callable[..., Any]
) -> None:
    fake.inject(r"^/api/v1/models$", 200, times=None, body=b'{"items": "oops"}', content_type="application/json")
    result = synapse("search", "lantern", "--remote")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert "unexpected shape" in result.stderr
