"""Telemetry ingestion: capped, gzip-aware, idempotent by event_id, into the warehouse."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from edge.events import TelemetryBatch, TelemetryReceipt
from registry_api import inbox
from registry_api.api.body import gunzip_capped, read_capped
from registry_api.api.deps import SECURITY, authorize, bearer_token
from registry_api.api.problems import describe_errors
from registry_api.api.responses import AUTH, errors
from registry_api.core.security import Scope
from registry_api.errors import InvalidRequest, PayloadTooLarge
from registry_api.state import Registry

router = APIRouter(prefix="/v1/telemetry", tags=["telemetry"])

_BODY: dict[str, Any] = {
    "required": True,
    "description": "A TelemetryBatch as JSON, optionally with `Content-Encoding: gzip`.",
    "content": {
        "application/json": {
            "schema": {"$ref": "#/components/schemas/TelemetryBatch"},
            "example": {
                "events": [
                    {
                        "event_id": "0b6f1c1e-8d1f-4a53-9a43-2f0f5b0d7c11",
                        "device_id": "d-5f2c",
                        "kind": "inference",
                        "event_time": "2026-11-23T07:00:00Z",
                        "model": "shelf-products",
                        "version": 7,
                        "variant": "tflite_int8",
                        "latency_ms": 4.1,
                        "top1_label": "lavender-soap",
                        "top1_score": 0.93,
                    }
                ]
            },
        }
    },
}


@router.post(
    "",
    response_model=TelemetryReceipt,
    summary="Send a batch of telemetry events",
    description=(
        "Validated against edge.events.TelemetryEvent. Capped in bytes (Content-Length is checked before "
        "reading, the stream is counted while reading, a gzip body is capped after inflating too) and in "
        "events; both give 413. Idempotent by event_id: resending a batch adds nothing and reports the "
        "events as duplicates. Attachments (images) are not accepted. event_time must lie within "
        "telemetry_max_age_s (default 90 days) before receipt and telemetry_max_skew_s (default 10 min) after. The receipt is sent after the "
        "events are committed to the warehouse `telemetry_events` table, or with telemetry_sink=inbox (several "
        "replicas) to the registry database's inbox, which one loader moves into the warehouse exactly once; "
        "`duplicates` then counts the resent events the inbox still holds."
    ),
    openapi_extra={"requestBody": _BODY, "security": SECURITY},
    responses=errors(*AUTH, 400, 413, 422),
)
async def ingest(request: Request) -> TelemetryReceipt:
    # Auth read here rather than as a dependency: at hundreds of batches a second FastAPI's
    # dependency solving was a visible share of the cost (documented via `security` below).
    registry: Registry = request.app.state.registry
    authorize(request, registry, Scope.report, bearer_token(request))
    settings = registry.settings
    raw = await read_capped(request, settings.max_telemetry_bytes)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        raw = gunzip_capped(raw, settings.max_telemetry_bytes)
    elif encoding not in ("", "identity"):
        raise InvalidRequest(f"Content-Encoding {encoding!r} is not supported; use gzip or none")
    try:
        batch = TelemetryBatch.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidRequest(f"not a TelemetryBatch: {describe_errors(exc.errors(include_url=False))}") from None
    events = batch.events
    if len(events) > settings.max_telemetry_events:
        raise PayloadTooLarge(f"{len(events)} events in one batch; at most {settings.max_telemetry_events}")
    # One comparison per event, against a window around receipt: outside it a time is a broken clock
    # (the warehouses would store year 9999, or refuse the whole load), not a queued event.
    now = dt.datetime.now(dt.UTC)
    earliest = now - dt.timedelta(seconds=settings.telemetry_max_age_s)
    latest = now + dt.timedelta(seconds=settings.telemetry_max_skew_s)
    for n, event in enumerate(events):
        if event.attachment is not None:
            raise InvalidRequest(
                f"events[{n}].attachment: this registry does not accept attachments; send events without images"
            )
        if not earliest <= event.event_time <= latest:
            raise InvalidRequest(
                f"events[{n}].event_time {event.event_time.isoformat()} is outside {earliest:%Y-%m-%dT%H:%MZ} .. "
                f"{latest:%Y-%m-%dT%H:%MZ} (telemetry_max_age_s, telemetry_max_skew_s); fix the device clock"
            )
    if settings.telemetry_sink == "inbox":  # replicas: the shared database, one loader into the warehouse
        return await run_in_threadpool(inbox.append, registry.sessions, events)
    return await asyncio.wrap_future(registry.writer.submit_events(events))
