"""Tiny real model files for edge tests: ONNX built with the `onnx` helpers, TFLite from a tiny Keras model."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from edge import manifest as mf
from edge.manifest import InputSpec
from edge.metadata import ModelMetadata, onnx_metadata_props, tflite_with_metadata

SIZE = 16
LABELS = ["lavender-soap", "rose-bath-bomb", "mint-shampoo-bar"]


def meta(
    name: str, version: int, labels: list[str], variant: str = "onnx_fp32", dtype: str = "float32"
) -> ModelMetadata:
    return ModelMetadata(
        name=name,
        version=str(version),
        variant=variant,
        labels=labels,
        input=InputSpec(height=SIZE, width=SIZE, dtype=dtype),  # type: ignore[arg-type]
    )


def onnx_model(
    path: Path,
    *,
    name: str = "shelf-products",
    version: int = 1,
    labels: list[str] | None = None,
    seed: int | None = None,
    nan: bool = False,
    hidden_matmuls: int = 0,
    dense: tuple[np.ndarray, np.ndarray] | None = None,
) -> Path:
    """raw 0..255 float pixels (N,16,16,3) -> /255 -> dense -> softmax; `nan` poisons the output.

    `dense` gives the layer's (weights (768, classes), bias) instead of random ones from the seed.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    labels = labels or LABELS
    rng = np.random.default_rng(version if seed is None else seed)
    features = SIZE * SIZE * 3
    w, b = dense or (rng.normal(0, 0.05, (features, len(labels))), rng.normal(0, 0.1, len(labels)))
    inits = [
        numpy_helper.from_array(np.array([-1, features], np.int64), "shape"),
        numpy_helper.from_array(np.array(1 / 255, np.float32), "scale"),
        numpy_helper.from_array(np.asarray(w, np.float32), "w"),
        numpy_helper.from_array(np.asarray(b, np.float32), "b"),
    ]
    nodes = [
        helper.make_node("Reshape", ["pixels", "shape"], ["flat"]),
        helper.make_node("Mul", ["flat", "scale"], ["x0"]),
    ]
    x = "x0"
    for i in range(hidden_matmuls):  # extra work to make a model slow on purpose
        inits.append(numpy_helper.from_array(np.eye(features, dtype=np.float32), f"eye{i}"))
        nodes.append(helper.make_node("MatMul", [x, f"eye{i}"], [f"h{i}"]))
        x = f"h{i}"
    nodes += [
        helper.make_node("MatMul", [x, "w"], ["logits0"]),
        helper.make_node("Add", ["logits0", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs" if not nan else "probs0"], axis=1),
    ]
    if nan:
        inits.append(numpy_helper.from_array(np.array(np.nan, np.float32), "nan"))
        nodes.append(helper.make_node("Mul", ["probs0", "nan"], ["probs"]))
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [None, SIZE, SIZE, 3])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [None, len(labels)])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    helper.set_model_props(model, onnx_metadata_props(meta(name, version, labels)))
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def tflite_model(path: Path, *, version: int = 1, labels: list[str] | None = None, int8: bool = False) -> Path:
    """A tiny Keras model (raw 0..255 float input, softmax out) converted by TFLiteConverter."""
    import tensorflow as tf

    labels = labels or LABELS
    tf.keras.utils.set_random_seed(version)
    inputs = tf.keras.Input((SIZE, SIZE, 3), dtype="float32")
    x = tf.keras.layers.Rescaling(1 / 255)(inputs)
    x = tf.keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    outputs = tf.keras.layers.Dense(len(labels), activation="softmax")(x)
    model = tf.keras.Model(inputs, outputs)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    variant, dtype = "tflite_fp32", "float32"
    if int8:
        rng = np.random.default_rng(0)

        def representative() -> Any:
            for _ in range(16):
                yield [rng.integers(0, 256, (1, SIZE, SIZE, 3)).astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
        variant, dtype = "tflite_int8", "uint8"
    flat = converter.convert()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tflite_with_metadata(flat, meta("shelf-products", version, labels, variant, dtype)))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def signed_manifest(
    private_key: Any,
    model_file: Path,
    *,
    version: int,
    url: str,
    model: str = "shelf-products",
    labels: list[str] | None = None,
    key_id: str = "test-key",
    rollback: bool = False,
    alias: str = "production",
    sequence: int = 0,
    expires_in: dt.timedelta = dt.timedelta(days=7),
    issued_ago: dt.timedelta = dt.timedelta(minutes=1),
    variant: str = "onnx_fp32",
) -> dict[str, Any]:
    """A manifest for `model_file`, signed the way the registry signs (edge.manifest.sign)."""
    now = dt.datetime.now(dt.UTC)
    runtime = "onnxruntime" if variant.startswith("onnx") else "litert"
    data = mf.Manifest(
        model=model,
        version=version,
        alias=alias,
        variant=variant,
        runtime=runtime,
        quantization="int8" if variant.endswith("int8") else "fp32",
        artifact_url=url,
        sha256=sha256(model_file),
        size=model_file.stat().st_size,
        labels=labels or LABELS,
        input=InputSpec(height=SIZE, width=SIZE, dtype="uint8" if variant == "tflite_int8" else "float32"),
        issued_at=now - issued_ago,
        expires_at=now - issued_ago + expires_in,
        rollback=rollback,
        sequence=sequence,
        key_id=key_id,
    )
    return mf.sign(data, private_key)
