"""`release_health` end to end: real Airflow (`dag.test()`), the real registry over HTTP, seeded telemetry."""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from pathlib import Path
from typing import Any

import pytest

from edgeloop.settings import DEFAULT_MODEL

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

MODEL = DEFAULT_MODEL  # the DAGs' default: these tests set no EDGELOOP_DAGS_MODEL_NAME
LABELS = ["lavender-soap", "mint-shampoo", "rose-bath-bomb"]
EVAL_COUNTS = {"lavender-soap": 30, "mint-shampoo": 20, "rose-bath-bomb": 10}
DAY = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC)


def _publish_canary(registry: Any, make_package: Any, workspace: Path) -> None:
    """Production = version 1, canary = version 2 at 10 %, trained on dataset v0002."""
    with registry.client() as client:
        for n in (1, 2):
            folder = make_package(
                workspace / "packages" / f"run-{n}",
                model=MODEL,
                run_id=f"run-{n}",
                labels=LABELS,
                dataset_version=f"v000{n}",
            )
            assert client.publish(MODEL, str(folder)).version == n
        client.set_alias(MODEL, "production", 1)
        client.set_alias(MODEL, "canary", 2, rollout_percent=10)


def _seed(*, version: str, n: int, latency: float, errors: int = 0, labels: dict[str, int] | None = None) -> None:
    from edgeloop import tables, warehouse

    rng = random.Random(f"{version}-{n}-{latency}")
    weights = labels or EVAL_COUNTS
    names = list(weights)
    rows: list[dict[str, Any]] = []
    for i in range(n + errors):
        at = DAY - dt.timedelta(hours=rng.uniform(1, 72))
        device_class = "phone-mid" if i % 4 else "edge-box"
        row: dict[str, Any] = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "device_id": f"device-{i % 37}",
            "event_time": at,
            "received_at": at,
            "kind": "inference" if i < n else "error",
            "model": MODEL,
            "version": version,
            "variant": "tflite_int8",
            "device_class": device_class,
        }
        if i < n:
            row |= {
                "latency_ms": latency * rng.uniform(0.8, 1.2) * (0.5 if device_class == "edge-box" else 1.0),
                "top1_label": rng.choices(names, weights=[weights[k] for k in names])[0],
                "top1_score": rng.uniform(0.7, 0.99),
            }
        rows.append(row)
    with warehouse.connect() as wh:
        wh.insert_new(tables.TELEMETRY_EVENTS, rows)
        wh.upsert(
            tables.DATASET_CLASSES,
            [
                {"dataset_version": "v0002", "split": "eval", "label": k, "label_index": i, "examples": v}
                for i, (k, v) in enumerate(EVAL_COUNTS.items())
            ],
        )


def _decisions() -> list[dict[str, Any]]:
    from edgeloop import warehouse

    with warehouse.connect() as wh:
        return wh.query("SELECT * FROM release_decisions ORDER BY decided_on")


def test_a_healthy_canary_is_promoted(registry_server: Any, run_dag: Any, make_package: Any, tmp_path: Path) -> None:
    _publish_canary(registry_server, make_package, tmp_path / "workspace")
    _seed(version="1", n=300, latency=20.0)
    _seed(version="2", n=400, latency=21.0)

    states = run_dag("release_health", DAY)

    assert states["promote_canary"] == "success", states
    assert states["roll_back_canary"] == "skipped"
    with registry_server.client() as client:
        assert client.alias(MODEL, "production").version == 2  # type: ignore[union-attr]
    [row] = _decisions()
    assert (row["model"], row["version"], row["alias"], row["decision"]) == (MODEL, "2", "canary", "promote")
    assert row["decided_on"] == DAY.date()
    metrics = json.loads(row["metrics"])
    assert metrics["overall"]["inferences"] == 400
    assert metrics["dataset_version"] == "v0002"
    assert metrics["psi"] < 0.1
    assert set(metrics["device_classes"]) == {"phone-mid", "edge-box"}
    assert (
        metrics["device_classes"]["phone-mid"]["latency_p95_ms"]
        > metrics["device_classes"]["edge-box"]["latency_p95_ms"]
    )


def test_an_unhealthy_canary_is_rolled_back_and_a_rerun_replaces_its_row(
    registry_server: Any, run_dag: Any, make_package: Any, tmp_path: Path
) -> None:
    _publish_canary(registry_server, make_package, tmp_path / "workspace")
    _seed(version="1", n=300, latency=20.0)
    # Twice as slow as production, 5 % errors, and predicting one product far too often.
    _seed(
        version="2",
        n=400,
        latency=45.0,
        errors=20,
        labels={"lavender-soap": 90, "mint-shampoo": 5, "rose-bath-bomb": 5},
    )

    states = run_dag("release_health", DAY)

    assert states["roll_back_canary"] == "success", states
    assert states["promote_canary"] == "skipped"
    with registry_server.client() as client:
        # A first canary has no previous target: its cohort goes back to production's version.
        assert client.alias(MODEL, "canary").version == 1  # type: ignore[union-attr]
        assert client.alias(MODEL, "production").version == 1  # type: ignore[union-attr]
    [row] = _decisions()
    assert row["decision"] == "rollback"
    for needle in ("error rate", "PSI", "production's"):
        assert needle in row["reason"], row["reason"]

    # Same day again, with the canary re-instated by hand: the day's row is replaced, not added.
    with registry_server.client() as client:
        client.set_alias(MODEL, "canary", 2, rollout_percent=10)
    states = run_dag("release_health", DAY)
    assert states["roll_back_canary"] == "success", states
    [again] = _decisions()
    assert again["decision"] == "rollback"
    assert again["decided_at"] >= row["decided_at"]
    from edgeloop import warehouse

    with warehouse.connect() as wh:
        [latest] = wh.query("SELECT * FROM v_latest_release_decision")
    assert (latest["version"], latest["decision"], latest["decided_at"]) == ("2", "rollback", again["decided_at"])


def test_too_few_events_waits_and_leaves_the_aliases(
    registry_server: Any, run_dag: Any, make_package: Any, tmp_path: Path
) -> None:
    _publish_canary(registry_server, make_package, tmp_path / "workspace")
    _seed(version="2", n=20, latency=20.0)

    states = run_dag("release_health", DAY)

    assert states["keep_waiting"] == "success", states
    assert states["promote_canary"] == states["roll_back_canary"] == "skipped"
    with registry_server.client() as client:
        assert client.alias(MODEL, "canary").version == 2  # type: ignore[union-attr]
    [row] = _decisions()
    assert row["decision"] == "wait" and "only 20 inference events" in row["reason"]
