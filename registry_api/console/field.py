"""What the field-health and training pages show, read from the warehouse (DuckDB or BigQuery), never written.

Each function takes an open warehouse and runs its page's aggregation there: the page's cost is
its SQL's, however many events the table holds. Quantiles are the one thing the engines spell
differently.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from edgeloop import warehouse as wh_mod
from edgeloop.stats import label_psi

LOW_CONFIDENCE = 0.5  # top-1 score under this counts as a low-confidence answer
# A PSI over a handful of answers is noise: like release health (min_device_class_events), show it, do not read it.
PSI_MIN_LABELLED = 30


class FieldRow(BaseModel):
    day: dt.date
    version: str
    device_class: str
    inferences: int
    p50_ms: float | None
    p95_ms: float | None
    low_confidence: float | None
    errors: int
    rollbacks: int
    psi: float | None = None  # predicted labels of the day against the version's eval split


class DriftRow(BaseModel):
    """Predicted-label PSI of one version on one device class (None: all of them) over the whole window."""

    version: str
    device_class: str | None
    labelled: int  # inferences that named a label: the PSI's sample
    psi: float | None

    @property
    def readable(self) -> bool:
        return self.labelled >= PSI_MIN_LABELLED


class Decision(BaseModel):
    version: str
    alias: str
    decided_on: dt.date
    decision: str
    reason: str | None
    metrics: dict[str, Any]
    decided_at: dt.datetime


class FieldPage(BaseModel):
    rows: list[FieldRow]
    drift: list[DriftRow]
    no_reference: list[str]  # versions seen in the field whose eval split is unknown: no PSI for them
    decisions: list[Decision]
    since: dt.date


class RunRow(BaseModel):
    run_id: str
    dataset_version: str
    status: str
    started_at: dt.datetime
    duration_s: float | None
    epochs: int | None
    accuracy: float | None
    macro_f1: float | None
    backbone: str | None


class EpochRow(BaseModel):
    phase: str
    epoch: int
    loss: float | None
    val_loss: float | None
    val_macro_f1: float | None


class RecallPoint(BaseModel):
    run_id: str
    label: str
    recall: float | None


class TrainingPage(BaseModel):
    runs: list[RunRow]
    run_id: str | None
    epochs: list[EpochRow]
    recall: list[RecallPoint]


def _quantiles(wh: wh_mod.Warehouse, expr: str) -> tuple[str, int, int]:
    """SQL for an array of quantiles of `expr`, and where p50 and p95 sit in it.

    One aggregate for both: DuckDB's list form sorts once (two quantile_cont calls took twice as long
    on 1M events, bench/console.py).
    """
    if isinstance(wh, wh_mod.BigQueryWarehouse):
        return f"APPROX_QUANTILES({expr}, 100)", 50, 95
    return f"quantile_cont({expr}, [0.5, 0.95])", 0, 1


UNKNOWN_VERSION = "?"  # an event that named no version
_KEY = (
    "CAST(event_time AS DATE) AS day, "
    f"COALESCE(version, '{UNKNOWN_VERSION}') AS version, COALESCE(device_class, 'unknown') AS device_class"
)


def field_page(
    wh: wh_mod.Warehouse, model: str, today: dt.date, datasets: Mapping[str, str], days: int = 14
) -> FieldPage:
    """Page 4: per day, version and device class over the last `days`, the label drift, the release decisions.

    `datasets` maps a version to the dataset it was trained on: its eval split is what the
    predicted labels are compared with, by the same PSI release health judges a canary with.
    """
    since = today - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC).replace(tzinfo=None)
    params = [model, start]
    # One pass counts per day, version, device class, kind and predicted label: the day rows and the
    # label mix both sum from it. Quantiles cannot be summed: they take the second pass (together
    # the two cost a quarter less than a pass for the rows and another for the labels, bench/console.py).
    counts = wh.query(
        f"SELECT {_KEY}, kind, top1_label AS label, COUNT(*) AS n, "
        f"SUM(CASE WHEN top1_score < {LOW_CONFIDENCE} THEN 1 ELSE 0 END) AS low, COUNT(top1_score) AS scored "
        f"FROM telemetry_events WHERE model = ? AND event_time >= ? GROUP BY 1, 2, 3, 4, 5",
        params,
    )
    latency, at50, at95 = _quantiles(wh, "latency_ms")
    quantiles = {
        (str(r["day"]), str(r["version"]), str(r["device_class"])): r["q"] or []
        for r in wh.query(
            f"SELECT {_KEY}, {latency} AS q FROM telemetry_events "
            "WHERE model = ? AND event_time >= ? AND kind = 'inference' GROUP BY 1, 2, 3",
            params,
        )
    }
    by_key: dict[tuple[str, str, str], dict[str, Any]] = {}
    labels: list[dict[str, Any]] = []
    for r in counts:
        key = (str(r["day"]), str(r["version"]), str(r["device_class"]))
        row = by_key.setdefault(key, {"day": r["day"], "version": key[1], "device_class": key[2], "inferences": 0,
                                      "errors": 0, "rollbacks": 0, "low": 0, "scored": 0})  # fmt: skip
        n = int(r["n"])
        if r["kind"] == "inference":
            row["inferences"] += n
            row["low"] += int(r["low"] or 0)
            row["scored"] += int(r["scored"] or 0)
            if r["label"] is not None and key[1] != UNKNOWN_VERSION:
                labels.append({"day": key[0], "version": key[1], "device_class": key[2], "label": r["label"], "n": n})
        elif r["kind"] in ("error", "rollback"):
            row[f"{r['kind']}s"] += n
    rows = []
    for key, row in by_key.items():
        q = quantiles.get(key, [])  # a day without inferences has no quantiles
        low, scored = row.pop("low"), row.pop("scored")
        rows.append(
            FieldRow.model_validate(
                {**row, "p50_ms": q[at50] if len(q) > at95 else None, "p95_ms": q[at95] if len(q) > at95 else None,
                 "low_confidence": low / scored if scored else None}
            )
        )  # fmt: skip
    rows.sort(key=lambda r: r.device_class)
    rows.sort(key=lambda r: (r.day, r.version), reverse=True)  # newest day first, then the version, as before
    drift, missing = _drift(
        rows, labels, _eval_splits(wh, {datasets[r.version] for r in rows if r.version in datasets}), datasets
    )
    decisions = wh.query(
        "SELECT version, alias, decided_on, decision, reason, metrics, decided_at FROM release_decisions "
        "WHERE model = ? ORDER BY decided_at DESC LIMIT 20",
        [model],
    )
    return FieldPage(
        rows=rows, drift=drift, no_reference=missing, decisions=[_decision(d) for d in decisions], since=since
    )


def _eval_splits(wh: wh_mod.Warehouse, datasets: set[str]) -> dict[str, dict[str, float]]:
    """Dataset version → examples per label in its eval split, for every named dataset at once."""
    if not datasets:
        return {}
    marks = ", ".join("?" * len(datasets))
    out: dict[str, dict[str, float]] = {}
    for r in wh.query(
        "SELECT dataset_version, label, SUM(examples) AS n FROM dataset_classes "
        f"WHERE split = 'eval' AND dataset_version IN ({marks}) GROUP BY 1, 2",
        sorted(datasets),
    ):
        if r["n"]:
            out.setdefault(str(r["dataset_version"]), {})[str(r["label"])] = float(r["n"])
    return out


def _add(bucket: dict[str, float], label: str, n: int) -> None:
    bucket[label] = bucket.get(label, 0) + n


def _drift(
    rows: list[FieldRow],
    labels: list[dict[str, Any]],
    splits: Mapping[str, Mapping[str, float]],
    datasets: Mapping[str, str],
) -> tuple[list[DriftRow], list[str]]:
    """PSI per day row (set on `rows`), per version and device class over the window, and per version overall."""
    per_day: dict[tuple[str, str, str], dict[str, float]] = {}
    per_class: dict[tuple[str, str | None], dict[str, float]] = {}
    for r in labels:
        version, cls, label, n = str(r["version"]), str(r["device_class"]), str(r["label"]), int(r["n"])
        _add(per_day.setdefault((str(r["day"]), version, cls), {}), label, n)
        _add(per_class.setdefault((version, cls), {}), label, n)
        _add(per_class.setdefault((version, None), {}), label, n)  # the fleet: what release health judges
    reference = {version: splits.get(dataset, {}) for version, dataset in datasets.items()}
    for row in rows:
        counts = per_day.get((row.day.isoformat(), row.version, row.device_class))
        if counts and reference.get(row.version):
            row.psi = label_psi(reference[row.version], counts)
    drift = [
        DriftRow(version=v, device_class=cls, labelled=int(sum(counts.values())), psi=label_psi(reference[v], counts))
        for (v, cls), counts in per_class.items()
        if reference.get(v)
    ]
    # Newest version first; within one, the whole fleet before its device classes.
    drift.sort(key=lambda d: (-_number(d.version), d.device_class is not None, d.device_class or ""))
    missing = sorted({v for v, _ in per_class if not reference.get(v)}, key=_number, reverse=True)
    return drift, missing


def _number(version: str) -> int:
    return int(version) if version.isdigit() else -1


def _decision(row: dict[str, Any]) -> Decision:
    metrics = row.get("metrics")
    if isinstance(metrics, str):
        try:
            metrics = json.loads(metrics)
        except ValueError:
            metrics = {"raw": metrics}
    return Decision.model_validate({**row, "metrics": metrics if isinstance(metrics, dict) else {}})


def latest_decisions(wh: wh_mod.Warehouse) -> dict[str, Decision]:
    """Page 1's verdict column: per model, its newest release-health decision."""
    rows = wh.query(
        "SELECT model, version, alias, decided_on, decision, reason, metrics, decided_at FROM ("
        "  SELECT d.*, ROW_NUMBER() OVER (PARTITION BY model ORDER BY decided_at DESC) AS recency"
        "  FROM release_decisions d) ranked WHERE recency = 1"
    )
    return {str(r["model"]): _decision(r) for r in rows}


