"""Telemetry and benchmark ingestion into the warehouse: idempotent, capped, gzip-aware."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from edge.events import TelemetryBatch, TelemetryEvent, TelemetryReceipt
from edgeloop import tables, warehouse
from registry_api import telemetry
from registry_api.telemetry import WarehouseWriter
from registry_api.testing import Harness, make_package
from registry_api.testing import telemetry_batch as _batch


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


def test_a_big_batch_of_new_resent_and_repeated_ids_gets_exact_counts(harness: Harness) -> None:
    auth = {**harness.auth(harness.device), "content-type": "application/json"}
    sent = _batch(300)
    first = harness.client.post("/v1/telemetry", content=sent.model_dump_json(), headers=auth)
    assert first.json() == {"accepted": 300, "duplicates": 0}
    fresh = _batch(400).events
    # 200 resent, 400 new, 50 of those again in the same batch, and one more resent at the end.
    mixed = TelemetryBatch(events=[*sent.events[:200], *fresh, *fresh[:50], sent.events[0]])
    second = harness.client.post("/v1/telemetry", content=mixed.model_dump_json(), headers=auth)
    assert second.json() == {"accepted": 400, "duplicates": 251}
    rows = _rows(harness)
    assert len(rows) == len({r["event_id"] for r in rows}) == 700


def test_a_bad_event_in_a_big_batch_is_named(harness: Harness) -> None:
    auth = {**harness.auth(harness.device), "content-type": "application/json"}
    events = json.loads(_batch(800).model_dump_json())["events"]
    events[737]["kind"] = "teleport"
    response = harness.client.post("/v1/telemetry", content=json.dumps({"events": events}), headers=auth)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "events[737].kind" in detail and "'teleport'" in detail and "events[736]" not in detail
    events[737]["kind"] = "inference"
    events[5]["attachment"] = "aGk="
    response = harness.client.post("/v1/telemetry", content=json.dumps({"events": events}), headers=auth)
    assert response.status_code == 422 and "events[5].attachment" in response.json()["detail"]
    assert _rows(harness) == []  # a refused batch lands nothing, not even its good events


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
        "measured_at": (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat(),
    }
    auth = harness.auth(harness.qa)
    assert harness.client.post("/v1/benchmarks", json=report, headers=auth).status_code == 201
    assert harness.client.post("/v1/benchmarks", json=report, headers=auth).status_code == 200
    unknown = harness.client.post("/v1/benchmarks", json={**report, "variant": "tflite_fp16"}, headers=auth)
    assert unknown.status_code == 404
    harness.client.app.state.registry.writer.close()  # type: ignore[attr-defined]
    with warehouse.connect() as wh:
        rows = wh.query("SELECT benchmark_id, device_class, p90_ms, version FROM benchmarks")
    assert rows == [{"benchmark_id": report["benchmark_id"], "device_class": "pixel-6a", "p90_ms": 5.0, "version": "1"}]


# --------------------------------------------------------------------------- the writer on its own


def _wait(writer: WarehouseWriter, events: list[TelemetryEvent]) -> TelemetryReceipt:
    return writer.submit_events(events).result(timeout=60)


def test_writer_counts_ids_shared_by_batches_committed_together(tmp_path: Path) -> None:
    writer = WarehouseWriter(f"duckdb:///{tmp_path / 'wh.duckdb'}")
    started, release = threading.Event(), threading.Event()
    # Hold the writer so the three batches below queue up and go as one group.
    blocked = writer.call(lambda _: (started.set(), release.wait(30)))
    assert started.wait(30)
    a = _batch(100).events
    b = [*a[50:], *_batch(30).events]
    futures = [writer.submit_events(a), writer.submit_events(b), writer.submit_events(a[:10])]
    release.set()
    blocked.result(timeout=30)
    receipts = [f.result(timeout=60) for f in futures]
    assert receipts == [
        TelemetryReceipt(accepted=100, duplicates=0),
        TelemetryReceipt(accepted=30, duplicates=50),
        TelemetryReceipt(accepted=0, duplicates=10),
    ]
    assert _wait(writer, b) == TelemetryReceipt(accepted=0, duplicates=80)
    writer.close()
    with warehouse.connect(f"duckdb:///{tmp_path / 'wh.duckdb'}") as wh:
        assert wh.query("SELECT count(*) AS n FROM telemetry_events")[0]["n"] == 130


_COUNT_ROWS = """
import sys
from edgeloop.warehouse import DuckDBWarehouse
with DuckDBWarehouse(sys.argv[1], lock_timeout_s=60) as wh:
    print(wh.query("SELECT count(*) AS n FROM telemetry_events")[0]["n"])
