"""The Civitai source: resolve references into packs, download files, search, identify."""

from __future__ import annotations

import functools
import posixpath
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit

import attrs

from synapse_civitai.mapping import (
    MODEL_TYPE_KINDS,
    camel_pack_name,
    choose_files,
    file_metadata,
    kind_for,
    nsfw_level,
    primary_file,
    resource_id,
)
from synapse_civitai.refs import base_url, looks_like_civitai, parse_ref

if TYPE_CHECKING:
    from synapse_civitai.client import CivitaiClient
    from synapse_core.models import Pack
from synapse_core.errors import InvalidInput, SourceError, SynapseError, UpstreamGone
from synapse_core.kinds import AssetKind
from synapse_core.names import sanitize_file_name
from synapse_core.sources import (
    MAX_PREVIEW_BYTES,
    DownloadSink,
    FetchTarget,
    ImportRequest,
    PreviewImage,
    ResolvedPack,
    ResolvedResource,
    SearchHit,
    SearchQuery,
    Source,
    UpdateInfo,
    VersionFile,
)

MAX_PREVIEWS = 4


F = TypeVar("F", bound=Callable[..., Any])


def _expects_civitai_shapes(method: F) -> F:
    """Civitai's JSON is not under our control: data of another shape than documented is one
    clear error (a SourceError), not a traceback from deep inside the mapping."""

    @functools.wraps(method)
    def checked(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except SynapseError:
            raise
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
            raise SourceError(
                f"Civitai answered with data of an unexpected shape ({type(exc).__name__}); try again later"
            ) from exc

    return cast(F, checked)


class CivitaiSource(Source):
    """Models and versions from Civitai (or the origin in SYNAPSE_CIVITAI_URL)."""

    name = "civitai"
    display_name = "Civitai"

    def __init__(self, client: CivitaiClient | None = None) -> None:
        self._client = client
        self._lock = threading.Lock()

    @property
    def client(self) -> CivitaiClient:
        """The HTTP client, made on first use (so loading the plugin costs nothing)."""
        with self._lock:
            if self._client is None:
                from synapse_civitai.client import CivitaiClient  # httpx loads only when Civitai is asked

                self._client = CivitaiClient()
            return self._client

    def _extra_hosts(self) -> frozenset[str]:
        return frozenset({urlsplit(base_url()).netloc.lower()})

    def can_handle(self, ref: str) -> bool:
        return looks_like_civitai(ref, self._extra_hosts())

    # -- resolve -----------------------------------------------------------------

    @_expects_civitai_shapes
    def resolve(self, request: ImportRequest) -> ResolvedPack:
        ref = parse_ref(request.ref, self._extra_hosts())
        if ref.version_id is not None:
            version = self.client.version(ref.version_id)
            owner = int(version.get("modelId") or ref.model_id or 0)
            if ref.model_id is not None and ref.model_id != owner:
                raise InvalidInput(
                    f"version {ref.version_id} belongs to Civitai model {owner}, not {ref.model_id}; "
                    "check the reference"
                )
            model = self.client.model(owner)
            pinned = True
        else:
            assert ref.model_id is not None
            model = self.client.model(ref.model_id)
            versions = model.get("modelVersions") or []
            if not versions:
                raise UpstreamGone(f"Civitai model {ref.model_id} has no published version", "removed")
            version = versions[0]
            pinned = False
        mode = model.get("mode") or (version.get("model") or {}).get("mode")
        if mode in ("Archived", "TakenDown"):
            # Civitai drops the files and downloadUrl of such models: say why, not "no files"
            what = "archived" if mode == "Archived" else "taken down"
            raise UpstreamGone(
                f"Civitai model {model.get('id')} is {what} on Civitai; its files can no longer be downloaded",
                "archived" if mode == "Archived" else "removed",
            )
        files = [f for f in version.get("files") or [] if "type" not in ref.query or f.get("type") == ref.query["type"]]
        prefer = {**{k: v for k, v in ref.query.items() if k != "type"}, **request.prefer}
        file_ids = request.file_ids or ((str(ref.file_id),) if ref.file_id else ())
        chosen = choose_files(files, file_ids=file_ids, all_files=request.all_files, prefer=prefer)
        policy = request.policy or ("pinned" if pinned else "follow_latest")
        return self._resolved(model, version, chosen, policy, request.kind, request.video_previews)

    def _resolved(
        self,
        model: Mapping[str, Any],
        version: Mapping[str, Any],
        chosen: Sequence[Mapping[str, Any]],
        policy: str,
        forced_kind: AssetKind | None,
        videos: bool = False,
    ) -> ResolvedPack:
        from synapse_core.models import Pack, SourceInfo

        model_id = int(model["id"])
        primary = primary_file(version.get("files") or [])
        taken: set[str] = set()
        resources: list[ResolvedResource] = []
        for file in chosen:
            rid = resource_id(file, primary.get("id") if primary else None, taken)
            taken.add(rid)
            resource = self._resource(rid, model, version, file, forced_kind)
            # Civitai derives one name for files of the same version (harborMix_v30.safetensors for
            # both fp16 and fp32): each resource of a pack needs its own name, or one hides the other
            expose = _distinct_name(resource.spec.expose, file, {r.spec.expose.lower() for r in resources})
            if expose != resource.spec.expose:
                resource = attrs.evolve(resource, spec=resource.spec.model_copy(update={"expose": expose}))
            resources.append(resource)
        creator = model.get("creator") or {}
        pack = Pack(
            name=camel_pack_name(str(model.get("name") or f"civitai_{model_id}")),
            source=SourceInfo(
                provider=self.name,
                url=f"{base_url()}/models/{model_id}",
                version_id=str(int(version["id"])),
                version_name=version.get("name"),
                metadata={"model_id": model_id},
            ),
            policy=policy,
            base_model=version.get("baseModel"),
            trigger_words=_strings(version.get("trainedWords")),
            tags=_strings(model.get("tags")),
            creator=creator.get("username") if isinstance(creator, dict) else None,
            description=model.get("description"),
            resources=[r.spec for r in resources],
        )
        return ResolvedPack(pack=pack, resources=tuple(resources), previews=self._previews(version, videos))

    def _resource(
        self,
        rid: str,
        model: Mapping[str, Any],
        version: Mapping[str, Any],
        file: Mapping[str, Any],
        forced_kind: AssetKind | None,
    ) -> ResolvedResource:
        hashes = {str(k): str(v) for k, v in (file.get("hashes") or {}).items()}
        sha256 = hashes.get("SHA256", "").lower() or None
        size_kb = file.get("sizeKB")
        # kept without a SHA256 too: then the size is the only check a truncated download meets
        size = round(float(size_kb) * 1024) if isinstance(size_kb, int | float) and size_kb >= 0 else None
        url = file.get("downloadUrl")
        primary = primary_file(version.get("files") or [])
        if not url or (file.get("id") is not None and file is not primary):
            # a non-primary file's downloadUrl is '?type=..&format=..', which Civitai resolves to the
            # best-ranked file of that type: name the file itself (on the origin the API answered with)
            parts = urlsplit(url) if url else None
            origin = f"{parts.scheme}://{parts.netloc}" if parts and parts.netloc else base_url()
            url = f"{origin}/api/download/models/{version['id']}?fileId={file.get('id')}"
        file_name = sanitize_file_name(str(file.get("name") or self._name_from_storage(url, file)))
        target = FetchTarget(
            file_name=file_name,
            url=url,
            sha256=sha256,
            size=size,
            version_id=str(int(version["id"])),
            file_id=str(int(file["id"])) if file.get("id") is not None else None,
            hashes=hashes,
        )
        kind = forced_kind or kind_for(model.get("type"), file)
        from synapse_core.models import ResourceSpec

        spec = ResourceSpec(id=rid, kind=kind, expose=file_name, prefer=file_metadata(file))
        return ResolvedResource(spec=spec, target=target)

    def _name_from_storage(self, url: str, file: Mapping[str, Any]) -> str:
        """A file the API lists without a name: the one the storage's Content-Disposition gives
        (both come from Civitai's getDownloadFilename), else ``civitai_<file id>``."""
        fallback = f"civitai_{file.get('id')}"
        try:
            return self.client.download_name(url, what=fallback) or fallback
        except SynapseError:
            return fallback

    def _previews(self, version: Mapping[str, Any], videos: bool = False) -> tuple[PreviewImage, ...]:
        kinds = ("image", "video") if videos else ("image",)
        images = [i for i in version.get("images") or [] if i.get("type", "image") in kinds and i.get("url")]
        previews = []
        for image in images[:MAX_PREVIEWS]:
            url = str(image["url"])
            name = posixpath.basename(urlsplit(url).path) or "preview.jpeg"
            width, height = (
                v if isinstance(v, int) and 0 < v < 1 << 16 else None for v in (image.get("width"), image.get("height"))
            )
            previews.append(
                PreviewImage(
                    file_name=name, url=url, nsfw=nsfw_level(image.get("nsfwLevel")), width=width, height=height
                )
            )
        return tuple(previews)

    # -- bytes -------------------------------------------------------------------

    def fetch(self, pack: Pack, target: FetchTarget, sink: DownloadSink) -> None:
        if not target.url:
            raise UpstreamGone(f"{target.file_name}: no download address is recorded; import the pack again")
        self.client.download(target.url, sink, what=target.file_name)

    def fetch_preview(self, preview: PreviewImage) -> bytes:
        return self.client.get_bytes(preview.url, what=f"preview {preview.file_name}", limit=MAX_PREVIEW_BYTES)

    # -- search and identify -----------------------------------------------------

    @_expects_civitai_shapes
    def search(self, query: SearchQuery) -> Sequence[SearchHit]:
        params: dict[str, Any] = {"query": query.text, "limit": min(query.limit, 100)}
        if query.kind is not None:
            params["types"] = [t for t, k in _CIVITAI_TYPES.items() if k == query.kind]
            if not params["types"]:
                return []  # no Civitai type is of this kind (without types Civitai returns every type)
        if query.base_model:
            params["baseModels"] = query.base_model
        models: list[Mapping[str, Any]] = []
        while len(models) < query.limit:  # cursor paging (page numbers are refused with a query)
            data = self.client.search(params)
            models += data.get("items", [])
            cursor = (data.get("metadata") or {}).get("nextCursor")
            if not cursor or not data.get("items"):
                break
            params["cursor"] = cursor
        hits = []
        for model in models[: query.limit]:
            versions = model.get("modelVersions") or [{}]
            hits.append(
                SearchHit(
                    source=self.name,
                    ref=f"civitai:{model['id']}",
                    name=str(model.get("name")),
                    kind=MODEL_TYPE_KINDS.get(str(model.get("type", "")).lower(), AssetKind.OTHER),
                    base_model=versions[0].get("baseModel"),
                    creator=(model.get("creator") or {}).get("username"),
                    tags=tuple(_strings(model.get("tags"))),
                )
            )
        return [h for h in hits if query.kind is None or h.kind == query.kind]

    @_expects_civitai_shapes
    def check_updates(self, packs: Sequence[Pack]) -> Mapping[str, UpdateInfo]:
        ids = sorted({int(model_id) for p in packs if (model_id := p.source.metadata.get("model_id"))})
        try:
            models = {int(m["id"]): m for m in self.client.models_by_ids(ids)}
        except SynapseError as exc:
            return {p.name: UpdateInfo(status="failed", message=exc.message) for p in packs}
        return {p.name: self._update_info(p, models) for p in packs}

    def _update_info(self, pack: Pack, models: Mapping[int, Mapping[str, Any]]) -> UpdateInfo:
        model_id = pack.source.metadata.get("model_id")
        model = models.get(int(model_id)) if model_id else None
        if model is None:
            return UpdateInfo(status="removed", message=f"Civitai no longer lists model {model_id}")
        if model.get("mode") == "Archived":
            return UpdateInfo(status="archived", message=f"model {model_id} is archived on Civitai")
        versions = model.get("modelVersions") or []
        if not versions:
            return UpdateInfo(status="removed", message=f"model {model_id} has no published version")
        latest = versions[0]
        if str(int(latest["id"])) == pack.source.version_id:
            return UpdateInfo(status="current", latest_version_id=str(int(latest["id"])))
        if latest.get("availability") == "EarlyAccess":
            deadline = latest.get("earlyAccessDeadline") or latest.get("earlyAccessEndsAt")
            until = f" until {deadline}" if deadline else ""
            message = f"{latest.get('name')} is in Early Access{until}"
            return UpdateInfo(status="unavailable", latest_version_id=str(int(latest["id"])), message=message)
        files = []
        for file in latest.get("files") or []:
            resolved = self._resource("candidate", model, latest, file, None)
            files.append(
                VersionFile(
                    target=resolved.target,
                    kind=resolved.spec.kind,
                    metadata=file_metadata(file),
                    primary=file.get("primary") is True,
                )
            )
        return UpdateInfo(
            status="update",
            latest_version_id=str(int(latest["id"])),
            latest_version_name=latest.get("name"),
            files=tuple(files),
            base_model=latest.get("baseModel"),
            trigger_words=tuple(_strings(latest.get("trainedWords"))),
        )

    @_expects_civitai_shapes
    def identify(self, sha256s: Sequence[str]) -> Mapping[str, ResolvedPack]:
        found: dict[str, ResolvedPack] = {}
        models: dict[int, dict[str, Any]] = {}
        for version in self.client.versions_by_hash(list(sha256s)):
            for file in version.get("files") or []:
                sha = str((file.get("hashes") or {}).get("SHA256", "")).lower()
                if sha in sha256s and sha not in found:
                    model_id = int(version["modelId"])
                    if model_id not in models:
                        models[model_id] = self.client.model(model_id)
                    found[sha] = self._resolved(models[model_id], version, [file], "pinned", None)
        return found

    @_expects_civitai_shapes
    def lookup_hash(self, value: str) -> ResolvedPack | None:
        wanted = value.lower()
        if not wanted or not all(c in "0123456789abcdef" for c in wanted):
            return None
        version = self.client.version_by_hash(wanted)
        if version is None:
            return None
        for file in version.get("files") or []:
            hashes = {str(v).lower() for v in (file.get("hashes") or {}).values()}
            if wanted in hashes:
                model = self.client.model(int(version["modelId"]))
                return self._resolved(model, version, [file], "pinned", None)
        return None


_CIVITAI_TYPES: dict[str, AssetKind] = {
    "Checkpoint": AssetKind.CHECKPOINT,
    "TextualInversion": AssetKind.EMBEDDING,
    "Hypernetwork": AssetKind.HYPERNETWORK,
    "LORA": AssetKind.LORA,
    "LoCon": AssetKind.LORA,
    "DoRA": AssetKind.LORA,
    "Controlnet": AssetKind.CONTROLNET,
    "Upscaler": AssetKind.UPSCALER,
    "MotionModule": AssetKind.MOTION_MODULE,
    "VAE": AssetKind.VAE,
    "TextEncoder": AssetKind.TEXT_ENCODER,
    "CLIP": AssetKind.TEXT_ENCODER,
    "UNet": AssetKind.DIFFUSION_MODEL,
    "CLIPVision": AssetKind.CLIP_VISION,
    "AestheticGradient": AssetKind.OTHER,
    "Poses": AssetKind.OTHER,
    "Wildcards": AssetKind.OTHER,
    "Workflows": AssetKind.OTHER,
    "Detection": AssetKind.OTHER,
    "Other": AssetKind.OTHER,
}


def _strings(value: Any) -> list[str]:
    """A list of words from Civitai: a list's strings; one string is one word, not its letters."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str | int | float) and str(v).strip()]
    return []


def _distinct_name(name: str, file: Mapping[str, Any], taken: set[str]) -> str:
    """``name``, or ``<stem>_<metadata or file id><ext>`` when another resource has it (case-blind)."""
    if name.lower() not in taken:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    suffix = "_".join(v for v in file_metadata(file).values() if v.isascii() and v.replace("-", "").isalnum())
    for tail in (suffix, str(file.get("id")), f"{suffix}_{file.get('id')}"):
        candidate = sanitize_file_name(f"{stem}_{tail}{dot}{ext}") if tail else ""
        if candidate and candidate.lower() not in taken:
            return candidate
    return sanitize_file_name(f"{stem}_{len(taken)}{dot}{ext}")
