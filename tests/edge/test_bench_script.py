"""bench/edge_sdk.py runs end to end (tiny settings) and writes the JSON it promises."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "edge_sdk.py"


def test_bench_script_writes_overhead_and_sdk_figures(tmp_path: Path, capsys: object) -> None:
    spec = importlib.util.spec_from_file_location("bench_edge", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "edge.json"
    assert (
        module.main(["--no-tflite", "--runs", "5", "--rounds", "2", "--out", str(out), "--models-dir", str(tmp_path)])
        == 0
    )
    data = json.loads(out.read_text())
    (row,) = data["harness_overhead"]
    assert row["runtime"] == "onnxruntime" and row["rounds"] == 2 and len(row["bare_p50_per_round"]) == 2
    assert row["bare_p50_ms"] > 0 and row["harness_p50_ms"] > 0
    assert data["sdk_paths"]["bench-net.onnx"]["telemetry_record_p50_ms"] > 0
