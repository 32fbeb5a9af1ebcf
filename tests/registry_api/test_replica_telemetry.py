"""Telemetry through three replicas on one PostgreSQL behind a real nginx: 100,000 events, resends, a kill.

Every replica appends to the shared inbox (telemetry_sink=inbox) and runs the embedded loader; one holds
the lease and writes the one DuckDB warehouse. Devices send large batches concurrently and resend some
(through the balancer, or straight to another replica); after a counted number of acknowledged batches
the replica holding the loader's lease is SIGKILLed. Devices resend what was not acknowledged, as the
SDK does. Then the inbox must drain through another replica and the warehouse hold every event once.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import make_url
from test_replicas import Cluster, running_cluster

from edgeloop import warehouse

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

DEVICES = 4
BATCHES = 100
PER_BATCH = 1000  # the registry's max_telemetry_events: large batches keep 100,000 events quick
KILL_AFTER = 30  # acknowledged batches before the lease holder is killed
RESEND_EVERY = 4  # every 4th acknowledged batch is sent again (half through nginx, half to another replica)


@pytest.fixture(scope="module")
def cluster(postgres_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("replica-telemetry")
    shared = {
        "EDGELOOP_WAREHOUSE": f"duckdb:///{root}/warehouse.duckdb",
        "EDGELOOP_REGISTRY_TELEMETRY_SINK": "inbox",
        "EDGELOOP_REGISTRY_TELEMETRY_LOAD_INTERVAL_S": "0.2",
        "EDGELOOP_REGISTRY_TELEMETRY_LOAD_ROWS": "20000",
    }
    with running_cluster(postgres_server, root, lambda i: {}, **shared) as c:
        yield c


def _libpq(database: str) -> str:
    url = make_url(database)
    return f"host={url.host} port={url.port} user={url.username} dbname={url.database}"


def lease_holder(cluster: Cluster) -> int | None:
    """Which replica's process holds the loader's lease (PostgreSQL's lock table names its backend)."""
    with psycopg.connect(_libpq(cluster.database), autocommit=True) as conn:
        row = conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted "
            "AND (l.classid::bigint << 32 | l.objid::bigint) = hashtextextended('edgeloop.telemetry-loader', 0)"
        ).fetchone()
    if row is None:
        return None
    pid = int(str(row[0]).rsplit("-", 1)[1])
    return next(i for i, r in enumerate(cluster.replicas) if r.proc.pid == pid)


def _pending(cluster: Cluster) -> int:
    with psycopg.connect(_libpq(cluster.database), autocommit=True) as conn:
        return int(conn.execute("SELECT count(*) FROM telemetry_inbox").fetchone()[0])  # type: ignore[index]


def _body(ids: list[str], device: int) -> bytes:
    now = dt.datetime.now(dt.UTC).isoformat()
    events = ",".join(
        f'{{"event_id":"{event_id}","device_id":"d{device}","kind":"inference","event_time":"{now}",'
        f'"model":"shelf-products","version":1,"variant":"tflite_int8","latency_ms":4.2,'
        f'"top1_label":"lavender-soap","top1_score":0.93}}'
        for event_id in ids
    )
    return f'{{"events":[{events}]}}'.encode()


def wait_for(condition: Any, what: str, bound_s: float = 120) -> None:
    deadline = time.monotonic() + bound_s  # a bound on a hang, not a speed check
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what} after {bound_s} s"
        time.sleep(0.05)


def test_every_acknowledged_event_lands_once_through_replicas_resends_and_a_killed_loader(
    cluster: Cluster, tmp_path: Path
) -> None:
    wait_for(lambda: lease_holder(cluster) is not None, "a replica to take the loader's lease")
    victim = lease_holder(cluster)
    assert victim is not None
    batches = [[str(uuid.uuid4()) for _ in range(PER_BATCH)] for _ in range(BATCHES)]
    lock = threading.Lock()
    acked: list[int] = []  # batch numbers, in acknowledgement order
    failures: list[int] = []  # statuses (or 0: no answer) of sends that were not acknowledged
    duplicates = [0]
    killed_at = [-1]
    kill_now = threading.Event()

    def send(client: httpx.Client, url: str, body: bytes) -> bool:
        try:
            response = client.post(url, content=body, headers=headers)
        except httpx.TransportError:
            with lock:
                failures.append(0)
            return False
        if response.status_code != 200:
            with lock:
                failures.append(response.status_code)
            return False
        with lock:
            duplicates[0] += response.json()["duplicates"]
        return True

    headers = {**cluster.auth("device"), "Content-Type": "application/json"}

    def device(n: int) -> None:
        with httpx.Client(timeout=120) as client:
            for b in range(n, BATCHES, DEVICES):
                body = _body(batches[b], n)
                while not send(client, f"{cluster.balancer.url}/v1/telemetry", body):
                    pass  # not acknowledged: send again, as the SDK's queue does (nginx skips the dead replica)
                with lock:
                    acked.append(b)
                    if len(acked) == KILL_AFTER:
                        kill_now.set()
                if b % RESEND_EVERY == 0:  # a device that missed the receipt sends the same events again
                    alive = [r for i, r in enumerate(cluster.replicas) if r.proc.poll() is None and i != b % 3]
                    target = cluster.balancer.url if b % (2 * RESEND_EVERY) == 0 else alive[b % len(alive)].url
                    while not send(client, f"{target}/v1/telemetry", body):
                        target = cluster.balancer.url

    def killer() -> None:
        kill_now.wait()
        cluster.replicas[victim].kill()  # SIGKILL the replica loading the warehouse, mid-traffic
        with lock:
            killed_at[0] = len(acked)

    threads = [threading.Thread(target=killer)] + [threading.Thread(target=device, args=(n,)) for n in range(DEVICES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(acked) == list(range(BATCHES))
    # The kill landed mid-traffic (placed by count), and the devices went on through the other replicas.
    assert KILL_AFTER <= killed_at[0] <= KILL_AFTER + DEVICES, killed_at
    # Resends the inbox still held are counted as duplicates; those loaded already are accepted again
    # (and added nothing to the warehouse below).
    assert 0 <= duplicates[0] <= (BATCHES // RESEND_EVERY + len(failures)) * PER_BATCH
    wait_for(lambda: lease_holder(cluster) not in (None, victim), "another replica to take over the lease")
    wait_for(lambda: _pending(cluster) == 0, "the inbox to drain into the warehouse")

    with warehouse.DuckDBWarehouse(cluster.replicas[0].env["EDGELOOP_WAREHOUSE"], read_only=True) as wh:
        counts = wh.query("SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM telemetry_events")[0]
        stored = {r["event_id"] for r in wh.query("SELECT event_id FROM telemetry_events")}
    assert counts == {"n": BATCHES * PER_BATCH, "d": BATCHES * PER_BATCH}  # none doubled
    assert stored == {event_id for batch in batches for event_id in batch}  # none lost
    print(
        f"\nkilled replica {victim} (the loader) after {killed_at[0]} acknowledged batches; "
        f"{len(failures)} sends unacknowledged ({sorted(set(failures))}); {duplicates[0]} events answered as duplicates"
    )
