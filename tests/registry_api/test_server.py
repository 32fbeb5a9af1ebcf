"""Against a real uvicorn process: concurrent publishes, and a server killed mid-telemetry-stream."""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.events import TelemetryBatch, TelemetryEvent
from edgeloop import warehouse
from registry_api.testing import Server, create_keys, make_package, multipart

pytestmark = pytest.mark.slow


@pytest.fixture()
def env(registry_env: Path) -> dict[str, str]:
    return {**os.environ}


@pytest.fixture()
def tokens(env: dict[str, str]) -> dict[str, str]:
    return create_keys(publisher=10_000.0, device=100_000.0)


@pytest.fixture()
def server(env: dict[str, str], tokens: dict[str, str]) -> Iterator[Server]:
    # Two processes on one SQLite file: contention across processes too. Two processes may not serve
    # one DuckDB file (ServingClaim), so their telemetry would go through the inbox; these tests send none.
    srv = Server(
        {**env, "EDGELOOP_REGISTRY_TELEMETRY_SINK": "inbox", "EDGELOOP_REGISTRY_TELEMETRY_LOADER": "off"}, workers=2
    )
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


async def _all_at_once(url: str, token: str, requests: list[tuple[str, str, dict[str, Any]]]) -> list[httpx.Response]:
    """Every (method, path, httpx arguments) request at once, each on its own connection."""
    limits = httpx.Limits(max_connections=len(requests))
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        auth = {"Authorization": f"Bearer {token}"}
        return await asyncio.gather(*(client.request(m, path, headers=auth, **kw) for m, path, kw in requests))


async def _publish_all(url: str, token: str, folders: list[Path]) -> list[httpx.Response]:
    path = "/v1/models/shelf-products/versions"
    return await _all_at_once(url, token, [("POST", path, {"files": multipart(f)}) for f in folders])


def test_50_concurrent_publishes_of_one_package_give_one_version(
    server: Server, tokens: dict[str, str], tmp_path: Path
) -> None:
    pkg = make_package(tmp_path / "pkg")
    responses = asyncio.run(_publish_all(server.url, tokens["publisher"], [pkg] * 50))
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses if r.status_code >= 300]
    assert sorted(r.status_code for r in responses).count(201) == 1
    assert {r.json()["version"] for r in responses} == {1}
    versions = httpx.get(
        f"{server.url}/v1/models/shelf-products/versions", headers={"Authorization": f"Bearer {tokens['publisher']}"}
    ).json()
    assert [v["version"] for v in versions] == [1]


def test_50_concurrent_publishes_of_different_packages_give_distinct_unmixed_versions(
    server: Server, tokens: dict[str, str], tmp_path: Path
) -> None:
    folders = [make_package(tmp_path / f"pkg{i}", run=f"run-{i}") for i in range(50)]
    responses = asyncio.run(_publish_all(server.url, tokens["publisher"], folders))
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses if r.status_code != 201]
    numbers = sorted(r.json()["version"] for r in responses)
    assert numbers == list(range(1, 51))
    versions = httpx.get(
        f"{server.url}/v1/models/shelf-products/versions", headers={"Authorization": f"Bearer {tokens['publisher']}"}
    ).json()
    expected = {}
    for folder in folders:
        import json

        card = json.loads((folder / "model_card.json").read_text())
        expected[card["version"]] = {v["sha256"] for v in card["variants"]}
    for version in versions:
        # Every version holds exactly the files of the run its card names: nothing mixed.
        assert {v["sha256"] for v in version["variants"]} == expected[version["run_version"]]
    assert len({v["run_version"] for v in versions}) == 50


async def _put_aliases(url: str, token: str, names: list[str]) -> list[httpx.Response]:
    path = "/v1/models/shelf-products/aliases/{}"
    return await _all_at_once(url, token, [("PUT", path.format(n), {"json": {"version": 1}}) for n in names])


def test_concurrent_alias_writes_each_get_their_own_sequence(
    server: Server, tokens: dict[str, str], tmp_path: Path
) -> None:
    """Sequences are max+1 per model: two writers reading the same max would sign equal counters."""
    from sqlalchemy import select

    from registry_api import db
    from registry_api.core.config import get_registry_settings

    publish = httpx.post(
        f"{server.url}/v1/models/shelf-products/versions",
        files=multipart(make_package(tmp_path / "pkg")),
        headers={"Authorization": f"Bearer {tokens['publisher']}"},
        timeout=60,
    )
    assert publish.status_code == 201, publish.text
    # 20 different aliases, and 10 writers creating the same one: 30 writes, 30 sequences.
    names = [f"ring-{i}" for i in range(20)] + ["production"] * 10
    responses = asyncio.run(_put_aliases(server.url, tokens["publisher"], names))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    engine = db.make_engine(get_registry_settings().database)
    with db.session_factory(engine)() as session:
        rows = session.scalars(select(db.Alias).where(db.Alias.model == "shelf-products")).all()
        audited = session.scalars(select(db.AuditEntry).where(db.AuditEntry.action == "set_alias")).all()
    engine.dispose()
    assert len(rows) == 21
    assert len({r.sequence for r in rows}) == 21
    assert len(audited) == 30


