"""Three `uvicorn` registry replicas on one PostgreSQL behind a REAL nginx load balancer.

registry_api/deploy/nginx-replicas.conf.template is the balancer. Every replica gets the same settings:
one database, one artifacts folder, one signing key from the configured source (never generated per
process). Telemetry through several replicas is test_replica_telemetry.py's.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from test_nginx_cache import Nginx, _nginx

from edge.manifest import verify
from registry_api import db
from registry_api.testing import Server, create_keys, make_package, multipart

pytestmark = pytest.mark.slow  # PostgreSQL only: replicas on several machines share a database server

LB_TEMPLATE = Path(__file__).resolve().parents[2] / "registry_api" / "deploy" / "nginx-replicas.conf.template"
MODEL = "shelf-products"
STATE_TTL_S = 0.5
# What the README documents for replicas: another replica's write shows within state_cache_ttl_s plus one
# reload (the first poll after the TTL may still be answered from the old state while the reload runs).
STALENESS_BOUND_S = STATE_TTL_S + 1


class Cluster:
    def __init__(self, replicas: list[Server], balancer: Nginx, tokens: dict[str, str], database: str) -> None:
        self.replicas, self.balancer, self.tokens, self.database = replicas, balancer, tokens, database
        self.lb = httpx.Client(base_url=balancer.url, timeout=60)

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def poll(self, base_url: str, model: str, device_id: str = "d-1") -> httpx.Response:
        params = {"device_id": device_id, "runtime": "litert"}
        return httpx.get(f"{base_url}/v1/models/{model}/manifest", params=params, headers=self.auth("device"))

    def publish(self, base_url: str, folder: Path, model: str) -> httpx.Response:
        url = f"{base_url}/v1/models/{model}/versions"
        return httpx.post(url, files=multipart(folder), headers=self.auth("publisher"), timeout=120)

    def set_alias(self, base_url: str, model: str, alias: str, body: dict[str, object]) -> httpx.Response:
        url = f"{base_url}/v1/models/{model}/aliases/{alias}"
        return httpx.put(url, json=body, headers=self.auth("publisher"), timeout=60)


@contextlib.contextmanager
def running_cluster(
    postgres_server: Any, root: Path, per_replica: Callable[[int], dict[str, str]], **settings: str
) -> Iterator[Cluster]:
    """Three replicas (settings shared, plus `per_replica(i)`) on one new PostgreSQL database behind nginx."""
    exe = _nginx()
    if exe is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx); CI installs it in .ci/run")
    database = postgres_server.create_database()
    seed = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    shared = {
        **{k: v for k, v in os.environ.items() if not k.startswith("EDGELOOP_")},
        "EDGELOOP_WORKSPACE": str(root / "workspace"),
        "EDGELOOP_REGISTRY_DATABASE_URL": database,
        "EDGELOOP_REGISTRY_SIGNING_KEY": base64.b64encode(seed).decode(),  # as from a secret manager
        "EDGELOOP_REGISTRY_STATE_CACHE_TTL_S": str(STATE_TTL_S),
        **settings,
    }
    tokens = create_keys(database, publisher=100_000.0, device=100_000.0)
    replicas = [Server({**shared, **per_replica(i)}) for i in range(3)]
    starters = [threading.Thread(target=r.start) for r in replicas]
    for thread in starters:
        thread.start()
    for thread in starters:
        thread.join()
    servers = " ".join(f"server 127.0.0.1:{r.port} max_fails=1 fail_timeout=30s;" for r in replicas)
    balancer = Nginx(exe, root / "nginx", "", template=LB_TEMPLATE, EDGELOOP_NGINX_REPLICAS=servers)
    try:
        assert all(r.proc is not None and r.proc.poll() is None for r in replicas), "a replica did not start"
        balancer.start()
        yield Cluster(replicas, balancer, tokens, database)
    finally:
        balancer.stop()
        for replica in replicas:
            replica.stop()


@pytest.fixture(scope="module")
def cluster(postgres_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One cluster for the module (three replicas take a while to start): each test uses its own model.

    The last test kills a replica.
    """
    root = tmp_path_factory.mktemp("replicas")
    # Telemetry straight into DuckDB, one file each (test_replica_telemetry.py runs the shared inbox).
    with running_cluster(
        postgres_server, root, lambda i: {"EDGELOOP_WAREHOUSE": f"duckdb:///{root}/wh{i}.duckdb"}
    ) as c:
        yield c


async def _publish_spread(urls: list[str], token: str, folders: list[Path], model: str) -> list[httpx.Response]:
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=len(folders))) as client:
        return await asyncio.gather(
            *(
                client.post(f"{urls[i % len(urls)]}/v1/models/{model}/versions", files=multipart(f), headers=auth)
                for i, f in enumerate(folders)
            )
        )


