"""`edgeloop bench`: files and registry versions, table + JSON + CSV, upload to the real registry."""

from __future__ import annotations

import csv
import json
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import typer
from edge_testkit import LABELS
from registry_server import RegistryServer
from typer.testing import CliRunner

from edge.cli import register


def app() -> typer.Typer:
    root = typer.Typer()
    root.callback()(lambda: None)  # a group, like the edgeloop root
    register(root)
    return root


def test_entry_point_registers_bench() -> None:
    (ep,) = [e for e in entry_points(group="edgeloop.cli") if e.name == "edge"]
    assert ep.value == "edge.cli:register" and ep.load() is register


def test_bench_files_writes_table_json_and_csv(tmp_path: Path, onnx_v1: Path) -> None:
    result = CliRunner().invoke(
        app(),
        [
            "bench",
            str(onnx_v1),
            "--runs",
            "20",
            "--warmup",
            "2",
            "--threads",
            "1",
            "--json",
            str(tmp_path / "b.json"),
            "--csv",
            str(tmp_path / "b.csv"),
            "--device-class",
            "ci-x86",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "onnx_fp32" in result.output and "p50 ms" in result.output
    (record,) = json.loads((tmp_path / "b.json").read_text())
    assert record["runs"] == 20 and record["threads"] == 1 and record["device_class"] == "ci-x86"
    assert 0 < record["p50_ms"] <= record["p90_ms"] <= record["p99_ms"] <= record["max_ms"]
    assert record["init_ms"] > 0 and record["peak_mem_mb"] > 0
    rows = list(csv.DictReader((tmp_path / "b.csv").read_text().splitlines()))
    assert rows[0]["variant"] == "onnx_fp32" and float(rows[0]["p50_ms"]) == pytest.approx(record["p50_ms"])


def test_bench_needs_something_to_time() -> None:
    result = CliRunner().invoke(app(), ["bench"])
    assert result.exit_code != 0 and "give model files" in result.output


def test_bench_every_publishable_variant_of_a_registry_version_and_upload(
    registry: RegistryServer, tmp_path: Path, onnx_v1: Path, onnx_v2: Path
) -> None:
    import duckdb

    # Two ONNX variants of one version (the int8 slot holds another real ONNX file; bench does not care).
    version = registry.publish({"onnx_fp32": onnx_v1, "onnx_int8": onnx_v2}, "run-1", LABELS)
    result = CliRunner().invoke(
        app(),
        [
            "bench",
            "--registry",
            registry.url,
            "--model",
            RegistryServer.MODEL,
            "--version",
            str(version),
            "--read-key",
            registry.tokens["reader"],
            "--api-key",
            registry.tokens["qa"],
            "--runs",
            "10",
            "--warmup",
            "1",
            "--upload",
            "--device-class",
            "ci-x86",
            "--json",
            str(tmp_path / "r.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    records = json.loads((tmp_path / "r.json").read_text())
    assert sorted(r["variant"] for r in records) == ["onnx_fp32", "onnx_int8"]
    assert all(r["uploaded"] and r["version"] == version for r in records)
    registry.stop()
    with duckdb.connect(str(registry.workspace / "warehouse.duckdb"), read_only=True) as con:
        stored = con.execute("SELECT variant, device_class FROM benchmarks ORDER BY variant").fetchall()
    assert stored == [("onnx_fp32", "ci-x86"), ("onnx_int8", "ci-x86")]


@pytest.mark.tf
def test_bench_tflite_file(tflite_int8: Path) -> None:
    result = CliRunner().invoke(app(), ["bench", str(tflite_int8), "--runs", "10", "--warmup", "1"])
    assert result.exit_code == 0, result.output
    assert "tflite_int8" in result.output
