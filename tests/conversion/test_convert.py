"""Conversion end to end on a tiny trained MobileNetV2: every variant, metadata, inspection, the parity gate."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conversion import gate, inspection
from conversion.pipeline import PARITY_BATCH, ConversionResult, ConvertOptions, convert
from conversion.settings import ConvertSettings
from edge.variants import VARIANTS

pytestmark = [pytest.mark.tf, pytest.mark.slow]


@pytest.fixture(scope="module")
def converted(tiny_run: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ConversionResult, Path]]:
    """All six variants, converted once for this module, recorded in a throwaway warehouse."""
    root = tmp_path_factory.mktemp("convert")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGELOOP_WORKSPACE", str(root / "workspace"))
        from conversion.settings import get_convert_settings
        from edgeloop.settings import get_settings

        get_settings.cache_clear()
        get_convert_settings.cache_clear()
        result = convert(tiny_run.run, data=tiny_run.data, options=ConvertOptions(runs=10, warmup=2, threads=2))
        get_settings.cache_clear()
    yield result, root / "workspace"


@pytest.fixture(scope="module")
def keras_probs(tiny_run: Any) -> np.ndarray:
    """The reference as `convert()` computes it: the saved model, read back, in batches of PARITY_BATCH."""
    import keras

    model = keras.saving.load_model(tiny_run.run / "model.keras", compile=False)
    images = tiny_run.data.eval_images.astype(np.float32)
    return np.asarray(model.predict(images, batch_size=PARITY_BATCH, verbose=0), dtype=np.float32)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_round_trip_agrees_with_keras_within_the_gate(
    name: str, converted: tuple[ConversionResult, Path], tiny_run: Any, keras_probs: np.ndarray
) -> None:
    from edge.runtime import load

    result, _ = converted
    entry = result.variant(name)
    clf = load(Path(result.package_uri) / entry.file, threads=2)
    assert clf.labels == tiny_run.splits.labels
    images = tiny_run.data.eval_images
    # Batched as convert() batches, so the reproduction runs the very same kernels on the very same inputs.
    probs = np.concatenate([clf.predict(images[i : i + PARITY_BATCH]) for i in range(0, len(images), PARITY_BATCH)])
    found = gate.parity(probs, keras_probs, tiny_run.data.eval_labels, clf.labels)
    keras = gate.classification_metrics(tiny_run.data.eval_labels, keras_probs.argmax(1), clf.labels)
    checks = gate.checks(VARIANTS[name], found, keras, gate.Thresholds.from_settings(ConvertSettings()))
    # What the package records is what a device running the file through edge.runtime gets on this
    # machine: the same numbers, the same verdict, the same reasons. That holds on every CPU.
    assert entry.agreement == pytest.approx(found.agreement)
    assert entry.max_abs_diff == pytest.approx(found.max_abs_diff, rel=1e-4, abs=1e-6)
    assert [(c.name, c.passed) for c in entry.checks] == [(c.name, c.passed) for c in checks]
    assert entry.latency is not None and entry.latency.runs == 10 and entry.latency.p50_ms > 0
    failed = gate.failures(checks)
    # The package says publishable exactly when every parity check passes, and says why not.
    assert entry.publishable == (not failed), entry.reason
    assert entry.reason == "; ".join(failed)
    if not gate.is_quantized(VARIANTS[name]):
        # Float32 kernels agree across CPUs to ~1e-5 (the rule allows 1e-4): these must pass anywhere.
        assert failed == [], failed
    else:
        # Quantized kernels differ by CPU (x86 with or without VNNI, ARM), so whether fp16, dynamic
        # or int8 clears the 98 % rule is this machine's verdict, checked above, not the test's.
        # Measured on the best-separated fixture: fp16 and dynamic agree on 100 % with XNNPACK,
        # builtin and reference kernels, full int8 on 93-97 %. A broken conversion lands near
        # chance (25 %; zero calibration, below), far under this floor.
        assert found.agreement >= 0.80, found.agreement


def test_package_layout_card_and_warehouse(converted: tuple[ConversionResult, Path], tiny_run: Any) -> None:
    from edgeloop import storage, warehouse

    result, workspace = converted
    package = Path(result.package_uri)
    assert package == workspace / "packages" / "shelf-products" / "run-test"
    names = sorted(p.name for p in package.iterdir())
    expected = {f"shelf-products-{v}{spec.suffix}" for v, spec in VARIANTS.items()}
    assert set(names) == expected | {"model_card.json", "labels.txt", "benchmark.md"}
    assert [p.name for p in package.parent.iterdir()] == ["run-test"]  # no temp or old folders left behind
    assert (package / "labels.txt").read_text().splitlines() == tiny_run.splits.labels
    card = json.loads((package / "model_card.json").read_text())
    assert card["lineage"]["run_id"] == "run-test" and card["conversion"]["n_eval_images"] == 120
    for entry in result.card.variants:
        assert storage.sha256(str(package / entry.file)) == (entry.sha256, entry.size)
    assert "| tflite_int8 |" in (package / "benchmark.md").read_text()
    sizes = {e.variant: e.size for e in result.card.variants}
    assert sizes["tflite_int8"] < 0.5 * sizes["tflite_fp32"]
    assert sizes["tflite_fp16"] < 0.6 * sizes["tflite_fp32"]
    with warehouse.connect(f"duckdb:///{workspace / 'warehouse.duckdb'}") as wh:
        rows = wh.query("SELECT variant, publishable, sha256 FROM conversions ORDER BY variant")
    assert sorted(r["variant"] for r in rows) == sorted(VARIANTS)


def test_metadata_and_inference_need_no_tensorflow(converted: tuple[ConversionResult, Path], tiny_run: Any) -> None:
    result, _ = converted
    files = [str(Path(result.package_uri) / result.variant(v).file) for v in ("tflite_int8", "onnx_int8")]
    code = f"""