def _event(i: int) -> TelemetryEvent:
    return TelemetryEvent(
        event_id=uuid.UUID(int=i + 1), device_id=f"d{i % 97}", kind="inference", model="m", version=1, latency_ms=1.0
    )


def test_server_killed_mid_stream_loses_and_duplicates_nothing(env: dict[str, str], tokens: dict[str, str]) -> None:
    total, per_batch = 10_000, 100
    events = [_event(i) for i in range(total)]
    rng = random.Random(0)
    batches = []
    for start in range(0, total, per_batch):
        fresh = events[start : start + per_batch]
        resent = rng.sample(events[:start], k=5) if start else []  # ~5 % sent again
        batches.append(TelemetryBatch(events=[*fresh, *resent]))
    # The kill is placed by counting acknowledged batches, never by a clock, so it cuts the stream
    # on a machine of any speed: the sender signals after `cut_after` receipts and the killer
    # SIGKILLs while batches keep flowing (a request may be in flight); the sender waits for the
    # kill before batch `cut_after + window`, and the server comes back only after the sender has
    # seen a batch fail, so at least one batch is retried.
    cut_after, window = 30, 5
    server = Server(env, workers=1)
    server.start()
    cut, killed, failed = threading.Event(), threading.Event(), threading.Event()
    acked_at_kill: list[int] = []
    acked = 0

    def killer() -> None:
        if not cut.wait(120):
            return
        server.kill()
        acked_at_kill.append(acked)
        killed.set()
        failed.wait(120)  # no server listens until a batch has failed against the dead one
        server.start()

    thread = threading.Thread(target=killer)
    accepted = duplicates = retries = 0
    auth = {"Authorization": f"Bearer {tokens['device']}", "content-type": "application/json"}
    try:
        thread.start()
        with httpx.Client(timeout=30) as client:
            for index, batch in enumerate(batches):
                if index == cut_after + window:
                    assert killed.wait(120), "the killer never killed the server"
                body = batch.model_dump_json()
                deadline = time.monotonic() + 120
                while True:
                    try:
                        response = client.post(f"{server.url}/v1/telemetry", content=body, headers=auth)
                        if response.status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    retries += 1  # the device's offline queue: same batch, same event_ids, again
                    failed.set()
                    assert time.monotonic() < deadline, "server did not come back"
                    time.sleep(0.05)  # a retry interval, not a wait for anything to happen
                receipt = response.json()
                accepted += receipt["accepted"]
                duplicates += receipt["duplicates"]
                acked += 1
                if acked == cut_after:
                    cut.set()
    finally:
        cut.set()  # a sender that failed early must not leave the killer waiting
        failed.set()
        thread.join()
        server.stop()
    # The kill landed mid-stream: after `cut_after` receipts, before the last batch; something was resent.
    assert len(acked_at_kill) == 1 and cut_after <= acked_at_kill[0] <= cut_after + window, acked_at_kill
    assert retries > 0
    with warehouse.connect() as wh:
        counts = wh.query("SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM telemetry_events")[0]
        ids = {r["event_id"] for r in wh.query("SELECT event_id FROM telemetry_events")}
    assert counts == {"n": total, "d": total}
    assert ids == {str(e.event_id) for e in events}
    # A batch committed just before the kill is resent and then counts as duplicates, so only <= holds.
    assert accepted <= total and accepted + duplicates >= total + 5 * (len(batches) - 1)
    print(f"\nSIGKILL after {acked_at_kill[0]} of {len(batches)} batches acknowledged: {retries} retries, {total} rows")


def _stream_until_answer(port: int, head: str, total: int, prefix: bytes = b"") -> tuple[int, int]:
    """Send `head` then a chunked body of up to `total` bytes, stopping when the server answers.

    Returns (status, bytes of body sent before the answer arrived).
    """
    import select
    import socket

    chunk = b"x" * 65536
    sent = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head.encode())
        if prefix:
            sock.sendall(b"%x\r\n%s\r\n" % (len(prefix), prefix))
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        sock.settimeout(60)
        answer = sock.recv(65536)
    return int(answer[9:12]), sent


