"""Conversion: every TFLite / ONNX variant of a trained model, proven on eval data and packaged.

    from conversion import convert, ConvertOptions, ConversionData
    result = convert("workspace/runs/<run_id>", options=ConvertOptions(variants=["tflite_int8"]))

Importing this package imports neither TensorFlow nor the converters.
"""

from conversion.data import ConversionData
from conversion.errors import (
    ConversionError,
    LabelMismatch,
    MissingData,
    RunGateFailed,
    UnsupportedOps,
    UnsupportedOpset,
)
from conversion.gate import Thresholds
from conversion.pipeline import ConversionResult, ConvertOptions, convert
from conversion.settings import ConvertSettings, get_convert_settings

__all__ = [
    "ConversionData",
    "ConversionError",
    "ConversionResult",
    "ConvertOptions",
    "ConvertSettings",
    "LabelMismatch",
    "MissingData",
    "RunGateFailed",
    "Thresholds",
    "UnsupportedOps",
    "UnsupportedOpset",
    "convert",
    "get_convert_settings",
]
