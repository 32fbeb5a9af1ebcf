"""TF-free rules of conversion: the parity gate, inspection verdicts, the table, option parsing, data checks."""

from __future__ import annotations

import numpy as np
import pytest

from conversion import gate, inspection
from conversion.data import ConversionData
from conversion.errors import LabelMismatch, MissingData
from conversion.pipeline import parse_variants, warehouse_rows
from conversion.report import app_usage, markdown_table
from conversion.settings import ConvertSettings, get_convert_settings
from edge.variants import VARIANTS
from edgeloop.card import VariantEntry, VariantLatency
from edgeloop.errors import ConfigError

LABELS = ["a", "b", "c"]


def thresholds(**settings: float) -> gate.Thresholds:
    """The parity gate's thresholds: the settings' defaults, with `settings` overriding (built per test: no env)."""
    return gate.Thresholds.from_settings(ConvertSettings(**settings))


def onehot(pred: list[int], n: int = 3, p: float = 0.9) -> np.ndarray:
    out = np.full((len(pred), n), (1 - p) / (n - 1), dtype=np.float32)
    out[np.arange(len(pred)), pred] = p
    return out


def test_metrics_accuracy_macro_f1_and_recall() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    m = gate.classification_metrics(y, np.array([0, 1, 1, 1, 2, 0]), LABELS)
    assert m.accuracy == pytest.approx(4 / 6)
    assert m.class_recall == {"a": 0.5, "b": 1.0, "c": 0.5}
    # F1: a = 0.5 (p .5 r .5), b = 0.8 (p 2/3 r 1), c = 2/3 (p 1 r .5)
    assert m.macro_f1 == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_metrics_skip_classes_without_eval_images() -> None:
    m = gate.classification_metrics(np.array([0, 0]), np.array([0, 0]), LABELS)
    assert m.class_recall == {"a": 1.0}
    assert m.macro_f1 == 1.0


def test_parity_metrics_are_the_training_metrics() -> None:
    from edgeloop.metrics import evaluate

    rng = np.random.default_rng(5)
    labels = ["a", "b", "c", "d", "e"]
    y = rng.integers(0, 4, size=200)  # "e" has no eval images
    probs = rng.random((200, 5))
    probs[:, 3] = 0  # "d" is never predicted
    m = gate.classification_metrics(y, probs.argmax(1), labels)
    report = evaluate(probs, y, labels)
    assert (m.accuracy, m.macro_f1) == (report.accuracy, report.macro_f1)
    assert m.class_recall == {c.label: c.recall for c in report.classes if c.support}


def test_identical_fp32_variant_passes_every_check() -> None:
    y = np.array([0, 1, 2, 0, 1, 2])
    ref = onehot([0, 1, 2, 0, 1, 1])
    keras = gate.classification_metrics(y, ref.argmax(1), LABELS)
    found = gate.parity(ref + 1e-6, ref, y, LABELS)
    checks = gate.checks(VARIANTS["tflite_fp32"], found, keras, thresholds())
    assert all(c.passed for c in checks)
    assert {c.name for c in checks} >= {"macro_f1_drop", "top1_agreement", "max_abs_diff", "class_recall_drop:a"}


def test_fp32_fails_on_probability_drift_even_when_top1_agrees() -> None:
    y = np.array([0, 1, 2])
    ref = onehot([0, 1, 2])
    keras = gate.classification_metrics(y, ref.argmax(1), LABELS)
    found = gate.parity(onehot([0, 1, 2], p=0.8), ref, y, LABELS)
    failed = gate.failures(gate.checks(VARIANTS["onnx_fp32"], found, keras, thresholds()))
    assert len(failed) == 1
    assert "max abs probability difference 1.00e-01 (max 1e-04)" in failed[0]