def test_publishes_through_different_replicas_give_one_version_per_package_signed_by_one_key(
    cluster: Cluster, tmp_path: Path
) -> None:
    model = "publish-race"
    urls = [r.url for r in cluster.replicas]
    same = make_package(tmp_path / "same", name=model, run="run-0")
    responses = asyncio.run(_publish_spread(urls, cluster.tokens["publisher"], [same] * 30, model))
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses if r.status_code >= 300]
    assert [r.status_code for r in responses].count(201) == 1
    assert {r.json()["version"] for r in responses} == {1}

    others = [make_package(tmp_path / f"pkg{i}", name=model, run=f"run-{i + 1}") for i in range(30)]
    responses = asyncio.run(_publish_spread(urls, cluster.tokens["publisher"], others, model))
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses if r.status_code != 201]
    assert sorted(r.json()["version"] for r in responses) == list(range(2, 32))

    keys = [httpx.get(f"{url}/v1/keys").json()["keys"] for url in urls]
    assert len({k[0]["key_id"] for k in keys}) == 1  # one signing key, from the configured source
    pins = {k["key_id"]: base64.b64decode(k["public_key"]) for k in keys[0]}
    assert cluster.set_alias(cluster.balancer.url, model, "production", {"version": 31}).status_code == 200
    for url in urls:  # no replica had loaded this model's state: each loads it on its first poll
        response = cluster.poll(url, model)
        assert response.status_code == 200, response.text
        assert verify(response.content, pins).version == 31


def test_an_alias_moved_through_one_replica_is_served_by_the_others_within_the_bound(
    cluster: Cluster, tmp_path: Path
) -> None:
    model = "alias-move"
    a, b, c = (r.url for r in cluster.replicas)
    for run in ("run-1", "run-2"):
        assert cluster.publish(a, make_package(tmp_path / run, name=model, run=run), model).status_code == 201
    assert cluster.set_alias(a, model, "production", {"version": 1}).status_code == 200
    for replica in (b, c):  # both load the old state before the move (a first poll waits for its load)
        assert cluster.poll(replica, model).json()["version"] == 1
    assert cluster.set_alias(a, model, "production", {"version": 2}).status_code == 200
    moved = time.monotonic()
    assert cluster.poll(a, model).json()["version"] == 2  # the writer drops its own state at once
    for replica in (b, c):
        while True:
            asked = time.monotonic() - moved  # before the poll: a slow answer to an early question may still be old
            version = cluster.poll(replica, model).json()["version"]
            # A poll asked after the bound must see the move; slowness only makes questions later, never fails this.
            assert version == 2 or asked <= STALENESS_BOUND_S, f"version {version} for a poll asked {asked:.2f} s after"
            if version == 2:
                break
            time.sleep(0.05)  # pacing only; the new answer ends the loop


def test_a_replica_killed_mid_traffic_loses_no_acknowledged_write_and_polls_go_on(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Last in this module: it kills a replica of the shared cluster."""
    model = "replica-killed"
    lb = cluster.balancer.url
    assert cluster.publish(lb, make_package(tmp_path / "pkg", name=model), model).status_code == 201
    assert cluster.set_alias(lb, model, "production", {"version": 1}).status_code == 200

    polls: list[int] = []
    stop = threading.Event()

    def device(n: int) -> None:
        with httpx.Client(base_url=lb, timeout=60) as client:
            while not stop.is_set():
                params = {"device_id": f"d-{n}-{len(polls) % 50}", "runtime": "litert"}
                r = client.get(f"/v1/models/{model}/manifest", params=params, headers=cluster.auth("device"))
                polls.append(r.status_code)

    pollers = [threading.Thread(target=device, args=(n,)) for n in range(3)]
    for thread in pollers:
        thread.start()
    acknowledged, refused = [], []
    polls_at_kill = 0
    for i in range(60):
        body = {"version": 1, "rollout_percent": i, "reason": f"write-{i}"}
        response = cluster.set_alias(lb, model, "canary", body)
        (acknowledged if response.status_code == 200 else refused).append((i, response.status_code))
        if i == 20:
            cluster.replicas[1].kill()  # SIGKILL while devices poll and writes arrive
            polls_at_kill = len(polls)
    deadline = time.monotonic() + 120  # a bound on a hang (pollers gone), not a speed assertion
    while len(polls) < polls_at_kill + 100:  # devices go on polling well after the kill (counted, not timed)
        assert time.monotonic() < deadline, f"polling stalled after the kill: {len(polls) - polls_at_kill} more polls"
        time.sleep(0.05)
    stop.set()
    for thread in pollers:
        thread.join()

    assert set(polls) == {200}, {s: polls.count(s) for s in set(polls)}
    # Only a write in flight on the killed replica may fail (502: nginx never resends a PUT it had sent).
    assert all(status == 502 for _, status in refused) and len(refused) <= 1, refused
    engine = db.make_engine(cluster.database)
    with db.session_factory(engine)() as session:
        audited = session.scalars(select(db.AuditEntry.reason).where(db.AuditEntry.model == model)).all()
    engine.dispose()
    assert {f"write-{i}" for i, _ in acknowledged} <= set(audited)
