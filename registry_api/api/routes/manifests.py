"""The poll: a signed manifest per (model, alias, device), with ETag / 304 and CDN-friendly caching.

This is the hot path, so the route reads its query and headers itself: FastAPI's per-parameter
dependency solving cost more than everything else a 304 needs (measured: ~16 parameters'
worth of typing introspection per request). The parameters are documented in OpenAPI all the same.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from starlette import types as asgi

from edgeloop.errors import EdgeloopError
from registry_api.api.deps import SECURITY, VARY_CREDENTIALS, api_key, check_key
from registry_api.api.responses import AUTH, errors
from registry_api.core.security import Scope
from registry_api.errors import InvalidRequest
from registry_api.models import ALIAS_PATTERN, NAME_PATTERN
from registry_api.rollout import Device
from registry_api.state import Registry

router = APIRouter(prefix="/v1/models/{name}", tags=["manifests"])

_NAME = re.compile(NAME_PATTERN)
_ALIAS = re.compile(ALIAS_PATTERN)
_MAX_IF_NONE_MATCH = 1024
_VARY = VARY_CREDENTIALS.encode()
# query parameter -> (max length, description, example)
_DEVICE_PARAMS: dict[str, tuple[int, str, str]] = {
    "device_id": (128, "Pseudonymous, stable per install; decides the rollout bucket.", "d-5f2c9a"),
    "platform": (64, "android, ios, linux, …", "android"),
    "runtime": (32, "litert or onnxruntime.", "litert"),
    "app_version": (64, "Dotted version of the app, for min_app_version targeting.", "2.4.1"),
    "device_class": (64, "Benchmark device class, for variant choice.", "pixel-6a"),
}

_EXAMPLE = {
    "schema_version": 1,
    "model": "shelf-products",
    "version": 7,
    "alias": "production",
    "variant": "tflite_int8",
    "runtime": "litert",
    "quantization": "int8",
    "artifact_url": "/v1/artifacts/3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b",
    "sha256": "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b",
    "size": 524288,
    "labels": ["lavender-soap", "rose-bath-bomb"],
    "input": {
        "height": 96,
        "width": 96,
        "channels": 3,
        "dtype": "uint8",
        "scale": None,
        "zero_point": None,
        "layout": "NHWC",
    },
    "issued_at": "2026-11-23T07:00:00Z",
    "expires_at": "2026-11-30T07:00:00Z",
    "rollback": False,
    "rollout_percent": 100,
    "sequence": 12,
    "served": "target",
    "key_id": "3f9c2a1b7d4e5f60",
    "signature": "base64 Ed25519 signature over the canonical JSON of every other field",
}

_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "name",
        "in": "path",
        "required": True,
        "description": "Model name.",
        "schema": {"type": "string", "pattern": NAME_PATTERN},
        "example": "shelf-products",
    },
    {
        "name": "alias",
        "in": "query",
        "required": False,
        "description": "Alias to resolve.",
        "schema": {"type": "string", "pattern": ALIAS_PATTERN, "default": "production"},
        "example": "production",
    },
    *(
        {
            "name": key,
            "in": "query",
            "required": False,
            "description": text,
            "schema": {"type": "string", "maxLength": limit},
            "example": example,
        }
        for key, (limit, text, example) in _DEVICE_PARAMS.items()
    ),
    {
        "name": "If-None-Match",
        "in": "header",
        "required": False,
        "description": "The ETag of the manifest the device holds; a match gives 304.",
        "schema": {"type": "string", "maxLength": _MAX_IF_NONE_MATCH},
    },
]


def _query(raw: bytes) -> dict[str, str]:
    """The query string as a dict (last value wins, as Starlette's QueryParams.get)."""
    text = raw.decode("latin-1")
    if "%" in text or "+" in text:
        return {k: v for k, v in parse_qsl(text, keep_blank_values=True)}
    # What devices send: plain values, nothing to unquote (parse_qsl was a third of a 304's CPU).
    return {k: v for k, _, v in (pair.partition("=") for pair in text.split("&") if pair)}


def _device(query: dict[str, str]) -> Device:
    values: dict[str, str | None] = {}
    for key, (limit, _, _) in _DEVICE_PARAMS.items():
        value = query.get(key)
        if value is not None and len(value) > limit:
            raise InvalidRequest(f"query parameter {key} is longer than {limit} characters")
        values[key] = value
    return Device(**values)


def _responses(ok: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """The poll's documented answers, GET and HEAD alike: `ok` is the 200, which gains the caching headers."""
    headers = {
        "ETag": {"description": "Strong validator of the body.", "schema": {"type": "string"}},
        "Cache-Control": {"description": "public, max-age=N", "schema": {"type": "string"}},
        "Vary": {"description": "Authorization, X-API-Key", "schema": {"type": "string"}},
    }
    return errors(304, *AUTH, 404, 422, extra={200: {**ok, "headers": headers}})


@router.get(
    "/manifest",
    summary="Poll: the signed manifest for this device",
    description=(
        "Resolves the alias for this device: inside the rollout (stable bucket of device_id, alias and "
        "target version) and targeting → the target; otherwise the alias's previous target, else production's "
        "(`served` says which). Variant: the fastest publishable one for the runtime whose benchmarked latency "
        "on the device class meets the latency budget, else the runtime's default.\n\n"
        "Caching: the body is signed once per issue interval (issued_at is rounded down to it), so the ETag is "
        "stable within the interval; send it back as If-None-Match for a bodyless 304. `Cache-Control: public, "
        "max-age` is capped at the end of the interval (`manifest_max_age_s`). A shared cache must key on the full URL "
        "including the query string (the answer depends on every parameter) and honour `Vary: Authorization, "
        "X-API-Key` (both carry keys), so it never answers a request with another key, or none, from its store. "
        "After an alias moves, a cache serves the old manifest for at most `manifest_max_age_s` + "
        "`state_cache_ttl_s`."
    ),
    openapi_extra={"parameters": _PARAMETERS, "security": SECURITY},
    responses=_responses(
        {
            "description": "The signed manifest (edge.manifest.Manifest plus `signature`).",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Manifest"}, "example": _EXAMPLE}},
        }
    ),
)
async def manifest(request: Request) -> Response:
    status, headers, body = await poll(request.app.state.registry, request.scope)
    return Response(body, status_code=status, headers={k.decode(): v.decode() for k, v in headers})


@router.head(
    "/manifest",
    summary="Poll's headers, without the manifest",
    description="The same status and headers as GET (ETag, Cache-Control, Vary, Content-Length), no body.",
    openapi_extra={"parameters": _PARAMETERS, "security": SECURITY},
    responses=_responses({"description": "A manifest would be sent; ETag says which."}),
)
async def manifest_head(request: Request) -> Response:
    status, headers, _ = await poll(request.app.state.registry, request.scope)
    return Response(status_code=status, headers={k.decode(): v.decode() for k, v in headers})


async def poll(registry: Registry, scope: asgi.Scope) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The whole poll as (status, raw headers, body); `FastPollMiddleware` sends it without the router."""
    headers = dict(scope["headers"])  # lower-case names, as ASGI servers give them
    state: dict[str, Any] = scope.setdefault("state", {})
    authorization, x_api_key = headers.get(b"authorization"), headers.get(b"x-api-key")
    token = api_key(_text(authorization), _text(x_api_key))
    check_key(state, registry, Scope.poll, token)
    name = scope["path_params"]["name"]
    query = _query(scope["query_string"])
    alias = query.get("alias", "production")
    if not _NAME.match(name) or not _ALIAS.match(alias):
        raise InvalidRequest(f"model {name!r} or alias {alias!r} is not a valid name ({NAME_PATTERN})")
    device = _device(query)
    if_none_match = _text(headers.get(b"if-none-match"))
    if if_none_match is not None and len(if_none_match) > _MAX_IF_NONE_MATCH:
        raise InvalidRequest(
            f"If-None-Match is longer than {_MAX_IF_NONE_MATCH} characters; send the ETag you were given"
        )
    service = registry.manifests
    snap = await service.current(name)
    signed = service.signed(name, alias, service.resolve(name, alias, device, snap), snap)
    max_age = max(0, min(registry.settings.manifest_max_age_s, int(signed.next_issue - time.time())))
    etag = signed.etag.encode()
    # public: the answer is a function of the URL and the key headers, which the cache keys on (Vary).
    out = [(b"etag", etag), (b"cache-control", b"public, max-age=%d" % max_age), (b"vary", _VARY)]
    if if_none_match is not None and _matches(if_none_match, signed.etag):
        return 304, out, b""
    out += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(signed.body))]
    return 200, out, signed.body


def _text(value: bytes | None) -> str | None:
    """A raw header value as Starlette decodes it."""
    return value.decode("latin-1") if value is not None else None


_POLL_PATH = re.compile(r"^/v1/models/([^/]+)/manifest$")


class FastPollMiddleware:
    """Serves `GET` (and `HEAD`) `/v1/models/{name}/manifest` without the router and dependency machinery.

    Polls are most of the traffic; routing through every route, FastAPI's dependency solver
    and Starlette's Request and Response objects cost more than the poll itself. Same
    answer, same errors (via `on_error`); the FastAPI route stays for OpenAPI and for
    anything this does not match.
    """

    def __init__(self, app: asgi.ASGIApp, on_error: Callable[[Request, Exception], Awaitable[Response]]) -> None:
        self.app = app
        self.on_error = on_error

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            match = _POLL_PATH.match(scope["path"])
            if match:
                scope["path_params"] = {"name": match.group(1)}  # scope["path"] is already percent-decoded
                try:
                    status, headers, body = await poll(scope["app"].state.registry, scope)
                except EdgeloopError as exc:
                    response = await self.on_error(Request(scope, receive), exc)
                    await response(scope, receive, send)
                    return
                await send({"type": "http.response.start", "status": status, "headers": headers})
                # HEAD: the same headers (Content-Length of the manifest included), no body.
                await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})
                return
        await self.app(scope, receive, send)


def _matches(header: str, etag: str) -> bool:
    """If-None-Match uses weak comparison: W/ prefixes are ignored, `*` matches anything."""
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False
