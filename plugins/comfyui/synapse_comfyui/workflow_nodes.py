"""The node types of ComfyUI workflows that load model files, for ``synapse needs`` and ``--for``.

Each row is read from the node's ``INPUT_TYPES`` (or ``define_schema``): the input that names a
file, its position among the widgets (inputs of a socket type such as MODEL take none), and the
``folder_paths`` key its list comes from. Core nodes: Comfy-Org/ComfyUI a125cd84 ``nodes.py`` and
``comfy_extras/``. Custom nodes: city96/ComfyUI-GGUF ``nodes.py`` (keys ``unet_gguf``,
``clip_gguf``: the diffusion-model and text-encoder folders, ``.gguf`` only), cubiq/
ComfyUI_IPAdapter_plus ``IPAdapterPlus.py``, Kosinkadink/ComfyUI-AnimateDiff-Evolved d8d163c
``animatediff/nodes*.py`` (``utils_model.py`` ``Folders``), Fannovel16/comfyui_controlnet_aux
e8b689a (its preprocessors download their own checkpoints into the pack's ``ckpts`` folder,
``utils.py``; combos such as ``yolox_l.onnx`` name those, not files of a model folder).
"""

from __future__ import annotations

from synapse_core.kinds import AssetKind
from synapse_core.ui import KindFolder
from synapse_core.workflows.nodes import ModelInput, NodeRole, NodeType, TextInput, WorkflowNodes

_NODES = "nodes.py"
_EXTRAS = "comfy_extras/"
_GGUF = "city96/ComfyUI-GGUF nodes.py"
_IPA = "cubiq/ComfyUI_IPAdapter_plus IPAdapterPlus.py"
_ADE = "Kosinkadink/ComfyUI-AnimateDiff-Evolved animatediff/"
_AUX = "Fannovel16/comfyui_controlnet_aux node_wrappers/"

FOLDERS_WITHOUT_KIND = ("configs",)
"""folder_paths keys the loaders use that hold no model file Synapse keeps (model configs, .yaml)."""
FOLDER_ALIASES = {"unet": "diffusion_models", "clip": "text_encoders"}
"""folder_paths.map_legacy."""
GGUF_FOLDERS = {"unet_gguf": AssetKind.DIFFUSION_MODEL, "clip_gguf": AssetKind.TEXT_ENCODER}


def _loader(
    node_type: str, source: str, *inputs: tuple[str, int, str], not_files: frozenset[str] = frozenset()
) -> NodeType:
    models = tuple(ModelInput(name, widget, folder) for name, widget, folder in inputs)
    return NodeType(node_type, models=models, not_files=not_files, source=source)


def _text(node_type: str, source: str, *inputs: tuple[str, int]) -> NodeType:
    return NodeType(node_type, texts=tuple(TextInput(name, widget) for name, widget in inputs), source=source)


_VAE_SPECIALS = frozenset({"taesd", "taesdxl", "taesd3", "taef1", "pixel_space"})
"""VAELoader.vae_list: tiny autoencoders built from vae_approx pairs, and no VAE at all."""

