"""Documented SQL views for analysts, written once for DuckDB and BigQuery.

Each view is plain SQL in the subset both engines share; `{p}` is replaced by the
dataset prefix (empty for DuckDB, `` `project.dataset`. `` for BigQuery, whose views
must name their tables in full).
"""

from __future__ import annotations

VIEWS: dict[str, tuple[str, str]] = {
    "v_latest_dataset": (
        "The newest dataset version and its counts.",
        "SELECT * FROM {p}datasets ORDER BY created_at DESC LIMIT 1",
    ),
    "v_best_run_per_dataset": (
        "The succeeded run with the highest macro F1 for each dataset version.",
        """SELECT * FROM (
  SELECT r.*, ROW_NUMBER() OVER (PARTITION BY dataset_version ORDER BY macro_f1 DESC, finished_at DESC) AS rank_in_dataset
  FROM {p}training_runs r WHERE status = 'succeeded'
) ranked WHERE rank_in_dataset = 1""",
    ),
    "v_class_recall_trend": (
        "Per-class recall of every succeeded run, in run order: the trend across retrains.",
        """SELECT r.started_at, r.run_id, r.dataset_version, c.label, c.label_index, c.recall, c.support
FROM {p}class_metrics c JOIN {p}training_runs r ON r.run_id = c.run_id
WHERE r.status = 'succeeded'""",
    ),
    "v_telemetry_daily": (
        "Field telemetry per day, model version, variant and device class.",
        """SELECT CAST(event_time AS DATE) AS day, model, version, variant, device_class, kind,
  COUNT(*) AS events, AVG(latency_ms) AS mean_latency_ms, AVG(top1_score) AS mean_top1_score
FROM {p}telemetry_events GROUP BY 1, 2, 3, 4, 5, 6""",
    ),
}


def render(prefix: str) -> dict[str, str]:
    """Each view's SQL with table names qualified by `prefix`."""
    return {name: sql.replace("{p}", prefix) for name, (_, sql) in VIEWS.items()}
