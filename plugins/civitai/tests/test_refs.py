"""Every reference form users paste (civitai-api.md section 4), parsed; bad ones give clear errors."""

from __future__ import annotations

import pytest

from synapse_civitai.refs import CivitaiRef, looks_like_civitai, parse_ref
from synapse_core.errors import InvalidInput

HOSTS = ("civitai.com", "www.civitai.com", "civitai.red", "www.civitai.red")


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/models/424242", CivitaiRef(model_id=424242)),
        ("/models/424242/", CivitaiRef(model_id=424242)),
        ("/models/424242/paper-lantern-style", CivitaiRef(model_id=424242)),
        ("/models/424242?modelVersionId=909001", CivitaiRef(model_id=424242, version_id=909001)),
        (
            "/models/424242/paper-lantern-style?modelVersionId=909001",
            CivitaiRef(model_id=424242, version_id=909001),
        ),
        ("/model-versions/909001", CivitaiRef(version_id=909001)),
        ("/api/download/models/909002", CivitaiRef(version_id=909002)),
        (
            "/api/download/models/909002?type=Model&format=SafeTensor&size=full&fp=fp32",
            CivitaiRef(
                version_id=909002, query={"type": "Model", "format": "SafeTensor", "size": "full", "fp": "fp32"}
            ),
        ),
        ("/api/download/models/909002?fileId=808004", CivitaiRef(version_id=909002, file_id=808004)),
        (
            "/api/download/models/909001?type=Training%20Data",
            CivitaiRef(version_id=909001, query={"type": "Training Data"}),
        ),
        (
            "/api/download/models/909002?type=Model&format=GGUF&quantType=Q4_K_M",
            CivitaiRef(version_id=909002, query={"type": "Model", "format": "GGUF", "quantType": "Q4_K_M"}),
        ),
    ],
)
def test_url_forms_on_every_host(host: str, path: str, expected: CivitaiRef) -> None:
    assert parse_ref(f"https://{host}{path}") == expected


@pytest.mark.parametrize(
    "ref",
    [
        "civitai.com/models/424242?modelVersionId=909001",  # pasted without a scheme
        "http://civitai.com/models/424242?modelVersionId=909001",
        "HTTPS://CIVITAI.COM/models/424242?modelVersionId=909001",  # host case does not matter
        "  https://civitai.com/models/424242?modelVersionId=909001 \n",  # stray whitespace
        "https://civitai.com/models/424242?modelVersionId=909001#gallery",
        "https://civitai.com/models/424242?modelVersionId=909001&utm_source=x",
    ],
)
def test_url_variants(ref: str) -> None:
    assert parse_ref(ref) == CivitaiRef(model_id=424242, version_id=909001)


def test_download_url_token_is_not_kept_as_a_selector() -> None:
    ref = parse_ref("https://civitai.com/api/download/models/909002?fileId=808004&token=secret-abc")
    assert ref == CivitaiRef(version_id=909002, file_id=808004)
    assert "secret-abc" not in repr(ref)


@pytest.mark.parametrize(
    ("air", "expected"),
    [
        ("urn:air:sdxl:lora:civitai:424242@909002", CivitaiRef(model_id=424242, version_id=909002)),
        ("urn:air:sd1:lora:civitai:424242", CivitaiRef(model_id=424242)),
        (
            "urn:air:sdxl:checkpoint:civitai:827184@2514310+2402203",
            CivitaiRef(model_id=827184, version_id=2514310, file_id=2402203),
        ),
        ("URN:AIR:SDXL:LORA:CIVITAI:424242@909002", CivitaiRef(model_id=424242, version_id=909002)),
        ("air:sdxl:lora:civitai:424242@909002", CivitaiRef(model_id=424242, version_id=909002)),
        ("urn:air:flux1:diffusionmodel:civitai:5@6", CivitaiRef(model_id=5, version_id=6)),
        ("urn:air:other:upscaler:civitai:7@8+9", CivitaiRef(model_id=7, version_id=8, file_id=9)),
    ],
)
def test_air(air: str, expected: CivitaiRef) -> None:
    assert parse_ref(air) == expected


