"""Telemetry through the registry database: replicas append, one loader moves it into the warehouse.

With `telemetry_sink=inbox` every replica commits an accepted batch to `telemetry_inbox` (event_id
unique) before it answers, so an acknowledged event is durable in the one database all replicas
share, whichever replica took it and whatever happens to that replica next. The warehouse then has
one writer, the loader, which repeats a single step:

    read the oldest rows → insert those new by event_id into the warehouse (committed there)
    → delete exactly the rows read → commit

A crash anywhere in it leaves the rows in the inbox, and the next load inserts again only what the
warehouse lacks, so every event lands exactly once. One loader runs at a time: on PostgreSQL it holds
a session advisory lock (the lease) on the connection it loads through, which the server lets go
when that connection or its process dies; on SQLite each load is one write transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import logging
import threading
from collections.abc import Callable, Sequence

from sqlalchemy import Connection, DateTime, Engine, TextClause, bindparam, delete, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from edge.events import TelemetryEvent, TelemetryReceipt
from edgeloop import tables as t
from registry_api.db import TelemetryInboxRow
from registry_api.errors import Conflict
from registry_api.telemetry import event_columns

log = logging.getLogger(__name__)

LEASE_KEY = "hashtextextended('edgeloop.telemetry-loader', 0)"
_LEASE = f"SELECT pg_try_advisory_lock({LEASE_KEY})"
_UNLOCK = f"SELECT pg_advisory_unlock({LEASE_KEY})"
_DELETE_CHUNK = 5000  # ids per DELETE: within SQLite's bound on parameters

Step = Callable[[str], None]  # called between a load's steps ("read", "written"): a test's crash point


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat()


def inbox_rows(events: Sequence[TelemetryEvent], received_at: dt.datetime) -> list[dict[str, object]]:
    """The events as inbox rows (the first of a repeated event_id only): the warehouse row as JSON text."""
    ids = [str(e.event_id) for e in events]
    columns = event_columns(events, ids, [received_at] * len(ids))
    columns[2] = [_iso(v) for v in columns[2]]
    columns[3] = [_iso(received_at)] * len(ids)
    names = t.TELEMETRY_EVENTS.column_names
    rows: dict[str, dict[str, object]] = {}
    for values in zip(*columns, strict=True):
        event_id = values[0]
        if event_id not in rows:
            row = json.dumps(dict(zip(names, values, strict=True)), separators=(",", ":"))
            rows[event_id] = {"event_id": event_id, "received_at": received_at, "row": row}
    return list(rows.values())


# One statement whatever the batch size, with one parameter: a multi-row VALUES insert is compiled by
# SQLAlchemy on every call, and arrays are escaped element by element in Python (on PostgreSQL, a batch
# of 100 under cProfile: 163 us CPU per event with VALUES, 99 with arrays, 29 with this JSON document).
# "WHERE true" keeps SQLite from reading ON CONFLICT as a join's ON.
_ELEMENTS = {
    "postgresql": "SELECT e->>0, :at, e->>1 FROM json_array_elements(CAST(:rows AS json)) AS e",
    "sqlite": "SELECT json_extract(e.value, '$[0]'), :at, json_extract(e.value, '$[1]') FROM json_each(:rows) AS e",
}


@functools.cache
def _append_statement(dialect: str) -> TextClause:
    return text(
        f"INSERT INTO telemetry_inbox (event_id, received_at, row) {_ELEMENTS[dialect]} WHERE true "
        "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
    ).bindparams(bindparam("at", type_=DateTime(timezone=True)))  # stored as the model's column stores it


def append(sessions: sessionmaker[Session], events: Sequence[TelemetryEvent]) -> TelemetryReceipt:
    """Commit the batch's new events to the inbox; the receipt counts those the inbox holds already."""
    received_at = dt.datetime.now(dt.UTC)
    document = json.dumps([[r["event_id"], r["row"]] for r in inbox_rows(events, received_at)])
    with sessions.begin() as session:
        statement = _append_statement(session.get_bind().dialect.name)
        accepted = len(session.execute(statement, {"at": received_at, "rows": document}).all())
    return TelemetryReceipt(accepted=accepted, duplicates=len(events) - accepted)


