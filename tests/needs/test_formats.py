"""Reading workflows and images in their real formats: which names, in which folder keys, from which node."""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import pytest
from needs.kit import (
    api_node,
    comfy_png,
    comfy_webp,
    infotext,
    jpeg_with_parameters,
    link_object,
    model_record,
    png,
    png_chunk,
    ui_node,
    ui_workflow_04,
    ui_workflow_1,
)

from synapse_core.errors import InvalidInput
from synapse_core.kinds import AssetKind
from synapse_core.testing import make_registry
from synapse_core.workflows.nodes import GraphVocabulary
from synapse_core.workflows.read import ReadFile, read_file


@pytest.fixture(scope="module")
def vocabularies() -> dict[str, GraphVocabulary]:
    return make_registry(entry_points=True, env={"SYNAPSE_LOAD_PLUGINS": "comfyui"}).graph_vocabularies


def read(data: bytes | dict[str, Any], vocabularies: dict[str, GraphVocabulary], label: str = "f") -> ReadFile:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return read_file(raw, label, vocabularies)


def names(found: ReadFile) -> list[tuple[str | None, str]]:
    return [(r.folder, r.name) for r in found.parsed.refs]


def sdxl_04() -> dict[str, Any]:
    """A real-shaped 0.4 graph: checkpoint -> LoRA -> encoders; a muted and a bypassed LoRA; a LoRA
    whose name comes from a PrimitiveNode through a link; a VAE built in (pixel_space)."""
    lora_fed = ui_node(
        12,
        "LoraLoader",
        ["stale/old.safetensors", 0.5, 0.5],
        inputs=[
            {"name": "model", "type": "MODEL", "link": 1},
            {"name": "clip", "type": "CLIP", "link": 2},
            {"name": "lora_name", "type": "COMBO", "widget": {"name": "lora_name"}, "link": 9},
        ],
    )
    primitive = ui_node(
        13, "PrimitiveNode", ["styles\\paper.safetensors", "fixed"], properties={"Run widget replace on values": False}
    )
    return ui_workflow_04(
        [
            ui_node(4, "CheckpointLoaderSimple", ["sd_xl_base_1.0.safetensors"]),
            ui_node(10, "LoraLoader", ["detail\\tweak.safetensors", 0.8, 0.8]),
            ui_node(11, "LoraLoader", ["muted.safetensors", 1, 1], mode=2),
            ui_node(14, "LoraLoader", ["bypassed.safetensors", 1, 1], mode=4),
            lora_fed,
            primitive,
            ui_node(6, "CLIPTextEncode", ["a lantern, embedding:ink_wash, (embedding:paper_neg:1.2)"]),
            ui_node(8, "VAELoader", ["pixel_space"]),
            ui_node(3, "KSampler", [156680208700286, "randomize", 20, 8, "euler", "normal", 1]),
        ],
        [[1, 4, 0, 12, 0, "MODEL"], [2, 4, 1, 12, 1, "CLIP"], [9, 13, 0, 12, 2, "COMBO"]],
    )


def test_ui_04_reads_loaders_follows_links_and_skips_muted_and_bypassed(vocabularies) -> None:
    found = read(sdxl_04(), vocabularies)
    assert found.parsed.format == "ui-0.4" and found.parsed.ui == "comfyui"
    assert names(found) == [
        ("checkpoints", "sd_xl_base_1.0.safetensors"),
        ("loras", "detail\\tweak.safetensors"),
        ("loras", "styles\\paper.safetensors"),  # from the primitive, not the stale widget value
        ("embeddings", "ink_wash"),
        ("embeddings", "paper_neg"),
    ]
    refs = found.parsed.refs
    assert refs[0].kinds == (AssetKind.CHECKPOINT,) and refs[0].where == "node 4 (CheckpointLoaderSimple) ckpt_name"
    assert refs[3].match == "stem"
    assert found.parsed.problems == []