@pytest.mark.parametrize(
    ("air", "expected"),
    [
        ("urn:air:sdxl:lora:civitai:424242@909002.safetensors", CivitaiRef(model_id=424242, version_id=909002)),
        (
            "urn:air:sdxl:checkpoint:civitai:827184@2514310+2402203.safetensors",
            CivitaiRef(model_id=827184, version_id=2514310, file_id=2402203),
        ),
    ],
)
def test_air_with_format_suffix(air: str, expected: CivitaiRef) -> None:
    """The AIR grammar ends with an optional ``.{format}`` (civitai-api.md section 4)."""
    assert parse_ref(air) == expected


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("civitai:424242", CivitaiRef(model_id=424242)),
        ("civitai:424242@909001", CivitaiRef(model_id=424242, version_id=909001)),
        ("Civitai:424242@909001", CivitaiRef(model_id=424242, version_id=909001)),
        (" civitai:424242 ", CivitaiRef(model_id=424242)),
    ],
)
def test_short_form(ref: str, expected: CivitaiRef) -> None:
    assert parse_ref(ref) == expected


def test_the_configured_origin_is_accepted_as_a_host() -> None:
    """Links copied from the API's own answers (host echo) parse when the origin is SYNAPSE_CIVITAI_URL's."""
    extra = frozenset({"127.0.0.1:8123"})
    assert parse_ref("http://127.0.0.1:8123/api/download/models/909002?fileId=808004", extra) == CivitaiRef(
        version_id=909002, file_id=808004
    )
    assert looks_like_civitai("http://127.0.0.1:8123/models/1", extra)
    with pytest.raises(InvalidInput):
        parse_ref("http://127.0.0.1:8123/models/1")  # not without the extra host


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        ("https://example.com/models/424242", ["not a Civitai address"]),
        ("https://civitai.com.evil.example/models/424242", ["not a Civitai address"]),
        ("https://evil.example/civitai.com/models/424242", ["not a Civitai address"]),
        ("https://civitai.com/images/123456", ["names no Civitai model or version"]),
        ("https://civitai.com/models/", ["names no Civitai model or version"]),
        ("https://civitai.com/models/paper-lantern", ["names no Civitai model or version"]),
        ("https://civitai.com/user/lantern_maker", ["names no Civitai model or version"]),
        ("https://civitai.com/api/download/models/", ["names no Civitai model or version"]),
        ("https://civitai.com/api/download/models/abc", ["names no Civitai model or version"]),
        ("https://civitai.com/models/424242?modelVersionId=latest", ["'latest'", "whole number"]),
        ("https://civitai.com/api/download/models/909002?fileId=primary", ["'primary'", "whole number"]),
        ("urn:air:sdxl:lora:huggingface:org/repo@main", ["not a Civitai AIR"]),
        ("urn:air:sdxl:lora:civitai:abc@909002", ["numeric model and version"]),
        ("urn:air:sdxl:lora:civitai:424242@v2", ["numeric model and version"]),
        ("urn:air:sdxl:lora:civitai:424242@1.5", ["numeric model and version"]),
        ("urn:air:", ["not a Civitai AIR"]),
        ("civitai:", ["Civitai"]),
        ("civitai:abc", ["Civitai"]),
        ("", ["Civitai"]),
    ],
)
def test_bad_references_say_what_is_accepted(ref: str, words: list[str]) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_ref(ref)
    message = caught.value.message
    for word in words:
        assert word in message, message
    assert "\n" not in message
    if "not a Civitai address" in message or "not a Civitai AIR" in message or "names no" in message:
        # the message lists the accepted forms
        assert "civitai.com/models/ID" in message and "urn:air:" in message and "civitai:ID" in message


@pytest.mark.parametrize(
    "ref",
    [
        "civitai:1",
        "urn:air:sdxl:lora:civitai:1@2",
        "air:sdxl:lora:civitai:1@2",
        "https://civitai.com/models/1",
        "https://www.civitai.red/models/1",
        "civitai.com/models/1",
        "www.civitai.com/models/1",
        "https://civitai.com/images/1",  # meant for Civitai, even if it names no model
    ],
)
def test_looks_like_civitai(ref: str) -> None:
    assert looks_like_civitai(ref)


@pytest.mark.parametrize(
    "ref",
    [
        "/home/me/models/style.safetensors",
        "style.safetensors",
        "./civitai.com/models/1",
        "https://huggingface.co/org/repo/resolve/main/x.safetensors",
        "https://civitai.com.evil.example/models/1",
    ],
)
def test_other_references_are_left_to_other_sources(ref: str) -> None:
    assert not looks_like_civitai(ref)
