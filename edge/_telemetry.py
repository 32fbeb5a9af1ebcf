"""The device's telemetry queue: SQLite on disk, bounded, uploaded in batches, exactly once per event_id.

Events get their `event_id` when recorded and keep it through every retry, so a
batch re-sent after a lost response is deduplicated by the registry. When the queue
is full the oldest events go first, and the number dropped is kept. Attachments
(images) are stripped unless the app opted in.

A batch the registry refuses for what it contains (413 too big, 422 invalid) is halved
until the culprit is alone; an event refused alone moves to the `dead_letters` table
with the registry's reason (counted, reported in `FlushResult.dead_lettered` and as one
"error" event), so one bad event never blocks or costs the good ones behind it.
Anything else (5xx, 429, network, auth) leaves the events queued for the next flush.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

from edge._client import RegistryClient
from edge._exceptions import RegistryError
from edge._options import DeviceInfo, TelemetryOptions
from edge.events import EventKind, TelemetryBatch, TelemetryEvent

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, body TEXT NOT NULL,
    status INTEGER, reason TEXT NOT NULL
);
"""
# Statuses that judge the batch's content: resending the same bytes can never succeed.
_REFUSED = frozenset({413, 422})
_MAX_DEAD_LETTERS = 100  # kept for inspection; the counter keeps the total


@dataclasses.dataclass(frozen=True)
class FlushResult:
    batches: int
    accepted: int
    duplicates: int
    remaining: int
    error: str | None = None
    dead_lettered: int = 0  # events refused alone by the registry in this flush, set aside (never retried)


class TelemetryQueue:
    """Persisted, bounded event queue. Thread-safe; one per store folder."""

    def __init__(self, path: str | Path, options: TelemetryOptions | None = None, device: DeviceInfo | None = None):
        self.path = Path(path)
        self.options = options or TelemetryOptions()
        self.device = device or DeviceInfo()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one upload at a time: two flushers would send the same rows twice
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        # WAL + NORMAL: a commit survives an app crash without an fsync per event.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._count = int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        self.last_retry_after: float | None = None  # from the last failed upload, for the uploader's backoff

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def record(self, kind: EventKind, **fields: Any) -> TelemetryEvent:
        """Build an event for this device (device fields filled in) and queue it."""
        dev = self.device
        base: dict[str, Any] = {
            "device_id": dev.device_id,
            "platform": dev.platform,
            "device_class": dev.device_class,
            "app_version": dev.app_version,
            "os_version": dev.os_version,
        }
        event = TelemetryEvent(kind=kind, **{**base, **fields})
        self.put(event)
        return event

    def put(self, event: TelemetryEvent) -> None:
        if event.attachment is not None and not self.options.allow_attachments:
            event = event.model_copy(update={"attachment": None})
        body = event.model_dump_json()
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO events (event_id, body) VALUES (?, ?)", (str(event.event_id), body)
            )
            self._count += cur.rowcount
            excess = self._count - self.options.max_events
            if excess > 0:
                self._db.execute("BEGIN")
                self._db.execute(
                    "DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?)", (excess,)
                )
                self._db.execute(
                    "INSERT INTO counters (name, value) VALUES ('dropped', ?) "
                    "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                    (excess,),
                )
                self._db.execute("COMMIT")
                self._count -= excess

    def pending(self) -> int:
        with self._lock:
            return self._count

    def dropped(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
        return int(row[0]) if row else 0

    def dead_lettered(self) -> int:
        """Events the registry refused alone (413/422), set aside since this queue was created."""
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name = 'dead_lettered'").fetchone()
        return int(row[0]) if row else 0

    def dead_letters(self) -> list[tuple[str, int | None, str]]:
        """The most recent set-aside events as (event JSON, HTTP status, the registry's reason)."""
        with self._lock:
            rows = self._db.execute("SELECT body, status, reason FROM dead_letters ORDER BY seq").fetchall()
        return [(str(b), None if st is None else int(st), str(r)) for b, st, r in rows]

    def flush(self, client: RegistryClient, *, max_batches: int | None = None) -> FlushResult:
        """Upload queued events oldest first; a failed batch stays queued for the next flush."""
        with self._flush_lock:
            return self._flush(client, max_batches)

    def _flush(self, client: RegistryClient, max_batches: int | None) -> FlushResult:
        batches = accepted = duplicates = dead = 0
        error: str | None = None
        reasons: list[str] = []
        # Pieces of a refused batch wait here, in order, before the next batch is read from the queue.
        pieces: collections.deque[list[tuple[int, str]]] = collections.deque()
        while max_batches is None or batches < max_batches:
            if not pieces:
                with self._lock:
                    rows = self._db.execute(
                        "SELECT seq, body FROM events ORDER BY seq LIMIT ?", (self.options.batch_size,)
                    ).fetchall()
                if not rows:
                    break
                pieces.append(rows)
            rows = pieces.popleft()
            batch = TelemetryBatch(events=[TelemetryEvent.model_validate_json(body) for _, body in rows])
            try:
                receipt = client.post_telemetry(batch)
            except RegistryError as exc:
                if exc.status not in _REFUSED:
                    error = str(exc)
                    self.last_retry_after = exc.retry_after
                    log.info("telemetry upload failed, %d events stay queued: %s", self.pending(), exc)
                    break
                if len(rows) > 1:
                    # Halve rather than trust the message: the culprit is found in log2(batch) rounds.
                    half = len(rows) // 2
                    pieces.extendleft([rows[half:], rows[:half]])
                    continue
                self._set_aside(rows[0], exc)
                dead += 1
                reasons.append(str(exc)[:200])
                continue
            self._delete(rows)
            batches += 1
            accepted += receipt.accepted
            duplicates += receipt.duplicates
        if dead:
            log.warning("telemetry: %d events refused by the registry were set aside: %s", dead, reasons[0])
            # One small event the registry will take, so the refusals are visible server-side too.
            self.record("error", detail={"stage": "telemetry", "dead_lettered": dead, "reason": reasons[0]})
        return FlushResult(batches, accepted, duplicates, self.pending(), error, dead)

    def _delete(self, rows: list[tuple[int, str]]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            cur = self._db.executemany("DELETE FROM events WHERE seq = ?", [(seq,) for seq, _ in rows])
            self._db.execute("COMMIT")
            self._count -= cur.rowcount

    def _set_aside(self, row: tuple[int, str], exc: RegistryError) -> None:
        """Move one refused event to `dead_letters` (bounded) and count it, in one transaction."""
        seq, body = row
        event_id = TelemetryEvent.model_validate_json(body).event_id
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO dead_letters (event_id, body, status, reason) VALUES (?, ?, ?, ?)",
                (str(event_id), body, exc.status, str(exc)[:1000]),
            )
            self._db.execute(
                "DELETE FROM dead_letters WHERE seq NOT IN (SELECT seq FROM dead_letters ORDER BY seq DESC LIMIT ?)",
                (_MAX_DEAD_LETTERS,),
            )
            cur = self._db.execute("DELETE FROM events WHERE seq = ?", (seq,))
            self._db.execute(
                "INSERT INTO counters (name, value) VALUES ('dead_lettered', 1) "
                "ON CONFLICT(name) DO UPDATE SET value = value + 1"
            )
            self._db.execute("COMMIT")
            self._count -= cur.rowcount
