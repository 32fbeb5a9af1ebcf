"""Read a converted file back and record what it really is: tensor types and weight storage.

A file that claims int8 but stores float weights must never be published, whatever
its name says. `read_tflite` / `read_onnx` look inside (LiteRT interpreter, the `onnx`
package); `problems` compares that with the variant table. No TensorFlow here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from edge.variants import VariantSpec

# A variant "has integer weights" when at least this share of weight values is stored as
# integers. Dynamic-range quantization leaves layers under 1024 values in float, so 100 % is too strict.
MIN_INT_WEIGHT_SHARE = 0.8

_INT_TYPES = ("int8", "uint8", "int4", "uint4")


@dataclasses.dataclass(frozen=True)
class Inspection:
    """What a model file holds, read from the file itself."""

    input_dtype: str
    output_dtype: str
    input_scale: float | None = None
    input_zero_point: int | None = None
    output_scale: float | None = None
    output_zero_point: int | None = None
    int_weights: int = 0  # weight tensors (kernels, rank >= 2) stored as 8-bit integers
    float_weights: int = 0  # … stored as float32
    half_weights: int = 0  # … stored as float16
    int_weight_share: float = 0.0  # share of weight *values* stored as integers
    qdq_nodes: int = 0  # ONNX QuantizeLinear + DequantizeLinear nodes

    @property
    def weights_quantized(self) -> bool:
        return self.int_weights > 0 and self.int_weight_share >= MIN_INT_WEIGHT_SHARE

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "weights_quantized": self.weights_quantized}


def _summarise(weights: list[tuple[str, int]]) -> dict[str, Any]:
    """Counts per storage type for (dtype, n_values) pairs of weight tensors."""
    ints = [n for dtype, n in weights if dtype in _INT_TYPES]
    total = sum(n for _, n in weights)
    return {
        "int_weights": len(ints),
        "float_weights": sum(1 for dtype, _ in weights if dtype == "float32"),
        "half_weights": sum(1 for dtype, _ in weights if dtype == "float16"),
        "int_weight_share": (sum(ints) / total) if total else 0.0,
    }


def _quant(details: dict[str, Any]) -> tuple[float | None, int | None]:
    scale, zero = details.get("quantization", (0.0, 0))
    return (float(scale), int(zero)) if scale else (None, None)


def read_tflite(path: str | Path) -> Inspection:
    """Inspect a .tflite file with the LiteRT interpreter (the runtime devices use)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    ops = interp._get_ops_details()  # the only public-ish view of the graph without flatbuffer tooling
    produced = {int(i) for op in ops for i in op["outputs"]}
    inputs = interp.get_input_details()
    consumed = {int(i) for op in ops for i in op["inputs"] if int(i) >= 0}
    graph_inputs = {int(d["index"]) for d in inputs}
    # A weight is a constant (no op produces it, not a graph input) of rank >= 2 that some op reads.
    weights = []
    for index in sorted(consumed - produced - graph_inputs):
        tensor = tensors.get(index)
        if tensor is None or len(tensor["shape"]) < 2:
            continue
        weights.append((np.dtype(tensor["dtype"]).name, int(np.prod(tensor["shape"]))))
    out = interp.get_output_details()[0]
    in_scale, in_zero = _quant(inputs[0])
    out_scale, out_zero = _quant(out)
    return Inspection(
        input_dtype=np.dtype(inputs[0]["dtype"]).name,
        output_dtype=np.dtype(out["dtype"]).name,
        input_scale=in_scale,
        input_zero_point=in_zero,
        output_scale=out_scale,
        output_zero_point=out_zero,
        **_summarise(weights),
    )


