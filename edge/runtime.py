"""Run a model file on the device: LiteRT for .tflite, onnxruntime for .onnx.

    clf = load("model.tflite")               # labels and input spec come from the file itself
    clf.classify(Image.open("photo.jpg"))    # [("lavender-soap", 0.97), ...]

The loader is chosen from the variant table (`edge.variants`), the same table the
converter writes from. Preprocessing is only resize + dtype: normalisation lives
inside the model, so every runtime sees the same raw pixels.
"""

from __future__ import annotations

import abc
import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from edge import metadata as md
from edge import variants
from edge._exceptions import ModelLoadError as ModelLoadError  # re-exported: its historic home
from edge.variants import RUNTIME_OF_SUFFIX
from edge.variants import Runtime as RuntimeName

ImageLike = Any  # a PIL image or an HxWx3 uint8 array


class Backend(Protocol):
    def run(self, batch: NDArray[Any]) -> NDArray[Any]: ...


class Runtime(abc.ABC):
    """One loaded model file in one inference engine: the only method is `run`.

    Implementations expose the tensor types they found in the file so that the
    `Classifier` can quantize inputs and dequantize outputs; `run` must be safe to
    call from several threads at once (serialise inside if the engine is not).
    """

    name: RuntimeName
    input_dtype: np.dtype[Any]
    output_dtype: np.dtype[Any]
    input_quant: tuple[float, int] = (0.0, 0)
    output_quant: tuple[float, int] = (0.0, 0)

    @abc.abstractmethod
    def run(self, batch: NDArray[Any]) -> NDArray[Any]:
        """Raw model output for a batch already in the model's input dtype."""


class LiteRTBackend(Runtime):
    """LiteRT's interpreter, resized per batch size; one interpreter is not thread-safe, so calls are serialised."""

    name: RuntimeName = "litert"

    def __init__(self, path: Path, threads: int | None) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise ModelLoadError("ai-edge-litert is not installed; pip install 'edgeloop[edge]'") from None
        try:
            self._interp = Interpreter(model_path=str(path), num_threads=threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"{path}: LiteRT cannot load this file: {exc}") from None
        self._input = self._interp.get_input_details()[0]
        self._output = self._interp.get_output_details()[0]
        self._batch = int(self._input["shape"][0])
        self._lock = threading.Lock()
        self.input_dtype = np.dtype(self._input["dtype"])
        self.output_dtype = np.dtype(self._output["dtype"])
        in_q = self._input.get("quantization", (0.0, 0))
        out_q = self._output.get("quantization", (0.0, 0))
        self.input_quant = (float(in_q[0]), int(in_q[1]))
        self.output_quant = (float(out_q[0]), int(out_q[1]))

    def run(self, batch: NDArray[Any]) -> NDArray[Any]:
        with self._lock:
            if batch.shape[0] != self._batch:
                self._interp.resize_tensor_input(self._input["index"], list(batch.shape))
                self._interp.allocate_tensors()
                self._batch = batch.shape[0]
            self._interp.set_tensor(self._input["index"], batch)
            self._interp.invoke()
            return np.array(self._interp.get_tensor(self._output["index"]))


