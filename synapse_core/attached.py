"""Which UIs have installs attached (config.json ``ui_installs``), read with the standard
library only, so that the light ``use``/``back`` path can tell cheaply whether an attached
install's hash cache needs the switched view's hashes (:func:`installs.record_ui_hashes`)."""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path


def attached_uis(config_file: Path, uis: Collection[str]) -> list[str]:
    """Those of ``uis`` that have at least one attached install; [] if the config is unreadable."""
    try:
        installs = json.loads(config_file.read_bytes()).get("ui_installs", {})
    except (OSError, ValueError, AttributeError):
        return []
    if not isinstance(installs, dict):
        return []
    return sorted(ui for ui in uis if installs.get(ui))
