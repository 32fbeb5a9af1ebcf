"""Versions: publish a package (upload or by URI) and read what was published."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import IO, Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from edgeloop import storage
from edgeloop.card import CARD_NAME
from edgeloop.errors import EdgeloopError
from registry_api import crud, db, publish
from registry_api.api.body import capped_stream, read_capped
from registry_api.api.deps import Publisher, Reader, RegistryDep
from registry_api.api.problems import describe_errors
from registry_api.api.responses import AUTH, errors
from registry_api.errors import InvalidRequest, PackageRejected
from registry_api.models import NAME_PATTERN, PublishByUri, VariantPublic, VersionPublic
from registry_api.state import Principal, Registry

router = APIRouter(prefix="/v1/models/{name}/versions", tags=["versions"])

ModelName = Annotated[str, Path(pattern=NAME_PATTERN, description="Model name.", examples=["shelf-products"])]
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1, description="Registry version number.", examples=[7])]


def version_public(row: db.ModelVersion) -> VersionPublic:
    card = row.card
    return VersionPublic(
        model=row.model,
        version=row.number,
        digest=row.digest,
        source_uri=row.source_uri,
        created_at=crud.utc(row.created_at),
        created_by=row.created_by,
        run_version=str(card.get("version", "")),
        gate_verdict=str((card.get("gate") or {}).get("verdict", "")),
        labels=list(card.get("labels", [])),
        variants=[
            VariantPublic(
                variant=v.variant,
                file=v.file,
                sha256=v.sha256,
                size=v.size,
                runtime=v.runtime,
                quantization=v.quantization,
                publishable=v.publishable,
                reason=v.reason,
            )
            for v in row.variants
        ],
    )


_PUBLISH_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["card", "files"],
                "properties": {
                    "card": {"type": "string", "format": "binary", "description": "model_card.json"},
                    "files": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "description": "One part per variant file, its filename as listed in the card.",
                    },
                },
            }
        },
        "application/json": {"schema": {"$ref": "#/components/schemas/PublishByUri"}},
    },
}


def _allowed_uri(registry: Registry, uri: str) -> str:
    """Only package folders under the configured roots may be registered (a publisher is not a shell)."""
    if "\x00" in uri:  # the OS refuses such a path (ValueError), so it can name no package
        raise PackageRejected(f"package_uri {uri[:80]!r} contains a NUL character; send the folder's URI")
    try:
        local = storage.is_local(uri)
        path = storage.local_path(uri) if local else None
    except EdgeloopError as exc:
        raise PackageRejected(str(exc)) from None
    roots = registry.settings.roots
    if path is not None:
        resolved = str(path.resolve())
        ok = any(
            resolved == str(storage.local_path(r).resolve())
            or resolved.startswith(str(storage.local_path(r).resolve()).rstrip("/") + "/")
            for r in roots
            if storage.is_local(r)
        )
        uri = resolved
    else:
        ok = ".." not in PurePosixPath(uri.split("://", 1)[1]).parts and any(
            uri.rstrip("/") == r.rstrip("/") or uri.startswith(r.rstrip("/") + "/")
            for r in roots
            if not storage.is_local(r)
        )
    if not ok:
        raise PackageRejected(f"{uri!r} is outside the package roots {roots}; set EDGELOOP_REGISTRY_PACKAGE_ROOTS")
    return uri


def _publish(
    registry: Registry, name: str, card_raw: bytes, files: dict[str, IO[bytes]], actor: Principal, source: str | None
) -> tuple[VersionPublic, bool]:
    package = publish.verify_and_store(card_raw, files, name, registry.settings.artifacts)
    row, created = publish.record_version(registry.sessions, name, package, actor.name, source)
    registry.manifests.invalidate(name)
    return version_public(row), created


def _publish_uri(registry: Registry, name: str, uri: str, actor: Principal) -> tuple[VersionPublic, bool]:
    uri = _allowed_uri(registry, uri)
    with publish.fetch_package(uri, registry.settings.max_package_bytes) as (card_raw, files):
        return _publish(registry, name, card_raw, files, actor, uri)


@router.post(
    "",
    response_model=VersionPublic,
    status_code=201,
    summary="Publish a model package",
    description=(
        "Upload a package (multipart: part `card` = model_card.json, parts `files` = the variant files, each "
        'with its file name) or register one already in storage (JSON `{"package_uri": …}`, under the '
        "configured package roots). Every file is re-hashed; the gate verdict must be pass or forced and each "
        "variant's sha256/size must match the card. Non-publishable variants are stored, never served. "
        "201 with a new version; 200 with the existing one when the same package (same card digest) was "
        "published before."
    ),
    openapi_extra={"requestBody": _PUBLISH_BODY},
    responses=errors(
        *AUTH,
        400,
        409,
        413,
        422,
        extra={200: {"model": VersionPublic, "description": "Already published: the existing version."}},
    ),
)
async def publish_version(
    name: ModelName, request: Request, response: Response, registry: RegistryDep, actor: Publisher
) -> VersionPublic:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    cap = registry.settings.max_package_bytes
    if content_type == "application/json":
        raw = await read_capped(request, registry.settings.max_body_bytes)
        try:
            body = PublishByUri.model_validate_json(raw)
        except ValidationError as exc:
            problems = describe_errors(exc.errors(include_url=False))
            raise InvalidRequest(f"body is not {{'package_uri': …}}: {problems}") from None
        result, created = await run_in_threadpool(_publish_uri, registry, name, body.package_uri, actor)
    elif content_type == "multipart/form-data":
        parser = MultiPartParser(
            request.headers,
            capped_stream(request, cap),
            max_files=64,
            max_fields=16,
            max_part_size=publish.MAX_CARD_BYTES,
        )
        try:
            form = await parser.parse()
        except MultiPartException as exc:
            raise InvalidRequest(f"multipart body is malformed: {exc.message}") from None
        try:
            card_raw, files = await _form_parts(form.multi_items())
            result, created = await run_in_threadpool(_publish, registry, name, card_raw, files, actor, None)
        finally:
            await form.close()
    else:
        raise InvalidRequest(f"Content-Type {content_type!r}: use multipart/form-data or application/json")
    response.status_code = 201 if created else 200
    return result


async def _form_parts(items: list[tuple[str, str | UploadFile]]) -> tuple[bytes, dict[str, IO[bytes]]]:
    card_raw: bytes | None = None
    files: dict[str, IO[bytes]] = {}
    for field, value in items:
        if field == "card" or (isinstance(value, UploadFile) and value.filename == CARD_NAME):
            if card_raw is not None:
                raise InvalidRequest("two model cards in one upload")
            card_raw = await value.read() if isinstance(value, UploadFile) else value.encode()
            if len(card_raw) > publish.MAX_CARD_BYTES:
                raise InvalidRequest(f"{CARD_NAME} is over {publish.MAX_CARD_BYTES} bytes")
        elif field == "files" and isinstance(value, UploadFile):
            filename = PurePosixPath((value.filename or "").replace("\\", "/")).name
            if not filename or filename in files:
                raise InvalidRequest(f"file part {value.filename!r} has no name or is sent twice")
            files[filename] = value.file
        else:
            raise InvalidRequest(f"unexpected form field {field!r}; send `card` and `files` parts")
    if card_raw is None:
        raise InvalidRequest(f"no model card: send {CARD_NAME} as the `card` part")
    return card_raw, files


@router.get("", response_model=list[VersionPublic], summary="List versions", responses=errors(*AUTH, 404))
async def list_versions(name: ModelName, registry: RegistryDep, _: Reader) -> list[VersionPublic]:
    def load() -> list[VersionPublic]:
        with registry.sessions() as session:
            return [version_public(v) for v in crud.list_versions(session, name)]

    return await run_in_threadpool(load)


@router.get("/{version}", response_model=VersionPublic, summary="One version", responses=errors(*AUTH, 404))
async def get_version(name: ModelName, version: VersionNumber, registry: RegistryDep, _: Reader) -> VersionPublic:
    def load() -> VersionPublic:
        with registry.sessions() as session:
            return version_public(crud.get_version(session, name, version))

    return await run_in_threadpool(load)
