"""The Civitai source (skeleton: references are recognised, resolving comes with the client)."""

from __future__ import annotations

import re

from synapse_core.sources import ImportRequest, NotSupported, ResolvedPack, Source

_CIVITAI_REF = re.compile(r"^(https?://)?(www\.)?civitai\.(com|red)/|^civitai:\d|^(urn:)?air:", re.IGNORECASE)


class CivitaiSource(Source):
    """Models and versions from civitai.com."""

    name = "civitai"
    display_name = "Civitai"

    def can_handle(self, ref: str) -> bool:
        return bool(_CIVITAI_REF.match(ref.strip()))

    def resolve(self, request: ImportRequest) -> ResolvedPack:
        raise NotSupported("the Civitai client is not built yet")
