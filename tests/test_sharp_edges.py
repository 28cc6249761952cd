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


def test_a_kind_the_header_contradicts_is_refused_naming_both_unless_forced(
    tmp_path: Path, synapse_cli: Any, make_model: Any
) -> None:
    root = tmp_path / "store"
    ok(synapse_cli("store", "init", root=root))
    lora = lora_file(tmp_path / "files" / "detail.safetensors", seed=1)
    line = refused(synapse_cli("import", lora, "--kind", "checkpoint", root=root))
    assert "detail.safetensors" in line and "lora" in line and "checkpoint" in line, line
    assert "--force-kind checkpoint" in line, line
    assert not (root / "state/packs/detail").exists()
    # a kind the header cannot tell from the one it shows is the user's to give
    ok(synapse_cli("import", lora, "--kind", "motion_lora", "--name", "Motion", root=root))
    forced = ok(synapse_cli("import", lora, "--force-kind", "checkpoint", "--name", "Forced", "--json", root=root))
    assert [r["kind"] for r in forced["resources"]] == ["checkpoint"]
    # --kind is for files whose header does not tell
    blank = make_model("blank.safetensors", {"weight": (4, 4)})
    ok(synapse_cli("import", blank, "--kind", "upscaler", root=root))
    both = synapse_cli("import", blank, "--kind", "vae", "--force-kind", "vae", root=root)
    assert both.returncode == 2 and "cannot be used together" in both.stderr


def test_files_that_are_not_models_are_refused_and_left_out_of_a_folder(tmp_path: Path, synapse_cli: Any) -> None:
    root = tmp_path / "store"
    ok(synapse_cli("store", "init", root=root))
    folder = tmp_path / "downloads"
    lora_file(folder / "style.safetensors", seed=1)
    sidecars = {
        "style.json": b'{"description": "", "activation text": "ink"}',
        "style.preview.png": b"\x89PNG\r\n\x1a\n" + bytes(64),
        "style.civitai.info": b'{"id": 1}',
        "notes.txt": b"trigger: ink\n",
        "workflow.json": json.dumps({"last_node_id": 3, "nodes": []}).encode(),
    }
    for name, data in sidecars.items():
        (folder / name).write_bytes(data)
    (folder / "renamed.safetensors").write_bytes(json.dumps({"nodes": []}).encode())  # a workflow, misnamed
    for name in [*sidecars, "renamed.safetensors"]:
        line = refused(synapse_cli("import", folder / name, "--kind", "lora", root=root))
        assert str(folder / name) in line and "not a model" in line, line
    assert ok(synapse_cli("list", "--json", root=root)) == []
    done = synapse_cli("import", folder, "--name", "Downloads", "--json", root=root)
    result = ok(done)
    assert [r["expose"] for r in result["resources"]] == ["style.safetensors"]
    [warning] = result["warnings"]
    assert "left out 6 file(s)" in warning and "style.civitai.info" in warning and "renamed.safetensors" in warning
    ok(synapse_cli("remove", "Downloads", root=root))
    each = synapse_cli("import", folder, "--each", root=root)
    assert "imported 1 packs" in ok(each) and "left out 6 file(s)" in each.stderr, each.stderr