import sys, numpy as np
from edge import metadata, runtime
for path in {files!r}:
    meta = metadata.read(path)
    assert meta.labels == {tiny_run.splits.labels!r}, meta.labels
    assert (meta.input.height, meta.input.width) == (96, 96)
    clf = runtime.load(path)
    top = clf.classify(np.zeros((96, 96, 3), np.uint8), k=1)
    assert top[0][0] in meta.labels
    print(meta.variant, meta.input.dtype, meta.input.scale, meta.output_dtype)
assert "tensorflow" not in sys.modules, "TensorFlow was imported"
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("tflite_int8 uint8 ") and lines[0].endswith(" uint8")
    assert lines[1] == "onnx_int8 float32 None float32"


@pytest.mark.parametrize("name", [n for n, s in VARIANTS.items() if s.runtime == "onnxruntime"])
def test_onnx_files_show_labels_and_image_spec_in_onnxruntime(
    name: str, converted: tuple[ConversionResult, Path], tiny_run: Any
) -> None:
    import onnx
    import onnxruntime as ort

    result, _ = converted
    path = str(Path(result.package_uri) / result.variant(name).file)
    shown = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).get_modelmeta()
    custom = dict(shown.custom_metadata_map)
    assert custom["labels"].split("\n") == tiny_run.splits.labels
    assert (custom["Image.BitmapPixelFormat"], custom["Image.ColorSpaceGamma"], custom["Image.NominalPixelRange"]) == (
        "Rgb8",
        "SRGB",
        "NominalRange_0_255",
    )
    assert "edgeloop" in custom and name in shown.description and "96x96" in shown.description
    image = onnx.load(path).graph.input[0].type
    assert image.denotation == "IMAGE"
    assert [d.denotation for d in image.tensor_type.shape.dim] == [
        "DATA_BATCH",
        "DATA_FEATURE",
        "DATA_FEATURE",
        "DATA_CHANNEL",
    ]


def test_int8_files_are_really_quantized(converted: tuple[ConversionResult, Path]) -> None:
    result, _ = converted
    package = Path(result.package_uri)
    tfl = inspection.read_tflite(package / result.variant("tflite_int8").file)
    assert (tfl.input_dtype, tfl.output_dtype) == ("uint8", "uint8")
    assert tfl.input_scale and tfl.output_scale == pytest.approx(1 / 256)
    assert tfl.int_weights > 50 and tfl.float_weights == 0 and tfl.int_weight_share == 1.0
    onnx_found = inspection.read_onnx(package / result.variant("onnx_int8").file)
    assert onnx_found.qdq_nodes > 100 and onnx_found.weights_quantized
    import onnx

    graph = onnx.load(str(package / result.variant("onnx_int8").file)).graph  # compact_qdq ran
    ends = {v.name for v in (*graph.input, *graph.output)}
    inner = {n for node in graph.node for n in (*node.input, *node.output)} - ends
    assert inner and max(len(n) for n in inner) <= 6, sorted(inner, key=len)[-3:]
    assert not graph.value_info
    fp32 = inspection.read_tflite(package / result.variant("tflite_fp32").file)
    assert fp32.int_weights == 0 and fp32.float_weights > 50
    fp16 = inspection.read_tflite(package / result.variant("tflite_fp16").file)
    assert fp16.half_weights > 50
    entry = result.variant("tflite_int8")
    assert (entry.input_dtype, entry.output_dtype, entry.weights_quantized) == ("uint8", "uint8", True)