def test_quantized_variant_tolerates_small_drift_but_not_disagreement() -> None:
    y = np.array([0] * 50 + [1] * 50)
    ref = onehot(list(y), n=2)
    keras = gate.classification_metrics(y, ref.argmax(1), ["a", "b"])
    drift = gate.parity(onehot(list(y), n=2, p=0.85), ref, y, ["a", "b"])
    assert all(c.passed for c in gate.checks(VARIANTS["tflite_int8"], drift, keras, thresholds()))
    # Five of class b flipped to a: 95 % agreement, recall(b) drops 10 points.
    flipped = list(y[:95]) + [0] * 5
    broken = gate.parity(onehot(flipped, n=2), ref, y, ["a", "b"])
    failed = gate.failures(gate.checks(VARIANTS["tflite_int8"], broken, keras, thresholds()))
    text = "; ".join(failed)
    assert "top-1 agreement with Keras 95.00% (min 98.00%)" in text
    assert "recall of 'b' 0.9000 vs Keras 1.0000: drop 10.00 points (max 3.00)" in text
    assert "macro-F1" in text


def test_one_photo_of_a_small_class_is_noise_not_a_broken_quantization() -> None:
    y = np.array([0] * 14 + [1] * 86)
    ref = onehot(list(y), n=2)
    keras = gate.classification_metrics(y, ref.argmax(1), ["a", "b"])
    one_off = gate.parity(onehot([1, *y[1:]], n=2), ref, y, ["a", "b"])  # 99 % agreement, recall(a) -7.1 points
    check = {c.name: c for c in gate.checks(VARIANTS["onnx_int8"], one_off, keras, thresholds())}
    recall = check["class_recall_drop:a"]
    assert recall.passed and recall.value == pytest.approx(1 / 14)
    assert recall.detail.endswith("lost 1, gained 0 of 14 photos; paired exact test p=0.500 (within noise at 0.05)")
    strict = gate.checks(VARIANTS["onnx_int8"], one_off, keras, thresholds(significance=1.0))
    assert not {c.name: c for c in strict}["class_recall_drop:a"].passed


def test_fp16_is_judged_as_quantized() -> None:
    assert gate.is_quantized(VARIANTS["tflite_fp16"])
    assert not gate.is_quantized(VARIANTS["onnx_fp32"])
    y = np.array([0, 1])
    ref = onehot([0, 1], n=2)
    keras = gate.classification_metrics(y, ref.argmax(1), ["a", "b"])
    found = gate.parity(onehot([0, 1], n=2, p=0.95), ref, y, ["a", "b"])
    names = {c.name for c in gate.checks(VARIANTS["tflite_fp16"], found, keras, thresholds())}
    assert "max_abs_diff" not in names


def test_parity_refuses_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="does not match"):
        gate.parity(onehot([0, 1]), onehot([0, 1, 2]), np.array([0, 1]), LABELS)


def _int8_found(**kw: object) -> inspection.Inspection:
    base: dict[str, object] = {
        "input_dtype": "uint8",
        "output_dtype": "uint8",
        "input_scale": 1.0,
        "input_zero_point": 0,
        "output_scale": 1 / 256,
        "output_zero_point": 0,
        "int_weights": 50,
        "float_weights": 0,
        "int_weight_share": 1.0,
    }
    base.update(kw)
    return inspection.Inspection(**base)  # type: ignore[arg-type]


def test_inspection_accepts_a_real_int8_file() -> None:
    assert inspection.problems(VARIANTS["tflite_int8"], _int8_found()) == []


def test_inspection_rejects_an_int8_file_with_float_tensors() -> None:
    found = _int8_found(
        input_dtype="float32", output_dtype="float32", int_weights=0, float_weights=50, int_weight_share=0.0
    )
    problems = inspection.problems(VARIANTS["tflite_int8"], found)
    text = "; ".join(problems)
    assert "input tensor is float32, tflite_int8 promises uint8" in text
    assert "output tensor is float32" in text
    assert "claims integer weights but only 0% of weight values are integers" in text
    assert "not quantized" in text


def test_inspection_onnx_int8_needs_qdq_nodes_and_fp32_needs_float_weights() -> None:
    onnx_found = inspection.Inspection("float32", "float32", int_weights=40, int_weight_share=1.0, qdq_nodes=0)
    assert any("QuantizeLinear" in p for p in inspection.problems(VARIANTS["onnx_int8"], onnx_found))
    fp32_found = inspection.Inspection("float32", "float32", int_weights=3, float_weights=10, int_weight_share=0.1)
    assert any("should keep float weights" in p for p in inspection.problems(VARIANTS["onnx_fp32"], fp32_found))
    fp16_found = inspection.Inspection("float32", "float32", float_weights=10)
    assert any("float16" in p for p in inspection.problems(VARIANTS["tflite_fp16"], fp16_found))


