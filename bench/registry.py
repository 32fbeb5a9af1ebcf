"""Load test of the registry on loopback: 304 polls, 200 polls, telemetry batches, and the framework floor.

    .venv/bin/python bench/registry.py [--duration 5] [--connections 32] [--generator auto|wrk|python]

Starts real uvicorn processes (the registry with a published package, and a bare Starlette
endpoint returning a constant: the floor), drives each scenario for `--duration` seconds with
`wrk` when installed (else a raw-asyncio HTTP/1.1 keep-alive client in several processes),
measures client-side, prints a table and writes bench/results/registry.json. Telemetry is
always driven by the Python client (unique event_ids per batch); afterwards the warehouse rows
are counted against the receipts, and the server's CPU time per event (from /proc) is reported:
unlike events/s, it hardly moves when other work shares the machine. The same scenarios then
run in-process (no sockets) for CPU per request: new telemetry batches and a resent one.

    .venv/bin/python bench/registry.py --replicas 1,2,3 [--database-url postgresql+psycopg://…]

The replica mode: for each count, that many registry processes on one new PostgreSQL database
(a throwaway server unless --database-url names one), telemetry_sink=inbox with the embedded
loader into one DuckDB file, the load generator spreading its connections over the replicas
(no balancer: nginx would share the same 2 cores). 304 polls and telemetry per count, against
the same floor; after the run the inbox must drain and the warehouse hold each event once.
Writes bench/results/registry_replicas.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]

log = logging.getLogger("bench.registry")

FLOOR_APP = """
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

async def const(request):
    return Response(b'{"ok":true}', media_type="application/json")

