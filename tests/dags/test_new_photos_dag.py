"""`new_photos` in real Airflow: the folder sensor (reschedule mode) and the asset event that triggers `retrain`."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

T0 = dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC)


def _asset_events() -> list[dict[str, Any]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.name, AssetEvent.extra, AssetEvent.source_run_id).join(
                AssetModel, AssetModel.id == AssetEvent.asset_id
            )
        ).all()
        return [{"name": n, "extra": e, "run_id": r} for n, e, r in rows]


def _photos(root: Path, products: int = 2) -> None:
    from edgeloop.synth import generate

    generate(root, n_products=products, images_per_product=3, size=64, seed=1)


def test_new_quiet_photos_update_the_asset_and_an_ingested_listing_does_not(
    run_dag: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos = tmp_path / "photos"
    _photos(photos)
    monkeypatch.setenv("EDGELOOP_DAGS_PHOTOS_URI", str(photos))
    monkeypatch.setenv("EDGELOOP_DAGS_QUIET_MINUTES", "0")
    monkeypatch.setenv("EDGELOOP_DAGS_POKE_INTERVAL_S", "1")
    monkeypatch.setenv("EDGELOOP_DAGS_WATCH_TIMEOUT_MINUTES", "0.05")
    before = [e for e in _asset_events() if e["name"] == "edgeloop_new_photos"]

    states = run_dag("new_photos", T0)

    assert states["wait_for_new_photos"] == states["announce_new_photos"] == "success", states
    events = [e for e in _asset_events() if e["name"] == "edgeloop_new_photos"]
    assert len(events) == len(before) + 1
    assert events[-1]["extra"]["objects"] == 6

    # What retrain's ingest records after reading the folder: the same listing is no news.
    from dags import _photos as photos_lib
    from dags._settings import get_dag_settings

    settings = get_dag_settings()
    photos_lib.remember_ingested(settings.state, settings.photos, photos_lib.fingerprint(settings.photos), "v0001")
    states = run_dag("new_photos", T0 + dt.timedelta(hours=1))
    # The sensor rescheduled until its timeout, then gave up softly: skipped, not failed.
    assert states["wait_for_new_photos"] == "skipped", states
    assert states["announce_new_photos"] == "skipped"
    assert len([e for e in _asset_events() if e["name"] == "edgeloop_new_photos"]) == len(before) + 1


def test_photos_still_being_uploaded_are_not_announced(
    run_dag: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos = tmp_path / "photos"
    _photos(photos, products=1)
    newest = photos / "fresh-upload.jpg"
    newest.write_bytes(b"\xff\xd8 still arriving")
    os.utime(newest, (time.time(), time.time()))
    monkeypatch.setenv("EDGELOOP_DAGS_PHOTOS_URI", str(photos))
    monkeypatch.setenv("EDGELOOP_DAGS_QUIET_MINUTES", "60")
    monkeypatch.setenv("EDGELOOP_DAGS_POKE_INTERVAL_S", "1")
    monkeypatch.setenv("EDGELOOP_DAGS_WATCH_TIMEOUT_MINUTES", "0.05")

    states = run_dag("new_photos", T0 + dt.timedelta(hours=2))

    assert states["wait_for_new_photos"] == "skipped", states
    assert states["announce_new_photos"] == "skipped"
