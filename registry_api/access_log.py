"""Structured access logs: one JSON line per request (method, path, status, duration, key id).

A plain ASGI middleware, not BaseHTTPMiddleware: it adds microseconds, not a task per request.
"""

from __future__ import annotations

import json
import logging
import queue
import sys
import threading
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("registry_api.access")


class _QueueHandler(logging.Handler):
    """Hands the record to the writer thread as is: access lines are pre-formatted, no copy needed."""

    def __init__(self, records: queue.SimpleQueue[logging.LogRecord | None]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.put(record)


class _Writer(threading.Thread):
    """Writes whatever lines have queued up in one write and one flush (one syscall per burst, not per line)."""

    def __init__(self, records: queue.SimpleQueue[logging.LogRecord | None]) -> None:
        super().__init__(name="access-log-writer", daemon=True)
        self.records = records

    def run(self) -> None:
        while True:
            batch = [self.records.get()]
            while len(batch) < 10_000:
                try:
                    batch.append(self.records.get_nowait())
                except queue.Empty:
                    break
            lines = [r.getMessage() + "\n" for r in batch if r is not None]
            if lines:
                sys.stderr.write("".join(lines))
                sys.stderr.flush()
            if None in batch:
                return


_records: queue.SimpleQueue[logging.LogRecord | None] | None = None
_writer: _Writer | None = None


def configure(enabled: bool) -> None:
    """Send access lines as bare JSON lines to stderr, apart from the human-readable logs.

    A writer thread does the I/O in bursts: formatting plus a flushed write per line on the
    event loop cost more CPU than a cached 304 poll itself (measured in bench/registry.py).
    """
    global _records
    log.propagate = False
    log.setLevel(logging.INFO if enabled else logging.WARNING)
    if _records is None:
        _records = queue.SimpleQueue()
        log.addHandler(_QueueHandler(_records))
    _start()


def _start() -> None:
    global _writer
    if _records is not None and (_writer is None or not _writer.is_alive()):
        _writer = _Writer(_records)
        _writer.start()


def flush() -> None:
    """Write out every queued line (at shutdown); a later request starts a new writer."""
    global _writer
    if _records is not None and _writer is not None:
        _records.put(None)
        _writer.join(timeout=10)
        _writer = None
        _start()


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            log.info(
                json.dumps(
                    {
                        "ts": round(time.time(), 3),
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round((time.perf_counter() - start) * 1000, 3),
                        "key_id": state.get("key_id"),
                    },
                    separators=(",", ":"),
                )
            )
