"""The converter table: one export function per variant name in `edge.variants.VARIANTS`.

Like Ultralytics' exporter, the format table is shared with the loader (here the device
runtime reads the same `edge.variants` rows) and every export goes through one wrapper
(`export`) that logs time and size. Each function writes a bare model file (no
metadata yet) into the context's work folder and returns its path.

Imports TensorFlow, tf2onnx and onnxruntime's quantizer, inside functions only.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conversion.errors import ConversionError, UnsupportedOps, UnsupportedOpset
from edge.variants import VARIANTS

log = logging.getLogger(__name__)

INPUT_NAME = "image"


@dataclasses.dataclass
class ExportContext:
    """Everything an exporter needs; caches the frozen graph and the fp32 ONNX model between variants."""

    model: Any  # a Keras model: float32 (N, H, W, 3) raw pixels in, softmax out
    height: int
    width: int
    representative: NDArray[np.uint8]  # (N, H, W, 3) train images for int8 calibration
    workdir: Path
    opset: int = 17
    allow_select_tf_ops: bool = False
    onnx_reduce_range: bool = True  # 7-bit weights: for x86 without VNNI (conversion.settings)
    dynamic_hybrid: bool = False  # keep LiteRT's hybrid kernels in tflite_dynamic (see conversion.tflite_weights)
    _frozen: Any = None
    _onnx_fp32: Path | None = None

    def signature(self) -> list[Any]:
        import tensorflow as tf

        # A free batch dimension lets the parity run feed whole batches; devices feed 1.
        return [tf.TensorSpec([None, self.height, self.width, 3], tf.float32, name=INPUT_NAME)]

    def function(self) -> Any:
        import tensorflow as tf

        model = self.model
        return tf.function(lambda x: model(x, training=False), input_signature=self.signature())

    def frozen(self) -> Any:
        """The inference graph with variables folded into constants, traced once for all TFLite variants.

        Converting from a frozen concrete function takes ~3 s per variant where
        `from_keras_model` re-exports a SavedModel each time (~20 s); the graph is the same.
        """
        if self._frozen is None:
            from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

            self._frozen = convert_variables_to_constants_v2(self.function().get_concrete_function())
        return self._frozen

    def representative_batches(self) -> Iterator[list[NDArray[np.float32]]]:
        # Calibration sees exactly what devices feed: raw 0..255 pixels, one image at a time.
        for image in self.representative:
            yield [image[np.newaxis].astype(np.float32)]


Exporter = Callable[[ExportContext], Path]


@dataclasses.dataclass(frozen=True)
class Exported:
    variant: str
    path: Path
    seconds: float
    size: int


# --------------------------------------------------------------------------- TFLite


def _tflite(ctx: ExportContext, name: str, configure: Callable[[Any], None]) -> Path:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions([ctx.frozen()])
    configure(converter)
    if ctx.allow_select_tf_ops:
        ops = set(converter.target_spec.supported_ops or {tf.lite.OpsSet.TFLITE_BUILTINS})
        converter.target_spec.supported_ops = ops | {tf.lite.OpsSet.SELECT_TF_OPS}
    try:
        flatbuffer = converter.convert()
    except Exception as exc:  # the converter raises ConverterError, RuntimeError or ValueError
        raise _tflite_error(name, exc) from None
    path = ctx.workdir / f"{name}.tflite"
    path.write_bytes(flatbuffer)
    return path


def _tflite_error(name: str, exc: Exception) -> ConversionError:
    text = str(exc)
    ops = sorted(set(re.findall(r"'tf\.(\w+)'", text)) | set(re.findall(r"\bFlex([A-Z]\w+)", text)))
    if ops or "not supported" in text or "Select TF" in text:
        named = ", ".join(ops) if ops else "(see converter log)"
        return UnsupportedOps(
            f"{name}: TFLite has no builtin kernel for op(s) {named}; re-run with --allow-select-tf-ops "
            "(devices then need the Flex delegate) or replace the layer that uses them"
        )
    first = text.strip().splitlines()[-1] if text.strip() else type(exc).__name__
    return ConversionError(f"{name}: the TFLite converter failed: {first}")


def export_tflite_fp32(ctx: ExportContext) -> Path:
    return _tflite(ctx, "tflite_fp32", lambda c: None)


def export_tflite_fp16(ctx: ExportContext) -> Path:
    import tensorflow as tf

    def configure(c: Any) -> None:
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.target_spec.supported_types = [tf.float16]

    return _tflite(ctx, "tflite_fp16", configure)


def export_tflite_dynamic(ctx: ExportContext) -> Path:
    import tensorflow as tf

    from conversion.tflite_weights import dequantize_weights

    def configure(c: Any) -> None:
        c.optimizations = [tf.lite.Optimize.DEFAULT]

    path = _tflite(ctx, "tflite_dynamic", configure)
    if not ctx.dynamic_hybrid:
        flatbuffer, changed = dequantize_weights(path.read_bytes())
        path.write_bytes(flatbuffer)
        log.info("tflite_dynamic: %d hybrid op(s) now take int8 weights through DEQUANTIZE", changed)
    return path


def export_tflite_int8(ctx: ExportContext) -> Path:
    import tensorflow as tf

    def configure(c: Any) -> None:
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.representative_dataset = ctx.representative_batches
        # Builtins-int8 only: an op without an int8 kernel fails the export instead of silently staying float.
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        c.inference_input_type = tf.uint8
        c.inference_output_type = tf.uint8

    return _tflite(ctx, "tflite_int8", configure)


# --------------------------------------------------------------------------- ONNX


def _check_onnx(path: Path, name: str, opset: int) -> None:
    """Load the file in onnxruntime now, so an unsupported opset or op fails here and not on a device."""
    import onnx
    import onnxruntime as ort

    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        text = str(exc)
        if "opset" in text.lower():
            raise UnsupportedOpset(
                f"{name}: onnxruntime {ort.__version__} cannot run opset {opset}: {text.strip()[:200]}; "
                "pick another with --opset"
            ) from None
        model = onnx.load(str(path))
        foreign = sorted({n.op_type for n in model.graph.node if n.domain not in ("", "ai.onnx", "com.microsoft")})
        if foreign:
            raise UnsupportedOps(
                f"{name}: tf2onnx left op(s) {', '.join(foreign)} that onnxruntime cannot run; "
                "replace the layer that uses them or skip ONNX with --variants"
            ) from None
        raise ConversionError(f"{name}: onnxruntime refuses the converted file: {text.strip()[:300]}") from None


def _onnx_fp32(ctx: ExportContext) -> Path:
    if ctx._onnx_fp32 is None:
        import onnx
        import tf2onnx

        path = ctx.workdir / "onnx_fp32.raw.onnx"
        try:
            model_proto, _ = tf2onnx.convert.from_function(
                ctx.function(), input_signature=ctx.signature(), opset=ctx.opset
            )
        except Exception as exc:  # tf2onnx raises bare Exceptions naming the op
            text = str(exc)
            ops = re.findall(r"op[_ ]?type[ =:]+'?(\w+)", text)
            if ops or "unsupported" in text.lower():
                raise UnsupportedOps(
                    f"onnx: tf2onnx cannot convert op(s) {', '.join(sorted(set(ops))) or text[:200]}; "
                    "skip ONNX with --variants or replace the layer"
                ) from None
            raise ConversionError(f"onnx: tf2onnx failed at opset {ctx.opset}: {text[:300]}") from None
        onnx.save(model_proto, str(path))
        _check_onnx(path, "onnx_fp32", ctx.opset)
        ctx._onnx_fp32 = path
    return ctx._onnx_fp32


def export_onnx_fp32(ctx: ExportContext) -> Path:
    src = _onnx_fp32(ctx)
    path = ctx.workdir / "onnx_fp32.onnx"
    path.write_bytes(src.read_bytes())
    return path


def export_onnx_int8(ctx: ExportContext) -> Path:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src = _onnx_fp32(ctx)
    prepared = ctx.workdir / "onnx_int8.prep.onnx"
    # Shape inference + graph folding first, as onnxruntime recommends, so every Conv gets calibrated.
    quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
    input_name = onnx.load(str(prepared)).graph.input[0].name

    class Calibration(CalibrationDataReader):  # type: ignore[misc]
        """The representative images, one at a time, as raw float pixels."""

        def __init__(self) -> None:
            self._iter = iter(ctx.representative)

        def get_next(self) -> dict[str, NDArray[np.float32]] | None:
            image = next(self._iter, None)
            return None if image is None else {input_name: image[np.newaxis].astype(np.float32)}

    path = ctx.workdir / "onnx_int8.onnx"
    quantize_static(
        str(prepared),
        str(path),
        Calibration(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        # u8 activations / s8 weights is what onnxruntime's x86 kernels are fastest at; on AVX2 CPUs
        # without VNNI their u8*s8 pair sums saturate int16, which cost 20+ points of top-1 agreement
        # on MobileNetV2. 7-bit weights (reduce_range) avoid that; with VNNI they only lose accuracy,
        # so the setting decides (conversion.settings.onnx_reduce_range). QDQ, not QOperator: it
        # measured as fast (onnxruntime fuses QDQ pairs into QLinearConv) and is the portable format.
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        reduce_range=ctx.onnx_reduce_range,
    )
    model = onnx.load(str(path))
    compact_qdq(model)
    onnx.save(model, str(path))
    _check_onnx(path, "onnx_int8", ctx.opset)
    return path


def compact_qdq(model: Any) -> None:
    """Drop what a QDQ file carries that onnxruntime does not need to compute the same thing.

    The quantizer keeps tf2onnx's long tensor names and appends `_quantized`, `_scale`,
    `_zero_point` and `_DequantizeLinear_Output` to each (names are 6% of a 224 px int8 file),
    keeps quant_pre_process's shape annotations (onnxruntime infers them again at load) and
    gives every int32 bias a zero point of zeros, which is DequantizeLinear's default. Only the
    graph's own input and output names are part of the contract; they stay. The session graph
    onnxruntime builds (QLinearConv with the bias folded in) and its outputs are unchanged.
    """
    from onnx import TensorProto, numpy_helper

    graph = model.graph
    del graph.value_info[:]
    initializers = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and len(node.input) == 3:
            zero_point = initializers.get(node.input[2])
            if (
                zero_point is not None
                and zero_point.data_type == TensorProto.INT32
                and not numpy_helper.to_array(zero_point).any()
            ):
                del node.input[2]
    used = {name for node in graph.node for name in node.input}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)

    if any(a.type in (a.GRAPH, a.GRAPHS) for node in graph.node for a in node.attribute):
        return  # a subgraph may name outer tensors: leave names to a model without control flow
    fixed = {v.name for v in graph.input} | {v.name for v in graph.output}
    short: dict[str, str] = {}

    def rename(name: str) -> str:
        if not name or name in fixed:
            return name
        return short.setdefault(name, f"t{len(short)}")

    for tensor in graph.initializer:
        tensor.name = rename(tensor.name)
    for index, node in enumerate(graph.node):
        node.name = f"n{index}"
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]


EXPORTERS: dict[str, Exporter] = {
    "tflite_fp32": export_tflite_fp32,
    "tflite_fp16": export_tflite_fp16,
    "tflite_dynamic": export_tflite_dynamic,
    "tflite_int8": export_tflite_int8,
    "onnx_fp32": export_onnx_fp32,
    "onnx_int8": export_onnx_int8,
}


def export(name: str, ctx: ExportContext) -> Exported:
    """Run the exporter for `name`, logging how long it took and how big the file is."""
    if name not in EXPORTERS:
        raise ConversionError(f"no exporter for variant {name!r}; known: {', '.join(VARIANTS)}")
    start = time.perf_counter()
    path = EXPORTERS[name](ctx)
    seconds = time.perf_counter() - start
    size = path.stat().st_size
    log.info("%s: exported in %.1f s, %.2f MB", name, seconds, size / 1e6)
    return Exported(name, path, seconds, size)