def training_page(wh: wh_mod.Warehouse, run_id: str | None, limit: int = 50) -> TrainingPage:
    """Page 5: the newest runs, one run's epoch curves (default: the newest succeeded), per-class recall across runs."""
    runs = [
        RunRow.model_validate(r)
        for r in wh.query(
            "SELECT run_id, dataset_version, status, started_at, duration_s, epochs, accuracy, macro_f1, backbone "
            f"FROM training_runs ORDER BY started_at DESC LIMIT {int(limit)}"
        )
    ]
    # By default the newest run that finished: a run still training has no curves to show yet.
    finished = next((r.run_id for r in runs if r.status == "succeeded"), runs[0].run_id if runs else None)
    chosen = run_id if run_id and any(r.run_id == run_id for r in runs) else finished
    epochs = (
        [
            EpochRow.model_validate(r)
            for r in wh.query(
                "SELECT phase, epoch, loss, val_loss, val_macro_f1 FROM epoch_metrics WHERE run_id = ? "
                "ORDER BY CASE WHEN phase = 'head' THEN 0 ELSE 1 END, epoch",
                [chosen],
            )
        ]
        if chosen
        else []
    )
    recall = [
        RecallPoint.model_validate(r)
        for r in wh.query(
            "SELECT c.run_id, c.label, c.recall FROM class_metrics c JOIN training_runs r ON r.run_id = c.run_id "
            "WHERE r.status = 'succeeded' AND r.run_id IN "
            "(SELECT run_id FROM training_runs WHERE status = 'succeeded' ORDER BY started_at DESC LIMIT 12) "
            "ORDER BY r.started_at, c.label_index"
        )
    ]
    return TrainingPage(runs=runs, run_id=chosen, epochs=epochs, recall=recall)