def test_zero_calibration_fails_the_parity_gate_readably(tiny_run: Any, tmp_path: Path) -> None:
    import dataclasses

    zeros = np.zeros_like(tiny_run.data.representative[:16])
    data = dataclasses.replace(tiny_run.data, representative=zeros)
    result = convert(
        tiny_run.run,
        data=data,
        options=ConvertOptions(
            variants=["tflite_int8", "onnx_int8"], output=str(tmp_path / "pkg"), measure_latency=False, record=False
        ),
    )
    for name in ("tflite_int8", "onnx_int8"):
        entry = result.variant(name)
        assert not entry.publishable
        assert "parity gate failed: top-1 agreement with Keras" in entry.reason
        assert "(min 98.00%)" in entry.reason
        # Far below the floor a merely coarse int8 model keeps (round-trip test above).
        assert entry.agreement is not None and entry.agreement < 0.80, entry.agreement
        assert (tmp_path / "pkg" / entry.file).is_file()  # kept for inspection
    card = json.loads((tmp_path / "pkg" / "model_card.json").read_text())
    assert [v["publishable"] for v in card["variants"]] == [False, False]
    assert "not publishable" in (tmp_path / "pkg" / "benchmark.md").read_text()


def test_ignore_gate_converts_and_records_it(tiny_run: Any, tmp_path: Path) -> None:
    import shutil

    from conversion.errors import RunGateFailed
    from edgeloop.card import read_card, write_card

    run = tmp_path / "failed-run"
    shutil.copytree(tiny_run.run, run)
    card = read_card(run)
    assert card.gate is not None
    write_card(run, card.model_copy(update={"gate": card.gate.model_copy(update={"verdict": "fail"})}))
    options = ConvertOptions(
        variants=["tflite_fp32"], output=str(tmp_path / "pkg"), measure_latency=False, record=False
    )
    with pytest.raises(RunGateFailed, match="--ignore-gate"):
        convert(run, data=tiny_run.data, options=options)
    assert not (tmp_path / "pkg").exists()
    import dataclasses

    result = convert(run, data=tiny_run.data, options=dataclasses.replace(options, ignore_gate=True))
    assert result.card.conversion is not None and result.card.conversion.gate_ignored
    assert result.card.conversion.run_gate_verdict == "fail"


def test_op_without_tflite_kernel_names_the_op_and_the_fallback(tmp_path: Path) -> None:
    import keras
    import tensorflow as tf

    from conversion import testing
    from conversion.data import ConversionData
    from conversion.errors import UnsupportedOps

    @keras.saving.register_keras_serializable(package="edgeloop_test")
    class Inverse(keras.layers.Layer):  # type: ignore[misc]
        """MatrixInverse has no TFLite builtin kernel."""

        def call(self, x: Any) -> Any:
            square = x[..., 0] + tf.eye(8)
            return tf.reduce_mean(tf.linalg.inv(square), axis=[1, 2])[:, None]

    inputs = keras.Input((8, 8, 3), dtype="float32")
    outputs = keras.layers.Dense(3, activation="softmax")(Inverse()(inputs))
    labels = ["a", "b", "c"]
    run = testing.write_run(tmp_path / "run", keras.Model(inputs, outputs), labels)
    data = ConversionData(
        eval_images=np.zeros((3, 8, 8, 3), np.uint8),
        eval_labels=np.array([0, 1, 2]),
        representative=np.zeros((2, 8, 8, 3), np.uint8),
        labels=labels,
    )
    options = ConvertOptions(
        variants=["tflite_fp32"], output=str(tmp_path / "pkg"), measure_latency=False, record=False
    )
    with pytest.raises(UnsupportedOps, match=r"MatrixInverse.*--allow-select-tf-ops"):
        convert(run, data=data, options=options)
    assert not (tmp_path / "pkg").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temporary build folder left behind