def read_onnx(path: str | Path) -> Inspection:
    """Inspect a .onnx file with the `onnx` package: initializer dtypes and QDQ nodes."""
    import onnx
    from onnx import helper

    model = onnx.load(str(path))
    graph = model.graph
    initializer_names = {i.name for i in graph.initializer}
    weights = []
    for init in graph.initializer:
        if len(init.dims) < 2:
            continue  # biases, scales, zero points, shapes
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(init.data_type)).name
        weights.append((dtype, int(np.prod(init.dims))))

    def elem_type(value: Any) -> str:
        return str(np.dtype(helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)).name)

    real_inputs = [i for i in graph.input if i.name not in initializer_names]
    return Inspection(
        input_dtype=elem_type(real_inputs[0]),
        output_dtype=elem_type(graph.output[0]),
        qdq_nodes=sum(1 for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")),
        **_summarise(weights),
    )


def read(path: str | Path, spec: VariantSpec) -> Inspection:
    """Inspect a file with the reader for its runtime."""
    return read_tflite(path) if spec.runtime == "litert" else read_onnx(path)


def problems(spec: VariantSpec, found: Inspection) -> list[str]:
    """Where the file contradicts its row in the variant table; empty when it is what it claims."""
    out: list[str] = []
    if found.input_dtype != spec.input_dtype:
        out.append(f"input tensor is {found.input_dtype}, {spec.name} promises {spec.input_dtype}")
    if found.output_dtype != spec.output_dtype:
        out.append(f"output tensor is {found.output_dtype}, {spec.name} promises {spec.output_dtype}")
    if spec.weights_quantized and not found.weights_quantized:
        out.append(
            f"{spec.name} claims integer weights but only {100 * found.int_weight_share:.0f}% of weight values "
            f"are integers ({found.int_weights} integer vs {found.float_weights} float32 weight tensors): "
            "the file is not quantized"
        )
    if not spec.weights_quantized and found.int_weights:
        out.append(f"{spec.name} should keep float weights but {found.int_weights} weight tensors are integers")
    if spec.quantization == "fp16" and found.half_weights == 0:
        out.append(f"{spec.name} claims float16 weights but holds none ({found.float_weights} float32 tensors)")
    if spec.runtime == "onnxruntime" and spec.quantization == "int8" and found.qdq_nodes == 0:
        out.append(f"{spec.name} has no QuantizeLinear/DequantizeLinear nodes: static quantization did not happen")
    if (
        spec.quantization == "int8"
        and spec.runtime == "litert"
        and (found.input_scale is None or found.output_scale is None)
    ):
        out.append(f"{spec.name} input/output tensors carry no quantization parameters")
    return out


def _quant_vectors(q: Any) -> list[tuple[int, int]]:
    """(position, bytes) of a QuantizationParameters table's min, max, scale and zero_point vectors."""
    found = []
    for field, itemsize in ((4, 4), (6, 4), (8, 4), (10, 8)):  # vtable slots of the schema's fields 0-3
        slot = q._tab.Offset(field)
        if slot:
            found.append((q._tab.Vector(slot), itemsize * q._tab.VectorLen(slot)))
    return found


def size_breakdown(path: str | Path) -> dict[str, int]:
    """Where a model file's bytes go: weights (rank >= 2), biases (rank < 2 constants), per-tensor
    quantization parameters (scales and zero points), and the rest (graph, names, metadata).

    It explains an int8 file's size against the fp32 one: weights shrink 4x, the rest does not.
    """
    path = Path(path)
    total = path.stat().st_size
    parts = {"weights": 0, "biases": 0, "quant_params": 0}
    if path.suffix == ".onnx":
        import onnx
        from onnx import helper

        graph = onnx.load(str(path)).graph
        qparams = {
            name for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear") for name in n.input[1:]
        }
        for init in graph.initializer:
            nbytes = (
                int(np.prod(init.dims, dtype=np.int64))
                * np.dtype(helper.tensor_dtype_to_np_dtype(init.data_type)).itemsize
            )
            kind = "quant_params" if init.name in qparams else "weights" if len(init.dims) >= 2 else "biases"
            parts[kind] += nbytes
    else:
        from ai_edge_litert import schema_py_generated as schema

        model = schema.Model.GetRootAs(path.read_bytes(), 0)
        counted: set[int] = set()
        vectors: set[int] = set()  # where each quantization vector starts: tensors may share one (tflite_pack)
        for g in range(model.SubgraphsLength()):
            subgraph = model.Subgraphs(g)
            for t in range(subgraph.TensorsLength()):
                tensor = subgraph.Tensors(t)
                q = tensor.Quantization()
                if q is not None:  # the schema stores scales as float32, zero points as int64, per channel
                    for start, nbytes in _quant_vectors(q):
                        if start not in vectors:
                            vectors.add(start)
                            parts["quant_params"] += nbytes
                if tensor.Buffer() in counted:
                    continue
                counted.add(tensor.Buffer())
                nbytes = model.Buffers(tensor.Buffer()).DataLength()
                parts["weights" if tensor.ShapeLength() >= 2 else "biases"] += nbytes
    parts["graph_and_metadata"] = max(0, total - sum(parts.values()))
    parts["total"] = total
    return parts
