# TaskFlow calls take XComArgs where the task function declares the value it receives at run time.
# mypy: disable-error-code="arg-type, assignment"
"""`release_health`: judge the `canary` from field telemetry, then promote it or roll it back.

Runs on `EDGELOOP_DAGS_HEALTH_SCHEDULE` (default daily) and whenever `retrain` points
`canary` at a new version (the `edgeloop_canary_<model>` asset).

1. `find_canary` — reads the `canary` and `production` aliases from the registry; ends
   the run (downstream skipped) when there is no canary or it already is production.
2. `evaluate_canary` — telemetry of the last `EDGELOOP_DAGS_HEALTH_LOOKBACK_DAYS` days up
   to the run's logical date (or trigger time), per version and device class: latency
   p50/p95, error and rollback counts, low-confidence rate, and the population stability
   index of predicted labels against the eval split of the canary's dataset (from its
   card's lineage and the `dataset_classes` table). Writes the `release_decisions` row
   (key: model, version, alias, day — a re-run of the day replaces it).
3. `choose_action` → `promote_canary` (production := canary version, 100 %),
   `roll_back_canary` (the registry's alias rollback) or `keep_waiting` (too few events).

Reads: `EDGELOOP_DAGS_REGISTRY_URL`, `EDGELOOP_DAGS_API_KEY` (role `publisher`),
`EDGELOOP_DAGS_MODEL_NAME`, the `EDGELOOP_DAGS_HEALTH_*` thresholds (min events, max
error rate, max rollbacks, p95 ceiling and regression vs production, low-confidence
score and rate, max PSI, lookback days), the warehouse from `EDGELOOP_WAREHOUSE` /
`EDGELOOP_BQ_PROJECT`. No Airflow connections or Variables.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from dags._assets import canary_asset
from dags._settings import default_args, get_dag_settings


def build() -> DAG:
    """The DAG, shaped by the settings in force when the file is parsed."""
    settings = get_dag_settings()

    @dag(
        dag_id="release_health",
        schedule=AssetOrTimeSchedule(
            timetable=CronTriggerTimetable(settings.health_schedule, timezone="UTC"),
            assets=[canary_asset(settings)],
        ),
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        default_args=default_args(settings),
        tags=["edgeloop", "release"],
        doc_md=__doc__,
    )
    def release_health() -> None:
        @task.short_circuit
        def find_canary() -> dict[str, Any] | None:
            from dags import _release

            found = _release.find_canary(get_dag_settings())
            return found.to_xcom() if found else None

        @task
        def evaluate_canary(candidate: dict[str, Any], **context: Any) -> dict[str, Any]:
            from dags import _release

            dag_run = context["dag_run"]
            # Asset-triggered runs have no logical date; they judge up to their trigger time.
            end = context.get("logical_date") or dag_run.run_after
            decision = _release.evaluate(
                get_dag_settings(),
                _release.Candidate.from_xcom(candidate),
                end=end,
                decided_at=dt.datetime.now(dt.UTC),
            )
            return {"verdict": decision.verdict, "reason": decision.reason}

        @task.branch
        def choose_action(decision: dict[str, Any]) -> str:
            return {"promote": "promote_canary", "rollback": "roll_back_canary"}.get(
                decision["verdict"], "keep_waiting"
            )

        @task
        def promote_canary(candidate: dict[str, Any], decision: dict[str, Any]) -> str:
            from dags import _release

            return _release.promote(get_dag_settings(), _release.Candidate.from_xcom(candidate), decision["reason"])

        @task
        def roll_back_canary(candidate: dict[str, Any], decision: dict[str, Any]) -> str:
            from dags import _release

            return _release.roll_back(get_dag_settings(), _release.Candidate.from_xcom(candidate), decision["reason"])

        @task
        def keep_waiting(decision: dict[str, Any]) -> str:
            return str(decision["reason"])

        candidate = find_canary()
        decision = evaluate_canary(candidate)
        choose_action(decision) >> [
            promote_canary(candidate, decision),
            roll_back_canary(candidate, decision),
            keep_waiting(decision),
        ]

    return release_health()


build()