def test_oversized_bodies_get_413_without_being_read(env: dict[str, str], tokens: dict[str, str]) -> None:
    cap = 1 << 20
    server = Server(
        {**env, "EDGELOOP_REGISTRY_MAX_PACKAGE_BYTES": str(cap), "EDGELOOP_REGISTRY_MAX_TELEMETRY_BYTES": str(cap)}
    )
    server.start()
    try:
        total = 200 * cap  # 200 MiB offered; the server must stop long before
        part = b'--b\r\nContent-Disposition: form-data; name="files"; filename="big.tflite"\r\n\r\n'
        for path, token, content_type, prefix in (
            ("/v1/models/shelf-products/versions", tokens["publisher"], "multipart/form-data; boundary=b", part),
            ("/v1/telemetry", tokens["device"], "application/json", b'{"events": ['),
        ):
            head = (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            status, sent = _stream_until_answer(server.port, head, total, prefix)
            assert status == 413, (path, status)
            assert sent < total // 10, (path, sent)  # answered after a few MiB at most, not 200
    finally:
        server.stop()


def _peak_rss_mib(pid: int) -> float:
    """VmHWM of a process: the most resident memory it has ever held."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def _send_until_answer(port: int, head: bytes, total: int, chunked: bool) -> tuple[bytes, int]:
    """`head`, then up to `total` body bytes (chunked or raw); stops when the server answers.

    Returns (the answer, body bytes sent before it came).
    """
    import select
    import socket

    piece = b"x" * 65536
    frame = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
    sent = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head)
        while sent < total:
            if select.select([sock], [], [], 0)[0]:
                break
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
        sock.settimeout(60)
        answer = b""
        # Headers and at most 64 KiB of the body: enough to judge an error answer, bounded if it is huge.
        while b"\r\n\r\n" not in answer or len(answer) < answer.index(b"\r\n\r\n") + 4 + min(_length(answer), 65536):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    return answer, sent


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_a_huge_json_body_leaves_the_worker_flat(env: dict[str, str], tokens: dict[str, str], tmp_path: Path) -> None:
    """150 MiB to /v1/benchmarks (a device key suffices) took the worker from ~270 MB to 3 GB; now 413 early."""
    server = Server(env, workers=1)  # one process: the pid is the worker's
    server.start()
    try:
        published = httpx.post(
            f"{server.url}/v1/models/shelf-products/versions",
            files=multipart(make_package(tmp_path / "pkg")),
            headers={"Authorization": f"Bearer {tokens['publisher']}"},
        )
        sha = published.json()["variants"][0]["sha256"]
        total = 150 << 20
        auth = f"Authorization: Bearer {tokens['device']}\r\nContent-Type: application/json\r\n"
        base = f"POST /v1/benchmarks HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
        for _ in range(3):  # warm the paths the measured requests take
            httpx.post(f"{server.url}/v1/benchmarks", content=b"{" * 100, headers=_headers(tokens["device"]))
        before = _peak_rss_mib(server.proc.pid)
        for chunked in (False, True):
            framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
            answer, sent = _send_until_answer(server.port, f"{base}{framing}\r\n\r\n".encode(), total, chunked)
            assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
            assert sent < total // 10, (chunked, sent)
            assert _length(answer) < 1000
        grown = _peak_rss_mib(server.proc.pid) - before
        assert grown < 50, f"worker peak RSS grew {grown:.0f} MiB"

        # 20 MiB of invalid JSON under a raised cap would still get a small answer; under the default, a 413.
        big = b'{"device_class": "' + b"x" * (20 << 20) + b'", "runs": true}'
        r = httpx.post(f"{server.url}/v1/benchmarks", content=big, headers=_headers(tokens["device"]), timeout=60)
        assert r.status_code == 413 and len(r.content) < 1000
        # A Range with a Unicode digit (raw byte 0xb2, "²" in latin-1) is ignored, not a 500.
        head = f"GET /v1/artifacts/{sha} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tokens['device']}\r\n"
        answer, _ = _send_until_answer(server.port, head.encode() + b"Range: bytes=\xb2-\r\n\r\n", 0, False)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]  # the whole file, as for any unparsable Range
    finally:
        server.stop()


def test_a_big_invalid_body_under_a_raised_cap_gets_a_small_answer(env: dict[str, str], tokens: dict[str, str]) -> None:
    """FastAPI's 422 echoed the input per error: 20 MiB in, 160 MiB out."""
    server = Server({**env, "EDGELOOP_REGISTRY_MAX_BODY_BYTES": str(32 << 20)}, workers=1)
    server.start()
    try:
        big = b'{"device_class": "' + b"x" * (20 << 20) + b'", "model": "' + b"y" * (1 << 20) + b'", "runs": true}'
        r = httpx.post(f"{server.url}/v1/benchmarks", content=big, headers=_headers(tokens["publisher"]), timeout=120)
        assert r.status_code == 422
        assert len(r.content) < 2000
        assert "device_class" in r.json()["detail"]
    finally:
        server.stop()


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