def test_backslash_and_slash_are_the_same_name(vocabularies) -> None:
    graph = ui_workflow_04(
        [
            ui_node(1, "LoraLoader", ["sub\\x.safetensors", 1, 1]),
            ui_node(2, "LoraLoaderModelOnly", ["sub/x.safetensors", 1]),
        ]
    )
    refs = read(graph, vocabularies).parsed.refs
    assert refs[0].key() == refs[1].key()


def subgraph_workflow(instance_mode: int = 0) -> dict[str, Any]:
    """UI format 1: the loaders live in a subgraph; its input 0 (the UNet name) is fed by a
    PrimitiveNode in the root graph; the CLIP loader inside keeps its own widget value."""
    sub_id = "8b4c1e52-1f0e-4f3e-9f5e-8a1e6f3c2d11"
    inner = [
        ui_node(
            1,
            "UNETLoader",
            ["ignored.safetensors", "default"],
            inputs=[{"name": "unet_name", "type": "COMBO", "widget": {"name": "unet_name"}, "link": 101}],
        ),
        ui_node(2, "DualCLIPLoader", ["clip_l.safetensors", "t5xxl_fp16.safetensors", "flux", "default"]),
        ui_node(
            3,
            "VAELoader",
            ["ae.safetensors"],
            properties={
                "models": [
                    model_record(
                        "ae.safetensors",
                        "https://huggingface.co/black-forest-labs/FLUX.1-schnell/resolve/main/ae.safetensors",
                        "vae",
                    )
                ]
            },
        ),
    ]
    definition = {
        "id": sub_id,
        "version": 1,
        "state": {"lastGroupId": 0, "lastNodeId": 3, "lastLinkId": 101, "lastRerouteId": 0},
        "revision": 0,
        "config": {},
        "name": "Flux loaders",
        "inputNode": {"id": -10, "bounding": [0, 0, 120, 60]},
        "outputNode": {"id": -20, "bounding": [600, 0, 120, 60]},
        "inputs": [
            {"id": "0c7f2a4e-65c2-4b57-9b64-3b9a3c2e4f01", "name": "unet_name", "type": "COMBO", "linkIds": [101]}
        ],
        "outputs": [],
        "widgets": [],
        "nodes": inner,
        "links": [link_object(101, -10, 0, 1, 0, "COMBO")],
    }
    instance = ui_node(
        20,
        sub_id,
        [],
        mode=instance_mode,
        inputs=[{"name": "unet_name", "type": "COMBO", "link": 30, "id": "0c7f2a4e-65c2-4b57-9b64-3b9a3c2e4f01"}],
    )
    primitive = ui_node(21, "PrimitiveNode", ["flux1-dev.safetensors", "fixed"])
    return ui_workflow_1(
        [instance, primitive, ui_node(22, "CheckpointLoaderSimple", ["top.safetensors"])],
        [link_object(30, 21, 0, 20, 0, "COMBO")],
        definitions={"subgraphs": [definition]},
    )


def test_ui_1_subgraph_nodes_and_links_through_the_subgraph_input(vocabularies) -> None:
    found = read(subgraph_workflow(), vocabularies)
    assert found.parsed.format == "ui-1"
    assert names(found) == [
        ("diffusion_models", "flux1-dev.safetensors"),
        ("text_encoders", "clip_l.safetensors"),
        ("text_encoders", "t5xxl_fp16.safetensors"),
        ("vae", "ae.safetensors"),
        ("checkpoints", "top.safetensors"),
    ]
    assert found.parsed.refs[0].where == "node 1 (UNETLoader) in subgraph node 20 unet_name"
    vae = found.parsed.refs[3]
    assert vae.url == "https://huggingface.co/black-forest-labs/FLUX.1-schnell/resolve/main/ae.safetensors"


@pytest.mark.parametrize("mode", [2, 4])
def test_a_muted_or_bypassed_subgraph_loads_nothing_inside(vocabularies, mode: int) -> None:
    assert names(read(subgraph_workflow(mode), vocabularies)) == [("checkpoints", "top.safetensors")]