def test_dynamic_range_share_threshold() -> None:
    # Dynamic range leaves small layers in float; most values must still be integers.
    assert inspection.Inspection(
        "float32", "float32", int_weights=40, float_weights=5, int_weight_share=0.97
    ).weights_quantized
    assert not inspection.Inspection(
        "float32", "float32", int_weights=2, float_weights=40, int_weight_share=0.1
    ).weights_quantized


def _entry(name: str, publishable: bool = True, reason: str = "") -> VariantEntry:
    return VariantEntry(
        variant=name,
        file=f"m-{name}.tflite",
        sha256="0" * 64,
        size=1_500_000,
        runtime="litert",
        quantization="int8",
        input_dtype="uint8",
        output_dtype="uint8",
        weights_quantized=True,
        accuracy=0.9,
        macro_f1=0.88,
        agreement=0.99,
        max_abs_diff=0.02,
        latency=VariantLatency(p50_ms=1.234, p90_ms=2.0, p99_ms=3.0, init_ms=10.0, peak_mem_mb=80.0, runs=50),
        publishable=publishable,
        reason=reason,
    )


def test_markdown_table_rows_and_reasons() -> None:
    table = markdown_table(
        [_entry("tflite_int8"), _entry("onnx_int8", False, "parity gate failed: top-1 agreement 50%")],
        keras_macro_f1=0.9,
        keras_accuracy=0.91,
    )
    lines = table.splitlines()
    assert lines[0].startswith("| Variant | Status | Size (MB)")
    assert lines[2].startswith("| keras (reference) | - | - | 0.9100 | 0.9000")
    assert lines[3] == (
        "| tflite_int8 | ✅ | 1.50 | 0.9000 | 0.8800 | +2.00 | 99.00% | 2.0e-02 | 1.23 | 2.00 | 10.0 | 80 |"
    )
    assert "| onnx_int8 | ❌ |" in lines[4]
    assert lines[-1] == "- **onnx_int8** not publishable: parity gate failed: top-1 agreement 50%"


def test_app_usage_loads_the_smallest_publishable_tflite_file_in_kotlin_swift_and_typescript() -> None:
    small = _entry("tflite_int8").model_copy(update={"size": 600_000})
    broken = _entry("tflite_fp16", False, "parity").model_copy(update={"size": 100_000})
    usage = app_usage([_entry("tflite_fp32"), small, broken])
    assert usage.count('"m-tflite_int8.tflite"') == 1 and '"/models/m-tflite_int8.tflite"' in usage
    assert 'forResource: "m-tflite_int8", ofType: "tflite"' in usage
    assert "```kotlin" in usage and "```swift" in usage and "```ts" in usage and "fp16" not in usage
    assert app_usage([broken]) == ""


def test_parse_variants() -> None:
    assert parse_variants("all") == tuple(VARIANTS)
    assert parse_variants("tflite_int8, onnx_fp32,tflite_int8") == ("tflite_int8", "onnx_fp32")
    with pytest.raises(ConfigError, match=r"unknown variant\(s\) \['tflite_int4'\]; choose from tflite_fp32"):
        parse_variants("tflite_int4")


def test_every_variant_has_an_exporter() -> None:
    from conversion.exporters import EXPORTERS  # module imports no TensorFlow at import time

    assert set(EXPORTERS) == set(VARIANTS)


def test_settings_reject_unsupported_opset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGELOOP_CONVERT_OPSET", "21")
    get_convert_settings.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"EDGELOOP_CONVERT_OPSET=.21.*use 13\.\.18"):
            get_convert_settings()
    finally:
        get_convert_settings.cache_clear()
    assert ConvertSettings.model_fields["opset"].default == 17


