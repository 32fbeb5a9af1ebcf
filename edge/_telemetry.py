"""The device's telemetry queue: SQLite on disk, bounded, uploaded in batches, exactly once per event_id.

Events get their `event_id` when recorded and keep it through every retry, so a
batch re-sent after a lost response is deduplicated by the registry. When the queue
is full the oldest events go first, and the number dropped is kept. Attachments
(images) are stripped unless the app opted in.
"""

from __future__ import annotations

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
"""


@dataclasses.dataclass(frozen=True)
class FlushResult:
    batches: int
    accepted: int
    duplicates: int
    remaining: int
    error: str | None = None


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

    def flush(self, client: RegistryClient, *, max_batches: int | None = None) -> FlushResult:
        """Upload queued events oldest first; a failed batch stays queued for the next flush."""
        with self._flush_lock:
            return self._flush(client, max_batches)

    def _flush(self, client: RegistryClient, max_batches: int | None) -> FlushResult:
        batches = accepted = duplicates = 0
        error: str | None = None
        while max_batches is None or batches < max_batches:
            with self._lock:
                rows = self._db.execute(
                    "SELECT seq, body FROM events ORDER BY seq LIMIT ?", (self.options.batch_size,)
                ).fetchall()
            if not rows:
                break
            batch = TelemetryBatch(events=[TelemetryEvent.model_validate_json(body) for _, body in rows])
            try:
                receipt = client.post_telemetry(batch)
            except RegistryError as exc:
                error = str(exc)
                self.last_retry_after = exc.retry_after
                log.info("telemetry upload failed, %d events stay queued: %s", self.pending(), exc)
                break
            with self._lock:
                self._db.execute("BEGIN")
                cur = self._db.executemany("DELETE FROM events WHERE seq = ?", [(seq,) for seq, _ in rows])
                self._db.execute("COMMIT")
                self._count -= cur.rowcount
            batches += 1
            accepted += receipt.accepted
            duplicates += receipt.duplicates
        return FlushResult(batches, accepted, duplicates, self.pending(), error)
