"""The warehouse writer: one long-lived connection per process, every write on one thread.

DuckDB allows one writing process and is fastest with few large statements, so request
handlers hand batches to a single writer thread and wait for its receipt. The thread
takes whatever has queued up (group commit, up to `group_rows` rows) and writes it as one
`INSERT OR IGNORE … RETURNING event_id`: idempotent by event_id, and the returned ids say
exactly which events were new. BigQuery gets the kernel's `insert_new` (a keyed MERGE).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import json
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from edge.events import BenchmarkReport, TelemetryEvent, TelemetryReceipt
from edgeloop import tables as t
from edgeloop import warehouse as wh_mod
from edgeloop.errors import WarehouseError

log = logging.getLogger(__name__)

_COLUMNS = t.TELEMETRY_EVENTS.column_names
_DUCK_INSERT = (
    f"INSERT OR IGNORE INTO {t.TELEMETRY_EVENTS.name} ({', '.join(_COLUMNS)}) SELECT "
    + ", ".join(f"unnest(?::{t.DUCKDB_TYPES[c.type]}[])" for c in t.TELEMETRY_EVENTS.columns)
    + " RETURNING event_id"
)


def _naive_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def event_row(event: TelemetryEvent, received_at: dt.datetime) -> tuple[Any, ...]:
    """One `telemetry_events` row, in column order."""
    return (
        str(event.event_id),
        event.device_id,
        # TelemetryEvent already converted it to UTC; astimezone again costs more than the insert.
        event.event_time.replace(tzinfo=None),
        received_at,
        event.kind,
        event.model,
        None if event.version is None else str(event.version),
        event.variant,
        event.latency_ms,
        event.top1_label,
        event.top1_score,
        event.app_version,
        event.platform,
        event.device_class,
        event.os_version,
        json.dumps(event.detail, sort_keys=True, default=str) if event.detail else None,
    )


def benchmark_row(report: BenchmarkReport) -> dict[str, Any]:
    return {
        "benchmark_id": str(report.benchmark_id),
        "device_class": report.device_class,
        "device_id": report.device_id,
        "model": report.model,
        "version": str(report.version),
        "variant": report.variant,
        "runtime": report.runtime,
        "threads": report.threads,
        "runs": report.runs,
        "p50_ms": report.p50_ms,
        "p90_ms": report.p90_ms,
        "p99_ms": report.p99_ms,
        "mean_ms": report.mean_ms,
        "std_ms": report.std_ms,
        "init_ms": report.init_ms,
        "peak_mem_mb": report.peak_mem_mb,
        "measured_at": report.measured_at,
    }


@dataclasses.dataclass
class _Batch:
    rows: list[tuple[Any, ...]]
    future: concurrent.futures.Future[TelemetryReceipt]


@dataclasses.dataclass
class _Call:
    fn: Callable[[wh_mod.Warehouse], Any]
    future: concurrent.futures.Future[Any]


_STOP = object()


class WarehouseWriter:
    """Serialises every warehouse access of this process on one thread, opened on first use."""

    def __init__(self, url: str, group_rows: int = 5000) -> None:
        self.url = url
        self.group_rows = group_rows
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._wh: wh_mod.Warehouse | None = None

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="warehouse-writer", daemon=True)
                self._thread.start()

    def submit_events(self, events: Sequence[TelemetryEvent]) -> concurrent.futures.Future[TelemetryReceipt]:
        """Queue a batch; the future resolves to its receipt once committed."""
        received_at = _naive_utc(dt.datetime.now(dt.UTC))
        future: concurrent.futures.Future[TelemetryReceipt] = concurrent.futures.Future()
        self._ensure_started()
        self._queue.put(_Batch([event_row(e, received_at) for e in events], future))
        return future

    def call(self, fn: Callable[[wh_mod.Warehouse], Any]) -> concurrent.futures.Future[Any]:
        """Run `fn(warehouse)` on the writer thread (reads too: DuckDB has one connection)."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._ensure_started()
        self._queue.put(_Call(fn, future))
        return future

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=30)
            self._thread = None

    # ------------------------------------------------------------------ writer thread

    def _open(self) -> wh_mod.Warehouse:
        if self._wh is None:
            self._wh = wh_mod.connect(self.url)
        return self._wh

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                group: list[_Batch] = []
                calls: list[_Call] = []
                rows = 0
                stop = False
                while True:
                    if isinstance(item, _Batch):
                        group.append(item)
                        rows += len(item.rows)
                    elif isinstance(item, _Call):
                        calls.append(item)
                    elif item is _STOP:
                        stop = True
                        break
                    if rows >= self.group_rows:
                        break
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                if group:
                    self._write_group(group)
                for call in calls:
                    self._do_call(call)
                if stop:
                    return
                if self._queue.empty() and self.url.startswith("duckdb://") and self._wh is not None:
                    # A DuckDB file takes one writing process at a time: let go between bursts so
                    # training, ingest and `edgeloop sql` on the same machine can write too.
                    self._wh.close()
                    self._wh = None
        finally:
            if self._wh is not None:
                self._wh.close()
                self._wh = None

    def _do_call(self, call: _Call) -> None:
        try:
            call.future.set_result(call.fn(self._open()))
        except Exception as exc:  # handed to the waiting request, which reports it
            call.future.set_exception(exc)

    def _write_group(self, group: list[_Batch]) -> None:
        # First occurrence of an id (across the whole group) is the one that may be new.
        unique: dict[str, tuple[Any, ...]] = {}
        for batch in group:
            for row in batch.rows:
                unique.setdefault(row[0], row)
        try:
            inserted = self._insert(list(unique.values()))
        except Exception as exc:  # every waiting request gets the failure; none is told "accepted"
            log.error("telemetry write of %d events failed: %s", len(unique), exc)
            for batch in group:
                batch.future.set_exception(exc)
            return
        for batch in group:
            accepted = 0
            for row in batch.rows:
                if row[0] in inserted:
                    inserted.discard(row[0])  # a later copy of the same id is a duplicate
                    accepted += 1
            batch.future.set_result(TelemetryReceipt(accepted=accepted, duplicates=len(batch.rows) - accepted))

    def _insert(self, rows: list[tuple[Any, ...]]) -> set[str]:
        wh = self._open()
        if isinstance(wh, wh_mod.DuckDBWarehouse):
            columns = [list(col) for col in zip(*rows, strict=True)]
            return {r["event_id"] for r in wh.query(_DUCK_INSERT, columns)}
        # BigQuery: learn which ids exist, then MERGE (insert_new) the rest. Ids are validated UUIDs.
        ids = ", ".join(f"'{r[0]}'" for r in rows)
        existing = {
            r["event_id"] for r in wh.query(f"SELECT event_id FROM {t.TELEMETRY_EVENTS.name} WHERE event_id IN ({ids})")
        }
        fresh = [dict(zip(_COLUMNS, r, strict=True)) for r in rows if r[0] not in existing]
        wh.insert_new(t.TELEMETRY_EVENTS, fresh)
        return {r["event_id"] for r in fresh}


def store_benchmark(wh: wh_mod.Warehouse, report: BenchmarkReport) -> int:
    try:
        return wh.upsert(t.BENCHMARKS, [benchmark_row(report)])
    except WarehouseError:
        log.exception("benchmark %s not written to the warehouse", report.benchmark_id)
        raise
