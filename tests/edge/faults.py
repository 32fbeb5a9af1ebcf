"""A misbehaving HTTP server on loopback: serves fixed bytes per path, with injected network faults.

It knows nothing about manifests or models (it is not a registry): each route is
bytes plus an ETag, and a plan of faults — cut the connection after N bytes, drip
at 1 byte/s, keep sending past the end, switch to other content after a request,
answer with a status and Retry-After. Range and If-Range are honoured like a CDN.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclasses.dataclass
class Route:
    body: bytes
    etag: str = '"v1"'
    content_type: str = "application/octet-stream"
    cuts: list[int] = dataclasses.field(default_factory=list)  # per request: close after this absolute offset
    drip_delay_s: float = 0.0  # seconds between single bytes
    endless: bool = False  # after the body, keep sending random bytes, no Content-Length
    switch_after: int | None = None  # after this many requests, serve `next_body` / `next_etag`
    next_body: bytes = b""
    next_etag: str = '"v2"'
    status: int | None = None  # answer every request with this status (e.g. 429, 503)
    retry_after: str | None = None
    ignore_if_range: bool = False  # a broken cache: serves the range even when the ETag changed
    fail_first: int = 0  # answer the first N requests with `status_first`
    status_first: int = 503
    requests: int = 0
    arrived: list[float] = dataclasses.field(default_factory=list)  # time.monotonic() of each request


@dataclasses.dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


class FaultServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.bytes_sent: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                server.handle(self)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                self.rfile.read(length)
                server.handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        path = req.path.split("?", 1)[0]
        self.seen.append(Seen(req.command, req.path, {k.lower(): v for k, v in req.headers.items()}))
        route = self.routes.get(path)
        if route is None:
            self._simple(req, 404, b"no such path")
            return
        route.requests += 1
        route.arrived.append(time.monotonic())
        if route.requests <= route.fail_first:
            self._simple(req, route.status_first, b"injected transient failure")
            return
        if route.status is not None:
            headers = {"retry-after": route.retry_after} if route.retry_after else {}
            self._simple(req, route.status, b"injected status", headers)
            return
        body, etag = route.body, route.etag
        if route.switch_after is not None and route.requests > route.switch_after:
            body, etag = route.next_body, route.next_etag
        if req.headers.get("if-none-match") == etag:
            self._simple(req, 304, b"", {"etag": etag})
            return
        start = 0
        rng = req.headers.get("range")
        if_range = req.headers.get("if-range")
        if rng and rng.startswith("bytes=") and (if_range is None or if_range == etag or route.ignore_if_range):
            start = int(rng[6:].split("-")[0])
            if start >= len(body):
                self._simple(req, 416, b"", {"content-range": f"bytes */{len(body)}"})
                return
        status = 206 if start else 200
        req.send_response(status)
        req.send_header("etag", etag)
        req.send_header("content-type", route.content_type)
        req.send_header("accept-ranges", "bytes")
        req.send_header("connection", "close")
        if status == 206:
            req.send_header("content-range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        if not route.endless:
            req.send_header("content-length", str(len(body) - start))
        req.end_headers()
        cut = route.cuts.pop(0) if route.cuts else None
        end = len(body) if cut is None else max(start, min(cut, len(body)))
        try:
            if route.drip_delay_s:
                for i in range(start, end):
                    # Counted before the write, so a client never holds a byte the count lacks.
                    self.bytes_sent[path] = self.bytes_sent.get(path, 0) + 1
                    req.wfile.write(body[i : i + 1])
                    req.wfile.flush()
                    time.sleep(route.drip_delay_s)
            else:
                req.wfile.write(body[start:end])
                self.bytes_sent[path] = self.bytes_sent.get(path, 0) + end - start
            if route.endless:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    req.wfile.write(os.urandom(4096))
                    self.bytes_sent[path] = self.bytes_sent.get(path, 0) + 4096
            req.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up: that is what the endless and drip tests want
        if cut is not None:
            # Close mid-body (FIN after the bytes sent): the client holds exactly `cut` bytes and a short body.
            # (An RST would let the kernel drop unread bytes, making the offset only approximate.)
            with contextlib.suppress(OSError):
                req.connection.shutdown(socket.SHUT_WR)
            req.close_connection = True

    def _simple(self, req: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None):
        req.send_response(status)
        for k, v in (headers or {}).items():
            req.send_header(k, v)
        req.send_header("content-length", str(len(body)))
        req.send_header("connection", "close")
        req.end_headers()
        req.wfile.write(body)


def serve() -> Iterator[FaultServer]:
    server = FaultServer().start()
    try:
        yield server
    finally:
        server.stop()
