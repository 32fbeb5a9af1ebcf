"""Every DAG file imports cleanly and follows the house rules: retries, timeouts, owners, tags, docs."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.airflow

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
EXPECTED = {"new_photos", "retrain", "release_health"}


@pytest.fixture(scope="module")
def dagbag(airflow_home: Path) -> object:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER))


def test_no_import_errors_and_every_dag_is_there(dagbag: object) -> None:
    assert dagbag.import_errors == {}  # type: ignore[attr-defined]
    assert set(dagbag.dag_ids) == EXPECTED  # type: ignore[attr-defined]


def test_helper_modules_are_not_parsed_as_dag_files(airflow_home: Path) -> None:
    from airflow.utils.file import find_dag_file_paths

    parsed = {Path(p).name for p in find_dag_file_paths(DAGS_FOLDER, safe_mode=True)}
    assert parsed == {"new_photos.py", "retrain.py", "release_health.py"}


def test_every_task_retries_has_a_timeout_and_an_owner(dagbag: object) -> None:
    for dag_id, dag in dagbag.dags.items():  # type: ignore[attr-defined]
        assert dag.tags and "edgeloop" in dag.tags, dag_id
        assert dag.doc_md and "Reads" in dag.doc_md, dag_id
        assert not dag.catchup, dag_id
        for task in dag.tasks:
            where = f"{dag_id}.{task.task_id}"
            assert task.retries >= 2, where
            assert task.owner and task.owner != "airflow", where
            timeout = task.execution_timeout or getattr(task, "timeout", None)
            assert timeout, f"{where} has no timeout"


def test_photos_on_gcs_are_watched_by_the_deferrable_upload_session_sensor(
    airflow_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.providers.google.cloud.sensors.gcs import GCSUploadSessionCompleteSensor

    from dags._settings import get_dag_settings

    monkeypatch.setenv("EDGELOOP_DAGS_PHOTOS_URI", "gs://acme-photos/products/")
    monkeypatch.setenv("EDGELOOP_DAGS_QUIET_MINUTES", "45")
    get_dag_settings.cache_clear()
    try:
        bag = DagBag(dag_folder=str(DAGS_FOLDER / "new_photos.py"))
    finally:
        get_dag_settings.cache_clear()
    assert bag.import_errors == {}
    sensor = bag.dags["new_photos"].get_task("wait_for_new_photos")
    assert isinstance(sensor, GCSUploadSessionCompleteSensor)
    assert (sensor.bucket, sensor.prefix) == ("acme-photos", "products/")
    assert sensor.inactivity_period == 45 * 60
    assert sensor.deferrable and sensor.soft_fail
    assert bag.dags["new_photos"].get_task("announce_new_photos").outlets[0].uri == "gs://acme-photos/products"


def test_local_photos_are_watched_in_reschedule_mode(dagbag: object) -> None:
    sensor = dagbag.dags["new_photos"].get_task("wait_for_new_photos")  # type: ignore[attr-defined]
    # A waiting sensor must not hold a worker slot.
    assert sensor.mode == "reschedule" and sensor.soft_fail


def test_the_dags_are_chained_by_assets_and_also_run_on_a_schedule(dagbag: object) -> None:
    dags = dagbag.dags  # type: ignore[attr-defined]
    announced = {o.name for o in dags["new_photos"].get_task("announce_new_photos").outlets}
    published = {o.name for o in dags["retrain"].get_task("set_canary").outlets}
    assert announced == {"edgeloop_new_photos"} and published == {"edgeloop_canary_shelf-products"}
    for dag_id, asset, cron in (
        ("retrain", "edgeloop_new_photos", "0 0 * * 0"),
        ("release_health", "edgeloop_canary_shelf-products", "0 0 * * *"),
    ):
        timetable = dags[dag_id].timetable
        condition = timetable.asset_condition  # AssetAll of the listed assets
        assert {a.name for a in condition.objects} == {asset}, dag_id
        assert timetable.timetable.expression == cron, dag_id  # @weekly / @daily by default
