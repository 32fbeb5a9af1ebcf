"""Dynamic-range TFLite files that XNNPACK runs whole: int8 weights dequantized once at load.

The converter's dynamic-range mode emits *hybrid* CONV_2D / DEPTHWISE_CONV_2D /
FULLY_CONNECTED ops (int8 filter, float input, activations quantized on the fly).
XNNPACK does not take those, so LiteRT splits the graph into one XNNPACK partition per
float stretch and runs every hybrid op on its reference-grade builtin kernels: MobileNetV2
ran in 16 partitions and 2.3-3.8x slower than float32 (issue 19). Feeding each such op its
filter through a DEQUANTIZE op instead keeps the int8 weights in the file (same size)
while XNNPACK unpacks them to float once at delegate creation and runs the whole graph
(one partition, float32 speed); without XNNPACK the builtin DEQUANTIZE of a constant also
runs once, at prepare. Activations stay float, which is what dynamic range promises.
"""

from __future__ import annotations

from typing import Any

HYBRID_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def _opcode_of(code: Any) -> int:
    # Builtin codes above 127 live only in `builtinCode`; older files only fill the deprecated field.
    return int(max(code.builtinCode, code.deprecatedBuiltinCode))


def _opcode(model: Any, op: Any) -> int:
    return _opcode_of(model.operatorCodes[op.opcodeIndex])


def hybrid_ops(flatbuffer: bytes) -> list[str]:
    """Names of ops that take an int8 weight tensor with a float input (run on LiteRT's hybrid kernels)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    names = {getattr(schema.BuiltinOperator, n): n for n in HYBRID_OPS}
    found = []
    for graph in model.subgraphs:
        for op in graph.operators:
            code = _opcode(model, op)
            if code in names and len(op.inputs) > 1 and _is_hybrid(schema, graph, op):
                found.append(names[code])
    return found


def _is_hybrid(schema: Any, graph: Any, op: Any) -> bool:
    weights, inputs = graph.tensors[op.inputs[1]], graph.tensors[op.inputs[0]]
    return bool(weights.type == schema.TensorType.INT8 and inputs.type == schema.TensorType.FLOAT32)


def dequantize_weights(flatbuffer: bytes) -> tuple[bytes, int]:
    """The model with every hybrid op fed float weights by a DEQUANTIZE op; and how many ops changed."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    hybrid = {getattr(schema.BuiltinOperator, n) for n in HYBRID_OPS}
    dequantize = schema.BuiltinOperator.DEQUANTIZE
    index = next((i for i, c in enumerate(model.operatorCodes) if _opcode_of(c) == dequantize), None)
    if index is None:
        code = schema.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = dequantize
        code.version = 4  # per-channel int8 input
        model.operatorCodes.append(code)
        index = len(model.operatorCodes) - 1
    changed = 0
    for graph in model.subgraphs:
        added = []
        for op in graph.operators:
            if _opcode(model, op) not in hybrid or len(op.inputs) < 2 or not _is_hybrid(schema, graph, op):
                continue
            weights = graph.tensors[op.inputs[1]]
            tensor = schema.TensorT()
            tensor.shape = list(weights.shape)
            tensor.type = schema.TensorType.FLOAT32
            tensor.buffer = 0  # computed, not stored: the file keeps only the int8 weights
            tensor.name = (weights.name or b"weights") + b"/dequantized"
            graph.tensors.append(tensor)
            deq = schema.OperatorT()
            deq.opcodeIndex = index
            deq.inputs = [op.inputs[1]]
            deq.outputs = [len(graph.tensors) - 1]
            added.append(deq)
            op.inputs = [op.inputs[0], len(graph.tensors) - 1, *op.inputs[2:]]
            changed += 1
        # Constants-only ops first: execution order stays topological.
        graph.operators = [*added, *graph.operators]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), changed
