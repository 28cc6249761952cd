"""make bench's figures for ``synapse adopt`` (issue 15).

* Adopt of a tree of 2,000 small model files and 4 files of 1 GiB on the store's file system,
  against ``openssl dgst -sha256`` of all the files one after another, in the same run; the
  adopt's peak RSS.
* A second adopt of the unchanged tree (``--keep-originals``, so the tree stays: the hash cache
  knows every file) against ``find TREE -type f -printf '%s %T@\\n'``.

Between timed adopts the tree is given back with ``adopt --undo`` (not timed) and the store made
anew, so every timed adopt hashes everything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

Timed = Callable[[Sequence[str], "dict[str, str] | None"], tuple[float, int]]


def _tree(work: Path, small: int, big: int, big_size: int) -> Path:
    tree = work / "adopt-tree"
    marker = tree / f".made-{small}-{big}-{big_size}"
    if marker.exists():
        return tree
    shutil.rmtree(tree, ignore_errors=True)
    loras, checkpoints = tree / "loras", tree / "checkpoints"
    for n in range(small):
        folder = loras / f"set{n // 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"lora{n:04d}.safetensors").write_bytes(os.urandom(8192 + n % 4096))
    checkpoints.mkdir(parents=True)
    block = os.urandom(1 << 20)
    for n in range(big):
        with open(checkpoints / f"model{n}.safetensors", "wb") as handle:
            for i in range(big_size >> 20):
                handle.write(block[:-8] + (n * 1_000_003 + i).to_bytes(8, "little"))
    marker.touch()
    return tree


def _files(tree: Path) -> list[str]:
    return sorted(str(p) for p in tree.rglob("*") if p.is_file() and not p.name.startswith("."))


def bench_adopt(
    runs: int,
    work: Path,
    synapse: str,
    timed: Timed,
    report: Callable[..., bool],
    *,
    small: int = 2000,
    big: int = 4,
    big_size: int = 1 << 30,
) -> bool:
    """The adopt figures; True when each is within its target."""
    tree = _tree(work, small, big, big_size)
    files = _files(tree)
    root = work / "adopt-store"
    env = {**os.environ, "SYNAPSE_ROOT": str(root)}
    subprocess.run(["cat", *files[-big:]], stdout=subprocess.DEVNULL, check=True)  # warm the page cache

    def fresh() -> None:
        shutil.rmtree(root, ignore_errors=True)
        timed([synapse, "store", "init"], env)

    def openssl() -> tuple[float, int]:
        return timed(["sh", "-c", f"find {tree} -type f ! -name '.*' -print0 | xargs -0 openssl dgst -sha256"], None)

    def adopt() -> tuple[float, int]:
        fresh()
        result = timed([synapse, "adopt", str(tree), "--json"], env)
        timed([synapse, "adopt", "--undo", str(tree)], env)
        return result

    results: dict[str, list[tuple[float, int]]] = {"openssl": [], "adopt": []}
    for _ in range(runs):
        results["openssl"].append(openssl())
        results["adopt"].append(adopt())
    base = min(r[0] for r in results["openssl"])
    took = min(r[0] for r in results["adopt"])
    rss = max(r[1] for r in results["adopt"]) / 1024
    label = f"adopt {small} small + {big} x {big_size >> 20} MiB"
    ok = report(label, took, base, 1.3, "openssl dgst -sha256 of every file")
    print(f"{'peak RSS (adopt)':<34} {rss:5.1f} MB (target <= 150 MB) {'ok' if rss <= 150 else 'OVER'}")
    ok &= rss <= 150

    fresh()
    timed([synapse, "adopt", str(tree), "--keep-originals", "--json"], env)
    again: list[tuple[float, int]] = []
    listing: list[tuple[float, int]] = []
    for _ in range(runs):
        listing.append(timed(["find", str(tree), "-type", "f", "-printf", "%s %T@\\n"], None))
        again.append(timed([synapse, "adopt", str(tree), "--keep-originals", "--json"], env))
    ok &= report(
        "second adopt (unchanged tree)",
        min(r[0] for r in again),
        min(r[0] for r in listing),
        5.0,
        "find TREE -type f -printf '%s %T@\\n'",
    )
    timed([synapse, "adopt", "--undo", str(tree)], env)
    shutil.rmtree(root, ignore_errors=True)
    return ok