def api_workflow() -> dict[str, Any]:
    return {
        "4": api_node("CheckpointLoaderSimple", {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}),
        "10": api_node(
            "LoraLoader",
            {"model": ["4", 0], "clip": ["4", 1], "lora_name": ["11", 0], "strength_model": 1, "strength_clip": 1},
        ),
        "11": api_node("PrimitiveString", {"value": "paper_lantern.safetensors"}),
        "12": api_node("UpscaleModelLoader", {"model_name": "4x-UltraSharp.pth"}),
        "13": api_node("ControlNetLoader", {"control_net_name": 7}),
        "14": api_node("UNETLoader", {"unet_name": ["4", 0], "weight_dtype": "default"}),
        "6": api_node("CLIPTextEncode", {"text": "embedding:bad_hands, a harbor", "clip": ["10", 1]}),
        "3": api_node("KSampler", {"seed": 1, "steps": 20, "model": ["10", 0]}),
    }


def test_api_format_follows_links_to_primitives_and_reports_bad_values(vocabularies) -> None:
    found = read(api_workflow(), vocabularies)
    assert found.parsed.format == "api"
    assert names(found) == [
        ("checkpoints", "v1-5-pruned-emaonly.safetensors"),
        ("loras", "paper_lantern.safetensors"),
        ("upscale_models", "4x-UltraSharp.pth"),
        ("embeddings", "bad_hands"),
    ]
    problems = found.parsed.problems
    assert "node 13 (ControlNetLoader) control_net_name: 7 is a number where a file name belongs; ignored" in problems
    assert any("node 14 (UNETLoader) unet_name: comes from an output of node 4" in p for p in problems)


def test_png_with_both_chunks_prefers_the_workflow(vocabularies) -> None:
    found = read(comfy_png(sdxl_04(), api_workflow()), vocabularies, "ComfyUI_00001_.png")
    assert found.container == "png" and found.parsed.format == "ui-0.4"
    only_prompt = read(comfy_png(None, api_workflow()), vocabularies)
    assert only_prompt.parsed.format == "api"


@pytest.mark.parametrize("form", ["zTXt", "iTXt"])
def test_compressed_text_chunks(vocabularies, form: str) -> None:
    found = read(png({"workflow": json.dumps(sdxl_04())}, form=form), vocabularies)
    assert ("checkpoints", "sd_xl_base_1.0.safetensors") in names(found)


def test_webp_exif_as_comfyui_writes_it(vocabularies) -> None:
    found = read(comfy_webp(subgraph_workflow(), api_workflow()), vocabularies)
    assert found.container == "webp" and found.parsed.format == "ui-1"


A1111 = infotext(
    "paperlantern style, harbor at dusk <lora:paperLantern_v2:0.8> <lora:inkWash:0.5> badhands",
    "lowres",
    {
        "Steps": "28",
        "Sampler": "DPM++ 2M",
        "CFG scale": "7",
        "Seed": "42",
        "Size": "1024x1024",
        "Model hash": "31e35c80fc",
        "Model": "harborMix_v30",
        "VAE hash": "235745af8d",
        "VAE": "sdxl_vae.safetensors",
        "Lora hashes": "paperLantern_v2: 8a5e4f3b2c1d, inkWash: 0123456789ab",
        "TI hashes": "badhands: abcdefabcdef",
        "Version": "v1.10.1",
    },
)


def test_a1111_png_model_hash_and_lora_hashes(vocabularies) -> None:
    found = read(png({"parameters": A1111}), vocabularies, "00012-42.png")
    assert found.parsed.format == "infotext"
    by_where = {r.where: r for r in found.parsed.refs}
    model = by_where["infotext 'Model hash'"]
    assert model.name == "harborMix_v30" and model.kinds == (AssetKind.CHECKPOINT,) and model.match == "stem"
    assert [(c.value, c.forms) for c in model.hashes] == [("31e35c80fc", ("sha256_prefix",))]
    loras = [r for r in found.parsed.refs if r.where == "infotext 'Lora hashes'"]
    assert [(r.name, r.hashes[0].value, r.hashes[0].forms) for r in loras] == [
        ("paperLantern_v2", "8a5e4f3b2c1d", ("autov3", "sha256_prefix")),
        ("inkWash", "0123456789ab", ("autov3", "sha256_prefix")),
    ]
    assert not any(r.where.startswith("prompt <lora:") for r in found.parsed.refs)  # hashes cover them
    ti = by_where["infotext 'TI hashes'"]
    assert ti.kinds == (AssetKind.EMBEDDING,) and ti.hashes[0].forms == ("sha256_prefix",)
    assert by_where["infotext 'VAE hash'"].name == "sdxl_vae.safetensors"


