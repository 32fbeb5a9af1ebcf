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
    "v_class_regressions": (
        "Per-class recall of each succeeded run next to the same class in the previous succeeded run; "
        "recall_change < 0 means the class got worse.",
        """SELECT * FROM (
  SELECT r.run_id, r.started_at, r.dataset_version, c.label, c.label_index, c.recall, c.support,
    LAG(r.run_id) OVER (PARTITION BY c.label ORDER BY r.started_at, r.run_id) AS previous_run_id,
    LAG(c.recall) OVER (PARTITION BY c.label ORDER BY r.started_at, r.run_id) AS previous_recall,
    c.recall - LAG(c.recall) OVER (PARTITION BY c.label ORDER BY r.started_at, r.run_id) AS recall_change
  FROM {p}class_metrics c JOIN {p}training_runs r ON r.run_id = c.run_id
  WHERE r.status = 'succeeded'
) compared WHERE previous_run_id IS NOT NULL""",
    ),
    "v_gate_checks": (
        "Every gate check with its run's dataset version and the run's overall verdict.",
        """SELECT g.run_id, r.dataset_version, r.started_at, g.verdict, g.check_name, g.threshold, g.value, g.passed,
  g.detail, g.baseline, g.forced_by, g.forced_reason, g.evaluated_at
FROM {p}gate_results g LEFT JOIN {p}training_runs r ON r.run_id = g.run_id""",
    ),
    "v_telemetry_daily": (
        "Field telemetry per day, model version, variant and device class.",
        """SELECT CAST(event_time AS DATE) AS day, model, version, variant, device_class, kind,
  COUNT(*) AS events, AVG(latency_ms) AS mean_latency_ms, AVG(top1_score) AS mean_top1_score
FROM {p}telemetry_events GROUP BY 1, 2, 3, 4, 5, 6""",
    ),
    "v_latest_release_decision": (
        "The newest release-health decision for each model version and alias (promote, rollback or wait), "
        "with its reason and the numbers behind it as JSON.",
        """SELECT model, version, alias, decided_on, decision, reason, metrics, decided_at FROM (
  SELECT d.*, ROW_NUMBER() OVER (PARTITION BY model, version, alias ORDER BY decided_on DESC, decided_at DESC) AS recency
  FROM {p}release_decisions d
) ranked WHERE recency = 1""",
    ),
}


def render(prefix: str) -> dict[str, str]:
    """Each view's SQL with table names qualified by `prefix`."""
    return {name: sql.replace("{p}", prefix) for name, (_, sql) in VIEWS.items()}
