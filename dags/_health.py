"""Release health: is the canary as good in the field as it was on the eval split?

The decision rule first (`decide`; its percentile and PSI math lives in `edgeloop.stats`,
which the console shares), then the warehouse side (`collect_stats`, `eval_distribution`, `record_decision`). No Airflow, no TensorFlow:
the `release_health` DAG only calls `evaluate` and acts on the `Decision` it returns.

Telemetry conventions relied on (see `edge/events.py`): an `inference` event carries
latency, top-1 label and score; an `error` event counts against the version it names;
a `rollback` event names the version the device rolled back *away from*.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import Any, Literal

from dags._settings import HealthThresholds
from edgeloop import tables
from edgeloop.stats import label_psi, percentile
from edgeloop.warehouse import Warehouse

log = logging.getLogger(__name__)

Verdict = Literal["promote", "rollback", "wait"]

UNKNOWN_DEVICE_CLASS = "unknown"


# --------------------------------------------------------------------------- stats


@dataclasses.dataclass
class ClassStats:
    """Field numbers of one version on one device class (or all of them)."""

    inferences: int = 0
    errors: int = 0
    rollbacks: int = 0
    low_confidence: int = 0
    latency_hist: dict[float, int] = dataclasses.field(default_factory=dict)

    @property
    def error_rate(self) -> float | None:
        attempts = self.inferences + self.errors
        return self.errors / attempts if attempts else None

    @property
    def low_confidence_rate(self) -> float | None:
        return self.low_confidence / self.inferences if self.inferences else None

    def p50(self) -> float | None:
        return percentile(self.latency_hist, 50)

    def p95(self) -> float | None:
        return percentile(self.latency_hist, 95)

    def add(self, other: ClassStats) -> None:
        self.inferences += other.inferences
        self.errors += other.errors
        self.rollbacks += other.rollbacks
        self.low_confidence += other.low_confidence
        for value, count in other.latency_hist.items():
            self.latency_hist[value] = self.latency_hist.get(value, 0) + count

    def summary(self) -> dict[str, Any]:
        return {
            "inferences": self.inferences,
            "errors": self.errors,
            "rollbacks": self.rollbacks,
            "error_rate": _round(self.error_rate),
            "low_confidence_rate": _round(self.low_confidence_rate),
            "latency_p50_ms": _round(self.p50()),
            "latency_p95_ms": _round(self.p95()),
        }


@dataclasses.dataclass
class VersionStats:
    """One version's telemetry in a window: per device class, plus the predicted labels."""

    version: str
    by_device_class: dict[str, ClassStats] = dataclasses.field(default_factory=dict)
    label_counts: dict[str, int] = dataclasses.field(default_factory=dict)

    def device_class(self, name: str) -> ClassStats:
        return self.by_device_class.setdefault(name, ClassStats())

    def overall(self) -> ClassStats:
        total = ClassStats()
        for stats in self.by_device_class.values():
            total.add(stats)
        return total


@dataclasses.dataclass(frozen=True)
class Decision:
    """What to do with a canary, why, and every number behind it."""

    verdict: Verdict
    reasons: tuple[str, ...]
    metrics: dict[str, Any]

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def decide(
    canary: VersionStats,
    thresholds: HealthThresholds,
    *,
    production: VersionStats | None = None,
    eval_labels: Mapping[str, float] | None = None,
) -> Decision:
    """Promote, roll back or wait, from the canary's field numbers.

    Rollbacks reported by devices are acted on at once; every other check needs
    `min_events` inferences first, because a rate over a handful of events is noise.
    Latency is judged per device class (a slow phone class is not hidden by fast
    edge boxes), against an absolute ceiling and against production on that class.
    """
    overall = canary.overall()
    predicted = dict(canary.label_counts)
    drift: float | None = None
    if eval_labels:
        drift = label_psi(eval_labels, predicted)

    per_class: dict[str, Any] = {}
    failures: list[str] = []
    for name in sorted(canary.by_device_class):
        stats = canary.by_device_class[name]
        entry = stats.summary()
        prod_stats = production.by_device_class.get(name) if production else None
        prod_p95 = prod_stats.p95() if prod_stats else None
        entry["production_latency_p95_ms"] = _round(prod_p95)
        per_class[name] = entry
        if stats.inferences < thresholds.min_device_class_events:
            entry["judged"] = False
            continue
        entry["judged"] = True
        p95 = stats.p95()
        if p95 is None:
            continue
        if thresholds.max_p95_latency_ms is not None and p95 > thresholds.max_p95_latency_ms:
            failures.append(f"{name}: p95 latency {p95:.1f} ms > {thresholds.max_p95_latency_ms:.1f} ms")
        if (
            prod_stats is not None
            and prod_p95
            and prod_stats.inferences >= thresholds.min_device_class_events
            and p95 > prod_p95 * thresholds.max_p95_regression
        ):
            failures.append(
                f"{name}: p95 latency {p95:.1f} ms is {p95 / prod_p95:.2f}× production's {prod_p95:.1f} ms "
                f"(limit {thresholds.max_p95_regression:.2f}×)"
            )

    metrics: dict[str, Any] = {
        "version": canary.version,
        "overall": overall.summary(),
        "device_classes": per_class,
        "psi": _round(drift),
        "predicted_labels": dict(sorted(predicted.items())),
        "eval_labels": dict(sorted(eval_labels.items())) if eval_labels else None,
        "production_version": production.version if production else None,
        "thresholds": thresholds.model_dump(),
    }

    if overall.rollbacks > thresholds.max_rollbacks:
        reason = f"{overall.rollbacks} device rollback(s) away from version {canary.version} (max {thresholds.max_rollbacks})"
        return Decision("rollback", (reason,), metrics)
    if overall.inferences < thresholds.min_events:
        reason = f"only {overall.inferences} inference events so far; need {thresholds.min_events} to judge"
        return Decision("wait", (reason,), metrics)

    error_rate = overall.error_rate or 0.0
    if error_rate > thresholds.max_error_rate:
        failures.insert(0, f"error rate {error_rate:.3f} > {thresholds.max_error_rate:.3f}")
    low_conf = overall.low_confidence_rate or 0.0
    if low_conf > thresholds.max_low_confidence_rate:
        failures.append(
            f"low-confidence rate {low_conf:.3f} (score < {thresholds.low_confidence_score}) "
            f"> {thresholds.max_low_confidence_rate:.3f}"
        )
    if drift is not None and drift > thresholds.max_psi:
        failures.append(f"predicted-label PSI {drift:.3f} vs the eval split > {thresholds.max_psi:.3f}")
    if failures:
        return Decision("rollback", tuple(failures), metrics)
    healthy = (
        f"healthy over {overall.inferences} inferences: error rate {error_rate:.3f}, "
        f"low-confidence rate {low_conf:.3f}, PSI {'n/a' if drift is None else f'{drift:.3f}'}"
    )
    return Decision("promote", (healthy,), metrics)