def test_thresholds_and_opset_come_from_the_settings_unless_an_option_overrides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dataclasses

    from conversion.pipeline import ConvertOptions, _resolve

    defaults, found = ConvertSettings(), thresholds()
    assert dataclasses.asdict(found) == {f.name: getattr(defaults, f.name) for f in dataclasses.fields(found)}
    monkeypatch.setenv("EDGELOOP_CONVERT_MAX_RECALL_DROP", "0.05")
    monkeypatch.setenv("EDGELOOP_CONVERT_OPSET", "15")
    settings = get_convert_settings()
    resolved = _resolve(ConvertOptions(), settings)
    assert (resolved.thresholds.max_recall_drop, resolved.thresholds.max_f1_drop, resolved.opset) == (0.05, 0.01, 15)
    assert _resolve(ConvertOptions(opset=13), settings).opset == 13
    with pytest.raises(ConfigError, match=r"^--opset 12 is not supported; use 13\.\.18"):
        _resolve(ConvertOptions(opset=12), settings)


def _data(labels: list[str], n_rep: int = 4) -> ConversionData:
    return ConversionData(
        eval_images=np.zeros((6, 8, 8, 3), np.uint8),
        eval_labels=np.array([0, 1, 2, 0, 1, 2]),
        representative=np.zeros((n_rep, 8, 8, 3), np.uint8),
        labels=labels,
    )


def test_data_check_refuses_another_label_map() -> None:
    with pytest.raises(
        LabelMismatch, match=r"only in the dataset: \['d'\].*convert it with the dataset it was trained on"
    ):
        _data(["a", "b", "c", "d"]).check(LABELS, 8, 8, need_representative=True)
    with pytest.raises(LabelMismatch, match=r"order differs from index 1 \('b' vs 'c'\)"):
        _data(["a", "c", "b"]).check(LABELS, 8, 8, need_representative=True)


def test_data_check_refuses_missing_representative_and_wrong_size() -> None:
    with pytest.raises(MissingData, match=r"no representative images.*--variants"):
        _data(LABELS, n_rep=0).check(LABELS, 8, 8, need_representative=True)
    _data(LABELS, n_rep=0).check(LABELS, 8, 8, need_representative=False)
    with pytest.raises(MissingData, match=r"uint8 \(N, 16, 16, 3\)"):
        _data(LABELS).check(LABELS, 16, 16, need_representative=False)


def test_warehouse_rows_carry_the_natural_key() -> None:
    import datetime as dt

    from edge.manifest import InputSpec
    from edgeloop.card import ConversionInfo, Lineage, ModelCard

    card = ModelCard(
        name="m",
        version="r1",
        created_at=dt.datetime.now(dt.UTC),
        labels=LABELS,
        input=InputSpec(height=8, width=8, dtype="float32"),
        lineage=Lineage(dataset_version="v1", run_id="r1"),
        variants=[_entry("tflite_int8")],
        conversion=ConversionInfo(
            converted_at=dt.datetime.now(dt.UTC),
            n_eval_images=6,
            n_representative_images=4,
            keras_accuracy=0.9,
            keras_macro_f1=0.9,
            gate_ignored=True,
        ),
    )
    from edgeloop import tables, warehouse

    rows = warehouse_rows(card, "/pkg")
    with warehouse.connect("duckdb:///:memory:") as wh:
        assert wh.upsert(tables.CONVERSIONS, rows) == 1
        assert wh.upsert(tables.CONVERSIONS, rows) == 1
        got = wh.query("SELECT variant, file, gate_ignored, latency_p50_ms FROM conversions")
    assert got == [
        {"variant": "tflite_int8", "file": "/pkg/m-tflite_int8.tflite", "gate_ignored": True, "latency_p50_ms": 1.234}
    ]


def test_importing_conversion_and_its_cli_does_not_import_tensorflow() -> None:
    import subprocess
    import sys

    code = "import sys, conversion, conversion.cli, conversion.exporters; assert 'tensorflow' not in sys.modules"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-1000:]


def test_onnx_reduce_range_auto_follows_vnni() -> None:
    from conversion.settings import onnx_reduce_range

    vnni = "flags\t\t: fpu avx2 avx512_vnni\n"
    plain = "flags\t\t: fpu avx2\n"
    # 7-bit weights only where onnxruntime's u8*s8 path would saturate (x86 without VNNI).
    assert onnx_reduce_range("auto", vnni) is False
    assert onnx_reduce_range("auto", plain) is True
    assert onnx_reduce_range("on", vnni) is True and onnx_reduce_range("off", plain) is False
    assert ConvertSettings(onnx_reduce_range="auto").tflite_dynamic_hybrid is False