CORE_NODES: tuple[NodeType, ...] = (
    _loader("CheckpointLoaderSimple", _NODES, ("ckpt_name", 0, "checkpoints")),
    _loader("CheckpointLoader", _NODES, ("config_name", 0, "configs"), ("ckpt_name", 1, "checkpoints")),
    _loader("unCLIPCheckpointLoader", _NODES, ("ckpt_name", 0, "checkpoints")),
    _loader("ImageOnlyCheckpointLoader", f"{_EXTRAS}nodes_video_model.py", ("ckpt_name", 0, "checkpoints")),
    _loader("DiffusersLoader", _NODES, ("model_path", 0, "diffusers")),
    _loader("LoraLoader", _NODES, ("lora_name", 0, "loras")),
    _loader("LoraLoaderModelOnly", _NODES, ("lora_name", 0, "loras")),
    _loader("VAELoader", _NODES, ("vae_name", 0, "vae"), not_files=_VAE_SPECIALS),
    _loader("ControlNetLoader", _NODES, ("control_net_name", 0, "controlnet")),
    _loader("DiffControlNetLoader", _NODES, ("control_net_name", 0, "controlnet")),
    _loader("T2IAdapterLoader", "frontend app.ts (renamed to ControlNetLoader)", ("t2i_adapter_name", 0, "controlnet")),
    _loader("UNETLoader", _NODES, ("unet_name", 0, "diffusion_models")),
    _loader("CLIPLoader", _NODES, ("clip_name", 0, "text_encoders")),
    _loader("DualCLIPLoader", _NODES, ("clip_name1", 0, "text_encoders"), ("clip_name2", 1, "text_encoders")),
    _loader(
        "TripleCLIPLoader",
        f"{_EXTRAS}nodes_sd3.py",
        *((f"clip_name{i + 1}", i, "text_encoders") for i in range(3)),
    ),
    _loader(
        "QuadrupleCLIPLoader",
        f"{_EXTRAS}nodes_hidream.py",
        *((f"clip_name{i + 1}", i, "text_encoders") for i in range(4)),
    ),
    _loader("CLIPVisionLoader", _NODES, ("clip_name", 0, "clip_vision")),
    _loader("StyleModelLoader", _NODES, ("style_model_name", 0, "style_models")),
    _loader("GLIGENLoader", _NODES, ("gligen_name", 0, "gligen")),
    _loader("UpscaleModelLoader", f"{_EXTRAS}nodes_upscale_model.py", ("model_name", 0, "upscale_models")),
    _loader("HypernetworkLoader", f"{_EXTRAS}nodes_hypernetwork.py", ("hypernetwork_name", 0, "hypernetworks")),
    _loader("PhotoMakerLoader", f"{_EXTRAS}nodes_photomaker.py", ("photomaker_model_name", 0, "photomaker")),
    _loader("ModelPatchLoader", f"{_EXTRAS}nodes_model_patch.py", ("name", 0, "model_patches")),
    _loader("AudioEncoderLoader", f"{_EXTRAS}nodes_audio_encoder.py", ("audio_encoder_name", 0, "audio_encoders")),
    _loader("CreateHookLora", f"{_EXTRAS}nodes_hooks.py", ("lora_name", 0, "loras")),
    _loader("CreateHookLoraModelOnly", f"{_EXTRAS}nodes_hooks.py", ("lora_name", 0, "loras")),
    _loader("CreateHookModelAsLora", f"{_EXTRAS}nodes_hooks.py", ("ckpt_name", 0, "checkpoints")),
    _loader("CreateHookModelAsLoraModelOnly", f"{_EXTRAS}nodes_hooks.py", ("ckpt_name", 0, "checkpoints")),
    _text("CLIPTextEncode", _NODES, ("text", 0)),
    _text("CLIPTextEncodeSDXL", f"{_EXTRAS}nodes_clip_sdxl.py", ("text_g", 6), ("text_l", 7)),
    _text("CLIPTextEncodeSDXLRefiner", f"{_EXTRAS}nodes_clip_sdxl.py", ("text", 3)),
    _text("CLIPTextEncodeFlux", f"{_EXTRAS}nodes_flux.py", ("clip_l", 0), ("t5xxl", 1)),
    _text("CLIPTextEncodeSD3", f"{_EXTRAS}nodes_sd3.py", ("clip_l", 0), ("clip_g", 1), ("t5xxl", 2)),
    NodeType("PrimitiveNode", role=NodeRole.VALUE, source="frontend widgetInputs.ts (virtual node)"),
    NodeType("PrimitiveString", role=NodeRole.VALUE, source=f"{_EXTRAS}nodes_primitive.py"),
    NodeType("PrimitiveStringMultiline", role=NodeRole.VALUE, source=f"{_EXTRAS}nodes_primitive.py"),
    NodeType("Reroute", role=NodeRole.PASSTHROUGH, source="frontend rerouteNode.ts (virtual node)"),
)

