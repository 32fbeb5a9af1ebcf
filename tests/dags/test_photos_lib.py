"""New-photo detection without Airflow: fingerprints, the last-ingested marker, and the quiet period."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from dags import _photos
from dags._retrain import training_run_id


def _touch(path: Path, data: bytes, when: dt.datetime) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (when.timestamp(), when.timestamp()))


T0 = dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC)


def test_fingerprint_sees_added_rewritten_and_removed_photos_but_not_hidden_files(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _touch(root / "rose-soap" / "a.jpg", b"a", T0)
    _touch(root / "rose-soap" / "b.jpg", b"b", T0)
    first = _photos.fingerprint(str(root))
    assert (first.objects, first.total_bytes, first.newest) == (2, 2, T0)

    _touch(root / "rose-soap" / ".b.jpg.tmp", b"partial", T0 + dt.timedelta(minutes=5))
    assert _photos.fingerprint(str(root)) == first

    _touch(root / "mint-soap" / "c.jpg", b"cc", T0 + dt.timedelta(minutes=1))
    added = _photos.fingerprint(str(root))
    assert added.digest != first.digest and added.objects == 3

    _touch(root / "rose-soap" / "a.jpg", b"A!", T0 + dt.timedelta(minutes=2))
    assert _photos.fingerprint(str(root)).digest not in (first.digest, added.digest)

    (root / "mint-soap" / "c.jpg").unlink()
    assert _photos.fingerprint(str(root)).objects == 2


def test_check_compares_with_the_last_ingest_and_measures_quiet(tmp_path: Path) -> None:
    root, state = tmp_path / "photos", str(tmp_path / "state")
    assert not _photos.check(str(root), state, now=T0).changed  # nothing there yet

    _touch(root / "rose-soap" / "a.jpg", b"a", T0)
    found = _photos.check(str(root), state, now=T0 + dt.timedelta(minutes=10))
    assert found.changed and found.previous_digest is None
    assert found.quiet(10) and not found.quiet(11)

    _photos.remember_ingested(state, str(root), found.fingerprint, "v0001")
    again = _photos.check(str(root), state, now=T0 + dt.timedelta(hours=1))
    assert not again.changed and again.previous_digest == found.fingerprint.digest


def test_training_run_ids_are_a_pure_function_of_the_dag_run_id() -> None:
    assert training_run_id("manual__2026-11-23T00:00:00+00:00") == "airflow-manual__2026-11-23T00-00-00-00-00"
    assert training_run_id("asset_triggered__2026-11-23T07:12:01.5+00:00") == training_run_id(
        "asset_triggered__2026-11-23T07:12:01.5+00:00"
    )
    assert "/" not in training_run_id("scheduled__a/b c")
