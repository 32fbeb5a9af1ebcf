"""The one table of model variants, read by the converter and by the device runtime loader.

A variant names a file format (runtime), a quantization and the tensor types a device
will see. Conversion produces the rows; `edge.runtime` picks its loader from `runtime`.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

Runtime = Literal["litert", "onnxruntime"]
Quantization = Literal["fp32", "fp16", "dynamic", "int8"]


@dataclasses.dataclass(frozen=True)
class VariantSpec:
    name: str
    runtime: Runtime
    quantization: Quantization
    suffix: str
    input_dtype: str  # what the device feeds the model
    output_dtype: str  # what the device gets back
    weights_quantized: bool  # inspection must find integer weights when true
    description: str


VARIANTS: dict[str, VariantSpec] = {
    v.name: v
    for v in (
        VariantSpec(
            "tflite_fp32", "litert", "fp32", ".tflite", "float32", "float32", False, "TFLite, float32 weights and math."
        ),
        VariantSpec(
            "tflite_fp16",
            "litert",
            "fp16",
            ".tflite",
            "float32",
            "float32",
            False,
            "TFLite, float16 weights (half size), float math on CPU.",
        ),
        VariantSpec(
            "tflite_dynamic",
            "litert",
            "dynamic",
            ".tflite",
            "float32",
            "float32",
            True,
            "TFLite dynamic-range: int8 weights, float activations.",
        ),
        VariantSpec(
            "tflite_int8",
            "litert",
            "int8",
            ".tflite",
            "uint8",
            "uint8",
            True,
            "TFLite full-integer: int8 weights and activations, uint8 in/out.",
        ),
        VariantSpec("onnx_fp32", "onnxruntime", "fp32", ".onnx", "float32", "float32", False, "ONNX, float32."),
        VariantSpec(
            "onnx_int8",
            "onnxruntime",
            "int8",
            ".onnx",
            "float32",
            "float32",
            True,
            "ONNX QDQ int8 (static, per-channel), float in/out.",
        ),
    )
}

RUNTIME_OF_SUFFIX: dict[str, Runtime] = {".tflite": "litert", ".onnx": "onnxruntime"}


def get(name: str) -> VariantSpec:
    """The variant called `name`; a clear error lists the known ones."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}") from None
