"""The built-in source for files and folders on this machine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from synapse_core.errors import InvalidInput
from synapse_core.hookspecs import hookimpl
from synapse_core.inspect_kind import MODEL_EXTENSIONS, guess_kind, kind_problem, not_a_model
from synapse_core.kinds import kind_names
from synapse_core.names import sanitize_file_name, sanitize_pack_name
from synapse_core.sources import FetchTarget, ImportRequest, ResolvedPack, ResolvedResource, Source

if TYPE_CHECKING:
    from synapse_core.models import Pack


def _path_of(url: str | None) -> Path | None:
    if not url or not url.startswith("file://"):
        return None
    return Path(unquote(urlparse(url).path))


class LocalFileSource(Source):
    """Imports a model file (one resource) or a folder (one resource per model file)."""

    name = "local"
    display_name = "Local files"

    def can_handle(self, ref: str) -> bool:
        if ref.startswith("file://"):
            return True
        if "://" in ref:
            return False
        return os.path.exists(os.path.expanduser(ref)) or ref.startswith(("/", "./", "../", "~")) or os.sep in ref

    def resolve(self, request: ImportRequest) -> ResolvedPack:
        from synapse_core.models import Pack, SourceInfo

        path = _path_of(request.ref) or Path(request.ref).expanduser()
        path = path.absolute()
        if not path.exists():
            raise InvalidInput(f"{request.ref}: no such file or folder")
        if not path.is_file() and not path.is_dir():
            raise InvalidInput(f"{request.ref} is neither a regular file nor a folder")
        skipped: list[str] = []
        if path.is_file():
            what = not_a_model(path)
            if what is not None:
                raise InvalidInput(f"{path} is {what}, not a model; import the model file it belongs to instead")
            files = [path]
        else:
            files = _model_files(path, skipped)
        if not files:
            exts = " ".join(sorted(MODEL_EXTENSIONS))
            raise InvalidInput(f"{path} holds no model files (looked for {exts})")
        resources = _unique_ids([self._resource(f, path, request, single=path.is_file()) for f in files])
        _check_unique_names(resources, files)
        pack = Pack(
            name=request.name or sanitize_pack_name(path.stem if path.is_file() else path.name),
            source=SourceInfo(provider=self.name, url=path.as_uri(), metadata={"path": str(path)}),
            resources=[r.spec for r in resources],
        )
        return ResolvedPack(pack=pack, resources=resources, notes=_skipped_note(path, skipped))

    def _resource(self, file: Path, root: Path, request: ImportRequest, single: bool) -> ResolvedResource:
        from synapse_core.models import ResourceSpec

        relative = file.name if single else file.relative_to(root).as_posix()
        if not os.access(file, os.R_OK):
            raise InvalidInput(f"cannot read {file}: permission denied")
        if file.stat().st_size == 0:
            raise InvalidInput(f"{file} is empty (0 bytes): there is no model in it")
        kind = request.kind or guess_kind(file) or request.kind_fallback
        shown = None if request.kind is None or request.force_kind else kind_problem(file, request.kind)
        if shown is not None:
            raise InvalidInput(
                f"{relative}: its header shows a {shown.value}, not a {kind}; leave out --kind to import it as "
                f"a {shown.value}, or pass --force-kind {kind} if you are sure"
            )
        if kind is None:
            raise InvalidInput(f"cannot tell what kind of model {relative} is; pass --kind (one of: {kind_names()})")
        expose = "/".join(sanitize_file_name(part) for part in relative.split("/"))
        resource_id = "main" if single else expose.rsplit(".", 1)[0].replace("/", "__")
        target = FetchTarget(file_name=file.name, url=file.as_uri(), size=file.stat().st_size)
        return ResolvedResource(spec=ResourceSpec(id=resource_id, kind=kind, expose=expose), target=target)

    def local_path(self, pack: Pack, target: FetchTarget) -> Path | None:
        path = _path_of(target.url)
        if path is None or not path.is_file():
            raise InvalidInput(f"the original file {path} of pack '{pack.name}' is gone; import it again")
        return path


def _unique_ids(resources: list[ResolvedResource]) -> tuple[ResolvedResource, ...]:
    """Ids are file stems; where two files share a stem (style.ckpt, style.safetensors) the extension stays."""
    ids = [r.spec.id for r in resources]
    for resource in resources:
        if ids.count(resource.spec.id) > 1:
            resource.spec.id = resource.spec.expose.replace("/", "__")
    return tuple(resources)


def _check_unique_names(resources: tuple[ResolvedResource, ...], files: list[Path]) -> None:
    """Two files whose names become the same once made safe (``x:y`` and ``x_y``) cannot both be shown."""
    seen: dict[str, Path] = {}
    for resource, file in zip(resources, files, strict=True):
        earlier = seen.setdefault(resource.spec.expose.lower(), file)
        if earlier != file:
            raise InvalidInput(
                f"{earlier} and {file} would both be shown as {resource.spec.expose}; rename one of them"
            )


def _model_files(folder: Path, skipped: list[str]) -> list[Path]:
    """The model files under ``folder``; the others (not hidden) are added to ``skipped``."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, onerror=_unreadable):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(n for n in filenames if not n.startswith(".")):
            file = Path(dirpath) / name
            if Path(name).suffix.lower() not in MODEL_EXTENSIONS:
                skipped.append(file.relative_to(folder).as_posix())
                continue
            if file.is_symlink() and not file.exists():
                raise InvalidInput(f"{file} is a broken symbolic link; remove it or point it at a model file")
            if not file.is_file():
                raise InvalidInput(f"{file} is not a regular file; move it out of {folder} or remove it")
            if not_a_model(file) is not None:
                skipped.append(file.relative_to(folder).as_posix())
                continue
            found.append(file)
    return found


def _skipped_note(folder: Path, skipped: list[str]) -> tuple[str, ...]:
    if not skipped:
        return ()
    shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
    return (f"left out {len(skipped)} file(s) of {folder} that are not models: {shown}",)


def _unreadable(error: OSError) -> None:
    raise InvalidInput(f"cannot read {error.filename}: {error.strerror}")


@hookimpl
def synapse_sources() -> list[Source]:
    return [LocalFileSource()]
