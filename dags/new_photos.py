# TaskFlow calls take XComArgs where the task function declares the value it receives at run time.
# mypy: disable-error-code="arg-type, assignment"
"""`new_photos`: announce new product photos once their upload has finished.

Runs every `EDGELOOP_DAGS_WATCH_SCHEDULE` (default every 30 minutes, one run at a time):

1. `wait_for_new_photos` — waits, without holding a worker slot, until the photos
   changed since the last ingest and nothing has been written for
   `EDGELOOP_DAGS_QUIET_MINUTES`. Locally a sensor in `reschedule` mode over the folder;
   for a `gs://` photos URI the Google provider's `GCSUploadSessionCompleteSensor`,
   deferrable (the triggerer watches the prefix). Gives up as *skipped* after
   `EDGELOOP_DAGS_WATCH_TIMEOUT_MINUTES`; the next run looks again.
2. `announce_new_photos` — re-checks that the listing differs from the one last
   ingested and updates the `edgeloop_new_photos` asset, which triggers `retrain`.

Reads: `EDGELOOP_DAGS_PHOTOS_URI` (default `<workspace>/photos`), `EDGELOOP_DAGS_STATE_URI`,
`EDGELOOP_DAGS_QUIET_MINUTES`, `EDGELOOP_DAGS_POKE_INTERVAL_S`, `EDGELOOP_DAGS_OWNER`,
`EDGELOOP_DAGS_RETRIES`. Connection: `EDGELOOP_DAGS_GCP_CONN_ID` (default
`google_cloud_default`) when the photos are on GCS. No Airflow Variables.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pendulum
from airflow.sdk import DAG, PokeReturnValue, dag, task

from dags._assets import photos_asset
from dags._settings import default_args, get_dag_settings


def build() -> DAG:
    """The DAG, shaped by the settings in force when the file is parsed."""
    settings = get_dag_settings()
    asset = photos_asset(settings)
    sensor_args: dict[str, Any] = {
        "poke_interval": settings.poke_interval_s,
        "timeout": settings.watch_timeout_minutes * 60,
        # No new photos is the normal case, not a failure.
        "soft_fail": True,
    }

    @dag(
        dag_id="new_photos",
        schedule=settings.watch_schedule,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        default_args=default_args(settings),
        tags=["edgeloop", "data"],
        doc_md=__doc__,
    )
    def new_photos() -> None:
        if settings.photos_on_gcs:
            from airflow.providers.google.cloud.sensors.gcs import GCSUploadSessionCompleteSensor

            gs = urlsplit(settings.photos)
            bucket, prefix = gs.netloc, gs.path.strip("/")
            # This sensor keeps the previous listing in memory between pokes, so it must
            # defer (the triggerer holds the state) rather than run in reschedule mode.
            waited = GCSUploadSessionCompleteSensor(
                task_id="wait_for_new_photos",
                bucket=bucket,
                prefix=prefix + "/",
                inactivity_period=settings.quiet_minutes * 60,
                min_objects=1,
                google_cloud_conn_id=settings.gcp_conn_id,
                deferrable=True,
                **sensor_args,
            )
        else:

            @task.sensor(task_id="wait_for_new_photos", mode="reschedule", **sensor_args)
            def wait_for_new_photos() -> PokeReturnValue:
                from dags._photos import check

                s = get_dag_settings()
                found = check(s.photos, s.state)
                done = found.changed and found.quiet(s.quiet_minutes)
                return PokeReturnValue(is_done=done, xcom_value=found.fingerprint.digest if done else None)

            waited = wait_for_new_photos()

        @task(outlets=[asset])
        def announce_new_photos(**context: Any) -> str:
            """Update the asset (and so trigger `retrain`) unless the photos match the last ingest."""
            from airflow.sdk.exceptions import AirflowSkipException

            from dags._photos import check

            s = get_dag_settings()
            found = check(s.photos, s.state)
            if not found.changed:
                raise AirflowSkipException(f"photos under {s.photos} are unchanged since the last ingest")
            context["outlet_events"][photos_asset(s)].extra = found.fingerprint.to_json()
            return found.fingerprint.digest

        waited >> announce_new_photos()

    return new_photos()


build()