CUSTOM_NODES: tuple[NodeType, ...] = (
    _loader("UnetLoaderGGUF", _GGUF, ("unet_name", 0, "unet_gguf")),
    _loader("UnetLoaderGGUFAdvanced", _GGUF, ("unet_name", 0, "unet_gguf")),
    _loader("CLIPLoaderGGUF", _GGUF, ("clip_name", 0, "clip_gguf")),
    _loader("DualCLIPLoaderGGUF", _GGUF, ("clip_name1", 0, "clip_gguf"), ("clip_name2", 1, "clip_gguf")),
    _loader("TripleCLIPLoaderGGUF", _GGUF, *((f"clip_name{i + 1}", i, "clip_gguf") for i in range(3))),
    _loader("QuadrupleCLIPLoaderGGUF", _GGUF, *((f"clip_name{i + 1}", i, "clip_gguf") for i in range(4))),
    _loader("IPAdapterModelLoader", _IPA, ("ipadapter_file", 0, "ipadapter")),
    _loader("ADE_AnimateDiffLoaderGen1", f"{_ADE}nodes_gen1.py", ("model_name", 0, "animatediff_models")),
    _loader("ADE_LoadAnimateDiffModel", f"{_ADE}nodes_gen2.py", ("model_name", 0, "animatediff_models")),
    _loader("ADE_LoadAnimateLCMI2VModel", f"{_ADE}nodes_animatelcmi2v.py", ("model_name", 0, "animatediff_models")),
    _loader(
        "ADE_InjectI2VIntoAnimateDiffModel", f"{_ADE}nodes_animatelcmi2v.py", ("model_name", 0, "animatediff_models")
    ),
    _loader(
        "ADE_LoadAnimateDiffModelWithCameraCtrl",
        f"{_ADE}nodes_cameractrl.py",
        ("model_name", 0, "animatediff_models"),
        ("camera_ctrl", 1, "animatediff_models"),
    ),
    _loader("ADE_AnimateDiffLoaderWithContext", f"{_ADE}nodes_deprecated.py", ("model_name", 0, "animatediff_models")),
    _loader("AnimateDiffLoaderV1", f"{_ADE}nodes_deprecated.py", ("model_name", 0, "animatediff_models")),
    _loader("ADE_AnimateDiffLoaderV1Advanced", f"{_ADE}nodes_deprecated.py", ("model_name", 0, "animatediff_models")),
    _loader("ADE_AnimateDiffLoRALoader", f"{_ADE}nodes_lora.py", ("name", 0, "animatediff_motion_lora")),
    _loader("ADE_RegisterLoraHook", f"{_ADE}nodes_conditioning.py", ("lora_name", 0, "loras")),
    _loader("ADE_RegisterLoraHookModelOnly", f"{_ADE}nodes_conditioning.py", ("lora_name", 0, "loras")),
    _loader("ADE_RegisterModelAsLoraHook", f"{_ADE}nodes_conditioning.py", ("ckpt_name", 0, "checkpoints")),
    _loader("ADE_RegisterModelAsLoraHookModelOnly", f"{_ADE}nodes_conditioning.py", ("ckpt_name", 0, "checkpoints")),
    *(
        NodeType(name, role=NodeRole.OWN_DOWNLOADS, source=f"{_AUX}{module}")
        for name, module in (
            ("DWPreprocessor", "dwpose.py"),
            ("AnimalPosePreprocessor", "dwpose.py"),
            ("DepthAnythingPreprocessor", "depth_anything.py"),
            ("Zoe_DepthAnythingPreprocessor", "depth_anything.py"),
            ("DepthAnythingV2Preprocessor", "depth_anything_v2.py"),
            ("Unimatch_OptFlowPreprocessor", "unimatch.py"),
        )
    ),
)


def folder_kinds() -> dict[str, AssetKind | None]:
    """Every folder key the node table uses, with the kind the adapter keeps there."""
    from synapse_comfyui.adapter import ComfyUIAdapter

    kinds: dict[str, AssetKind | None] = dict.fromkeys(FOLDERS_WITHOUT_KIND)
    kinds.update(GGUF_FOLDERS)
    for kind, entry in ComfyUIAdapter.layout.items():
        if isinstance(entry, KindFolder) and entry.attach_key:
            kinds[entry.attach_key] = kind
    return kinds


def workflow_nodes() -> WorkflowNodes:
    """What the ComfyUI plugin contributes to reading ComfyUI workflows."""
    return WorkflowNodes(
        ui="comfyui",
        nodes=CORE_NODES + CUSTOM_NODES,
        folders=folder_kinds(),
        folder_aliases=FOLDER_ALIASES,
        # comfy/sd1_clip.py: "embedding:" in prompt text; load_embed tries these extensions
        embedding_prefix="embedding:",
        embedding_folder="embeddings",
        embedding_extensions=(".safetensors", ".pt", ".bin"),
        own_download_packs=frozenset({"comfyui_controlnet_aux"}),
    )
