"""Downloads by sha256: Range, ETag, streaming; optionally a redirect to a signed GCS URL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, StreamingResponse

from edgeloop import storage
from registry_api import crud, publish
from registry_api.api.deps import VARY_CREDENTIALS, Poller, RegistryDep
from registry_api.api.responses import AUTH, errors
from registry_api.errors import NotFoundError
from registry_api.ranges import parse_range
from registry_api.state import Registry

router = APIRouter(prefix="/v1/artifacts", tags=["artifacts"])

Sha256 = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="sha256 of the file (from the manifest).")]
CHUNK = 256 * 1024


def _locate(registry: Registry, sha256: str) -> tuple[str, int]:
    with registry.sessions() as session:
        variant = crud.servable_artifact(session, sha256)
    if variant is None:
        raise NotFoundError(f"no publishable artifact {sha256}")
    return publish.artifact_uri(registry.settings.artifacts, sha256), variant.size


def _iter_range(uri: str, start: int, length: int) -> Iterator[bytes]:
    with storage.open_read(uri) as handle:
        if start:
            handle.seek(start)
        remaining = length
        while remaining > 0:
            chunk = handle.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk


def _signed_url(uri: str, ttl_s: int) -> str:
    """A V4 signed URL; needs credentials able to sign (a service account), which an emulator cannot provide."""
    from google.cloud import storage as gcs  # type: ignore[attr-defined,unused-ignore]

    bucket, _, name = uri.removeprefix("gs://").partition("/")
    blob: Any = gcs.Client().bucket(bucket).blob(name)
    url: str = blob.generate_signed_url(version="v4", expiration=dt.timedelta(seconds=ttl_s), method="GET")
    return url


@router.get(
    "/{sha256}",
    summary="Download a model file",
    description=(
        "Streams the file. `Range: bytes=a-b`, `bytes=a-` and suffix `bytes=-n` give 206 with Content-Range; "
        "a range entirely past the end gives 416 (`Content-Range: bytes */size`); several ranges that do not "
        "merge into one, or an unparsable header, give the whole file (200). ETag is the quoted sha256; "
        "If-None-Match → 304. With gs:// storage and `signed_url_redirect`, answers 307 to a short-lived "
        "signed URL instead (not available on the GCS emulator, which cannot sign). Non-publishable files: 404.\n\n"
        "Caching: `private, max-age=31536000, immutable` by default, so a shared cache does not keep a file "
        "that needs a key; `artifact_cache=public` lets a CDN keep it, one copy per key header "
        "(`Vary: Authorization, X-API-Key`)."
    ),
    responses=errors(
        304,
        *AUTH,
        404,
        416,
        extra={
            200: {
                "description": "The whole file.",
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            },
            206: {
                "description": "Part of the file.",
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            },
            307: {"description": "Redirect to a signed GCS URL."},
        },
    ),
)
@router.head(
    "/{sha256}",
    summary="A download's headers, without the file",
    description=(
        "The same status and headers as GET with the same Range / If-None-Match / If-Range (Content-Length, "
        "Content-Range, ETag, Accept-Ranges), no body: for CDNs and download managers."
    ),
    responses=errors(
        304,
        *AUTH,
        404,
        416,
        extra={
            200: {"description": "The whole file would be sent."},
            206: {"description": "Part of the file would be sent."},
            307: {"description": "Redirect to a signed GCS URL."},
        },
    ),
)
async def download(
    sha256: Sha256,
    request: Request,
    registry: RegistryDep,
    _: Poller,
    range_header: Annotated[str | None, Header(alias="range", max_length=1024)] = None,
    if_none_match: Annotated[str | None, Header(max_length=1024)] = None,
    if_range: Annotated[str | None, Header(max_length=1024)] = None,
) -> Response:
    head = request.method == "HEAD"
    uri, size = await run_in_threadpool(_locate, registry, sha256)
    etag = f'"{sha256}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        # Content-addressed, so never stale; but downloads need a key, so only the device keeps them
        # unless the deployment says a shared cache may (artifact_cache), and then per key (Vary).
        "Cache-Control": f"{registry.settings.artifact_cache}, max-age=31536000, immutable",
        "Vary": VARY_CREDENTIALS,
    }
    if if_none_match is not None and any(t.strip().removeprefix("W/") in (etag, "*") for t in if_none_match.split(",")):
        return Response(status_code=304, headers=headers)
    if registry.settings.signed_url_redirect and not storage.is_local(uri):
        url = await run_in_threadpool(_signed_url, uri, registry.settings.signed_url_ttl_s)
        return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
    span = None if (if_range is not None and if_range.strip() != etag) else parse_range(range_header, size)
    if span is None:
        headers["Content-Length"] = str(size)
        if head:
            return Response(status_code=200, headers=headers, media_type="application/octet-stream")
        return StreamingResponse(_iter_range(uri, 0, size), media_type="application/octet-stream", headers=headers)
    start, end = span
    headers["Content-Length"] = str(end - start + 1)
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if head:
        return Response(status_code=206, headers=headers, media_type="application/octet-stream")
    return StreamingResponse(
        _iter_range(uri, start, end - start + 1),
        status_code=206,
        media_type="application/octet-stream",
        headers=headers,
    )
