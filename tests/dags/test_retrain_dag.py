"""`retrain` end to end in real Airflow (`dag.test()`): Beam ingest, Keras training, the gate,
TFLite conversion and publishing to the real registry over HTTP, on a small synthetic catalogue.

One test walks the story in order, because each step needs the one before and training
is the expensive part: a model the gate refuses ends "not published" with the gate's
reasons; a good one ends with `canary` pointing at it; re-running that logical date
adds no rows, no artefacts and no registry version; and when a new product lands while
that version is in production, the next run extends the dataset, warm-starts from the
production run and is gated against it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from edgeloop.settings import DEFAULT_MODEL

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.tf, pytest.mark.beam]

MODEL = DEFAULT_MODEL  # the DAGs' default: these tests set no EDGELOOP_DAGS_MODEL_NAME
BAD_DAY = dt.datetime(2026, 11, 16, tzinfo=dt.UTC)
GOOD_DAY = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
NEXT_DAY = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
TABLES = (
    "datasets",
    "dataset_classes",
    "training_runs",
    "epoch_metrics",
    "class_metrics",
    "gate_results",
    "conversions",
)

# Small enough for two CPU cores: 3 products, 32-pixel inputs, a couple of epochs, one variant.
TINY = {
    "EDGELOOP_TRAIN_SIZE": "32",
    "EDGELOOP_TRAIN_ALPHA": "0.35",
    "EDGELOOP_TRAIN_EPOCHS": "3",
    "EDGELOOP_TRAIN_HEAD_EPOCHS": "0",
    "EDGELOOP_TRAIN_BATCH_SIZE": "16",
    "EDGELOOP_TRAIN_PATIENCE": "3",
    "EDGELOOP_TRAIN_THREADS": "2",
    "EDGELOOP_TRAIN_AUGMENT_ENABLED": "false",
    "EDGELOOP_CONVERT_VARIANTS": "tflite_fp32",
    "EDGELOOP_CONVERT_RUNS": "3",
    "EDGELOOP_CONVERT_WARMUP": "1",
    "EDGELOOP_CONVERT_REPRESENTATIVE_SAMPLES": "8",
    # Beam in this process: worker processes would each import TensorFlow again.
    "EDGELOOP_DAGS_RETRY_DELAY_S": "1",
    "EDGELOOP_DAGS_BEAM_OPTIONS": '["--direct_running_mode=in_memory", "--direct_num_workers=1"]',
}


def _clear_stage_caches() -> None:
    """Stages cache their settings per process; `dag.test()` runs tasks in this one."""
    from conversion.settings import get_convert_settings
    from pipelines.gate.settings import get_gate_settings
    from pipelines.train.settings import get_train_settings

    for cached in (get_train_settings, get_convert_settings, get_gate_settings):
        cached.cache_clear()


def _row_counts() -> dict[str, int]:
    from edgeloop import warehouse

    with warehouse.connect() as wh:
        return {name: int(wh.query(f"SELECT COUNT(*) AS n FROM {name}")[0]["n"]) for name in TABLES}


def _files(root: Path) -> set[str]:
    """Artefacts under the workspace, leaving out the registry's own store and DuckDB's write-ahead log."""
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not p.name.endswith(".wal") and not str(p.relative_to(root)).startswith("registry/")
    }


def test_retrain_gates_publishes_to_canary_and_reruns_idempotently(
    registry_server: Any,
    run_dag: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from edgeloop.synth import generate

    workspace = tmp_path / "workspace"
    photos = workspace / "photos"
    generate(photos, n_products=3, images_per_product=16, size=64, seed=3)
    for name, value in TINY.items():
        monkeypatch.setenv(name, value)

    # 1. A model the gate must refuse: a learning rate too small to learn anything, judged
    #    against a perfect-F1 floor. The run ends "not published", with the gate's reason.
    monkeypatch.setenv("EDGELOOP_TRAIN_LEARNING_RATE", "1e-9")
    monkeypatch.setenv("EDGELOOP_GATE_MIN_MACRO_F1", "1.0")
    _clear_stage_caches()
    states = run_dag("retrain", BAD_DAY)

    assert states["__run__"] == "success", states
    assert states["gate"] == "success" and states["gate_passed"] == "success", states
    assert states["convert"] == states["publish"] == states["set_canary"] == "skipped", states
    report_path = workspace / "runs" / "airflow-manual__2026-11-16T00-00-00-00-00" / "gate.json"
    report = json.loads(report_path.read_text())
    assert report["verdict"] == "fail"
    assert any(c["name"] == "min_macro_f1" and not c["passed"] for c in report["checks"]), report
    with registry_server.client() as client:
        assert client.alias(MODEL, "canary") is None

    # 2. A reachable floor: same photos (same dataset version), a new run, published to canary.
    monkeypatch.delenv("EDGELOOP_TRAIN_LEARNING_RATE")
    for floor in ("MIN_ACCURACY", "MIN_MACRO_F1", "MIN_CLASS_RECALL"):
        monkeypatch.setenv(f"EDGELOOP_GATE_{floor}", "0.0")
    _clear_stage_caches()
    states = run_dag("retrain", GOOD_DAY)

    assert all(states[t] == "success" for t in states), states
    with registry_server.client() as client:
        canary = client.alias(MODEL, "canary")
        assert canary is not None and canary.version == 1 and canary.rollout_percent == 10
    counts = _row_counts()
    assert counts["datasets"] == 1, counts  # unchanged photos gave the same dataset version back
    assert counts["training_runs"] == 2, counts

    # 3. The same logical date again: nothing new anywhere.
    files = _files(workspace)
    _clear_stage_caches()
    states = run_dag("retrain", GOOD_DAY)

    assert states["set_canary"] == "success", states
    assert _row_counts() == counts
    assert _files(workspace) == files
    with registry_server.client() as client:
        assert client.alias(MODEL, "canary").version == 1  # type: ignore[union-attr]
        assert [v["version"] for v in client.versions(MODEL)] == [1]

    # 4. A new product lands while version 1 is in production: the dataset grows
    #    incrementally, training warm-starts from production's run, the gate compares with it.
    with registry_server.client() as client:
        client.set_alias(MODEL, "production", 1)
    generate(photos, n_products=3, images_per_product=16, size=64, seed=3, add_products=1)
    # This test is about the wiring, not about how well a 3-epoch model keeps up.
    monkeypatch.setenv("EDGELOOP_GATE_MAX_MACRO_F1_DROP", "1.0")
    monkeypatch.setenv("EDGELOOP_GATE_MAX_CLASS_RECALL_DROP", "1.0")
    _clear_stage_caches()
    states = run_dag("retrain", NEXT_DAY)

    assert all(states[t] == "success" for t in states), states
    from edgeloop import warehouse

    run_id = "airflow-manual__2026-11-30T00-00-00-00-00"
    with warehouse.connect() as wh:
        [run] = wh.query(
            "SELECT dataset_version, backbone_source, n_classes FROM training_runs WHERE run_id = ?", [run_id]
        )
        baselines = {r["baseline"] for r in wh.query("SELECT baseline FROM gate_results WHERE run_id = ?", [run_id])}
    assert run["dataset_version"] == "v0002" and run["n_classes"] == 4, run
    assert run["backbone_source"].startswith("warm_start:"), run
    assert "airflow-manual__2026-11-23T00-00-00-00-00" in run["backbone_source"], run
    assert baselines and None not in baselines, baselines
    assert any(name.startswith("no_regression") for name in _gate_checks(run_id))
    with registry_server.client() as client:
        assert client.alias(MODEL, "canary").version == 2  # type: ignore[union-attr]
        assert client.alias(MODEL, "production").version == 1  # type: ignore[union-attr]


def _gate_checks(run_id: str) -> set[str]:
    from edgeloop import warehouse

    with warehouse.connect() as wh:
        return {r["check_name"] for r in wh.query("SELECT check_name FROM gate_results WHERE run_id = ?", [run_id])}
