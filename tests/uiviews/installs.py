"""Fake UI installs with the real shapes of their argument parsers, and their launch-time parse.

The A1111 family (AUTOMATIC1111 45b8a499, Forge dfdcbab6, reForge 3b56b268, Forge Classic
1f95d717) builds its parser the same way: ``modules/cmd_args.py`` (which takes ``parser``
from ``backend/args.py`` in Forge and from ``ldm_patched/modules/args_parser.py`` in reForge
and Forge Classic), then ``modules/shared_cmd_options.py`` runs ``preload(parser)`` of the
enabled extensions (``modules/launch_utils.py`` list_extensions) and of every folder of
``extensions-builtin`` (``modules/script_loading.py`` preload_extensions), then ``parse_args``,
which exits with "unrecognized arguments" on a flag nobody defined. The files written here
define the same flags in the same places (written for these tests, not copied);
:func:`launch_parse` runs that sequence for real, with ``COMMANDLINE_ARGS`` as ``webui.sh``
leaves it after sourcing ``webui-user.sh``.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path

import attrs

NEW_KINDS = [  # the kinds of ComfyUI's folder_paths.py that A1111, Forge and SD.Next have no folder for
    "style_model",
    "gligen",
    "photomaker",
    "vae_approx",
    "model_patch",
    "audio_encoder",
    "latent_upscaler",
    "classifier",
    "background_removal",
    "frame_interpolation",
    "geometry_estimation",
    "optical_flow",
]

# Long options only; enough of each parser to be its real shape: every folder flag, the
# extension switches, and a few everyday flags users put in COMMANDLINE_ARGS.
_COMMON = ("--xformers", "--medvram", "--api", "--listen", "--no-half-vae", "--skip-torch-cuda-test")
_A1111_PATH_FLAGS = (
    "--data-dir",
    "--ckpt-dir",
    "--vae-dir",
    "--embeddings-dir",
    "--hypernetwork-dir",
    "--codeformer-models-path",
    "--gfpgan-models-path",
    "--esrgan-models-path",
    "--bsrgan-models-path",
    "--realesrgan-models-path",
    "--dat-models-path",
    "--clip-models-path",
    "--ui-settings-file",
)
_SWITCHES = ("--disable-all-extensions", "--disable-extra-extensions", *_COMMON)
_FORGE_EXTRA = ("--models-dir", "--text-encoder-dir", "--forge-ref-a1111-home")
_FORK_EXTRA = ("--controlnet-dir", "--controlnet-preprocessor-models-dir")


@attrs.frozen
class ParserShape:
    """Where a variant makes its parser object, the flags cmd_args.py adds, the builtin preloads."""

    base: tuple[str, str] | None  # (file that makes the parser, the import line of cmd_args.py)
    flags: tuple[str, ...]
    preloads: dict[str, tuple[str, ...]]


_LDM = ("ldm_patched/modules/args_parser.py", "from ldm_patched.modules import args_parser")
PARSERS = {
    "a1111": ParserShape(
        None, _A1111_PATH_FLAGS, {"Lora": ("--lora-dir", "--lyco-dir-backcompat"), "LDSR": ("--ldsr-models-path",)}
    ),
    "forge": ParserShape(
        ("backend/args.py", "from backend.args import parser"),
        (*_A1111_PATH_FLAGS, *_FORGE_EXTRA, *_FORK_EXTRA),
        {"sd_forge_lora": ("--lora-dir", "--lyco-dir-backcompat"), "SwinIR": ("--swinir-models-path",)},
    ),
    "reforge": ParserShape(
        _LDM,
        (*_A1111_PATH_FLAGS, "--models-dir", "--forge-ref-a1111-home", *_FORK_EXTRA),
        {"Lora": ("--lora-dir", "--lyco-dir-backcompat"), "LDSR": ("--ldsr-models-path",)},
    ),
    # no --hypernetwork-dir, --models-dir or --text-encoder-dir; --model-ref instead
    "forge_classic": ParserShape(
        _LDM,
        (
            "--data-dir",
            "--model-ref",
            "--ckpt-dir",
            "--vae-dir",
            "--embeddings-dir",
            "--codeformer-models-path",
            "--gfpgan-models-path",
            "--esrgan-models-path",
            "--ui-settings-file",
            "--forge-ref-a1111-home",
            *_FORK_EXTRA,
        ),
        {"Lora": ("--lora-dir",)},
    ),
}
FORGE_MARKS = {
    "forge": ("2.0.1v1.10.1", "# Stable Diffusion WebUI Forge\n"),
    "reforge": ("1.0.0v2-v1.10.1RC", "# Stable Diffusion WebUI Forge/reForge\n"),
    "forge_classic": ("classic", "# Stable Diffusion WebUI Forge\n"),
}
WEBUI_USER_SH = '#!/bin/bash\n# Commandline arguments for webui.py\n#export COMMANDLINE_ARGS=""\n'
WEBUI_USER_BAT = "@echo off\r\n\r\nset PYTHON=\r\nset COMMANDLINE_ARGS=\r\n\r\ncall webui.bat\r\n"


def _adds(flags: Iterable[str], indent: str = "") -> str:
    lines = []
    for flag in flags:
        if flag in _SWITCHES:
            lines.append(f'{indent}parser.add_argument("{flag}", action="store_true")')
        else:  # the multi-line shape Forge Classic and reForge use for some flags
            lines += [f"{indent}parser.add_argument(", f'{indent}    "{flag}",', f"{indent}    type=str,", f"{indent})"]
    return "\n".join(lines) + "\n"


def webui_install(where: Path, variant: str = "a1111", *, resolves: bool = False) -> Path:
    """An install of ``variant`` (a1111, forge, reforge, forge_classic) with its parser files,
    launcher scripts, ``modules/paths_internal.py`` (``resolves``: A1111 before v1.8.0, whose
    normalized_filepath resolve()s links) and, for the Forge family, ``modules_forge/``."""
    spec = PARSERS[variant]
    (where / "modules").mkdir(parents=True)
    (where / "webui.py").write_text("# webui\n")
    (where / "launch.py").write_text("# launch\n")
    head = "import argparse\n\n"
    if spec.base is None:
        head += "parser = argparse.ArgumentParser()\n"
        body = _adds([*spec.flags, *_SWITCHES])
    else:
        file, line = spec.base
        for package in Path(file).parents:
            if str(package) != ".":
                (where / package).mkdir(parents=True, exist_ok=True)
                (where / package / "__init__.py").touch()
        (where / file).write_text("import argparse\n\nparser = argparse.ArgumentParser()\n" + _adds(_SWITCHES))
        head += line + "\n" + ("parser = args_parser.parser\n" if "args_parser" in line else "")
        body = _adds(spec.flags)
    (where / "modules" / "__init__.py").touch()
    (where / "modules" / "cmd_args.py").write_text(head + "\n" + body)
    how = "resolve()" if resolves else "absolute()"
    (where / "modules" / "paths_internal.py").write_text(
        f"from pathlib import Path\n\nnormalized_filepath = lambda filepath: str(Path(filepath).{how})\n"
    )
    for name, flags in spec.preloads.items():
        folder = where / "extensions-builtin" / name
        folder.mkdir(parents=True)
        (folder / "preload.py").write_text("def preload(parser):\n" + _adds(flags, "    "))
    if variant != "a1111":
        version, readme = FORGE_MARKS[variant]
        (where / "modules_forge").mkdir()
        (where / "modules_forge" / "forge_version.py").write_text(f"version = '{version}'\n")
        (where / "README.md").write_text(readme)
    (where / "webui-user.sh").write_text(WEBUI_USER_SH)
    (where / "webui-user.bat").write_bytes(WEBUI_USER_BAT.encode())
    return where


def add_extension(install: Path, name: str, flags: Iterable[str]) -> Path:
    """An extension under extensions/ whose preload.py defines ``flags`` (sd-webui-controlnet: --controlnet-dir)."""
    folder = install / "extensions" / name
    folder.mkdir(parents=True)
    (folder / "preload.py").write_text("def preload(parser):\n" + _adds(flags, "    "))
    return folder


_LAUNCH = textwrap.dedent(
    """
    import importlib.util, json, os, shlex, sys
    sys.path.insert(0, os.getcwd())
    sys.argv = ["launch.py", *shlex.split(os.environ.get("COMMANDLINE_ARGS", ""))]  # modules/paths_internal.py
    from modules import cmd_args
    parser = cmd_args.parser
    pre = parser.parse_known_args()[0]  # modules/launch_utils.py: args, _ = parser.parse_known_args()
    try:
        settings = json.load(open("config.json", encoding="utf8"))
    except FileNotFoundError:
        settings = {}

    def preload(folder, names):  # modules/script_loading.py preload_extensions
        for name in sorted(names):
            script = os.path.join(folder, name, "preload.py")
            if os.path.isfile(script):
                spec = importlib.util.spec_from_file_location(name, script)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                module.preload(parser)

    # modules/launch_utils.py list_extensions
    off = set(settings.get("disabled_extensions", []))
    no_extensions = settings.get("disable_all_extensions", "none") != "none"
    no_extensions = no_extensions or pre.disable_extra_extensions or pre.disable_all_extensions
    if not no_extensions and os.path.isdir("extensions"):
        preload("extensions", [x for x in os.listdir("extensions") if x not in off])
    if os.path.isdir("extensions-builtin"):
        preload("extensions-builtin", os.listdir("extensions-builtin"))
    print(json.dumps(vars(parser.parse_args())))  # modules/shared_cmd_options.py
    """
)


def launch_parse(install: Path, script: str = "webui-user.sh") -> subprocess.CompletedProcess[str]:
    """Start the install's parser as its launcher would: bash sources ``script`` (webui.sh does),
    then the flags in COMMANDLINE_ARGS go through the real parse. stdout is the parsed options
    as JSON when it accepts them; otherwise argparse's exit code 2 and its error on stderr."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(install)}
    shell = subprocess.run(
        ["bash", "-c", f'source ./{shlex.quote(script)} >/dev/null && printf %s "$COMMANDLINE_ARGS"'],
        cwd=install,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    env["COMMANDLINE_ARGS"] = shell.stdout
    return subprocess.run(
        [sys.executable, "-c", _LAUNCH], cwd=install, env=env, capture_output=True, text=True, check=False
    )


def parsed(install: Path) -> dict[str, object]:
    """The options the install's launch parse gives; fails the test on a parse error."""
    result = launch_parse(install)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def comfy_install(where: Path) -> Path:
    """What ComfyUIAdapter.looks_like_install needs: main.py beside folder_paths.py and comfy/."""
    (where / "comfy").mkdir(parents=True)
    (where / "main.py").write_text("print('ComfyUI')\n")
    (where / "folder_paths.py").write_text("supported_pt_extensions = set()\n")
    return where


def sdnext_install(where: Path, config: dict[str, object] | None = None) -> Path:
    """launch.py, modules/ and installer.py; ``config`` becomes its config.json."""
    (where / "modules").mkdir(parents=True)
    (where / "launch.py").write_text("# launch\n")
    (where / "installer.py").write_text("# installer\n")
    if config is not None:
        (where / "config.json").write_text(json.dumps(config))
    return where
