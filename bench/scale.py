"""`make bench` figures for a large library (issue 14): a command costs what it changes.

Stores of 10, 500 and 2,000 single-file packs (made with ``import --each``) and 20 work
profiles; every figure is a ratio against a baseline measured in the same run:

* import of one more 4 KB file: against the same import into an empty store;
* ``use`` of a pack whose view must be built: against a Python loop making that view's symlinks;
* ``use`` of a pack whose view is built (right after ``back``), and ``back``: against ``synapse --version``;
* ``list``, ``status``, ``GET /api/packs/``: against the same call on a store of 10 packs;
* ``import --each`` of the 2,000 files: against the floor of writing the same things durably
  (``cp -r`` + ``sync``, plus ``git add -A`` and ``git commit`` of a copy of the resulting state/ in
  a fresh repository). Synapse writes each file without an fsync and flushes once (syncfs) before
  its state commit: the same guarantee as the baseline's one ``sync``.

A table shows how each grows from 10 to 500 to 2,000 packs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

Timed = Callable[..., tuple[float, int]]
UIS = "comfyui"


def _library(folder: Path, count: int) -> Path:
    from synapse_core.testing import lora_file

    if not (folder / ".complete").exists() or len(list(folder.rglob("*.safetensors"))) != count:
        shutil.rmtree(folder, ignore_errors=True)
        for i in range(count):
            lora_file(folder / f"set{i % 40}" / f"lora{i}.safetensors", seed=i)
        (folder / ".complete").write_text("")
    return folder


def _env(root: Path) -> dict[str, str]:
    return {**os.environ, "SYNAPSE_ROOT": str(root)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_scale(
    runs: int,
    work: Path,
    synapse: str,
    timed: Timed,
    best: Callable[..., tuple[float, int]],
    report: Callable[..., bool],
) -> bool:
    sizes = (10, 500, 2000)
    stores: dict[int, Path] = {}
    each_time: dict[int, tuple[float, int]] = {}
    for size in sizes:
        root = work / f"scale-{size}"
        shutil.rmtree(root, ignore_errors=True)
        timed([synapse, "store", "init"], _env(root))
        library = _library(work / f"library-{size}", size)
        each_time[size] = timed([synapse, "import", str(library), "--each"], _env(root))
        for i in range(20 if size > 10 else 2):
            timed([synapse, "use", f"lora{i}", "--ui", UIS], _env(root))
            timed([synapse, "back", "--ui", UIS], _env(root))
        stores[size] = root
    empty = work / "scale-empty"
    shutil.rmtree(empty, ignore_errors=True)
    timed([synapse, "store", "init"], _env(empty))
    small = work / "scale-4k.safetensors"
    from synapse_core.testing import write_safetensors

    write_safetensors(
        small,
        {"lora_unet_a.lora_down.weight": (32, 32), "lora_unet_a.lora_up.weight": (32, 32)},
        metadata={"ss_network_module": "networks.lora"},
    )
    counter = iter(range(10**6))

    def import_one(root: Path) -> tuple[float, int]:
        return timed([synapse, "import", str(small), "--name", f"one{next(counter)}"], _env(root))

    def use_fresh(root: Path) -> tuple[float, int]:
        shutil.rmtree(root / "data/views" / UIS / "profiles/work__lora5", ignore_errors=True)
        result = timed([synapse, "use", "lora5", "--ui", UIS], _env(root))
        timed([synapse, "back", "--ui", UIS], _env(root))
        return result

    def use_built(root: Path) -> tuple[float, int]:
        result = timed([synapse, "use", "lora6", "--ui", UIS], _env(root))
        timed([synapse, "back", "--ui", UIS], _env(root))
        return result

    def back(root: Path) -> tuple[float, int]:
        timed([synapse, "use", "lora6", "--ui", UIS], _env(root))
        return timed([synapse, "back", "--ui", UIS], _env(root))

    table: dict[str, dict[int, tuple[float, int]]] = {}
    for name, fn in (
        ("import one file", import_one),
        ("use (view to build)", use_fresh),
        ("use (view built)", use_built),
        ("back", back),
        ("list", lambda r: timed([synapse, "list"], _env(r))),
        ("status", lambda r: timed([synapse, "status"], _env(r))),
    ):
        table[name] = {size: best(runs, lambda r=stores[size], f=fn: f(r)) for size in sizes}
    table["GET /api/packs/"] = {size: _api_packs(runs, stores[size], synapse, best) for size in sizes}
    empty_import = best(runs, lambda: import_one(empty))
    version = best(runs, lambda: timed([synapse, "--version"]))
    loop_code = (
        "import os,sys,shutil,tempfile,hashlib; d=tempfile.mkdtemp(dir=sys.argv[1]); "
        "shas=[hashlib.sha256(str(i).encode()).hexdigest() for i in range(int(sys.argv[2]))]; "
        "[os.symlink(sys.argv[3] + 'blobs/sha256/' + s[:2] + '/' + s, os.path.join(d, s)) for s in shas]; "
        "shutil.rmtree(d)"
    )
    big = max(sizes)
    loop = best(runs, lambda: timed([sys.executable, "-c", loop_code, str(work), str(big), "../" * 7]))
    floor = best(max(2, runs // 2), lambda: _floor(work, _library(work / f"library-{big}", big), stores[big]))

    print(f"  growth (best of {runs}, seconds; peak RSS MB):")
    print(f"  {'':<22}" + "".join(f"{size:>16}" for size in sizes))
    for name, row in table.items():
        print(f"  {name:<22}" + "".join(f"{row[s][0]:>9.3f}s {row[s][1] / 1024:>4.0f}MB" for s in sizes))
    print(
        f"  {'import --each':<22}"
        + "".join(f"{each_time[s][0]:>9.3f}s {each_time[s][1] / 1024:>4.0f}MB" for s in sizes)
    )
    ok = report(
        f"import one file ({big} packs)",
        table["import one file"][big][0],
        empty_import[0],
        1.5,
        "the same import into an empty store",
    )
    ok &= report(
        f"use ({big} packs, view to build)",
        table["use (view to build)"][big][0],
        loop[0],
        3.0,
        f"python loop making its {big} symlinks",
    )
    ok &= report(
        f"use ({big} packs, view built)", table["use (view built)"][big][0], version[0], 1.5, "synapse --version"
    )
    ok &= report(f"back ({big} packs)", table["back"][big][0], version[0], 1.5, "synapse --version")
    for name in ("list", "status", "GET /api/packs/"):
        ok &= report(f"{name} ({big} packs)", table[name][big][0], table[name][10][0], 2.0, "the same on 10 packs")
    ok &= report(
        f"import --each of {big} files", each_time[big][0], floor[0], 3.0, "cp -r + sync + git add/commit of the state"
    )
    rss = max(v[1] for row in table.values() for v in row.values()) / 1024
    rss = max(rss, max(v[1] for v in each_time.values()) / 1024)
    print(f"{'peak RSS (scale figures)':<34} {rss:5.1f} MB (target <= 150 MB) {'ok' if rss <= 150 else 'OVER'}")
    return ok and rss <= 150


def _api_packs(runs: int, root: Path, synapse: str, best: Callable[..., tuple[float, int]]) -> tuple[float, int]:
    """GET /api/packs/ against ``synapse serve`` (started once, as a user keeps it running)."""
    import httpx

    port = _free_port()
    server = subprocess.Popen(
        [synapse, "serve", "--port", str(port)], env=_env(root), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}/api/packs/"
        for _ in range(100):
            try:
                httpx.get(url, timeout=5)
                break
            except httpx.HTTPError:
                time.sleep(0.1)

        def once() -> tuple[float, int]:
            start = time.perf_counter()
            response = httpx.get(url, timeout=60)
            response.raise_for_status()
            return time.perf_counter() - start, 0

        return best(runs, once)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _floor(work: Path, library: Path, root: Path) -> tuple[float, int]:
    """cp -r of the folder + sync, then git add -A + commit of a copy of the store's state/."""
    copy, state = work / "floor-copy", work / "floor-state"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.rmtree(state, ignore_errors=True)
    shutil.copytree(root / "state", state, ignore=shutil.ignore_patterns(".git"))
    start = time.perf_counter()
    subprocess.run(["sh", "-c", f'cp -r "{library}" "{copy}" && sync'], check=True)
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@b", "-C", str(state)]
    subprocess.run([*git[:5], "init", "-q", str(state)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "floor"], check=True)
    elapsed = time.perf_counter() - start
    shutil.rmtree(copy, ignore_errors=True)
    shutil.rmtree(state, ignore_errors=True)
    return elapsed, 0
