"""`make demo`: an end-to-end tour of Synapse in a temporary store.

Every step runs the real `synapse` CLI as a user would and prints what it shows.
The demo exits non-zero as soon as a step fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from synapse_civitai.fake_server import FakeCivitai, FakeFile, seed_demo
from synapse_core.testing import lora_file, write_safetensors

SYNAPSE = str(Path(sys.executable).parent / "synapse")


def run(*args: str, env: dict[str, str], expect_fail: bool = False) -> str:
    """Run one CLI command, echo it and its output, and stop the demo if it fails unexpectedly."""
    print(f"\n$ synapse {shlex.join(args)}", flush=True)
    result = subprocess.run(
        [SYNAPSE, *args], env=env, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    print((result.stdout + result.stderr).rstrip())
    if (result.returncode != 0) != expect_fail:
        sys.exit(f"demo step failed (exit {result.returncode}): synapse {shlex.join(args)}")
    return result.stdout


def section(title: str) -> None:
    print(f"\n=== {title} ===")


def make_models(folder: Path) -> dict[str, Path]:
    """Small but valid model files: two LoRAs that share a file name, an embedding, a VAE."""
    return {
        "paper": lora_file(folder / "paper" / "style.safetensors", seed=1),
        "ink": lora_file(folder / "ink" / "style.safetensors", seed=2),
        "negative": write_safetensors(folder / "EasyNegative.safetensors", {"emb_params": (8, 768)}),
        "vae": write_safetensors(
            folder / "vae" / "clear_vae.safetensors",
            {"encoder.conv_in.weight": (8, 3, 3, 3), "decoder.conv_out.weight": (3, 8, 3, 3)},
        ),
    }


def civitai_tour(fake: FakeCivitai, base_env: dict[str, str]) -> None:
    """Import, install, use and update packs from a stand-in Civitai on 127.0.0.1."""
    env = {**base_env, "SYNAPSE_CIVITAI_URL": fake.api_url, "SYNAPSE_CIVITAI_BACKOFF": "0.05"}
    section(f"Civitai (a faithful stand-in on {fake.api_url}; no internet)")
    run("import", "https://civitai.com/models/424242?modelVersionId=909001", "--follow", env=env)
    run("install", "PaperLanternStyle", env=env)
    run("import", "urn:air:sd1:embedding:civitai:515151@919001", "--name", "InkWashEmbedding", "--sync", env=env)
    run("show", "PaperLanternStyle", env=env)
    run("use", "PaperLanternStyle", "--ui", "comfyui", env=env)
    run("search", "lantern", "--remote", env=env)

    section("updates: the pack follows the latest version (v2.0 is for SDXL: held back until allowed)")
    run("check-updates", env=env)
    run("update", "PaperLanternStyle", "--dry-run", env=env)
    run("update", "PaperLanternStyle", "--sync", env=env, expect_fail=True)
    run("update", "PaperLanternStyle", "--allow-base-change", "--sync", env=env)
    run("status", env=env)

    section("a newer version with two candidate files: Synapse asks")
    fake.add_version(
        424242,
        909003,
        name="v3.0",
        base_model="SDXL 1.0",
        files=[
            FakeFile(808005, "paper_lantern_v3.safetensors", size=200_000, primary=True),
            FakeFile(808006, "paper_lantern_v3_alt.safetensors", size=210_000),
        ],
    )
    run("update", "PaperLanternStyle", env=env, expect_fail=True)
    run("update", "PaperLanternStyle", "--choose", "main=808005", "--sync", env=env)
    run("back", "--ui", "comfyui", env=env)


def api_tour(env: dict[str, str]) -> None:
    """Start `synapse serve` on a free loopback port, ask it two questions, stop it."""
    import httpx

    section("the HTTP API (synapse serve on 127.0.0.1)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    print(f"\n$ synapse serve --port {port} &")
    server = subprocess.Popen([SYNAPSE, "serve", "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}/api"
    try:
        for _ in range(100):
            try:
                status = httpx.get(f"{base}/store/status", timeout=2).json()
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            sys.exit("demo step failed: synapse serve did not answer")
        print(f"GET /api/store/status -> {len(status['uis'])} UIs, {status['packs']} packs")
        packs = httpx.get(f"{base}/packs/", timeout=5).json()
        print(f"GET /api/packs/ -> {', '.join(p['name'] for p in packs)}")
        refused = httpx.get(f"{base}/packs/", headers={"Host": "evil.example"}, timeout=5)
        print(f"GET /api/packs/ with Host: evil.example -> {refused.status_code} {refused.json()['error']['message']}")
    finally:
        server.terminate()
        server.wait(timeout=10)


def workflow_tour(base: Path, base_env: dict[str, str]) -> None:
    """A shared ComfyUI image that needs two models the library lacks: what it needs, fetch, use."""
    import hashlib
    import json
    import struct
    import zlib

    section("a shared workflow: what it needs, fetch it, switch to it")
    with FakeCivitai() as fake:
        env = {**base_env, "SYNAPSE_CIVITAI_URL": fake.api_url, "SYNAPSE_CIVITAI_BACKOFF": "0.05"}
        checkpoint = write_safetensors(base / "made" / "c.safetensors", {"w": (40_000,)}, payload=os.urandom(80_000))
        lora = lora_file(base / "made" / "l.safetensors", seed=42)
        urls = []
        for model_id, path, name, kind in (
            (960, checkpoint, "harborMix_v30.safetensors", "Checkpoint"),
            (970, lora, "paperLantern_v2.safetensors", "LORA"),
        ):
            fake.add_model(model_id, name=name.split("_")[0], type=kind)
            file = FakeFile(model_id * 10, name, content=path.read_bytes(), primary=True, override_name=name)
            fake.add_version(model_id, model_id + 1, name="v1", files=[file])
            urls.append(f"{fake.api_url}/api/download/models/{model_id + 1}")

        def node(
            node_id: int, node_type: str, widgets: list[object], models: list[dict[str, str]]
        ) -> dict[str, object]:
            return {
                "id": node_id,
                "type": node_type,
                "pos": [0, 0],
                "size": [300, 100],
                "flags": {},
                "order": node_id,
                "mode": 0,
                "inputs": [],
                "outputs": [],
                "widgets_values": widgets,
                "properties": {"Node name for S&R": node_type, "models": models},
            }

        lora_sha = hashlib.sha256(lora.read_bytes()).hexdigest()
        workflow = {
            "version": 1,
            "state": {"lastGroupId": 0, "lastNodeId": 3, "lastLinkId": 0, "lastRerouteId": 0},
            "links": [],
            "extra": {},
            "nodes": [
                node(
                    1,
                    "CheckpointLoaderSimple",
                    ["harborMix_v30.safetensors"],
                    [{"name": "harborMix_v30.safetensors", "url": urls[0], "directory": "checkpoints"}],
                ),
                node(
                    2,
                    "LoraLoader",
                    ["styles\\lantern.safetensors", 0.8, 0.8],
                    [
                        {
                            "name": "styles\\lantern.safetensors",
                            "url": urls[1],
                            "directory": "loras",
                            "hash": lora_sha,
                            "hash_type": "SHA256",
                        }
                    ],
                ),
                node(3, "VAELoader", ["clear_vae.safetensors"], []),
            ],
        }

        def chunk(kind: bytes, body: bytes) -> bytes:
            return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

        image = base / "ComfyUI_00042_.png"  # as ComfyUI's SaveImage writes it: the workflow in a tEXt chunk
        image.write_bytes(
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"tEXt", b"workflow\x00" + json.dumps(workflow).encode())
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
            + chunk(b"IEND", b"")
        )
        run("needs", str(image), env=env)
        run("install", "--for", str(image), env=env, expect_fail=True)  # nobody to ask: nothing is fetched
        run("install", "--for", str(image), "--yes", env=env)
        run("use", "--for", str(image), env=env)
        run("needs", str(image), env=env)
        run("status", env=env)
        run("back", "--ui", "comfyui", env=env)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="synapse-demo-") as tmp:
        base = Path(tmp)
        env = {**os.environ, "SYNAPSE_ROOT": str(base / "store")}
        files = make_models(base / "downloads")

        section("a store and its plugins")
        run("store", "init", env=env)
        run("plugins", env=env)

        section("import local files (kind read from the safetensors header)")
        run("import", str(files["paper"]), "--name", "PaperLantern", env=env)
        run("import", str(files["ink"]), "--name", "InkWash", env=env)
        run("import", str(files["negative"]), env=env)
        run("import", str(files["vae"].parent), "--name", "ClearVAE", env=env)
        run("import", str(files["paper"]), "--name", "PaperCopy", env=env)
        run("list", env=env)
        run("show", "PaperLantern", env=env)
        run("du", env=env)

        section("views: both LoRAs are called style.safetensors, the later import wins in global")
        run("status", env=env)
        run("use", "PaperLantern", "--ui", "comfyui", "--ui", "a1111", env=env)
        run("status", env=env)
        run("back", "--ui", "comfyui", "--ui", "a1111", env=env)
        run("back", "--ui", "comfyui", env=env, expect_fail=True)

        section("attach a ComfyUI install to its view (once; use/back need no re-attach)")
        comfy = base / "ComfyUI"
        (comfy / "comfy").mkdir(parents=True)
        (comfy / "main.py").write_text("# a stand-in ComfyUI install\n")
        (comfy / "folder_paths.py").write_text("")
        run("attach", "comfyui", str(comfy), env=env)
        print((comfy / "extra_model_paths.yaml").read_text())

        ui_files_tour(base / "store", env)

        section("bad input is one clear line and changes nothing")
        run("import", str(base / "nope.safetensors"), env=env, expect_fail=True)
        run("import", str(files["paper"]), "--name", "../evil", env=env, expect_fail=True)
        run("use", "PaperLanten", env=env, expect_fail=True)

        with FakeCivitai() as fake:
            seed_demo(fake)
            civitai_tour(fake, env)

        api_tour(env)

        section("maintenance")
        run("remove", "PaperCopy", env=env)
        run("gc", "--dry-run", env=env)
        run("doctor", "--verify-blobs", env=env)
        run("history", env=env)

        workflow_tour(base, env)
        sidecars_tour(base / "store")
        adopt_tour(base)
        share_tour(base, files)
        print("\ndemo finished")

        with FakeCivitai() as fake:  # the page's Fetch section imports from the stand-in too
            seed_demo(fake)
            serve_page({**env, "SYNAPSE_CIVITAI_URL": fake.api_url})


def serve_page(env: dict[str, str]) -> None:
    """End with the web page over the demo store: its URL, then serving until Ctrl-C on a
    terminal (stopped at once when output is not a terminal, as in CI)."""
    import httpx

    section("the web page (synapse serve)")
    log = Path(env["SYNAPSE_ROOT"]).parent / "serve.log"
    server = subprocess.Popen([SYNAPSE, "serve", "--port", "0"], env=env, stderr=log.open("w"))
    try:
        url = ""
        for _ in range(300):
            found = re.search(r"on (http://127\.0\.0\.1:\d+/) ", log.read_text())
            if found and httpx.get(found.group(1), timeout=5).status_code == 200:
                url = found.group(1)
                break
            if server.poll() is not None:
                break
            time.sleep(0.1)
        if not url:
            sys.exit(f"demo step failed: synapse serve did not answer\n{log.read_text()}")
        if sys.stdout.isatty():
            print(f"\nThe web page of the demo store: {url}\n(serving until Ctrl-C)", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                server.wait()
        else:
            print(f"\nThe web page of the demo store: {url}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)


def adopt_tour(base: Path) -> None:
    """A fresh store adopts a small ComfyUI install it has never seen, then switches it."""
    env = {**os.environ, "SYNAPSE_ROOT": str(base / "adopt-store")}
    section("coming from an existing install: synapse adopt")
    comfy = base / "OldComfyUI"
    (comfy / "comfy").mkdir(parents=True)
    (comfy / "main.py").write_text("# a stand-in ComfyUI install\n")
    (comfy / "folder_paths.py").write_text("")
    lora_file(comfy / "models/loras/styles/add_detail.safetensors", seed=11)
    (comfy / "models/loras/styles/add_detail.preview.png").write_bytes(b"\x89PNG demo preview")
    lora_file(comfy / "models/loras/paper.safetensors", seed=12)
    (comfy / "models/checkpoints").mkdir(parents=True)
    (comfy / "models/checkpoints/base.ckpt").write_bytes(os.urandom(65536))
    (comfy / "models/loras/readme.txt").write_text("not a model: left alone\n")
    run("store", "init", env=env)
    run("adopt", str(comfy), "--dry-run", env=env)
    run("adopt", str(comfy), env=env)
    print(
        "left in the install's models/loras:",
        sorted(p.name for p in (comfy / "models/loras").rglob("*") if p.is_file()),
    )
    run("list", env=env)
    run("use", "paper", "--ui", "comfyui", env=env)
    run("status", env=env)
    run("back", "--ui", "comfyui", env=env)
    run("adopt", "--undo", str(comfy), env=env)
    print(
        "back in the install's models/loras:",
        sorted(p.name for p in (comfy / "models/loras").rglob("*") if p.is_file()),
    )


def view_bytes(root: Path, ui: str) -> dict[str, str]:
    """What a UI reads through its active view: relative path -> sha256 of the bytes."""
    import hashlib

    active = root / "data" / "views" / ui / "active"
    found = {}
    for dirpath, _dirs, names in os.walk(active, followlinks=True):
        for name in names:
            if not name.startswith(".synapse-"):  # Synapse's own manifest names the profile
                path = Path(dirpath) / name
                found[path.relative_to(active).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def share_tour(base: Path, files: dict[str, Path]) -> None:
    """Two stores stand for two machines: the first pushes its packs to an S3 bucket (moto in
    server mode on 127.0.0.1) and exports its profile; the second, with Civitai stopped,
    reproduces it from the lock file alone."""
    from synapse_s3.testing import TEST_CREDENTIALS, LoopbackS3

    section("share a library: push to an S3 bucket, reproduce a profile elsewhere from a lock file")
    aws = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    aws.update(TEST_CREDENTIALS)  # moto takes any keys; a real store takes the usual AWS chain
    here = {**aws, "SYNAPSE_ROOT": str(base / "machine-a")}
    there = {**aws, "SYNAPSE_ROOT": str(base / "machine-b")}
    lock = base / "synapse.lock"
    with LoopbackS3() as s3:
        s3.client().create_bucket(Bucket="team-library")
        remote = ("remote", "add", "team", "s3://team-library/synapse", "--endpoint-url", s3.endpoint)
        for env in (here, there):
            run("store", "init", env=env)
            run(*remote, env=env)
        with FakeCivitai() as fake:
            seed_demo(fake)
            run("import", "civitai:424242@909001", "--sync", env={**here, "SYNAPSE_CIVITAI_URL": fake.api_url})
        run("import", str(files["ink"]), "--name", "InkWash", env=here)
        run("import", str(files["negative"]), env=here)
        run("push", "--all", env=here)
        run("du", "--remote", env=here)
        run("export", "-o", str(lock), env=here)
        text = lock.read_text().splitlines()
        print("\n".join(text[:16]) + f"\n... ({len(text)} lines, one [[packs]] table per pack)")
        print("(the Civitai stand-in is stopped: the second machine gets everything from the bucket)")
        run("sync", str(lock), "--ui", "comfyui", env=there)
        run("list", env=there)
    a, b = view_bytes(base / "machine-a", "comfyui"), view_bytes(base / "machine-b", "comfyui")
    if not a or a != b:
        sys.exit("demo step failed: the second store's comfyui view differs from the first's")
    print(f"the two stores' comfyui views hold the same {len(a)} files, byte for byte")


def ui_files_tour(root: Path, env: dict[str, str]) -> None:
    """What a UI writes into its view (A1111's user metadata of a LoRA, a merged checkpoint) stays
    at the same path in every profile of that UI, across use and back."""
    section("files a UI saves in its view survive use and back (as A1111 writes them)")
    models = root / "data" / "views" / "a1111" / "active" / "models"
    saved = [models / "Lora" / "style.json", models / "Stable-diffusion" / "my_merge.safetensors"]
    # A1111's ui_extra_networks_user_metadata writes <model>.json; its checkpoint merger writes a model
    saved[0].write_text(json.dumps({"description": "my notes", "activation text": "paper lantern"}, indent=4))
    merged = {"model.diffusion_model.x.weight": (256,), "first_stage_model.y.weight": (256,)}
    write_safetensors(saved[1], merged)
    before = [path.read_bytes() for path in saved]

    def show(when: str) -> None:
        print(f"{when}:")
        for path in saved:
            if path.read_bytes() != (before[saved.index(path)] if path.exists() else None):
                sys.exit(f"demo step failed: {path.relative_to(models)}, which A1111 saved, is gone or changed")
            what = f"-> {os.readlink(path)}" if path.is_symlink() else f"a file of {path.stat().st_size} bytes"
            print(f"  models/{path.relative_to(models)}  {what}")

    show("A1111 wrote into its view (profile global)")
    run("use", "InkWash", "--ui", "a1111", env=env)
    show("after use (profile work__InkWash): same paths, same bytes")
    run("back", "--ui", "a1111", env=env)
    show("after back (profile global)")
    print(f"$ cat models/{saved[0].relative_to(models)}\n{saved[0].read_text()}")


def sidecars_tour(root: Path) -> None:
    """What a UI finds beside a model: the pack's preview and its trigger words (A1111's card)."""
    section("previews and trigger words arrive in the UIs' folders (A1111's view of its LoRAs)")
    folder = root / "data" / "views" / "a1111" / "active" / "models" / "Lora"
    print(f"$ ls {folder}")
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            print(f"  {path.relative_to(folder)}{'  -> ' + os.readlink(path) if path.is_symlink() else ''}")
    cards = sorted(folder.rglob("*.json"))
    if not cards or not any(folder.rglob("*.preview.*")):
        sys.exit("demo step failed: no preview or user metadata next to the LoRAs")
    for card in cards:
        words = json.loads(card.read_text()).get("activation text")
        if words:
            print(f"{card.name}: activation text = {words!r}")


if __name__ == "__main__":
    main()
