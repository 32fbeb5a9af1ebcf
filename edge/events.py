"""The telemetry event a device sends home: one schema, validated on both sides.

`event_id` is generated once on the device and is the idempotency key: resending a
batch never adds rows. No image leaves the device unless the app opts in per event
(`attachment`), and the registry may refuse attachments altogether.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

EventKind = Literal["inference", "update", "rollback", "error", "bench"]

MAX_DETAIL_KEYS = 32


class TelemetryEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    device_id: str = Field(min_length=1, max_length=128, description="Pseudonymous; never a hardware id.")
    kind: EventKind
    event_time: dt.datetime = Field(default_factory=lambda: dt.datetime.now(dt.UTC))
    model: str | None = Field(default=None, max_length=128)
    version: int | None = Field(default=None, ge=1)
    variant: str | None = Field(default=None, max_length=64)
    latency_ms: float | None = Field(default=None, ge=0, le=3_600_000)
    top1_label: str | None = Field(default=None, max_length=256)
    top1_score: float | None = Field(default=None, ge=0, le=1)
    app_version: str | None = Field(default=None, max_length=64)
    platform: str | None = Field(default=None, max_length=64)
    device_class: str | None = Field(default=None, max_length=64)
    os_version: str | None = Field(default=None, max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, description="Kind-specific extras, small.")
    attachment: str | None = Field(default=None, description="Opt-in only: base64 JPEG of the input.")

    @field_validator("event_time")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("event_time needs a time zone (send UTC, e.g. 2026-11-23T07:00:00Z)")
        return value.astimezone(dt.UTC)

    @field_validator("detail")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_DETAIL_KEYS:
            raise ValueError(f"detail has {len(value)} keys; at most {MAX_DETAIL_KEYS}")
        return value


class TelemetryBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[TelemetryEvent] = Field(min_length=1)


class TelemetryReceipt(BaseModel):
    accepted: int = Field(description="Events new to the registry.")
    duplicates: int = Field(description="Events already received before (same event_id).")
