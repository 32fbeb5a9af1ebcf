"""The runtime on real files: metadata from the file, preprocessing, top-k, batches, both engines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import edge
from edge.runtime import OnnxBackend, Runtime

LABELS = ["lavender-soap", "rose-bath-bomb", "mint-shampoo-bar"]


def test_onnx_labels_and_spec_come_from_the_file(onnx_v1: Path) -> None:
    clf = edge.load(onnx_v1)
    assert clf.labels == LABELS and clf.size == (16, 16)
    assert isinstance(clf.backend, OnnxBackend) and isinstance(clf.backend, Runtime)
    assert clf.backend.name == "onnxruntime"


def test_pil_and_array_inputs_agree_and_topk_is_sorted(onnx_v1: Path) -> None:
    clf = edge.load(onnx_v1)
    rng = np.random.default_rng(1)
    big = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)
    from_array = clf.classify(big, k=3)
    from_pil = clf.classify(Image.fromarray(big), k=3)
    assert from_array == from_pil
    scores = [s for _, s in from_array]
    assert scores == sorted(scores, reverse=True) and abs(sum(scores) - 1) < 1e-5
    assert len(clf.classify(big, k=1)) == 1
    gray = Image.fromarray(big).convert("L")  # non-RGB input is converted, not rejected
    assert len(clf.classify(gray)) == 3


def test_batch_equals_single_calls(onnx_v1: Path) -> None:
    clf = edge.load(onnx_v1)
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(5)]
    batch = clf.classify_batch(images, k=2)
    single = [clf.classify(i, k=2) for i in images]
    for b, s in zip(batch, single, strict=True):
        assert [label for label, _ in b] == [label for label, _ in s]
        np.testing.assert_allclose([x for _, x in b], [x for _, x in s], rtol=1e-5)
    probs = clf.predict(np.stack(images))
    assert probs.shape == (5, 3)


def test_variant_must_match_the_file(onnx_v1: Path) -> None:
    with pytest.raises(edge.ModelLoadError, match="runs on litert"):
        edge.load(onnx_v1, variant="tflite_fp32")
    assert edge.load(onnx_v1, variant="onnx_fp32").labels == LABELS


def test_unloadable_files_raise_model_load_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(edge.ModelLoadError):
        edge.load(bad)
    with pytest.raises(edge.ModelLoadError):
        edge.load(tmp_path / "missing.tflite")
    with pytest.raises(edge.ModelLoadError):
        edge.load(tmp_path / "model.pt")


def test_available_runtimes_lists_both_engines() -> None:
    assert edge.available_runtimes() == ["litert", "onnxruntime"]


@pytest.mark.tf
def test_tflite_fp32_matches_reference_softmax(tflite_fp32: Path) -> None:
    clf = edge.load(tflite_fp32)
    assert clf.runtime == "litert" and clf.labels == LABELS
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    probs = clf.predict(images)
    assert probs.shape == (4, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert edge.health_check(clf).ok


@pytest.mark.tf
def test_tflite_int8_quantizes_input_and_dequantizes_output(tflite_fp32: Path, tflite_int8: Path) -> None:
    q = edge.load(tflite_int8)
    f = edge.load(tflite_fp32)
    assert q.backend.input_dtype == np.uint8 and q.backend.input_quant[0] > 0
    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    qp, fp = q.predict(images), f.predict(images)
    assert qp.dtype == np.float32 and np.all((qp >= 0) & (qp <= 1))
    # The same Keras weights (same seed): dequantized int8 scores track float ones within a few steps.
    assert np.max(np.abs(qp - fp)) < 0.05
    report = edge.health_check(q)
    assert report.ok, report.problems