def test_dynamic_range_runs_no_hybrid_kernel(converted: tuple[ConversionResult, Path]) -> None:
    from ai_edge_litert.interpreter import Interpreter

    from conversion.tflite_weights import hybrid_ops

    result, _ = converted
    package = Path(result.package_uri)
    dynamic = result.variant("tflite_dynamic")
    # Hybrid ops (int8 filter, float input) run outside XNNPACK on LiteRT's builtin kernels, which made
    # this variant 2.3-3.8x slower than fp32; its int8 weights now reach every op through DEQUANTIZE.
    assert hybrid_ops((package / dynamic.file).read_bytes()) == []
    assert dynamic.weights_quantized and dynamic.inspection

    def partitions(name: str) -> int:
        interp = Interpreter(model_path=str(package / result.variant(name).file), num_threads=2)
        interp.allocate_tensors()
        return sum(op["op_name"] == "DELEGATE" for op in interp._get_ops_details())

    # The default delegate takes the graph in as many pieces as the float model's (one), not one per hybrid op.
    assert partitions("tflite_dynamic") == partitions("tflite_fp32")
    assert result.card.conversion is not None and result.card.conversion.options["tflite_dynamic_hybrid"] is False


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_size_breakdown_accounts_for_every_byte(converted: tuple[ConversionResult, Path], fmt: str) -> None:
    result, _ = converted
    package = Path(result.package_uri)
    fp32 = inspection.size_breakdown(package / result.variant(f"{fmt}_fp32").file)
    int8 = inspection.size_breakdown(package / result.variant(f"{fmt}_int8").file)
    for parts in (fp32, int8):
        assert sum(v for k, v in parts.items() if k != "total") == parts["total"]
        assert parts["graph_and_metadata"] > 0  # labels and the graph are not weights
    assert fp32["quant_params"] == 0 and int8["quant_params"] > 0
    assert int8["weights"] == pytest.approx(fp32["weights"] / 4, rel=0.02)  # one byte per float32 weight


@pytest.mark.parametrize("name", ["tflite_int8", "tflite_dynamic"])
def test_tflite_files_store_each_quantization_vector_once_and_compute_the_same(
    converted: tuple[ConversionResult, Path], tiny_run: Any, name: str
) -> None:
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.interpreter import Interpreter

    from conversion import tflite_pack

    result, _ = converted
    data = (Path(result.package_uri) / result.variant(name).file).read_bytes()
    model = schema.Model.GetRootAs(data, 0)
    graph = model.Subgraphs(0)
    quantized = [graph.Tensors(t).Quantization() for t in range(graph.TensorsLength())]
    zero_points = [q._tab.Vector(q._tab.Offset(10)) for q in quantized if q is not None and q.ZeroPointLength()]
    # Per-channel zero points are all 0 here: a handful of stored vectors (one per channel count), not one per tensor.
    assert len(set(zero_points)) * 2 < len(zero_points)
    for b in range(model.BuffersLength()):  # the alignment the converter promises, kept through MediaPipe's writer
        buffer = model.Buffers(b)
        if buffer.DataLength():
            assert buffer._tab.Vector(buffer._tab.Offset(4)) % tflite_pack.BUFFER_ALIGNMENT == 0
    assert tflite_pack.compact(data) == data  # a packed file is already as packed as it gets

    # The object API writes every vector again: the file LiteRT would get without sharing.
    unshared = schema.ModelT.InitFromObj(model)
    builder = flatbuffers.Builder(len(data))
    builder.Finish(unshared.Pack(builder), file_identifier=b"TFL3")
    plain = bytes(builder.Output())
    assert len(plain) > len(data)  # larger even without the labels ZIP `data` carries
    outputs = []
    for content in (data, plain):
        interp = Interpreter(model_content=content, num_threads=1)
        interp.allocate_tensors()
        image, scores = interp.get_input_details()[0], interp.get_output_details()[0]
        batch = []
        for photo in tiny_run.data.eval_images[:16]:
            interp.set_tensor(image["index"], photo[None].astype(image["dtype"]))
            interp.invoke()
            batch.append(interp.get_tensor(scores["index"]).copy())
        outputs.append(np.concatenate(batch))
    np.testing.assert_array_equal(outputs[0], outputs[1])
