"""The poll's state cache: old state is served while one reload runs; a write is never undone by a late reload."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from registry_api import db, manifests
from registry_api.manifests import ManifestService
from registry_api.rollout import Device
from registry_api.testing import Harness, make_package

MODEL = "shelf-products"


@pytest.fixture()
def two_versions(harness: Harness, tmp_path: Path) -> Harness:
    assert harness.publish(make_package(tmp_path / "v1", run="run-1")).status_code == 201
    assert harness.publish(make_package(tmp_path / "v2", run="run-2")).status_code == 201
    assert harness.set_alias("production", {"version": 1}).status_code == 200
    return harness


def _worker(h: Harness, ttl_s: float) -> ManifestService:
    """A second worker's manifest service on the same database (the harness app's writes do not reach it)."""
    registry = h.client.app.state.registry  # type: ignore[attr-defined]
    settings = registry.settings.model_copy(update={"state_cache_ttl_s": ttl_s})
    return ManifestService(settings, db.read_session_factory(registry.engine), registry.keyring)


def _production(snap: manifests.ModelSnapshot) -> int:
    return snap.aliases["production"].version


def test_old_state_is_served_while_one_reload_runs(two_versions: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    service = _worker(two_versions, ttl_s=0)  # every snapshot is old at once
    loads: list[int] = []
    reading, release = threading.Event(), threading.Event()
    real = manifests.load_snapshot

    def held(*args: Any) -> manifests.ModelSnapshot:
        loads.append(1)
        if len(loads) > 1:  # the reload: held until every poll has been answered
            reading.set()
            release.wait(30)
        return real(*args)

    monkeypatch.setattr(manifests, "load_snapshot", held)

    async def scenario() -> list[int]:
        first = await service.current(MODEL)  # nothing cached: waits for the load
        assert _production(first) == 1
        assert two_versions.set_alias("production", {"version": 2}).status_code == 200  # another worker
        answers = await asyncio.gather(*(service.current(MODEL) for _ in range(50)))
        await asyncio.to_thread(reading.wait, 30)
        release.set()
        return [_production(a) for a in answers]

    # Every poll was answered from the old state while the database was being read; asyncio.run
    # waits for the executor, so any other reload would have been counted by now.
    assert asyncio.run(scenario()) == [1] * 50
    assert len(loads) == 2
    assert _production(asyncio.run(service.current(MODEL))) == 2
    resolution = service.resolve(MODEL, "production", Device(device_id="d1", runtime="litert"))
    assert resolution.version == 2


def test_a_reload_begun_before_a_write_does_not_bring_back_the_old_state(
    two_versions: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = _worker(two_versions, ttl_s=0)
    read_done, release, finished = threading.Event(), threading.Event(), threading.Event()
    real = manifests.load_snapshot
    hold = {"on": False}

    def slow(*args: Any) -> manifests.ModelSnapshot:
        snap = real(*args)  # the state as it was when the reload read it
        if hold["on"]:
            hold["on"] = False
            read_done.set()
            release.wait(30)
            finished.set()
        return snap

    monkeypatch.setattr(manifests, "load_snapshot", slow)

    async def scenario() -> int:
        await service.current(MODEL)
        hold["on"] = True
        old = await service.current(MODEL)  # old: starts the (held) reload, answers at once
        assert _production(old) == 1
        await asyncio.to_thread(read_done.wait, 30)
        # The write lands after the reload read the database: this worker drops its state, as
        # the alias route does after its own writes.
        assert two_versions.set_alias("production", {"version": 2}).status_code == 200
        assert not finished.is_set()  # a reload in progress holds no lock a publisher waits for
        service.invalidate(MODEL)
        release.set()
        return _production(await service.current(MODEL))

    assert asyncio.run(scenario()) == 2


def test_overlong_if_none_match_is_refused(two_versions: Harness) -> None:
    response = two_versions.manifest(device_id="d1", runtime="litert", etag="x" * 1025)
    assert response.status_code == 422
    assert "If-None-Match" in response.json()["detail"]