uvicorn.run(Starlette(routes=[Route("/const", const)]), host="127.0.0.1", port={port}, log_level="warning", access_log=False)
"""


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def start_registry(port: int, env: dict[str, str], log_file: Any) -> subprocess.Popen[bytes]:
    """One registry process (uvicorn, one worker) on `port`."""
    cmd = [sys.executable, "-m", "uvicorn", "registry_api.main:create_app_from_env", "--factory", "--host"]
    cmd += ["127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"]
    return subprocess.Popen(cmd, env=env, stdout=log_file, stderr=log_file, cwd=ROOT)


# --------------------------------------------------------------------------- python load generator


async def _connection(
    host: str,
    port: int,
    request: bytes | list[bytes],
    until: float,
    latencies: list[float],
    statuses: dict[int, int],
    receipts: dict[str, int],
) -> None:
    """Send `request` (or its bodies in turn) until `until`; `receipts` counts distinct bodies answered 200."""
    reader, writer = await asyncio.open_connection(host, port)
    i = 0
    acked: set[int] = set()
    try:
        while time.perf_counter() < until:
            payload = request if isinstance(request, bytes) else request[i % len(request)]
            i += 1
            t0 = time.perf_counter()
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            match = re.search(rb"(?i)content-length:\s*(\d+)", head)
            if match:
                await reader.readexactly(int(match.group(1)))
            latencies.append(time.perf_counter() - t0)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                acked.add((i - 1) % len(request))
    finally:
        writer.close()
        # A connection that runs through its slice sends the same bodies again (resends, by design):
        # the events acknowledged are those of the distinct bodies that got a 200.
        receipts["distinct_bodies"] = receipts.get("distinct_bodies", 0) + len(acked)


def _worker(
    args: tuple[str, int | list[int], Any, float, int, Any],
) -> tuple[list[float], dict[int, int], dict[str, int]]:
    host, port, request, duration, connections, start_at = args
    ports = port if isinstance(port, list) else [port]  # several replicas: connections spread over them
    while time.time() < start_at:  # all processes start together
        time.sleep(0.001)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    receipts: dict[str, int] = {}
    until = time.perf_counter() + duration

    async def main() -> None:
        if isinstance(request, list):  # one distinct slice of bodies per connection
            per = max(1, len(request) // connections)
            slices = [request[i * per : (i + 1) * per] or request for i in range(connections)]
        else:
            slices = [request] * connections
        await asyncio.gather(
            *(
                _connection(host, ports[i % len(ports)], s, until, latencies, statuses, receipts)
                for i, s in enumerate(slices)
            )
        )

    asyncio.run(main())
    return latencies, statuses, receipts


def python_load(
    port: int | list[int], request: bytes | list[bytes], duration: float, connections: int, processes: int
) -> dict[str, Any]:
    per_process = max(1, connections // processes)
    start_at = time.time() + 1.0
    jobs = []
    for p in range(processes):
        req: Any = request
        if isinstance(request, list):
            req = request[p::processes]
        # Each process starts its connections at another replica, so every replica gets its share.
        ports = port[p % len(port) :] + port[: p % len(port)] if isinstance(port, list) else port
        jobs.append(("127.0.0.1", ports, req, duration, per_process, start_at))
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = pool.map(_worker, jobs)
    latencies = sorted(x for r in results for x in r[0])
    statuses: dict[int, int] = {}
    receipts: dict[str, int] = {}
    for r in results:
        for k, v in r[1].items():
            statuses[k] = statuses.get(k, 0) + v
        for name, count in r[2].items():
            receipts[name] = receipts.get(name, 0) + count
    summary = _summary(
        len(latencies), duration, latencies, statuses, f"python ({processes} procs x {per_process} conns)"
    )
    return summary | {"receipts": receipts}


def _summary(
    n: int, duration: float, latencies: list[float], statuses: dict[int, int], generator: str
) -> dict[str, Any]:
    def pct(q: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(q / 100 * len(latencies)))] * 1000

    return {
        "requests": n,
        "rps": n / duration,
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
        "statuses": statuses,
        "generator": generator,
    }


# --------------------------------------------------------------------------- wrk


def _ms(text: str | None) -> float:
    match = re.match(r"([\d.]+)(us|ms|s|m)$", text or "")
    if match is None:
        return float("nan")
    value, unit = match.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def _find(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text)
    return match.group(1) if match else None


def wrk_load(url: str, headers: dict[str, str], duration: float, connections: int, threads: int) -> dict[str, Any]:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(duration)}s", "--latency"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    total = int(_find(r"(\d+) requests in", out) or 0)
    rps = float(_find(r"Requests/sec:\s+([\d.]+)", out) or 0)
    p50 = _ms(_find(r"50%\s+(\S+)", out))
    p99 = _ms(_find(r"99%\s+(\S+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests": total,
        "rps": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "non_2xx_3xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1) if errors else "",
        "generator": f"wrk ({threads} threads x {connections} conns)",
        "wrk_output": out,
    }


def raw_get(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def raw_post(path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def telemetry_bodies(n_batches: int, per_batch: int) -> list[bytes]:
    now = dt.datetime.now(dt.UTC).isoformat()
    bodies = []
    for _ in range(n_batches):
        events = [
            f'{{"event_id":"{uuid.uuid4()}","device_id":"d{i}","kind":"inference","event_time":"{now}",'
            f'"model":"shelf-products","version":1,"variant":"tflite_int8","latency_ms":4.2,'
            f'"top1_label":"lavender-soap","top1_score":0.93,"app_version":"2.4.1","platform":"android",'
            f'"device_class":"pixel-6a"}}'
            for i in range(per_batch)
        ]
        bodies.append(('{"events":[' + ",".join(events) + "]}").encode())
    return bodies


# --------------------------------------------------------------------------- in-process CPU cost


def asgi_cpu_cost(app: Any, scope: dict[str, Any], body: bytes | list[bytes], n: int) -> dict[str, Any]:
    """CPU seconds one request costs inside the ASGI app (no sockets, no client): robust to a busy machine.

    `body` may be a list: request i sends `body[i]` (warm-up requests first), e.g. batches of fresh events.
    """
    bodies = iter(body) if isinstance(body, list) else None

    async def one() -> int:
        status = 0
        sent = False

        payload = body if bodies is None else next(bodies)

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": payload, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        headers = scope["headers"]
        if bodies is not None:
            headers = [(k, str(len(payload)).encode() if k == b"content-length" else v) for k, v in headers]
        await app({**scope, "headers": headers, "state": {}}, receive, send)
        return status

    async def loop(count: int) -> list[int]:
        return [await one() for _ in range(count)]

    asyncio.run(loop(max(10, n // 10)))  # warm caches (snapshot, signed manifest, key cache)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    statuses = asyncio.run(loop(n))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "requests": n,
        "cpu_us_per_request": cpu / n * 1e6,
        "wall_us_per_request": wall / n * 1e6,
        "one_core_capacity_rps": n / cpu,
        "statuses": sorted(set(statuses)),
    }


def in_process_costs(tokens: dict[str, str], path: str, query: str, etag: str, per_batch: int) -> dict[str, Any]:
    """The same scenarios in-process: registry app (built here, same workspace) vs a bare Starlette app."""
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from registry_api.main import create_app_from_env

    async def const(request: Any) -> Response:
        return Response(b'{"ok":true}', media_type="application/json")

    floor_app = Starlette(routes=[Route("/const", const)])
    app = create_app_from_env()  # as the server builds it
    # The access log stays on (it is part of the cost) but goes to /dev/null, not the terminal.
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - restored by the caller
    base = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "http",
        "root_path": "",
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    dev = [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {tokens['device']}".encode())]

    def get(p: str, q: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
        return {
            **base,
            "method": "GET",
            "path": p,
            "raw_path": p.encode(),
            "query_string": q.encode(),
            "headers": headers,
        }

    fresh = telemetry_bodies(300 + 30, per_batch)  # measured + warm-up requests, each new
    post = {
        **base,
        "method": "POST",
        "path": "/v1/telemetry",
        "raw_path": b"/v1/telemetry",
        "query_string": b"",
        "headers": [*dev, (b"content-type", b"application/json"), (b"content-length", str(len(fresh[0])).encode())],
    }
    costs = {
        "floor (bare Starlette constant)": asgi_cpu_cost(floor_app, get("/const", "", [(b"host", b"x")]), b"", 5000),
        "poll 304 (If-None-Match)": asgi_cpu_cost(
            app, get(path, query, [*dev, (b"if-none-match", etag.encode())]), b"", 5000
        ),
        "poll 200 (signed manifest)": asgi_cpu_cost(app, get(path, query, dev), b"", 5000),
        # One request at a time, so every batch is its own commit (the server groups concurrent ones).
        f"telemetry ({per_batch} new events/batch)": asgi_cpu_cost(app, post, fresh, 300),
        # The same batch every time: after the first, all duplicates (the insert still runs).
        f"telemetry resent ({per_batch} duplicates)": asgi_cpu_cost(app, post, fresh[0], 100),
    }
    for name, cost in costs.items():
        if name.startswith("telemetry"):
            cost["cpu_us_per_event"] = cost["cpu_us_per_request"] / per_batch
    return costs


# --------------------------------------------------------------------------- run


def _median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median req/s, plus every round's req/s (the machine is shared: noise is real)."""
    ordered = sorted(rounds, key=lambda r: r["rps"])
    chosen = dict(ordered[len(ordered) // 2])
    chosen["rounds_rps"] = [round(r["rps"]) for r in rounds]
    return chosen


def run(
    duration: float, connections: int, generator: str, out: Path, repeat: int = 1, database_url: str = ""
) -> dict[str, Any]:
    from registry_api.testing import create_keys, make_package, multipart

    use_wrk = generator == "wrk" or (generator == "auto" and shutil.which("wrk") is not None)
    workdir = Path(tempfile.mkdtemp(prefix="edgeloop-bench-"))
    env = {**os.environ, "EDGELOOP_WORKSPACE": str(workdir / "workspace"), "EDGELOOP_REGISTRY_ACCESS_LOG": "true"}
    for key in [
        k for k in env if k.startswith("EDGELOOP_") and k not in ("EDGELOOP_WORKSPACE", "EDGELOOP_REGISTRY_ACCESS_LOG")
    ]:
        env.pop(key)
    if database_url:  # e.g. postgresql+psycopg://…: an empty database of its own
        env["EDGELOOP_REGISTRY_DATABASE_URL"] = database_url
    os.environ.update({k: v for k, v in env.items() if k.startswith("EDGELOOP_")})
    from edgeloop.settings import get_settings
    from registry_api.core.config import get_registry_settings

    get_settings.cache_clear()
    get_registry_settings.cache_clear()
    tokens = create_keys(publisher=1e9, device=1e9, reader=1e9)
    reg_port, floor_port = free_port(), free_port()
    server_log = (workdir / "registry.log").open("wb")
    registry = start_registry(reg_port, env, server_log)
    floor = subprocess.Popen([sys.executable, "-c", FLOOR_APP.replace("{port}", str(floor_port))], cwd=workdir)
    results: dict[str, Any] = {}
    try:
        wait_up(f"http://127.0.0.1:{reg_port}/healthz", registry)
        wait_up(f"http://127.0.0.1:{floor_port}/const", floor)
        base = f"http://127.0.0.1:{reg_port}"
        pub = {"Authorization": f"Bearer {tokens['publisher']}"}
        dev = {"Authorization": f"Bearer {tokens['device']}"}
        pkg = make_package(workdir / "pkg")
        assert (
            httpx.post(
                f"{base}/v1/models/shelf-products/versions", files=multipart(pkg), headers=pub, timeout=60
            ).status_code
            == 201
        )
        httpx.put(
            f"{base}/v1/models/shelf-products/aliases/production", json={"version": 1}, headers=pub
        ).raise_for_status()
        path = "/v1/models/shelf-products/manifest?alias=production&device_id=bench-device&platform=android&runtime=litert&app_version=2.4.1&device_class=pixel-6a"
        first = httpx.get(base + path, headers=dev)
        first.raise_for_status()
        etag = first.headers["etag"]
        assert httpx.get(base + path, headers={**dev, "If-None-Match": etag}).status_code == 304

        def poll(url_port: int, url_path: str, headers: dict[str, str]) -> dict[str, Any]:
            if use_wrk:
                return wrk_load(f"http://127.0.0.1:{url_port}{url_path}", headers, duration, connections, threads=1)
            return python_load(url_port, raw_get(url_path, headers), duration, connections, processes=2)

        # Rounds alternate the scenarios so a burst of load from elsewhere hits all of them alike.
        rounds: dict[str, list[dict[str, Any]]] = {}
        for _ in range(repeat):
            rounds.setdefault("floor (bare Starlette constant)", []).append(poll(floor_port, "/const", {}))
            rounds.setdefault("poll 304 (If-None-Match)", []).append(
                poll(reg_port, path, {**dev, "If-None-Match": etag})
            )
            rounds.setdefault("poll 200 (signed manifest)", []).append(poll(reg_port, path, dev))
        for name, measured in rounds.items():
            results[name] = _median_round(measured)

        per_batch = 100
        bodies = telemetry_bodies(int(duration * 600), per_batch)  # more than can be sent in `duration`
        headers = {**dev, "Content-Type": "application/json"}
        requests = [raw_post("/v1/telemetry", headers, b) for b in bodies]
        cpu0 = process_cpu_s(registry.pid)
        tele = python_load(reg_port, requests, duration, min(connections, 16), processes=2)
        server_cpu = process_cpu_s(registry.pid) - cpu0
        tele["events_per_s"] = tele["rps"] * per_batch
        tele["events_sent_ok"] = tele["receipts"]["distinct_bodies"] * per_batch  # distinct events acknowledged
        tele["events_resent"] = tele["statuses"].get(200, 0) * per_batch - tele["events_sent_ok"]
        # Includes the load generator's start-up second, when the server idles: a slight overestimate.
        tele["server_cpu_us_per_event"] = server_cpu / max(1, tele["events_sent_ok"]) * 1e6
        results["telemetry (100 events/batch)"] = tele
    finally:
        registry.terminate()
        registry.wait(60)
        floor.terminate()
        floor.wait(10)
        server_log.close()
    from edgeloop import warehouse

    with warehouse.connect() as wh:
        rows = wh.query("SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM telemetry_events")[0]
    # Counted before the in-process runs, which add their own (one batch of) rows.
    query = path.split("?", 1)[1]
    stderr = sys.stderr
    try:
        in_process = in_process_costs(tokens, path.split("?", 1)[0], query, etag, 100)
    finally:
        sys.stderr = stderr
    tele = results["telemetry (100 events/batch)"]
    tele["rows_in_warehouse"] = rows["n"]
    tele["distinct_rows"] = rows["d"]
    tele["lost"] = tele["events_sent_ok"] - rows["d"]
    floor_rps = results["floor (bare Starlette constant)"]["rps"]
    p304 = results["poll 304 (If-None-Match)"]
    summary = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "duration_s": duration,
        "connections": connections,
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "results": results,
        "in_process_cpu": in_process,
        "checks": {
            "poll_304_vs_floor": p304["rps"] / floor_rps,
            "poll_304_ge_50pct_floor": p304["rps"] >= 0.5 * floor_rps,
            "poll_304_ge_3000_rps": p304["rps"] >= 3000,
            "poll_304_p99_lt_20ms": p304["p99_ms"] < 20,
            "telemetry_ge_20000_events_s": tele["events_per_s"] >= 20_000,
            "telemetry_nothing_lost": tele["lost"] == 0 and rows["n"] == rows["d"],
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2, default=str))
    shutil.rmtree(workdir, ignore_errors=True)
    return summary


# --------------------------------------------------------------------------- replicas


@contextlib.contextmanager
def _postgres(server_url: str) -> Iterator[Callable[[], str]]:
    """A function giving a new empty database per call: on the server at `server_url`, else a throwaway one."""
    if server_url:
        import psycopg
        from sqlalchemy import make_url

        url = make_url(server_url)

        def create() -> str:
            name = f"bench_{uuid.uuid4().hex[:12]}"
            dsn = f"host={url.host} port={url.port or 5432} user={url.username} dbname={url.database or 'postgres'}"
            with psycopg.connect(dsn, password=url.password, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            return url.set(database=name).render_as_string(hide_password=False)

        yield create
        return
    from registry_api.testing_postgres import running_server

    with running_server() as server:
        if isinstance(server, str):
            raise SystemExit(f"replica mode needs PostgreSQL: {server}, or pass --database-url")
        yield server.create_database


def _replica_round(
    n: int, database: str, duration: float, connections: int, sink: str, per_batch: int = 100
) -> dict[str, Any]:
    """n replicas (one DuckDB warehouse, through `sink`) on `database`: 304 polls, then telemetry."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from edgeloop import warehouse
    from registry_api.testing import create_keys, make_package, multipart

    workdir = Path(tempfile.mkdtemp(prefix=f"edgeloop-bench-x{n}-"))
    seed = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGELOOP_")}
    env |= {
        "EDGELOOP_WORKSPACE": str(workdir / "workspace"),
        "EDGELOOP_WAREHOUSE": f"duckdb:///{workdir / 'warehouse.duckdb'}",
        "EDGELOOP_REGISTRY_DATABASE_URL": database,
        "EDGELOOP_REGISTRY_SIGNING_KEY": base64.b64encode(seed).decode(),
        "EDGELOOP_REGISTRY_TELEMETRY_SINK": sink,
        "EDGELOOP_REGISTRY_ACCESS_LOG": "true",
    }
    tokens = create_keys(database, publisher=1e9, device=1e9, reader=1e9)
    ports = [free_port() for _ in range(n)]
    server_log = (workdir / "registry.log").open("wb")
    procs = [start_registry(port, env, server_log) for port in ports]
    result: dict[str, Any] = {"replicas": n, "sink": sink}
    try:
        for port, proc in zip(ports, procs, strict=True):
            wait_up(f"http://127.0.0.1:{port}/healthz", proc)
        base = f"http://127.0.0.1:{ports[0]}"
        pub = {"Authorization": f"Bearer {tokens['publisher']}"}
        dev = {"Authorization": f"Bearer {tokens['device']}"}
        pkg = make_package(workdir / "pkg")
        httpx.post(f"{base}/v1/models/shelf-products/versions", files=multipart(pkg), headers=pub, timeout=60)
        httpx.put(f"{base}/v1/models/shelf-products/aliases/production", json={"version": 1}, headers=pub)
        path = "/v1/models/shelf-products/manifest?device_id=bench-device&platform=android&runtime=litert"
        etags = {httpx.get(f"http://127.0.0.1:{port}{path}", headers=dev).headers["etag"] for port in ports}
        if len(etags) != 1:
            raise RuntimeError(f"replicas disagree on the manifest's ETag: {etags}")
        polls = python_load(ports, raw_get(path, {**dev, "If-None-Match": etags.pop()}), duration, connections, 2)
        result["poll 304"] = polls

        bodies = telemetry_bodies(int(duration * 600), per_batch)
        requests = [raw_post("/v1/telemetry", {**dev, "Content-Type": "application/json"}, b) for b in bodies]
        cpu0 = sum(process_cpu_s(p.pid) for p in procs)
        tele = python_load(ports, requests, duration, min(connections, 16), processes=2)
        server_cpu = sum(process_cpu_s(p.pid) for p in procs) - cpu0
        tele["events_per_s"] = tele["rps"] * per_batch
        tele["events_sent_ok"] = tele["receipts"]["distinct_bodies"] * per_batch  # distinct events acknowledged
        tele["events_resent"] = tele["statuses"].get(200, 0) * per_batch - tele["events_sent_ok"]
        tele["server_cpu_us_per_event"] = server_cpu / max(1, tele["events_sent_ok"]) * 1e6
        engine_url = database
        from registry_api import db, inbox

        engine = db.make_engine(engine_url)
        deadline = time.monotonic() + 300
        t0 = time.perf_counter()
        while inbox.pending(engine) and time.monotonic() < deadline:  # the loader catches up
            time.sleep(0.1)
        tele["loader_caught_up_s"] = time.perf_counter() - t0
        tele["left_in_inbox"] = inbox.pending(engine)
        engine.dispose()
        result["telemetry"] = tele
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(60)
        server_log.close()
    with warehouse.DuckDBWarehouse(env["EDGELOOP_WAREHOUSE"], read_only=True) as wh:
        rows = wh.query("SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM telemetry_events")[0]
    tele["rows_in_warehouse"], tele["distinct_rows"] = rows["n"], rows["d"]
    tele["lost"] = tele["events_sent_ok"] - rows["d"]
    tele["doubled"] = rows["n"] - rows["d"]
    shutil.rmtree(workdir, ignore_errors=True)
    return result


def run_replicas(
    counts: list[int], duration: float, connections: int, out: Path, server_url: str, sinks: list[str]
) -> dict[str, Any]:
    """The same load against 1, 2, 3 … replicas on PostgreSQL, the client spreading connections over them."""
    floor_port = free_port()
    floor = subprocess.Popen([sys.executable, "-c", FLOOR_APP.replace("{port}", str(floor_port))])
    try:
        wait_up(f"http://127.0.0.1:{floor_port}/const", floor)
        floor_result = python_load(floor_port, raw_get("/const", {}), duration, connections, processes=2)
    finally:
        floor.terminate()
        floor.wait(10)
    rounds = []
    with _postgres(server_url) as new_database:
        for sink in sinks:
            for n in counts:
                if sink == "warehouse" and n > 1:  # `serve` refuses a second process on the file (ServingClaim)
                    rounds.append({"replicas": n, "sink": sink, "refused": "one serving process per DuckDB file"})
                    continue
                rounds.append(_replica_round(n, new_database(), duration, connections, sink))
    summary = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mode": "replicas on PostgreSQL, one DuckDB warehouse, the client spreading connections over them (no LB)",
        "duration_s": duration,
        "connections": connections,
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "floor": floor_result,
        "rounds": rounds,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2, default=str))
    return summary


def print_replica_table(summary: dict[str, Any]) -> None:
    floor = summary["floor"]
    print(f"\nfloor (bare Starlette, 1 process): {floor['rps']:.0f} req/s, p99 {floor['p99_ms']:.2f} ms")
    print(
        f"{'sink':>9} {'replicas':>8} {'304 req/s':>10} {'÷ floor':>8} {'304 p99 ms':>11} {'events/s':>10} "
        f"{'batch p99 ms':>13} {'CPU us/event':>13} {'load s':>7} {'resent':>7} {'lost':>5} {'doubled':>8}"
    )
    for r in summary["rounds"]:
        if "refused" in r:
            print(f"{r['sink']:>9} {r['replicas']:>8}  refused at start: {r['refused']}")
            continue
        p, t = r["poll 304"], r["telemetry"]
        print(
            f"{r['sink']:>9} {r['replicas']:>8} {p['rps']:10.0f} {p['rps'] / floor['rps']:8.2f} {p['p99_ms']:11.2f} "
            f"{t['events_per_s']:10.0f} {t['p99_ms']:13.2f} {t['server_cpu_us_per_event']:13.1f} "
            f"{t['loader_caught_up_s']:7.1f} {t['events_resent']:7d} {t['lost']:5d} {t['doubled']:8d}"
        )
    print(f"\nload average at end: {summary['load_average_at_end']}")


def print_table(summary: dict[str, Any]) -> None:
    print(f"\n{'scenario':34} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8}  generator (rounds req/s)")
    for name, r in summary["results"].items():
        print(
            f"{name:34} {r['rps']:10.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f}  {r['generator']} {r.get('rounds_rps', '')}"
        )
    tele = summary["results"]["telemetry (100 events/batch)"]
    print(
        f"\ntelemetry: {tele['events_per_s']:.0f} events/s; acknowledged {tele['events_sent_ok']} distinct "
        f"(+{tele['events_resent']} resent), "
        f"rows {tele['rows_in_warehouse']} (distinct {tele['distinct_rows']}), lost {tele['lost']}; "
        f"server CPU {tele['server_cpu_us_per_event']:.1f} us/event"
    )
    print(f"\n{'in-process (no sockets)':34} {'CPU us/req':>10} {'1-core req/s':>13} {'CPU us/event':>13}")
    for name, r in summary["in_process_cpu"].items():
        per_event = f"{r['cpu_us_per_event']:13.1f}" if "cpu_us_per_event" in r else " " * 13
        print(
            f"{name:34} {r['cpu_us_per_request']:10.0f} {r['one_core_capacity_rps']:13.0f} {per_event}"
            f"  statuses {r['statuses']}"
        )
    print(f"\nload average at end: {summary['load_average_at_end']}")
    for check, value in summary["checks"].items():
        print(f"  {check:32} {value if isinstance(value, bool) else f'{value:.2f}'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="Seconds per scenario.")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--repeat", type=int, default=3, help="Rounds of the poll scenarios; the median is reported.")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "registry.json")
    parser.add_argument(
        "--database-url",
        default="",
        help="Registry database (default: SQLite in a temp folder); with --replicas, a PostgreSQL server to create "
        "databases on (default: a throwaway one started with initdb + pg_ctl).",
    )
    parser.add_argument(
        "--replicas", default="", help="e.g. 1,2,3: the replica mode (PostgreSQL, telemetry through the inbox)."
    )
    parser.add_argument(
        "--sinks",
        default="inbox",
        help="Replica mode: telemetry sinks to compare, e.g. inbox,warehouse (one file shared).",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.replicas:
        counts = [int(c) for c in args.replicas.split(",")]
        out = args.out.with_name("registry_replicas.json") if args.out.name == "registry.json" else args.out
        sinks = args.sinks.split(",")
        print_replica_table(run_replicas(counts, args.duration, args.connections, out, args.database_url, sinks))
        return
    print_table(run(args.duration, args.connections, args.generator, args.out, args.repeat, args.database_url))


if __name__ == "__main__":
    main()
