"""Example Synapse plugin: InvokeAI picks models up from its autoimport folders."""

from __future__ import annotations

from pathlib import Path

from synapse_core import hookimpl
from synapse_core.kinds import AssetKind
from synapse_core.ui import AttachPlan, KeyStyle, KindFolder, UIAdapter, Unsupported

_EXTENSIONS = frozenset({".safetensors", ".ckpt", ".pt", ".bin"})


def _folder(name: str) -> KindFolder:
    return KindFolder(
        folder=f"autoimport/{name}",
        extensions=_EXTENSIONS,
        key_style=KeyStyle.STEM,
        source="invokeai/app/services/config/config_default.py (autoimport_dir)",
        attach_key=name,
    )


class InvokeAIAdapter(UIAdapter):
    """InvokeAI scans autoimport/<type> folders and registers what it finds."""

    name = "invokeai"
    display_name = "InvokeAI"
    layout = {
        AssetKind.CHECKPOINT: _folder("main"),
        AssetKind.LORA: _folder("lora"),
        AssetKind.EMBEDDING: _folder("embedding"),
        AssetKind.CONTROLNET: _folder("controlnet"),
        AssetKind.VAE: _folder("vae"),
        AssetKind.UPSCALER: Unsupported("InvokeAI ships its own upscalers"),
        AssetKind.HYPERNETWORK: Unsupported("InvokeAI has no hypernetworks"),
        AssetKind.TEXT_ENCODER: Unsupported("not imported from folders"),
        AssetKind.DIFFUSION_MODEL: Unsupported("not imported from folders"),
        AssetKind.CLIP_VISION: Unsupported("not imported from folders"),
        AssetKind.IPADAPTER: _folder("ip_adapter"),
        AssetKind.MOTION_MODULE: Unsupported("not supported"),
        AssetKind.OTHER: Unsupported("unknown files are not shown"),
    }

    def looks_like_install(self, path: Path) -> bool:
        return (path / "invokeai.yaml").is_file()

    def plan_attach(self, install: Path, view: Path) -> AttachPlan:
        text = f"In {install / 'invokeai.yaml'} set:\n  autoimport_dir: {view / 'autoimport'}\n"
        return AttachPlan(ui=self.name, install=install, view=view, instructions=text)

    def plan_detach(self, install: Path, view: Path) -> AttachPlan:
        text = f"In {install / 'invokeai.yaml'} remove the autoimport_dir line that points at {view}.\n"
        return AttachPlan(ui=self.name, install=install, view=view, instructions=text)


@hookimpl
def synapse_ui_adapters() -> list[UIAdapter]:
    return [InvokeAIAdapter()]