# --------------------------------------------------------------------------- warehouse

_WHERE = "model = ? AND version = ? AND event_time >= ? AND event_time < ?"


def collect_stats(
    wh: Warehouse,
    model: str,
    version: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    low_confidence_score: float,
) -> VersionStats:
    """One version's telemetry between `start` and `end`, aggregated in the warehouse.

    Latencies come back as a histogram at 0.1 ms resolution: bounded in size whatever
    the traffic, and finer than any device's timer is worth.
    """
    params: list[Any] = [model, version, _naive_utc(start), _naive_utc(end)]
    table = tables.TELEMETRY_EVENTS.name
    stats = VersionStats(version=version)
    counts = wh.query(
        f"SELECT COALESCE(device_class, '{UNKNOWN_DEVICE_CLASS}') AS device_class, kind, COUNT(*) AS n, "
        "SUM(CASE WHEN top1_score < ? THEN 1 ELSE 0 END) AS low_conf "
        f"FROM {table} WHERE {_WHERE} GROUP BY 1, 2",
        [low_confidence_score, *params],
    )
    for row in counts:
        cls = stats.device_class(str(row["device_class"]))
        n = int(row["n"])
        if row["kind"] == "inference":
            cls.inferences += n
            cls.low_confidence += int(row["low_conf"] or 0)
        elif row["kind"] == "error":
            cls.errors += n
        elif row["kind"] == "rollback":
            cls.rollbacks += n
    latencies = wh.query(
        f"SELECT COALESCE(device_class, '{UNKNOWN_DEVICE_CLASS}') AS device_class, "
        "ROUND(latency_ms, 1) AS latency_ms, COUNT(*) AS n "
        f"FROM {table} WHERE {_WHERE} AND kind = 'inference' AND latency_ms IS NOT NULL GROUP BY 1, 2",
        params,
    )
    for row in latencies:
        hist = stats.device_class(str(row["device_class"])).latency_hist
        hist[float(row["latency_ms"])] = int(row["n"])
    labels = wh.query(
        f"SELECT top1_label, COUNT(*) AS n FROM {table} "
        f"WHERE {_WHERE} AND kind = 'inference' AND top1_label IS NOT NULL GROUP BY 1",
        params,
    )
    stats.label_counts = {str(r["top1_label"]): int(r["n"]) for r in labels}
    return stats


def eval_distribution(wh: Warehouse, dataset_version: str | None) -> dict[str, float]:
    """Examples per label in the eval split of a dataset version (empty if unknown)."""
    if not dataset_version:
        return {}
    rows = wh.query(
        f"SELECT label, SUM(examples) AS n FROM {tables.DATASET_CLASSES.name} "
        "WHERE dataset_version = ? AND split = 'eval' GROUP BY 1",
        [dataset_version],
    )
    return {str(r["label"]): float(r["n"]) for r in rows if r["n"]}


def record_decision(
    wh: Warehouse,
    *,
    model: str,
    version: str,
    alias: str,
    decided_on: dt.date,
    decision: Decision,
    decided_at: dt.datetime,
) -> None:
    """Write the `release_decisions` row; its natural key makes a re-run replace it."""
    wh.upsert(
        tables.RELEASE_DECISIONS,
        [
            {
                "model": model,
                "version": version,
                "alias": alias,
                "decided_on": decided_on,
                "decision": decision.verdict,
                "reason": decision.reason,
                "metrics": json.dumps(decision.metrics, sort_keys=True, default=str),
                "decided_at": decided_at,
            }
        ],
    )


def window(end: dt.datetime, days: int) -> tuple[dt.datetime, dt.datetime]:
    """The telemetry window `days` long that ends at `end`."""
    return end - dt.timedelta(days=days), end


def _naive_utc(value: dt.datetime) -> dt.datetime:
    # The warehouse stores naive UTC timestamps; comparing with aware ones fails in DuckDB.
    if value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)
