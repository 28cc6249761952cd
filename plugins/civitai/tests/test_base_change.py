"""Sharp edges with Civitai packs (issue 11, item 3): search by creator and file name, and updates
that change a pack's base model or kind, run as users run them against the fake Civitai."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from civitai_checks import ok

from synapse_civitai.fake_server import FakeCivitai


def test_local_search_finds_a_pack_by_creator_base_model_and_file_name(
    fake: FakeCivitai, root: Path, synapse: Callable[..., Any]
) -> None:
    ok(synapse("import", "civitai:424242@909001", "--name", "Lantern"))
    ok(synapse("import", "civitai:515151", "--name", "Ink"))
    for query in ("lantern_maker", "paper_lantern_v1", "SD 1.5 lantern"):
        assert [p["name"] for p in ok(synapse("search", query, "--json"))["local"]] == ["Lantern"], query
    assert [p["name"] for p in ok(synapse("search", "sumi_artist", "--json"))["local"]] == ["Ink"]
