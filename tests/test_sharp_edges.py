"""Sharp edges a new user hits (issue 11, item 3), run as users run them: the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from synapse_core.testing import lora_file


def ok(result: Any) -> Any:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    try:
        return json.loads(result.stdout)
    except ValueError:
        return result.stdout


def refused(result: Any) -> str:
    """One 'error:' line, a non-zero exit and no traceback; returns stderr."""
    assert result.returncode != 0, f"expected a refusal\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def found(result: Any) -> list[str]:
    return [p["name"] for p in ok(result)["local"]]


def test_local_search_matches_file_names_and_every_word(tmp_path: Path, synapse_cli: Any) -> None:
    root = tmp_path / "store"
    ok(synapse_cli("store", "init", root=root))
    folder = tmp_path / "bundle"
    lora_file(folder / "moonlit_detail.safetensors", seed=1)
    lora_file(folder / "sub" / "harbor_glow.safetensors", seed=2)
    ok(synapse_cli("import", folder, "--name", "Bundle", root=root))
    lora_file(tmp_path / "other" / "plain.safetensors", seed=3)
    ok(synapse_cli("import", tmp_path / "other", "--name", "Other", root=root))
    assert found(synapse_cli("search", "moonlit", "--json", root=root)) == ["Bundle"]
    assert found(synapse_cli("search", "HARBOR_glow", "--json", root=root)) == ["Bundle"]
    assert found(synapse_cli("search", "bundle moonlit", "--json", root=root)) == ["Bundle"]
    assert found(synapse_cli("search", "other moonlit", "--json", root=root)) == []
    assert "local   Bundle" in ok(synapse_cli("search", "glow", root=root))
