"""The app factory: `create_app(settings)` builds one registry; nothing happens at import."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response

from edge.events import TelemetryBatch
from edge.manifest import Manifest
from edgeloop.errors import EdgeloopError
from edgeloop.errors import NotFound as StorageNotFound
from registry_api import access_log, console, errors
from registry_api.api.body import BodyGuard
from registry_api.api.cors import CORSMiddleware
from registry_api.api.problems import on_validation_error
from registry_api.api.routes import aliases, artifacts, benchmarks, health, keys, manifests, models, telemetry, versions
from registry_api.core.config import RegistrySettings
from registry_api.models import ErrorBody, PublishByUri
from registry_api.state import Registry

log = logging.getLogger(__name__)

_SWITCH_INTERVAL_S = 0.001  # Python's default is 0.005; see create_app_from_env

_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (errors.NotFoundError, 404),
    (errors.PackageRejected, 422),
    (errors.MalformedBody, 400),
    (errors.InvalidRequest, 422),
    (errors.PayloadTooLarge, 413),
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.RateLimited, 429),
    (errors.Conflict, 409),
    (errors.RangeNotSatisfiable, 416),
    (StorageNotFound, 404),
)


def status_of(exc: Exception) -> int:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 503  # storage or warehouse unreachable, misconfigured: the request may succeed later


async def _on_error(request: Request, exc: Exception) -> Response:
    status = status_of(exc)
    # An error is about this request (its key, its moment): a cache in front must not answer others with it.
    headers: dict[str, str] = {"Cache-Control": "no-store"}
    if isinstance(exc, errors.RateLimited):
        headers["Retry-After"] = str(int(exc.retry_after))
    elif isinstance(exc, errors.RangeNotSatisfiable):
        headers["Content-Range"] = f"bytes */{exc.size}"
    elif isinstance(exc, errors.Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    if status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc)
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the bodies routes read themselves (raw, to cap them while streaming)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (TelemetryBatch, Manifest, PublishByUri, ErrorBody):
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(model_schema.pop("$defs", {}))
        components[model.__name__] = model_schema
    # The registry refuses image attachments, so the field is not part of what it accepts.
    event = components.get("TelemetryEvent", {})
    event.get("properties", {}).pop("attachment", None)
    # Validation errors are answered by `on_validation_error` ({"detail": "<sentence>"}), not FastAPI's list.
    for operation in (op for path in schema.get("paths", {}).values() for op in path.values()):
        answer = operation.get("responses", {}).get("422")
        if answer and "HTTPValidationError" in str(answer):
            operation["responses"]["422"] = {
                "description": "The request is invalid: the sentence names the field and what to send.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
            }
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    app.openapi_schema = schema
    return schema


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    """A registry app for `settings` (default: from the environment)."""
    if settings is None:
        from registry_api.core.config import get_registry_settings

        settings = get_registry_settings()
    registry = Registry.build(settings)
    log = access_log.AccessLog(settings.access_log)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        registry.start()
        yield
        registry.close()
        log.close()

    app = FastAPI(
        title="edgeloop registry",
        version="1.0.0",
        description=(
            "Versioned, signed model delivery for on-device classifiers: publish packages, move aliases with "
            "staged rollouts, let devices poll signed manifests cheaply (ETag/304) and download by sha256, and "
            "ingest telemetry and benchmarks. Auth: API keys (`Authorization: Bearer elk_…`) with roles "
            "publisher, device, qa (benchmark uploads) and reader. Bodies are strict JSON: no NaN/Infinity, "
            'no NUL in strings, no lone surrogates (400); errors are `{"detail": "<what is wrong and what to send>"}`.'
        ),
        lifespan=lifespan,
    )
    app.state.registry = registry
    for router in (health, keys, models, versions, aliases, manifests, artifacts, telemetry, benchmarks):
        app.include_router(router.router)
    app.include_router(console.build_router(registry))  # /console: built per app, like the API's state
    app.add_exception_handler(EdgeloopError, _on_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    # Inner to outer: bodies are capped behind the poll fast path (polls have none), which the log wraps.
    app.add_middleware(BodyGuard, on_error=_on_error)
    app.add_middleware(manifests.FastPollMiddleware, on_error=_on_error)
    if settings.cors_origins:  # outside the fast poll path, so polls answered there get the headers too
        app.add_middleware(CORSMiddleware, origins=settings.cors_origins)
    app.add_middleware(access_log.AccessLogMiddleware, log=log)  # added last: outermost, so it logs fast polls too
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def create_app_from_env() -> FastAPI:
    """Zero-argument factory for `uvicorn --factory` (each worker builds its own app)."""
    app = create_app()
    registry: Registry = app.state.registry
    try:
        registry.writer.warm_up()
    except EdgeloopError as exc:  # e.g. a missing extra: telemetry reports it; the rest of the API serves
        log.warning("telemetry writer not warmed up: %s", exc)
    # A server process keeps its app, its imports and their schemas for life. Frozen, they are
    # out of the collector's way: at thousands of telemetry events a second, full collections
    # walking them took a third of the request CPU (bench/registry.py). Not done in
    # `create_app`: test processes build many apps and should be able to free them.
    gc.collect()
    gc.freeze()
    # The warehouse writer lets go of the GIL inside DuckDB and must win it back from a busy
    # event loop: at the default 5 ms switch interval a group insert beside a busy thread ran
    # 4x slower than alone (1.5x at 1 ms), and telemetry ingestion was ~12 % slower (A/B of
    # four runs each with bench/registry.py's load). Process-wide, so not in `create_app`.
    sys.setswitchinterval(_SWITCH_INTERVAL_S)
    return app
