"""Telemetry and benchmark ingestion into the warehouse: idempotent, capped, gzip-aware."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path

import pytest
from regkit import Harness, make_package

from edge.events import TelemetryBatch, TelemetryEvent
from edgeloop import warehouse


def _batch(n: int) -> TelemetryBatch:
    return TelemetryBatch(
        events=[
            TelemetryEvent(
                device_id=f"d{i % 7}",
                kind="inference",
                model="shelf-products",
                version=1,
                variant="tflite_int8",
                latency_ms=3.5,
                top1_label="lavender-soap",
                top1_score=0.9,
                detail={"i": i},
            )
            for i in range(n)
        ]
    )


def _rows(h: Harness) -> list[dict[str, object]]:
    h.client.app.state.registry.writer.close()  # type: ignore[attr-defined]  # release the DuckDB file
    with warehouse.connect() as wh:
        return wh.query("SELECT * FROM telemetry_events ORDER BY event_id")


def test_batch_lands_once_even_when_resent(harness: Harness) -> None:
    batch = _batch(50)
    body = batch.model_dump_json()
    auth = harness.auth(harness.device)
    first = harness.client.post("/v1/telemetry", content=body, headers={**auth, "content-type": "application/json"})
    assert first.json() == {"accepted": 50, "duplicates": 0}
    gz = gzip.compress(body.encode())
    again = harness.client.post(
        "/v1/telemetry", content=gz, headers={**auth, "content-type": "application/json", "content-encoding": "gzip"}
    )
    assert again.json() == {"accepted": 0, "duplicates": 50}
    mixed = TelemetryBatch(events=[*batch.events[:5], *_batch(5).events, batch.events[0]])
    third = harness.client.post("/v1/telemetry", content=mixed.model_dump_json(), headers=auth)
    assert third.json() == {"accepted": 5, "duplicates": 6}
    rows = _rows(harness)
    assert len(rows) == 55
    sample = next(r for r in rows if r["event_id"] == str(batch.events[3].event_id))
    assert (sample["kind"], sample["version"], sample["device_id"], json.loads(str(sample["detail"]))) == (
        "inference",
        "1",
        "d3",
        {"i": 3},
    )
    assert sample["received_at"] is not None


def test_caps(harness: Harness, registry_env: Path) -> None:
    auth = {**harness.auth(harness.device), "content-type": "application/json"}
    settings = harness.client.app.state.registry.settings  # type: ignore[attr-defined]
    too_many = _batch(settings.max_telemetry_events + 1).model_dump_json()
    assert harness.client.post("/v1/telemetry", content=too_many, headers=auth).status_code == 413
    # Declared too large: refused before reading.
    response = harness.client.post(
        "/v1/telemetry", content=b"{}", headers={**auth, "content-length": str(settings.max_telemetry_bytes + 1)}
    )
    assert response.status_code == 413
    # A gzip bomb: small on the wire, huge inflated.
    bomb = gzip.compress(b'{"events": [' + b" " * (settings.max_telemetry_bytes * 4) + b"]}")
    assert len(bomb) < settings.max_telemetry_bytes
    response = harness.client.post("/v1/telemetry", content=bomb, headers={**auth, "content-encoding": "gzip"})
    assert response.status_code == 413


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"events": []}',
        b'{"events": [{"device_id": "d", "kind": "teleport"}]}',
        b'{"events": [{"device_id": "d", "kind": "inference", "event_time": "2026-11-23T07:00:00"}]}',
        json.dumps({"events": [{"device_id": "d", "kind": "inference", "attachment": "aGk="}]}).encode(),
    ],
    ids=["not-json", "empty", "bad-kind", "naive-time", "attachment"],
)
def test_invalid_batches(harness: Harness, body: bytes) -> None:
    response = harness.client.post("/v1/telemetry", content=body, headers=harness.auth(harness.device))
    assert response.status_code == 422, response.text


def test_benchmark_lands_in_registry_and_warehouse(harness: Harness, tmp_path: Path) -> None:
    harness.publish(make_package(tmp_path / "pkg"))
    report = {
        "benchmark_id": str(uuid.uuid4()),
        "device_class": "pixel-6a",
        "device_id": "d1",
        "model": "shelf-products",
        "version": 1,
        "variant": "onnx_fp32",
        "runtime": "onnxruntime",
        "threads": 4,
        "runs": 50,
        "p50_ms": 4.0,
        "p90_ms": 5.0,
        "p99_ms": 7.0,
        "init_ms": 30.0,
        "measured_at": "2026-11-23T07:00:00Z",
    }
    auth = harness.auth(harness.device)
    assert harness.client.post("/v1/benchmarks", json=report, headers=auth).status_code == 201
    assert harness.client.post("/v1/benchmarks", json=report, headers=auth).status_code == 200
    unknown = harness.client.post("/v1/benchmarks", json={**report, "variant": "tflite_fp16"}, headers=auth)
    assert unknown.status_code == 404
    harness.client.app.state.registry.writer.close()  # type: ignore[attr-defined]
    with warehouse.connect() as wh:
        rows = wh.query("SELECT benchmark_id, device_class, p90_ms, version FROM benchmarks")
    assert rows == [{"benchmark_id": report["benchmark_id"], "device_class": "pixel-6a", "p90_ms": 5.0, "version": "1"}]
