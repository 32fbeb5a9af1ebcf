"""Release-health decision rule, without Airflow: promote / roll back / wait (its math: tests/edgeloop/test_stats.py)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from dags import _health as health
from dags._settings import HealthThresholds
from edgeloop.stats import OTHER_LABEL, psi


def _stats(
    version: str,
    *,
    device_class: str = "phone-mid",
    inferences: int = 500,
    errors: int = 0,
    rollbacks: int = 0,
    low_confidence: int = 10,
    latency: float = 20.0,
    labels: dict[str, int] | None = None,
) -> health.VersionStats:
    stats = health.VersionStats(version=version)
    cls = stats.device_class(device_class)
    cls.inferences, cls.errors, cls.rollbacks, cls.low_confidence = inferences, errors, rollbacks, low_confidence
    # A spread of latencies around `latency`: p95 = 1.09 × latency.
    for i in range(inferences):
        value = round(latency * (0.9 + 0.2 * i / max(inferences - 1, 1)), 1)
        cls.latency_hist[value] = cls.latency_hist.get(value, 0) + 1
    stats.label_counts = (
        labels if labels is not None else {"rose-soap": inferences // 2, "mint-shampoo": inferences // 2}
    )
    return stats


EVAL = {"rose-soap": 40.0, "mint-shampoo": 40.0}


def test_a_healthy_canary_is_promoted_with_its_numbers() -> None:
    decision = health.decide(_stats("3"), HealthThresholds(), production=_stats("2"), eval_labels=EVAL)
    assert decision.verdict == "promote"
    assert "healthy over 500 inferences" in decision.reason
    metrics = decision.metrics
    assert metrics["overall"]["inferences"] == 500
    assert metrics["psi"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["device_classes"]["phone-mid"]["latency_p95_ms"] == pytest.approx(21.8, abs=0.1)
    assert metrics["production_version"] == "2"
    json.dumps(metrics)  # the row stores it as JSON


def test_too_few_events_waits() -> None:
    decision = health.decide(_stats("3", inferences=50), HealthThresholds(min_events=200), eval_labels=EVAL)
    assert decision.verdict == "wait"
    assert "only 50 inference events" in decision.reason


def test_device_rollbacks_roll_back_even_before_enough_events() -> None:
    decision = health.decide(_stats("3", inferences=5, rollbacks=2), HealthThresholds(max_rollbacks=1))
    assert decision.verdict == "rollback"
    assert "2 device rollback(s)" in decision.reason


def test_each_unhealthy_signal_rolls_back_with_its_reason() -> None:
    t = HealthThresholds(max_p95_latency_ms=100.0)
    cases = {
        "error rate": _stats("3", errors=50),
        "low-confidence rate": _stats("3", low_confidence=400),
        "PSI": _stats("3", labels={"rose-soap": 495, "mint-shampoo": 5}),
        "p95 latency 130.8 ms > 100.0 ms": _stats("3", latency=120.0),
    }
    for needle, stats in cases.items():
        decision = health.decide(stats, t, eval_labels=EVAL)
        assert decision.verdict == "rollback", needle
        assert needle in decision.reason, decision.reason


def test_latency_regression_is_judged_per_device_class_against_production() -> None:
    canary = _stats("3", latency=40.0)
    canary.device_class("edge-box").add(_stats("x", latency=5.0).by_device_class["phone-mid"])
    production = _stats("2", latency=20.0)
    decision = health.decide(canary, HealthThresholds(), production=production, eval_labels=EVAL)
    assert decision.verdict == "rollback"
    assert "phone-mid: p95 latency" in decision.reason and "production's" in decision.reason
    assert "edge-box" not in decision.reason


def test_small_device_classes_are_reported_but_not_judged() -> None:
    canary = _stats("3")
    canary.device_class("rare-tablet").add(_stats("x", inferences=5, latency=900.0).by_device_class["phone-mid"])
    decision = health.decide(canary, HealthThresholds(max_p95_latency_ms=100.0), eval_labels=EVAL)
    assert decision.verdict == "promote"
    assert decision.metrics["device_classes"]["rare-tablet"]["judged"] is False


def test_labels_unknown_to_the_eval_split_are_binned_together() -> None:
    stats = _stats("3", labels={"rose-soap": 250, "mint-shampoo": 200, "ghost-a": 25, "ghost-b": 25})
    decision = health.decide(stats, HealthThresholds(), eval_labels=EVAL)
    expected = psi(EVAL, {"rose-soap": 250, "mint-shampoo": 200, OTHER_LABEL: 50})
    assert decision.metrics["psi"] == pytest.approx(expected, abs=1e-4)


def test_without_an_eval_distribution_psi_is_not_judged() -> None:
    decision = health.decide(_stats("3", labels={"rose-soap": 500}), HealthThresholds(), eval_labels={})
    assert decision.verdict == "promote"
    assert decision.metrics["psi"] is None


def test_window_ends_at_the_given_time() -> None:
    end = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    assert health.window(end, 7) == (dt.datetime(2026, 11, 16, tzinfo=dt.UTC), end)