def pending(engine: Engine) -> int:
    """Events in the inbox (accepted, not yet loaded)."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(TelemetryInboxRow)).scalar_one())


@dataclasses.dataclass(frozen=True)
class LoadResult:
    rows: int  # read from the inbox and deleted
    new: int  # of those, not in the warehouse before (a crashed load's rows come back as not new)


class InboxLoader:
    """Moves the inbox into the warehouse through `write(ndjson) -> rows new`, holding the lease to do so."""

    def __init__(self, engine: Engine, write: Callable[[bytes], int], rows_per_load: int, step: Step | None = None):
        self.engine = engine
        self.write = write
        self.rows_per_load = rows_per_load
        self.step = step
        self._conn: Connection | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------------ the lease

    def acquire(self) -> bool:
        """Take the lease (True), or find another loader holding it (False); held until `release`."""
        if self._conn is not None:
            return True
        conn = self.engine.connect()
        try:
            held = True
            if conn.dialect.name == "postgresql":
                held = bool(conn.execute(text(_LEASE)).scalar())
                conn.commit()  # the lock is the session's: it outlives this transaction
        except BaseException:
            conn.close()
            raise
        if not held:
            conn.close()
            return False
        self._conn = conn
        return True

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if conn.dialect.name == "postgresql" and not conn.invalidated:
                conn.rollback()
                conn.execute(text(_UNLOCK))  # at once: the next loader need not wait for the session to end
                conn.commit()
        except DBAPIError as exc:
            log.warning("telemetry loader lease not unlocked (%s); it ends with the session", exc)
        finally:
            # Never back into the pool: a pooled session would go on holding the lock. Closing the
            # DBAPI connection ends the session, and with it the lock.
            conn.invalidate()
            conn.close()

    # ------------------------------------------------------------------ loading

    def load_once(self) -> LoadResult:
        """One load of at most `rows_per_load` rows, oldest first. Needs the lease."""
        if self._conn is None:
            raise Conflict("the telemetry loader does not hold the lease; call acquire() first")
        conn = self._conn
        with conn.begin():
            taken = conn.execute(
                select(TelemetryInboxRow.seq, TelemetryInboxRow.row)
                .order_by(TelemetryInboxRow.seq)
                .limit(self.rows_per_load)
            ).all()
            if not taken:
                return LoadResult(0, 0)
            self._at("read")
            new = self.write("\n".join(r.row for r in taken).encode())
            self._at("written")
            # Exactly the rows read, never "seq <= the last one": on PostgreSQL a batch holding a lower
            # seq may commit after this read (sequence values are drawn before commit).
            seqs = [r.seq for r in taken]
            for start in range(0, len(seqs), _DELETE_CHUNK):
                chunk = seqs[start : start + _DELETE_CHUNK]
                conn.execute(delete(TelemetryInboxRow).where(TelemetryInboxRow.seq.in_(chunk)))
        return LoadResult(len(taken), new)

    def load_all(self) -> LoadResult:
        """Load until a load comes back short of `rows_per_load` (the inbox was emptied)."""
        rows = new = 0
        while True:
            result = self.load_once()
            rows, new = rows + result.rows, new + result.new
            if result.rows < self.rows_per_load:
                return LoadResult(rows, new)

    def _at(self, step: str) -> None:
        if self.step is not None:
            self.step(step)

    # ------------------------------------------------------------------ embedded in a replica

    def start(self, interval_s: float) -> None:
        """Load in a background thread every `interval_s`, whenever this process holds (or gets) the lease."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), name="telemetry-loader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after a last load (a graceful shutdown leaves the inbox empty); let go of the lease."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=60)
            self._thread = None
        self.release()

    def _run(self, interval_s: float) -> None:
        while True:
            stopping = self._stop.wait(interval_s)
            try:
                if self.acquire():
                    self.load_all()
            except Exception:  # the database or warehouse is away: the rows stay, the next round retries
                log.exception("telemetry load failed; the inbox keeps the rows and the next load retries")
                self.release()
            if stopping:
                return