def test_jpeg_exif_user_comment_infotext(vocabularies) -> None:
    found = read(jpeg_with_parameters(A1111), vocabularies, "image.jpg")
    assert found.container == "jpeg" and found.parsed.format == "infotext"
    assert {r.name for r in found.parsed.refs} >= {"harborMix_v30", "paperLantern_v2", "inkWash", "badhands"}


def test_old_8_hex_model_hash_and_prompt_loras_without_hashes(vocabularies) -> None:
    text = infotext(
        "<lora:onlyName:1>", "", {"Steps": "20", "Sampler": "Euler a", "Model hash": "45dee52b", "Seed": "1"}
    )
    refs = read(png({"parameters": text}), vocabularies).parsed.refs
    assert [(r.name, [c.forms for c in r.hashes]) for r in refs] == [("[45dee52b]", [("autov1",)]), ("onlyName", [])]


# -- bad input: one line each, never a traceback ----------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"hello": "world"}', "JSON, but not a workflow"),
        (b"[1, 2, 3]", "JSON, but not a workflow"),
        (b"{not json", "not valid JSON"),
        (png({"Software": "GIMP"}), "carries no workflow, prompt or generation parameters"),
        (png({})[:40], "truncated"),
        (b"\x00\x01\x02binary", "not a workflow (JSON) and not a PNG, WebP or JPEG"),
    ],
)
def test_files_that_are_not_workflows(vocabularies, data: bytes, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        read(data, vocabularies, "shared.bin")
    assert message in caught.value.message and "\n" not in caught.value.message
    assert caught.value.message.startswith("shared.bin: ")


def test_a_png_truncated_after_its_metadata_is_read_with_a_warning(vocabularies) -> None:
    whole = comfy_png(sdxl_04(), None)
    cut = whole[: whole.index(b"IDAT") + 6]
    found = read(cut, vocabularies, "cut.png")
    assert ("checkpoints", "sd_xl_base_1.0.safetensors") in names(found)
    assert any("truncated" in p for p in found.parsed.problems)


def test_a_text_chunk_with_a_bad_checksum_is_skipped(vocabularies) -> None:
    good = png({"workflow": json.dumps(sdxl_04())})
    chunk = png_chunk(b"tEXt", b"workflow\x00" + json.dumps(sdxl_04()).encode())
    bad = good.replace(chunk, chunk[:-4] + ((zlib.crc32(b"x") & 0xFFFFFFFF).to_bytes(4, "big")))
    with pytest.raises(InvalidInput, match="carries no workflow"):
        read(bad, vocabularies)


def test_models_records_with_bad_urls_or_names(vocabularies) -> None:
    graph = ui_workflow_04(
        [ui_node(1, "VAELoader", ["ae.safetensors"])],
        models=[
            model_record("ae.safetensors", "http://example.com/ae.safetensors", "vae"),
            model_record("../../etc/passwd", "https://huggingface.co/x/y/resolve/main/p", "vae"),
            model_record("x.safetensors", "ftp://example.com/x.safetensors", "loras"),
            model_record("odd.safetensors", "https://huggingface.co/a/b/resolve/main/odd.safetensors", "my_custom_key"),
        ],
    )
    found = read(graph, vocabularies)
    problems = found.parsed.problems
    assert (
        "workflow 'models': the URL of 'ae.safetensors' is refused (it is not https); it is not downloaded" in problems
    )
    assert any("'../../etc/passwd' is refused (it has a '..' or '.' part)" in p for p in problems)
    assert any("ftp://" not in p and "'x.safetensors' is refused (it is not https)" in p for p in problems)
    assert any("directory 'my_custom_key'" in p for p in problems)
    assert all(r.url is None or r.url.startswith("https://") for r in found.parsed.refs)
    assert "../../etc/passwd" not in {r.name for r in found.parsed.refs}


def test_a_widget_name_with_dot_dot_and_an_unknown_node(vocabularies) -> None:
    graph = ui_workflow_04(
        [
            ui_node(1, "CheckpointLoaderSimple", ["../../../home/user/.ssh/id_rsa"]),
            ui_node(2, "MyCustomLoader", ["custom/mystery.safetensors", 3]),
            ui_node(
                3,
                "DWPreprocessor",
                ["enable", "enable", "enable", 512, "yolox_l.onnx", "dw-ll_ucoco_384_bs5.torchscript.pt"],
            ),
        ]
    )
    found = read(graph, vocabularies)
    assert names(found) == [(None, "custom/mystery.safetensors")]
    assert any("ckpt_name: the name '../../../home/user/.ssh/id_rsa' is refused" in p for p in found.parsed.problems)
    assert any("no installed plugin describes node type 'MyCustomLoader'" in p for p in found.parsed.problems)


def test_custom_loaders_gguf_ipadapter_animatediff(vocabularies) -> None:
    graph = ui_workflow_04(
        [
            ui_node(1, "UnetLoaderGGUF", ["flux1-dev-Q4_K_S.gguf"]),
            ui_node(2, "DualCLIPLoaderGGUF", ["t5-v1_1-xxl-encoder-Q5_K_M.gguf", "clip_l.safetensors", "flux"]),
            ui_node(3, "IPAdapterModelLoader", ["ip-adapter-plus_sdxl_vit-h.safetensors"]),
            ui_node(4, "ADE_LoadAnimateDiffModel", ["mm_sd_v15_v2.ckpt"]),
            ui_node(5, "ADE_AnimateDiffLoRALoader", ["v2_lora_ZoomIn.ckpt", 1.0]),
        ]
    )
    found = read(graph, vocabularies)
    kinds = {r.name: (r.folder, r.kinds) for r in found.parsed.refs}
    assert kinds["flux1-dev-Q4_K_S.gguf"] == ("unet_gguf", (AssetKind.DIFFUSION_MODEL,))
    assert kinds["clip_l.safetensors"] == ("clip_gguf", (AssetKind.TEXT_ENCODER,))
    assert kinds["ip-adapter-plus_sdxl_vit-h.safetensors"] == ("ipadapter", (AssetKind.IPADAPTER,))
    assert kinds["mm_sd_v15_v2.ckpt"] == ("animatediff_models", (AssetKind.MOTION_MODULE,))
    assert kinds["v2_lora_ZoomIn.ckpt"] == ("animatediff_motion_lora", (AssetKind.MOTION_LORA,))
    config = read(ui_workflow_04([ui_node(1, "CheckpointLoader", ["v1-inference.yaml", "old.ckpt"])]), vocabularies)
    assert [(r.folder, r.kinds) for r in config.parsed.refs] == [
        ("configs", ()),
        ("checkpoints", (AssetKind.CHECKPOINT,)),
    ]


def test_webp_and_jpeg_xmp_carrying_parameters(vocabularies) -> None:
    text = infotext("a harbor", "", {"Steps": "20", "Sampler": "Euler a", "Seed": "1", "Model hash": "31e35c80fc"})
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/"><exif:UserComment><rdf:Alt>'
        f'<rdf:li xml:lang="x-default">{escaped}</rdf:li></rdf:Alt></exif:UserComment>'
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()
    chunks = b"XMP " + struct.pack("<I", len(xmp)) + xmp + (b"\x00" if len(xmp) % 2 else b"")
    webp = b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WEBP" + chunks
    found = read(webp, vocabularies, "x.webp")
    assert found.container == "webp" and found.parsed.refs[0].hashes[0].value == "31e35c80fc"
    segment = b"http://ns.adobe.com/xap/1.0/\x00" + xmp
    jpeg = b"\xff\xd8\xff\xe1" + struct.pack(">H", len(segment) + 2) + segment + b"\xff\xd9"
    assert read(jpeg, vocabularies, "x.jpg").parsed.refs[0].name == "[31e35c80fc]"
