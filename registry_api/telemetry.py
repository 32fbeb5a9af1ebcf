"""The warehouse writer: one long-lived connection per process, every write on one thread.

DuckDB allows one writing process and is fastest with few large statements (a statement
costs milliseconds however small), so request handlers hand batches to a single writer
thread and wait for its receipt. Each request turns its own batch into an Arrow table
first; the thread takes whatever has queued up (group commit, up to `group_rows` rows) and
appends it as one table, idempotent by event_id (`DuckDBWarehouse.insert_new_arrow`),
learning exactly which events were new. The thread is the one serial step, so it does as
little Python as it can. BigQuery gets the kernel's `insert_new` (a keyed MERGE).
The DuckDB file is let go once no batch has come for `release_after_s`, so training, ingest
and `edgeloop sql` on the same machine can write between bursts of telemetry. Console reads
keep their read-only connection for the same idle time: opening the file costs tens of ms a
page, and a read-only connection is never the write lock.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import fcntl
import json
import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from edge.events import BenchmarkReport, TelemetryEvent, TelemetryReceipt
from edgeloop import tables as t
from edgeloop import warehouse as wh_mod
from edgeloop.errors import WarehouseError

log = logging.getLogger(__name__)

_COLUMNS = t.TELEMETRY_EVENTS.column_names
_CHECKPOINT_WAL = "128MB"  # ~650k events; the checkpoint when the file is let go then takes about a second


def _naive_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _detail(value: dict[str, Any]) -> str | None:
    return json.dumps(value, sort_keys=True, default=str) if value else None


def event_columns(
    events: Sequence[TelemetryEvent], event_ids: Sequence[str], received_at: Sequence[dt.datetime]
) -> list[list[Any]]:
    """The `telemetry_events` columns of `events`, in table order (one pass per column, no row tuples)."""
    return [
        list(event_ids),
        [e.device_id for e in events],
        [e.event_time for e in events],  # aware: Arrow converts to UTC in C++, BigQuery rows via `_naive_utc`
        list(received_at),
        [e.kind for e in events],
        [e.model for e in events],
        [None if e.version is None else str(e.version) for e in events],
        [e.variant for e in events],
        [e.latency_ms for e in events],
        [e.top1_label for e in events],
        [e.top1_score for e in events],
        [e.app_version for e in events],
        [e.platform for e in events],
        [e.device_class for e in events],
        [e.os_version for e in events],
        [_detail(e.detail) for e in events],
    ]


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


class ServingClaim:
    """One serving process per DuckDB warehouse file, for as long as it serves.

    A DuckDB file has one writer at a time. Serving processes sharing one take turns at it, each
    holding the file while its telemetry is busy: at three, batches waited 5.9-10.2 s at p99 for their
    turn (`bench/registry.py --replicas 3 --sinks warehouse` before this refusal; 0.4 s through the inbox), and past
    the turn lock's 30 s wait a device gets a 500. So a second `edgeloop serve` on a file another one
    serves is refused at start: several replicas take telemetry through the registry database
    (telemetry_sink=inbox), where one loader writes the warehouse. Training, ingest and `edgeloop sql`
    still take turns with the one serving process. A POSIX record lock on `<file>.serving`, holding
    the server's pid; it ends with the process.
    """

    _fds: ClassVar[dict[str, int]] = {}
    _count: ClassVar[dict[str, int]] = {}
    _guard = threading.Lock()

    @classmethod
    def _forget_after_fork(cls) -> None:
        cls._fds, cls._count, cls._guard = {}, {}, threading.Lock()

    @staticmethod
    def path_of(url: str) -> Path | None:
        """The DuckDB file `url` names, or None for BigQuery and in-memory warehouses."""
        if not url.startswith("duckdb://"):
            return None
        path = url.removeprefix("duckdb:///") if url.startswith("duckdb:///") else url.removeprefix("duckdb://")
        return None if path in ("", ":memory:") else Path(path)

    @classmethod
    def take(cls, url: str) -> str | None:
        """Claim the file `url` names for this process (again, if it has it); None when nothing to claim."""
        path = cls.path_of(url)
        if path is None:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        key = str(path.resolve())
        with cls._guard:
            if key in cls._count:
                cls._count[key] += 1
                return key
            fd = os.open(f"{key}.serving", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise WarehouseError(
                    f"the warehouse {url!r} is served by another registry process (pid {holder}): a DuckDB file "
                    "takes one writer at a time, so telemetry would queue for its turn. Run one `edgeloop serve` per "
                    "file, or give every replica EDGELOOP_REGISTRY_TELEMETRY_SINK=inbox and one shared "
                    "PostgreSQL EDGELOOP_REGISTRY_DATABASE_URL (one loader writes the warehouse)"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            cls._fds[key], cls._count[key] = fd, 1
            return key

    @classmethod
    def give_back(cls, key: str | None) -> None:
        if key is None:
            return
        with cls._guard:
            cls._count[key] -= 1
            if cls._count[key] == 0:
                del cls._count[key]
                os.close(cls._fds.pop(key))


os.register_at_fork(after_in_child=ServingClaim._forget_after_fork)


@dataclasses.dataclass
class _Batch:
    ids: list[str]
    data: Any  # a pyarrow.Table (DuckDB) or the table's columns (BigQuery)
    future: concurrent.futures.Future[TelemetryReceipt]


@dataclasses.dataclass
class _Call:
    fn: Callable[[wh_mod.Warehouse], Any]
    future: concurrent.futures.Future[Any]
    read_only: bool = False


_STOP = object()


class WarehouseWriter:
    """Serialises every warehouse access of this process on one thread, opened on first use."""

    def __init__(self, url: str, group_rows: int = 5000, release_after_s: float = 0.5) -> None:
        self.url = url
        self.group_rows = group_rows
        self.release_after_s = release_after_s
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._wh: wh_mod.Warehouse | None = None
        self._reader: wh_mod.DuckDBWarehouse | None = None  # read-only, between writes
        self._ensured = False

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="warehouse-writer", daemon=True)
                self._thread.start()

    def warm_up(self) -> None:
        """Write one event to an in-memory DuckDB, so the first real batch does not wait for imports.

        The Arrow path loads a good deal on first use (pyarrow's first conversion imports pandas when
        it is installed): seconds that would otherwise fall on the first devices to report.
        """
        if not self.url.startswith("duckdb://"):
            return
        event = TelemetryEvent(device_id="warm-up", kind="inference", detail={"warm": True})
        now = _naive_utc(dt.datetime.now(dt.UTC))
        with wh_mod.DuckDBWarehouse("duckdb:///:memory:") as wh:
            wh.ensure()
            data = wh_mod.arrow_table(t.TELEMETRY_EVENTS, event_columns([event], [str(event.event_id)], [now]))
            wh.insert_new_arrow(t.TELEMETRY_EVENTS, data)

    def submit_events(self, events: Sequence[TelemetryEvent]) -> concurrent.futures.Future[TelemetryReceipt]:
        """Queue a batch; the future resolves to its receipt once committed.

        The batch becomes rows here, in the caller's thread, not on the writer's.
        """
        ids = [str(e.event_id) for e in events]
        columns = event_columns(events, ids, [_naive_utc(dt.datetime.now(dt.UTC))] * len(ids))
        data = wh_mod.arrow_table(t.TELEMETRY_EVENTS, columns) if self.url.startswith("duckdb://") else columns
        future: concurrent.futures.Future[TelemetryReceipt] = concurrent.futures.Future()
        self._ensure_started()
        self._queue.put(_Batch(ids, data, future))
        return future

    def call(self, fn: Callable[[wh_mod.Warehouse], Any]) -> concurrent.futures.Future[Any]:
        """Run `fn(warehouse)` on the writer thread (reads too: DuckDB has one connection)."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._ensure_started()
        self._queue.put(_Call(fn, future))
        return future

    def read(self, fn: Callable[[wh_mod.Warehouse], Any]) -> concurrent.futures.Future[Any]:
        """Run `fn(warehouse)` on the writer thread without taking the DuckDB write lock.

        On the writer's connection when it holds the file already; else on a read-only one opened
        for this call (in-process, DuckDB refuses a read-only connection beside a writing one, so
        reads must queue here too). A file another process is writing stays unreadable for now.
        """
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._ensure_started()
        self._queue.put(_Call(fn, future, read_only=True))
        return future

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=30)
            self._thread = None

    # ------------------------------------------------------------------ writer thread

    def _open(self) -> wh_mod.Warehouse:
        if self._wh is None:
            self._close_reader()  # in one process DuckDB refuses a writing connection beside a read-only one
            # Creating tables and views is checked once per process, not on every reopen after a
            # pause: it costs more than a group of inserts. A failed write checks again.
            self._wh = wh_mod.connect(self.url, ensure=not self._ensured)
            self._ensured = True
            if isinstance(self._wh, wh_mod.DuckDBWarehouse):
                # At DuckDB's default of 16 MB of WAL a steady stream checkpointed every ~80k events,
                # each stalling the writer for up to a second (measured with bench/registry.py).
                self._wh.query(f"SET checkpoint_threshold = '{_CHECKPOINT_WAL}'")
        return self._wh

    def _release(self) -> None:
        self._close_reader()
        if self._wh is not None:
            self._wh.close()
            self._wh = None

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _next(self) -> Any:
        """The next item; lets go of a DuckDB file held idle for `release_after_s`."""
        if (self._wh is None and self._reader is None) or not self.url.startswith("duckdb://"):
            return self._queue.get()
        try:
            return self._queue.get(timeout=self.release_after_s)
        except queue.Empty:
            self._release()
            return self._queue.get()

    def _run(self) -> None:
        try:
            while True:
                item = self._next()
                if item is _STOP:
                    return
                group: list[_Batch] = []
                calls: list[_Call] = []
                rows = 0
                stop = False
                while True:
                    if isinstance(item, _Batch):
                        group.append(item)
                        rows += len(item.ids)
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
        finally:
            self._release()

    def _do_call(self, call: _Call) -> None:
        try:
            if call.read_only and self._wh is None and self.url.startswith("duckdb://"):
                call.future.set_result(self._read_only(call.fn))
            else:
                call.future.set_result(call.fn(self._open()))
        except Exception as exc:  # handed to the waiting request, which reports it
            call.future.set_exception(exc)

    def _read_only(self, fn: Callable[[wh_mod.Warehouse], Any]) -> Any:
        path = self.url.removeprefix("duckdb:///")  # as DuckDBWarehouse reads it
        if path in ("", ":memory:") or not Path(path).exists():
            raise WarehouseError(f"the warehouse {self.url!r} has no data yet; it is created by the first telemetry")
        if self._reader is None:
            # A short wait: telemetry queues behind this call, and the other writer may hold the file for long.
            self._reader = wh_mod.DuckDBWarehouse(self.url, read_only=True, lock_timeout_s=1.0)
        return fn(self._reader)

    def _write_group(self, group: list[_Batch]) -> None:
        ids = [i for batch in group for i in batch.ids]
        keep: list[int] | None = None
        distinct = len(set(ids)) == len(ids)
        if not distinct:
            # First occurrence of an id (across the whole group) is the one that may be new.
            first: dict[str, int] = {}
            for n, event_id in enumerate(ids):
                first.setdefault(event_id, n)
            keep = sorted(first.values())
        try:
            inserted = self._insert([batch.data for batch in group], keep)
        except Exception as exc:  # every waiting request gets the failure; none is told "accepted"
            log.error("telemetry write of %d events failed: %s", len(ids), exc)
            self._release()
            self._ensured = False  # the file may have been replaced or migrated under us
            for batch in group:
                batch.future.set_exception(exc)
            return
        if inserted is None and distinct:  # the common case: every event of every batch was new
            for batch in group:
                batch.future.set_result(TelemetryReceipt(accepted=len(batch.ids), duplicates=0))
            return
        new = set(ids) if inserted is None else inserted
        for batch in group:
            accepted = 0
            for event_id in batch.ids:
                if event_id in new:
                    new.discard(event_id)  # a later copy of the same id is a duplicate
                    accepted += 1
            batch.future.set_result(TelemetryReceipt(accepted=accepted, duplicates=len(batch.ids) - accepted))

    def _insert(self, parts: list[Any], keep: list[int] | None) -> set[str] | None:
        """Write the group's rows (those at `keep`, if given); None when all were new, else the new ids."""
        wh = self._open()
        if isinstance(wh, wh_mod.DuckDBWarehouse):
            data = wh_mod.concat_arrow(parts)
            return wh.insert_new_arrow(t.TELEMETRY_EVENTS, data if keep is None else data.take(keep))
        # BigQuery: learn which ids exist, then MERGE (insert_new) the rest. Ids are validated UUIDs.
        rows = [r for columns in parts for r in zip(*columns, strict=True)]
        if keep is not None:
            rows = [rows[n] for n in keep]
        ids = ", ".join(f"'{r[0]}'" for r in rows)
        existing = {
            r["event_id"] for r in wh.query(f"SELECT event_id FROM {t.TELEMETRY_EVENTS.name} WHERE event_id IN ({ids})")
        }
        fresh = [
            {**dict(zip(_COLUMNS, r, strict=True)), "event_time": _naive_utc(r[2])}
            for r in rows
            if r[0] not in existing
        ]
        wh.insert_new(t.TELEMETRY_EVENTS, fresh)
        return {r["event_id"] for r in fresh}


def store_benchmark(wh: wh_mod.Warehouse, report: BenchmarkReport) -> int:
    try:
        return wh.upsert(t.BENCHMARKS, [benchmark_row(report)])
    except WarehouseError:
        log.exception("benchmark %s not written to the warehouse", report.benchmark_id)
        raise
