# TaskFlow calls take XComArgs where the task function declares the value it receives at run time.
# mypy: disable-error-code="arg-type, assignment"
"""`retrain`: ingest → train → gate → convert → publish, then point `canary` at the new version.

Runs on `EDGELOOP_DAGS_RETRAIN_SCHEDULE` (default weekly) and whenever `new_photos`
announces that photos of new products have landed (the `edgeloop_new_photos` asset).

1. `ingest` — the Beam ingest of `EDGELOOP_DAGS_PHOTOS_URI`, incremental from the latest
   dataset version (an unchanged folder gives the same version back). Runner and flags
   from `EDGELOOP_DAGS_BEAM_RUNNER` / `EDGELOOP_DAGS_BEAM_OPTIONS` (DirectRunner locally,
   DataflowRunner with `--project/--region/--temp_location` in the cloud).
2. `find_production` — the version behind the registry's `production` alias, if any:
   training warm-starts from it and the gate compares against it.
3. `train` — transfer learning on the new dataset; the run id is derived from the DAG
   run id, so a retry or a re-run of the same logical date reuses the finished run.
4. `gate` — thresholds and "no regression against production". The report is written
   next to the run (`gate.json`) and its URI returned.
5. `gate_passed` — short-circuit: a failed gate ends the run here as *not published*
   (downstream tasks skipped), with the gate's reasons in this task's log.
6. `convert` — TFLite / ONNX variants into a model package folder.
7. `publish` — the package into the registry (content-addressed: publishing twice gives
   the same version).
8. `set_canary` — `canary` := the new version at `EDGELOOP_DAGS_CANARY_ROLLOUT_PERCENT`;
   updates the `edgeloop_canary_<model>` asset, which triggers `release_health`.

Reads: `EDGELOOP_DAGS_REGISTRY_URL`, `EDGELOOP_DAGS_API_KEY` (role `publisher`),
`EDGELOOP_DAGS_MODEL_NAME`, `EDGELOOP_DAGS_CANARY_ROLLOUT_PERCENT`, the paths
`EDGELOOP_DAGS_{PHOTOS,DATASETS,RUNS,PACKAGES,STATE}_URI` (defaults under
`EDGELOOP_WORKSPACE`), timeouts `EDGELOOP_DAGS_{TASK,TRAIN}_TIMEOUT_MINUTES`, and the
stages' own settings (`EDGELOOP_TRAIN_*`, `EDGELOOP_GATE_*`, `EDGELOOP_CONVERT_*`,
`EDGELOOP_WAREHOUSE`). No Airflow connections or Variables (Dataflow and GCS use the
workers' default Google credentials).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from dags._assets import canary_asset, photos_asset
from dags._settings import default_args, get_dag_settings


def build() -> DAG:
    """The DAG, shaped by the settings in force when the file is parsed."""
    settings = get_dag_settings()
    long_running = dt.timedelta(minutes=settings.train_timeout_minutes)

    @dag(
        dag_id="retrain",
        schedule=AssetOrTimeSchedule(
            timetable=CronTriggerTimetable(settings.retrain_schedule, timezone="UTC"),
            assets=[photos_asset(settings)],
        ),
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        default_args=default_args(settings),
        tags=["edgeloop", "training"],
        doc_md=__doc__,
    )
    def retrain() -> None:
        @task(execution_timeout=long_running)
        def ingest() -> dict[str, Any]:
            from dags import _retrain

            return _retrain.run_ingest(get_dag_settings())

        @task
        def find_production() -> dict[str, Any]:
            from dags import _retrain

            return _retrain.find_production(get_dag_settings())

        @task(execution_timeout=long_running)
        def train(dataset: dict[str, Any], production: dict[str, Any], **context: Any) -> dict[str, Any]:
            from dags import _retrain

            run_id = _retrain.training_run_id(context["dag_run"].run_id)
            return _retrain.run_train(get_dag_settings(), dataset, production, run_id)

        @task
        def gate(run: dict[str, Any], production: dict[str, Any]) -> dict[str, Any]:
            from dags import _retrain

            return _retrain.run_gate(get_dag_settings(), run, production)

        @task.short_circuit
        def gate_passed(report: dict[str, Any]) -> bool:
            from dags import _retrain

            return _retrain.log_gate(report)

        @task(execution_timeout=long_running)
        def convert(run: dict[str, Any]) -> dict[str, Any]:
            from dags import _retrain

            return _retrain.run_convert(get_dag_settings(), run)

        @task
        def publish(package: dict[str, Any]) -> dict[str, Any]:
            from dags import _retrain

            return _retrain.publish(get_dag_settings(), package)

        @task(outlets=[canary_asset(settings)])
        def set_canary(published: dict[str, Any], **context: Any) -> dict[str, Any]:
            from dags import _retrain

            s = get_dag_settings()
            result = _retrain.set_canary(s, published)
            context["outlet_events"][canary_asset(s)].extra = result
            return result

        dataset = ingest()
        production = find_production()
        run = train(dataset, production)
        report = gate(run, production)
        package = convert(run)
        gate_passed(report) >> package
        set_canary(publish(package))

    return retrain()


build()
