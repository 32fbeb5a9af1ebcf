"""Errors conversion raises; all are `EdgeloopError`s so the CLI prints one line.

ConversionError          a model or package cannot be converted as asked
├── RunGateFailed        the training run failed its gate (pass --ignore-gate to override)
├── LabelMismatch        the card's labels differ from the dataset's label map
├── MissingData          no eval or representative images
├── UnsupportedOps       the converter met ops it cannot express
├── UnsupportedOpset     the ONNX opset is outside what tf2onnx / onnxruntime run
└── MetadataToolError    the MediaPipe tool environment cannot be built or refused a file
                         (defined in conversion.tflite_metadata)
"""

from __future__ import annotations

from edgeloop.errors import EdgeloopError


class ConversionError(EdgeloopError):
    """A model or package cannot be converted as asked."""


class RunGateFailed(ConversionError):
    """The training run's gate report failed."""


class LabelMismatch(ConversionError):
    """The model card's labels differ from the dataset's."""


class MissingData(ConversionError):
    """Eval or representative images are missing."""


class UnsupportedOps(ConversionError):
    """The converter met ops it cannot express in the target format."""


class UnsupportedOpset(ConversionError):
    """The requested ONNX opset cannot be produced or run here."""
