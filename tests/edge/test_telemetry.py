"""The on-device telemetry queue: persisted, bounded, batched, delivered exactly once by event_id."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_server import RegistryServer

import edge
from edge import DeviceInfo, RegistryClient, TelemetryOptions, TelemetryQueue

DEVICE = DeviceInfo(device_id="dev-1", device_class="ci-x86", app_version="1.0")


def test_queue_is_persisted_bounded_and_drops_oldest(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    queue = TelemetryQueue(path, TelemetryOptions(max_events=1000), DEVICE)
    ids = [queue.record("inference", latency_ms=float(i), top1_label="x", top1_score=0.5).event_id for i in range(1500)]
    assert queue.pending() == 1000 and queue.dropped() == 500
    queue.close()
    reopened = TelemetryQueue(path, TelemetryOptions(max_events=1000), DEVICE)
    first = reopened._db.execute("SELECT event_id FROM events ORDER BY seq LIMIT 1").fetchone()[0]
    assert first == str(ids[500])  # the 500 oldest went first
    assert reopened.pending() == 1000 and reopened.dropped() == 500
    print("\nqueue bound 1000, 1500 recorded: 500 oldest dropped and counted, survives a reopen")


def test_images_are_stripped_unless_opted_in(tmp_path: Path) -> None:
    queue = TelemetryQueue(tmp_path / "q.sqlite", TelemetryOptions(), DEVICE)
    queue.put(edge.TelemetryEvent(device_id="d", kind="inference", attachment="aGVsbG8="))
    body = queue._db.execute("SELECT body FROM events").fetchone()[0]
    assert '"attachment":null' in body
    opted = TelemetryQueue(tmp_path / "o.sqlite", TelemetryOptions(allow_attachments=True), DEVICE)
    opted.put(edge.TelemetryEvent(device_id="d", kind="inference", attachment="aGVsbG8="))
    assert "aGVsbG8=" in opted._db.execute("SELECT body FROM events").fetchone()[0]


@pytest.mark.slow
def test_10000_events_with_registry_down_are_all_delivered_once(registry: RegistryServer, tmp_path: Path) -> None:
    import duckdb

    queue = TelemetryQueue(tmp_path / "q.sqlite", TelemetryOptions(max_events=20_000, batch_size=500), DEVICE)
    client = RegistryClient(registry.url, registry.tokens["device"])
    registry.stop()  # down for a while
    t0 = time.perf_counter()
    for i in range(10_000):
        queue.record("inference", model="shelf-products", version=1, latency_ms=1.0 + i % 7, top1_label="x")
    record_s = time.perf_counter() - t0
    failed = [queue.flush(client) for _ in range(3)]
    assert all(f.error and f.batches == 0 for f in failed) and queue.pending() == 10_000
    registry.start()  # back, same database and warehouse
    t0 = time.perf_counter()
    result = queue.flush(client)
    flush_s = time.perf_counter() - t0
    assert result.error is None and result.remaining == 0
    assert result.accepted == 10_000 and result.duplicates == 0
    # A retry after a lost response resends the same event_ids: the registry adds nothing.
    again = TelemetryQueue(tmp_path / "again.sqlite", TelemetryOptions(), DEVICE)
    event = again.record("update", model="shelf-products", version=2)
    assert again.flush(client).accepted == 1
    again.put(event)  # as if the delete after the first upload never happened
    assert again.flush(client).duplicates == 1
    client.close()
    registry.stop()
    warehouse = registry.workspace / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        total, distinct = con.execute("SELECT count(*), count(DISTINCT event_id) FROM telemetry_events").fetchone()  # type: ignore[misc]
    assert total == distinct == 10_001
    print(
        f"\n10,000 events queued while the registry was down ({record_s:.2f} s to record, 3 failed flushes); "
        f"after it returned: {result.accepted} accepted in {result.batches} batches, {result.duplicates} duplicates, "
        f"{flush_s:.2f} s; warehouse rows {total} = distinct event_ids {distinct}"
    )


@pytest.fixture()
def small_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    """The real registry with a 10-event batch cap: a 25-event batch gets 413."""
    from registry_api.core.config import get_registry_settings

    get_registry_settings.cache_clear()
    server = RegistryServer(tmp_path / "workspace", max_telemetry_events=10).start()
    try:
        yield server
    finally:
        server.stop()
        get_registry_settings.cache_clear()


def test_one_refused_event_is_set_aside_and_never_costs_the_good_ones(
    small_registry: RegistryServer, tmp_path: Path
) -> None:
    # 25 events per batch against a 10-event cap (413), one of them carrying an image the registry refuses (422).
    options = TelemetryOptions(batch_size=25, max_events=100, allow_attachments=True)
    queue = TelemetryQueue(tmp_path / "q.sqlite", options, DEVICE)
    good = [queue.record("inference", latency_ms=float(i), top1_label="x").event_id for i in range(60)]
    bad = edge.TelemetryEvent(device_id="dev-1", kind="inference", attachment="aGVsbG8=")
    queue.put(bad)
    good += [queue.record("inference", latency_ms=float(i), top1_label="y").event_id for i in range(30)]
    with RegistryClient(small_registry.url, small_registry.tokens["device"]) as client:
        result = queue.flush(client)
        assert result.error is None and result.dead_lettered == 1, result
        assert result.accepted == len(good)  # every valid event delivered, none lost to its neighbour
        assert queue.dead_lettered() == 1 and queue.dropped() == 0
        [(body, status, reason)] = queue.dead_letters()
        assert str(bad.event_id) in body and status == 422 and "attachment" in reason
        # The refusal is reported as one small error event, delivered by the next flush.
        assert queue.pending() == 1
        again = queue.flush(client)
        assert again.accepted == 1 and again.dead_lettered == 0 and queue.pending() == 0
    print(
        f"\n91 events, batch 25 over a 10-event cap, 1 with a refused image: {result.accepted} accepted "
        f"in {result.batches} batches, 1 set aside with its reason, 0 lost"
    )


def test_transient_errors_keep_events_queued(small_registry: RegistryServer, tmp_path: Path) -> None:
    queue = TelemetryQueue(tmp_path / "q.sqlite", TelemetryOptions(batch_size=5), DEVICE)
    for i in range(7):
        queue.record("inference", latency_ms=float(i), top1_label="x")
    with RegistryClient(small_registry.url, "not-a-key") as client:  # 401: not the events' fault
        result = queue.flush(client)
    assert result.error and result.dead_lettered == 0 and queue.pending() == 7
    small_registry.stop()
    with RegistryClient(small_registry.url, small_registry.tokens["device"]) as client:  # network down
        result = queue.flush(client)
    assert result.error and result.dead_lettered == 0 and queue.pending() == 7 and queue.dead_lettered() == 0
