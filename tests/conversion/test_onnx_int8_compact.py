"""compact_qdq shrinks a QDQ file without changing what onnxruntime computes from it (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from conversion.exporters import compact_qdq  # noqa: E402


def _float_model() -> Any:
    """A small conv net with the layer kinds of MobileNetV2's graph and tf2onnx-style long names."""
    rng = np.random.default_rng(0)
    prefix = "StatefulPartitionedCall/mobilenetv2_0.35_96/"

    def weight(name: str, *shape: int) -> Any:
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.2).astype(np.float32), prefix + name)

    inits = [
        weight("Conv1/Conv2D/ReadVariableOp", 8, 3, 3, 3),
        weight("Conv1/BiasAdd/ReadVariableOp", 8),
        weight("expanded_conv_depthwise/depthwise", 8, 1, 3, 3),
        weight("expanded_conv_depthwise/BiasAdd", 8),
        weight("expanded_conv_project/Conv2D", 8, 8, 1, 1),
        weight("expanded_conv_project/BiasAdd", 8),
        weight("predictions/MatMul/ReadVariableOp", 8, 4),
        weight("predictions/BiasAdd/ReadVariableOp", 4),
        numpy_helper.from_array(np.array(0.0, np.float32), prefix + "relu6/min"),
        numpy_helper.from_array(np.array(6.0, np.float32), prefix + "relu6/max"),
    ]
    names = [t.name for t in inits]
    nodes = [
        helper.make_node(
            "Conv", ["image", names[0], names[1]], [prefix + "Conv1/BiasAdd:0"], strides=[2, 2], pads=[1] * 4
        ),
        helper.make_node("Clip", [prefix + "Conv1/BiasAdd:0", names[8], names[9]], [prefix + "Conv1_relu/Relu6:0"]),
        helper.make_node(
            "Conv",
            [prefix + "Conv1_relu/Relu6:0", names[2], names[3]],
            [prefix + "dw/BiasAdd:0"],
            group=8,
            pads=[1] * 4,
        ),
        helper.make_node("Clip", [prefix + "dw/BiasAdd:0", names[8], names[9]], [prefix + "dw_relu/Relu6:0"]),
        helper.make_node("Conv", [prefix + "dw_relu/Relu6:0", names[4], names[5]], [prefix + "project/BiasAdd:0"]),
        helper.make_node("Add", [prefix + "project/BiasAdd:0", prefix + "Conv1_relu/Relu6:0"], [prefix + "add/add:0"]),
        helper.make_node("GlobalAveragePool", [prefix + "add/add:0"], [prefix + "pool:0"]),
        helper.make_node("Flatten", [prefix + "pool:0"], [prefix + "flat:0"]),
        helper.make_node("Gemm", [prefix + "flat:0", names[6], names[7]], [prefix + "logits:0"]),
        helper.make_node("Softmax", [prefix + "logits:0"], ["probabilities"]),
    ]
    graph = helper.make_graph(
        nodes,
        "products",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 4])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    folder = tmp_path_factory.mktemp("qdq")
    onnx.save(_float_model(), str(folder / "fp32.onnx"))
    quant_pre_process(str(folder / "fp32.onnx"), str(folder / "prep.onnx"), skip_symbolic_shape=True)
    images = iter(np.random.default_rng(1).uniform(0, 255, (16, 1, 3, 32, 32)).astype(np.float32))

    class Calibration(CalibrationDataReader):  # type: ignore[misc]
        def get_next(self) -> dict[str, Any] | None:
            image = next(images, None)
            return None if image is None else {"image": image}

    quantize_static(
        str(folder / "prep.onnx"),
        str(folder / "int8.onnx"),
        Calibration(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    return folder / "int8.onnx"


def _session(model: Any, optimized: Path) -> Any:
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(optimized)
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def test_compaction_keeps_outputs_bit_identical_and_the_fused_graph(quantized: Path, tmp_path: Path) -> None:
    original = onnx.load(str(quantized))
    compact = onnx.load(str(quantized))
    compact_qdq(compact)
    onnx.checker.check_model(compact)

    before = _session(original, tmp_path / "before.onnx")
    after = _session(compact, tmp_path / "after.onnx")
    images = np.random.default_rng(2).uniform(0, 255, (8, 1, 3, 32, 32)).astype(np.float32)
    for image in images:
        np.testing.assert_array_equal(after.run(None, {"image": image})[0], before.run(None, {"image": image})[0])

    def kernels(path: Path) -> list[str]:
        return [n.op_type for n in onnx.load(str(path)).graph.node]

    assert kernels(tmp_path / "after.onnx") == kernels(tmp_path / "before.onnx")
    assert "QLinearConv" in kernels(tmp_path / "after.onnx")  # the QDQ pairs still fuse into integer kernels


def test_compaction_drops_names_shapes_and_zero_bias_zero_points(quantized: Path) -> None:
    original = onnx.load(str(quantized))
    compact = onnx.load(str(quantized))
    compact_qdq(compact)

    assert len(compact.SerializeToString()) < 0.8 * len(original.SerializeToString())
    graph = compact.graph
    assert [i.name for i in graph.input] == ["image"] and [o.name for o in graph.output] == ["probabilities"]
    assert not graph.value_info
    names = [t.name for t in graph.initializer] + [n for node in graph.node for n in (*node.input, *node.output)]
    assert max(len(n) for n in names) <= len("probabilities")
    int32 = {t.name for t in graph.initializer if t.data_type == TensorProto.INT32}
    bias_dq = [n for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in int32]
    assert bias_dq and all(len(n.input) == 2 for n in bias_dq)  # the all-zero int32 zero points are gone
    used = {n for node in graph.node for n in node.input}
    assert all(t.name in used for t in graph.initializer)


def test_a_nonzero_int32_zero_point_is_kept(quantized: Path) -> None:
    model = onnx.load(str(quantized))
    inits = {t.name: t for t in model.graph.initializer}
    int32 = {name for name, t in inits.items() if t.data_type == TensorProto.INT32}
    index, node = next(
        (i, n) for i, n in enumerate(model.graph.node) if n.op_type == "DequantizeLinear" and n.input[0] in int32
    )
    zero = numpy_helper.to_array(inits[node.input[2]]).copy()
    zero.flat[0] = 3
    inits[node.input[2]].CopyFrom(numpy_helper.from_array(zero, node.input[2]))

    compact_qdq(model)
    node = model.graph.node[index]  # compaction renames but neither drops nor reorders nodes
    assert len(node.input) == 3
    kept = next(t for t in model.graph.initializer if t.name == node.input[2])
    assert numpy_helper.to_array(kept).flat[0] == 3
