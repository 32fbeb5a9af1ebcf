"""Metadata inside each model file, so a device can run the file with nothing beside it.

* TFLite: a ZIP of associated files appended to the flatbuffer, the layout TFLite
  Support and MediaPipe use for labels (the interpreter ignores trailing bytes). It holds
  `edgeloop.json` and `labels.txt`; `zipfile` reads it, so no TensorFlow is needed.
* ONNX: `metadata_props["edgeloop"]` holds the same JSON; onnxruntime exposes it as
  custom metadata, so no `onnx` package is needed on the device. Beside it, `labels` (one
  per line) and the image keys of ONNX's metadata spec (`Image.BitmapPixelFormat`,
  `Image.ColorSpaceGamma`, `Image.NominalPixelRange`) that onnxruntime and Windows ML show.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from edge._exceptions import MetadataError as MetadataError  # re-exported: its historic home
from edge.manifest import InputSpec

METADATA_NAME = "edgeloop.json"
LABELS_NAME = "labels.txt"
ONNX_KEY = "edgeloop"


class ModelMetadata(BaseModel):
    """What every variant file carries about itself."""

    model_config = ConfigDict(extra="allow")

    name: str
    version: str
    variant: str
    labels: list[str]
    input: InputSpec
    output_dtype: str = "float32"
    # For a quantized output: probability = scale * (q - zero_point).
    output_scale: float | None = None
    output_zero_point: int | None = None
    # Added by conversion: how the file was made, so a device can report it without the card.
    runtime: str | None = None
    quantization: str | None = None
    run_id: str | None = None


def tflite_with_metadata(flatbuffer: bytes, meta: ModelMetadata) -> bytes:
    """The TFLite flatbuffer with metadata and labels appended as a ZIP of associated files."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(METADATA_NAME, meta.model_dump_json(indent=2))
        archive.writestr(LABELS_NAME, "\n".join(meta.labels) + "\n")
    return flatbuffer + buf.getvalue()


def read_tflite(path: str | Path) -> ModelMetadata:
    """Metadata of a TFLite file written by `tflite_with_metadata`."""
    try:
        with zipfile.ZipFile(path) as archive:
            return ModelMetadata.model_validate_json(archive.read(METADATA_NAME))
    except (zipfile.BadZipFile, KeyError) as exc:
        raise MetadataError(
            f"{path}: no edgeloop metadata in this .tflite file ({exc}); convert it with `edgeloop convert`"
        ) from None


# ONNX's docs/MetadataProps.md: how an image input wants its pixels. Ours: RGB bytes, sRGB, 0..255.
ONNX_IMAGE_PROPS = {
    "Image.BitmapPixelFormat": "Rgb8",
    "Image.ColorSpaceGamma": "SRGB",
    "Image.NominalPixelRange": "NominalRange_0_255",
}


def onnx_metadata_props(meta: ModelMetadata) -> dict[str, str]:
    """The `metadata_props` entries to set on an ONNX model."""
    return {ONNX_KEY: meta.model_dump_json(), "labels": "\n".join(meta.labels), **ONNX_IMAGE_PROPS}


def from_onnx_custom_map(custom: dict[str, Any], origin: str) -> ModelMetadata:
    """Metadata from onnxruntime's `get_modelmeta().custom_metadata_map`."""
    if ONNX_KEY not in custom:
        raise MetadataError(f"{origin}: no edgeloop metadata in this .onnx file; convert it with `edgeloop convert`")
    return ModelMetadata.model_validate(json.loads(custom[ONNX_KEY]))


def read_onnx(path: str | Path) -> ModelMetadata:
    """Metadata of an ONNX file, read with onnxruntime only."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return from_onnx_custom_map(dict(session.get_modelmeta().custom_metadata_map), str(path))


def read(path: str | Path) -> ModelMetadata:
    """Metadata of a .tflite or .onnx file."""
    suffix = Path(path).suffix
    if suffix == ".tflite":
        return read_tflite(path)
    if suffix == ".onnx":
        return read_onnx(path)
    raise MetadataError(f"{path}: unknown model file type {suffix!r}; expected .tflite or .onnx")