class OnnxBackend(Runtime):
    """onnxruntime on the CPU; sessions are thread-safe for `run`."""

    name: RuntimeName = "onnxruntime"

    def __init__(self, path: Path, threads: int | None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelLoadError("onnxruntime is not installed; pip install 'edgeloop[edge]'") from None
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelLoadError(f"{path}: onnxruntime cannot load this file: {exc}") from None
        self.custom_metadata = dict(self._session.get_modelmeta().custom_metadata_map)
        inp = self._session.get_inputs()[0]
        self._input_name = inp.name
        types = {"tensor(float)": "float32", "tensor(uint8)": "uint8", "tensor(int8)": "int8"}
        self.input_dtype = np.dtype(types.get(inp.type, "float32"))
        self.output_dtype = np.dtype("float32")

    def run(self, batch: NDArray[Any]) -> NDArray[Any]:
        return np.asarray(self._session.run(None, {self._input_name: batch})[0])


def to_pixels(image: ImageLike, size: tuple[int, int]) -> NDArray[np.uint8]:
    """An image as HxWx3 uint8 RGB at `size` (width, height): Pillow's bilinear, like training's resize.

    The TypeScript SDK ports this byte for byte (edge/js/src/preprocess.ts; conformance vectors prove it).
    """
    from PIL import Image

    if isinstance(image, np.ndarray):
        arr = image
        if arr.shape[:2] == (size[1], size[0]) and arr.dtype == np.uint8 and arr.shape[-1] == 3:
            return arr
        image = Image.fromarray(np.asarray(arr, dtype=np.uint8))
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size != size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def quantize(pixels: NDArray[Any], dtype: np.dtype[Any], scale: float, zero: int) -> NDArray[Any]:
    """Raw pixels (0..255) in a quantized input dtype: round(p / scale + zero) in float32, half to even, clipped."""
    if not scale:
        return pixels.astype(dtype, copy=False)
    info = np.iinfo(dtype)
    q = np.round(pixels.astype(np.float32) / scale + zero)
    return np.clip(q, info.min, info.max).astype(dtype)


RUNTIMES: dict[RuntimeName, type[Runtime]] = {"litert": LiteRTBackend, "onnxruntime": OnnxBackend}
_RUNTIME_MODULES: dict[RuntimeName, str] = {"litert": "ai_edge_litert", "onnxruntime": "onnxruntime"}


def available_runtimes() -> list[RuntimeName]:
    """Runtimes whose engine is installed here, preferred first (LiteRT is the smaller one on phones)."""
    return [name for name in RUNTIMES if importlib.util.find_spec(_RUNTIME_MODULES[name]) is not None]


class Classifier:
    """A loaded model: preprocessing, inference and top-k, for one file."""

    def __init__(self, path: str | Path, *, threads: int | None = None, variant: str | None = None) -> None:
        self.path = Path(path)
        runtime = RUNTIME_OF_SUFFIX.get(self.path.suffix)
        if runtime is None:
            raise ModelLoadError(f"{self.path}: unknown model file type; expected .tflite or .onnx")
        if variant is not None and variants.get(variant).runtime != runtime:
            raise ModelLoadError(
                f"{self.path}: variant {variant!r} runs on {variants.get(variant).runtime}, not {runtime}"
            )
        if not self.path.is_file():
            raise ModelLoadError(f"{self.path}: no such model file")
        self.runtime = runtime
        self.backend: Runtime
        if runtime == "litert":
            self.metadata = md.read_tflite(self.path)
            self.backend = LiteRTBackend(self.path, threads)
        else:
            backend = OnnxBackend(self.path, threads)
            self.metadata = md.from_onnx_custom_map(backend.custom_metadata, str(self.path))
            self.backend = backend
        self.labels = list(self.metadata.labels)
        spec = self.metadata.input
        self.size = (spec.width, spec.height)

    # -- preprocessing ---------------------------------------------------------------

    def pixels(self, image: ImageLike) -> NDArray[np.uint8]:
        """An image as HxWx3 uint8 RGB at the model's size (bilinear, like training's resize)."""
        return to_pixels(image, self.size)

    def to_input(self, pixels: NDArray[Any]) -> NDArray[Any]:
        """A batch of raw pixels (N,H,W,3, values 0..255) in the dtype and quantization the model wants."""
        dtype = self.backend.input_dtype
        if dtype == np.float32:
            return pixels.astype(np.float32, copy=False)
        scale, zero = self.backend.input_quant
        return quantize(pixels, dtype, scale, zero)

    def from_output(self, raw: NDArray[Any]) -> NDArray[np.float32]:
        """Model output as float32 probabilities."""
        if raw.dtype == np.float32:
            return raw
        scale, zero = self.backend.output_quant
        if not scale and self.metadata.output_scale:
            scale, zero = self.metadata.output_scale, self.metadata.output_zero_point or 0
        if scale:
            return ((raw.astype(np.float32) - zero) * scale).astype(np.float32)
        return raw.astype(np.float32)

    # -- inference ---------------------------------------------------------------------

    def predict(self, images: Sequence[ImageLike] | NDArray[Any]) -> NDArray[np.float32]:
        """Probabilities, shape (N, classes), for a batch of images or an (N,H,W,3) pixel array."""
        if isinstance(images, np.ndarray) and images.ndim == 4:
            batch = (
                images
                if images.shape[1:3] == (self.size[1], self.size[0])
                else np.stack([self.pixels(i) for i in images])
            )
        else:
            batch = np.stack([self.pixels(i) for i in images])
        return self.from_output(self.backend.run(self.to_input(batch)))

    def classify(self, image: ImageLike, k: int = 3) -> list[tuple[str, float]]:
        """Top-k (label, score) for one image."""
        return self.classify_batch([image], k)[0]

    def classify_batch(self, images: Sequence[ImageLike], k: int = 3) -> list[list[tuple[str, float]]]:
        probs = self.predict(images)
        out = []
        for row in probs:
            top = np.argsort(-row)[:k]
            out.append([(self.labels[i], float(row[i])) for i in top])
        return out


def load(path: str | Path, *, threads: int | None = None, variant: str | None = None) -> Classifier:
    """Load a .tflite or .onnx file written by `edgeloop convert`."""
    return Classifier(path, threads=threads, variant=variant)
