"""The telemetry event a device sends home: one schema, validated on both sides.

`event_id` is generated once on the device and is the idempotency key: resending a
batch never adds rows. No image leaves the device unless the app opts in per event
(`attachment`), and the registry may refuse attachments altogether.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    field_validator,
)
from pydantic_core import core_schema

EventKind = Literal["inference", "update", "rollback", "error", "bench"]

MAX_DETAIL_KEYS = 32
MAX_DETAIL_TEXT = 1024
# Any time outside these is a broken clock or a forged event; both warehouses store every time inside.
# The registry narrows this to a window around receipt (its telemetry_max_age_s / telemetry_max_skew_s).
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
_INT64 = 2**63
_INT32_MAX = 2**31 - 1


def _whole(value: float) -> int:
    if not value.is_integer():
        raise ValueError("not a whole number")
    return int(value)


@dataclasses.dataclass(frozen=True)
class Whole:
    """`Annotated[int, Whole(ge, le)]`: a JSON integer as JSON Schema has it (7 or 7.0, never "7" or true), bounded.

    pydantic's strict int refuses 7.0, which JSON Schema calls an integer; its lax int takes "7" and
    true. This is both checks in pydantic-core, no Python per value unless a float is sent.
    """

    ge: int
    le: int

    def __get_pydantic_core_schema__(self, _source: Any, _handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.union_schema(
            [
                core_schema.int_schema(strict=True, ge=self.ge, le=self.le),
                core_schema.no_info_after_validator_function(
                    _whole, core_schema.float_schema(strict=True, ge=self.ge, le=self.le)
                ),
            ],
            custom_error_type="whole_number",
            custom_error_message=f"Input should be a whole number from {self.ge} to {self.le} (not a string or a bool)",
        )

    def __get_pydantic_json_schema__(self, _schema: Any, _handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.ge, "maximum": self.le}


# `detail` holds flat JSON scalars only: no nesting to cap, no NaN (stored as text it would not be JSON),
# no bool taken for a number. Strict, so `true` stays a bool and "7" stays a string.
DetailValue: TypeAlias = (
    Annotated[bool, Field(strict=True)]
    | Annotated[int, Field(strict=True, ge=-_INT64, lt=_INT64)]
    | Annotated[float, Field(strict=True, allow_inf_nan=False)]
    | Annotated[str, Field(max_length=MAX_DETAIL_TEXT)]
    | None
)
DetailKey = Annotated[str, Field(min_length=1, max_length=64)]


class TelemetryEvent(BaseModel):
    """One event. Numbers are strict (a bool or a string is not a number) and finite; all in pydantic-core."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    device_id: str = Field(min_length=1, max_length=128, description="Pseudonymous; never a hardware id.")
    kind: EventKind
    # Checked in pydantic-core (no Python validator per event: the registry validates thousands a second).
    event_time: AwareDatetime = Field(
        default_factory=lambda: dt.datetime.now(dt.UTC),
        strict=True,
        ge=EARLIEST,
        le=LATEST,
        description="With a time zone; UTC by convention. The registry takes up to 90 days old, 10 minutes ahead.",
    )
    model: str | None = Field(default=None, max_length=128)
    version: Annotated[int, Whole(1, _INT32_MAX)] | None = None
    variant: str | None = Field(default=None, max_length=64)
    latency_ms: float | None = Field(default=None, strict=True, ge=0, le=3_600_000)
    top1_label: str | None = Field(default=None, max_length=256)
    top1_score: float | None = Field(default=None, strict=True, ge=0, le=1)
    app_version: str | None = Field(default=None, max_length=64)
    platform: str | None = Field(default=None, max_length=64)
    device_class: str | None = Field(default=None, max_length=64)
    os_version: str | None = Field(default=None, max_length=64)
    detail: dict[DetailKey, DetailValue] = Field(
        default_factory=dict,
        max_length=MAX_DETAIL_KEYS,
        description="Kind-specific extras: flat JSON scalars (string, finite number, bool, null), small.",
    )
    attachment: str | None = Field(default=None, description="Opt-in only: base64 JPEG of the input.")


class TelemetryBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[TelemetryEvent] = Field(min_length=1)


class TelemetryReceipt(BaseModel):
    accepted: int = Field(description="Events new to the registry.")
    duplicates: int = Field(description="Events already received before (same event_id).")


class BenchmarkReport(BaseModel):
    """What `edgeloop bench` on a device sends to `POST /v1/benchmarks`: one variant on one device class.

    The latency fields are those of `edge.bench.LatencyStats`, so `{**stats.as_dict(), device_class=…,
    model=…, version=…, variant=…}` is a valid report.

    `benchmark_id` is the idempotency key, like `event_id`: resending a report adds nothing. Uploading needs a
    qa or publisher key (a device key gets 403); the registry refuses a `measured_at` ahead of its clock by more
    than the allowed skew or older than its maximum age, and orders reports by when it received them.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    benchmark_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    device_class: str = Field(min_length=1, max_length=64, examples=["pixel-6a"])
    device_id: str | None = Field(default=None, max_length=128)
    model: str = Field(min_length=1, max_length=128, examples=["shelf-products"])
    version: Annotated[int, Whole(1, _INT32_MAX)] = Field(examples=[7])
    variant: str = Field(min_length=1, max_length=64, examples=["tflite_int8"])
    runtime: str | None = Field(default=None, max_length=32, examples=["litert"])
    threads: Annotated[int, Whole(1, 1024)] | None = None
    runs: Annotated[int, Whole(1, 1_000_000)] = Field(examples=[50])
    warmup: Annotated[int, Whole(0, 1_000_000)] | None = None
    p50_ms: float = Field(strict=True, ge=0, le=3_600_000, examples=[4.2])
    p90_ms: float = Field(strict=True, ge=0, le=3_600_000, examples=[5.1])
    p99_ms: float = Field(strict=True, ge=0, le=3_600_000, examples=[7.9])
    mean_ms: float | None = Field(default=None, strict=True, ge=0, le=3_600_000)
    std_ms: float | None = Field(default=None, strict=True, ge=0, le=3_600_000)
    min_ms: float | None = Field(default=None, strict=True, ge=0, le=3_600_000)
    max_ms: float | None = Field(default=None, strict=True, ge=0, le=3_600_000)
    init_ms: float | None = Field(default=None, strict=True, ge=0, le=3_600_000)
    peak_mem_mb: float | None = Field(default=None, strict=True, ge=0, le=1_000_000)
    measured_at: dt.datetime = Field(default_factory=lambda: dt.datetime.now(dt.UTC), ge=EARLIEST, le=LATEST)

    @field_validator("measured_at")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("measured_at needs a time zone (send UTC, e.g. 2026-11-23T07:00:00Z)")
        return value.astimezone(dt.UTC)