"""


def _rows_seen_by_another_process(url: str) -> int:
    """Open the file for writing from another process (it retries while a lock is held) and count rows."""
    other = subprocess.run(
        [sys.executable, "-c", _COUNT_ROWS, url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )
    assert other.returncode == 0, other.stderr
    return int(other.stdout.strip())


def test_writer_keeps_the_file_open_while_busy_and_lets_go_when_idle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    opened: list[bool] = []
    connect = warehouse.connect

    def counting_connect(url: str | None = None, *, ensure: bool = True) -> warehouse.Warehouse:
        opened.append(ensure)
        return connect(url, ensure=ensure)

    monkeypatch.setattr(telemetry.wh_mod, "connect", counting_connect)
    # "Busy" must not depend on how fast this box turns a receipt into the next batch: during the
    # burst the idle limit is far longer than any pause between batches; for the idle part it is
    # short, so the release comes at once (the writer reads the limit before every wait).
    writer = WarehouseWriter(url, release_after_s=120)
    for _ in range(19):
        assert _wait(writer, _batch(10).events).accepted == 10
    writer.release_after_s = 0.05
    assert _wait(writer, _batch(10).events).accepted == 10
    assert opened == [True]  # one open for the burst; tables and views checked once
    # Idle now: another process gets the file (it retries while the lock is held).
    assert _rows_seen_by_another_process(url) == 200
    assert _wait(writer, _batch(10).events).accepted == 10
    assert opened == [True, False]
    writer.close()


def test_reads_share_one_read_only_connection_and_let_go_when_idle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Console pages read back to back: one open of the file, not one per page (tens of ms each)."""
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    writer = WarehouseWriter(url, release_after_s=0.05)
    assert _wait(writer, _batch(10).events).accepted == 10
    deadline = time.monotonic() + 60
    while writer._wh is not None:  # the idle writer lets go of the file
        assert time.monotonic() < deadline, "the writer kept the file"
        time.sleep(0.02)
    opened: list[bool] = []

    class Counting(warehouse.DuckDBWarehouse):
        def __init__(self, url: str, *, read_only: bool = False, lock_timeout_s: float = 30.0) -> None:
            opened.append(read_only)
            super().__init__(url, read_only=read_only, lock_timeout_s=lock_timeout_s)

    monkeypatch.setattr(telemetry.wh_mod, "DuckDBWarehouse", Counting)
    writer.release_after_s = 120  # "back to back" must not depend on this box's speed
    count = "SELECT count(*) AS n FROM telemetry_events"
    for _ in range(5):
        assert writer.read(lambda wh: wh.query(count)[0]["n"]).result(timeout=60) == 10
    assert opened == [True]
    writer.release_after_s = 0.05
    assert writer.read(lambda wh: wh.query(count)[0]["n"]).result(timeout=60) == 10
    # Idle now: another process may write the file (it retries while a lock is held).
    assert _rows_seen_by_another_process(url) == 10
    # A write after reads takes the file for writing (DuckDB refuses both kinds in one process).
    assert _wait(writer, _batch(10).events).accepted == 10
    assert writer.read(lambda wh: wh.query(count)[0]["n"]).result(timeout=60) == 20
    writer.close()


def test_warm_up_touches_no_file(tmp_path: Path) -> None:
    WarehouseWriter(f"duckdb:///{tmp_path / 'wh.duckdb'}").warm_up()
    assert list(tmp_path.iterdir()) == []


class _FakeBigQuery:
    """The two calls the writer makes on BigQuery, over rows checked by the real `prepare_rows`."""

    url = "bigquery://project/dataset"

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.queries: list[str] = []

    def query(self, sql: str, params: object = None) -> list[dict[str, Any]]:
        self.queries.append(sql)
        return [{"event_id": i} for i in self.rows if f"'{i}'" in sql]

    def insert_new(self, table: tables.Table, rows: list[dict[str, Any]]) -> int:
        clean = warehouse.prepare_rows(table, rows)
        for row in clean:
            self.rows.setdefault(row["event_id"], row)
        return len(clean)

    def close(self) -> None:
        pass


def test_writer_on_bigquery_merges_only_new_events(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeBigQuery()
    monkeypatch.setattr(telemetry.wh_mod, "connect", lambda url=None, *, ensure=True: fake)
    writer = WarehouseWriter(fake.url)
    events = _batch(20).events
    assert _wait(writer, events[:5]) == TelemetryReceipt(accepted=5, duplicates=0)
    assert _wait(writer, [*events, events[7]]) == TelemetryReceipt(accepted=15, duplicates=6)
    writer.close()
    assert len(fake.rows) == 20 and all(f"'{events[0].event_id}'" in q for q in fake.queries)
    row = fake.rows[str(events[3].event_id)]
    assert row["version"] == "1" and json.loads(row["detail"]) == {"i": 3}
    assert row["event_time"].tzinfo is None and isinstance(row["received_at"], dt.datetime)


def test_naive_event_time_is_refused_with_the_fix(harness: Harness) -> None:
    body = b'{"events": [{"device_id": "d", "kind": "inference", "event_time": "2026-11-23T07:00:00"}]}'
    response = harness.client.post("/v1/telemetry", content=body, headers=harness.auth(harness.device))
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "events[0].event_time" in detail and "timezone" in detail and "send UTC" in detail
