"""The post-swap health check on real model files: finite, probabilities, shape, latency budget, probe images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

import edge
from edge import HealthOptions


def logits_model(path: Path) -> Path:
    """The v1 graph without its softmax: finite scores that are not probabilities."""
    import onnx
    from edge_testkit import onnx_model

    onnx_model(path, version=1)
    model = onnx.load(str(path))
    graph = model.graph
    softmax = next(n for n in graph.node if n.op_type == "Softmax")
    graph.node.remove(softmax)
    for node in graph.node:
        if node.output[0] == "logits":
            node.output[0] = "probs"
    onnx.save(model, str(path))
    return path


def test_healthy_model_passes_with_synthetic_and_bundled_probes(onnx_v1: Path, tmp_path: Path) -> None:
    clf = edge.load(onnx_v1)
    report = edge.health_check(clf)
    assert report.ok and report.probes == 3 and report.median_latency_ms > 0
    probe = tmp_path / "probe.png"
    Image.fromarray(np.full((40, 30, 3), 250, np.uint8)).save(probe)
    bundled = edge.health_check(clf, HealthOptions(probe_images=(probe, probe)))
    assert bundled.ok and bundled.probes == 2


def test_nan_outputs_fail(onnx_nan: Path) -> None:
    report = edge.health_check(edge.load(onnx_nan))
    assert not report.ok and all("non-finite" in p for p in report.problems)


def test_scores_that_are_not_probabilities_fail(tmp_path: Path) -> None:
    report = edge.health_check(edge.load(logits_model(tmp_path / "logits.onnx")))
    assert not report.ok
    assert any("sum to" in p or "outside [0, 1]" in p for p in report.problems), report.problems


def test_latency_budget(onnx_v1: Path) -> None:
    report = edge.health_check(edge.load(onnx_v1), HealthOptions(latency_budget_ms=1e-6))
    assert not report.ok and "budget" in report.problems[0]
