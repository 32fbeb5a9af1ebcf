"""Every TFLite variant works as it is in MediaPipe Tasks, the runtime Android, iOS and web apps load models with.

The package's TFLite files go through MediaPipe's own Python ImageClassifier and metadata
displayer, in the MediaPipe tool environment (`conversion.tflite_metadata`), and are
compared with the package: category names, top-1 against `edge.runtime`, the metadata
against the card. `edge.metadata` must read the very same files.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conversion import tflite_metadata
from conversion.pipeline import ConversionResult, ConvertOptions, convert
from edge import metadata as md
from edge.variants import VARIANTS

pytestmark = [pytest.mark.tf, pytest.mark.slow]

log = logging.getLogger(__name__)

TFLITE = [name for name, spec in VARIANTS.items() if spec.runtime == "litert"]
CLASSIFY = Path(__file__).with_name("mediapipe_classify.py")
MIN_AGREEMENT_QUANTIZED = 0.99


@pytest.fixture(scope="module")
def package(tiny_run: Any, tmp_path_factory: pytest.TempPathFactory) -> ConversionResult:
    """The TFLite variants of the tiny model, converted once for this module."""
    out = tmp_path_factory.mktemp("mediapipe") / "package"
    options = ConvertOptions(variants=TFLITE, output=str(out), measure_latency=False, record=False, threads=2)
    return convert(tiny_run.run, data=tiny_run.data, options=options)


@pytest.fixture(scope="module")
def mediapipe_view(package: ConversionResult, tiny_run: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """What MediaPipe makes of every TFLite file: displayer JSON, category names, top-1 per eval photo."""
    work = tmp_path_factory.mktemp("mediapipe-view")
    np.save(work / "eval.npy", tiny_run.data.eval_images)
    models = {name: str(Path(package.package_uri) / package.variant(name).file) for name in TFLITE}
    spec = {"models": list(models.values()), "images": str(work / "eval.npy"), "output": str(work / "out.json")}
    (work / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    tflite_metadata.run_script(CLASSIFY, str(work / "spec.json"), what="MediaPipe's ImageClassifier")
    seen = json.loads((work / "out.json").read_text(encoding="utf-8"))
    return {name: seen[path] for name, path in models.items()}


@pytest.mark.parametrize("name", TFLITE)
def test_mediapipe_names_every_category_with_the_package_labels(
    name: str, package: ConversionResult, mediapipe_view: Any
) -> None:
    seen = mediapipe_view[name]
    assert seen["error"] is None, f"MediaPipe refused {name}: {seen['error']}"
    assert seen["names"] == package.card.labels


@pytest.mark.parametrize("name", TFLITE)
def test_mediapipe_top1_agrees_with_the_edge_runtime(
    name: str, package: ConversionResult, mediapipe_view: Any, tiny_run: Any
) -> None:
    from edge.runtime import load

    clf = load(Path(package.package_uri) / package.variant(name).file, threads=2)
    ours = clf.predict(tiny_run.data.eval_images).argmax(axis=1)
    assert mediapipe_view[name]["error"] is None, mediapipe_view[name]["error"]
    theirs = np.asarray(mediapipe_view[name]["top1"])
    agreement = float(np.mean(ours == theirs))
    log.warning("%s: MediaPipe top-1 agrees with edge.runtime on %.4f of %d photos", name, agreement, len(ours))
    # Float weights mean float arithmetic in both runtimes: the same top-1 on these well-separated photos.
    # Integer weights (dynamic, int8) are quantized arithmetic, which MediaPipe's XNNPACK may round
    # differently from LiteRT's kernels (on the demo's package: 1 photo of 235 for tflite_dynamic).
    assert agreement >= (MIN_AGREEMENT_QUANTIZED if VARIANTS[name].weights_quantized else 1.0)


@pytest.mark.parametrize("name", TFLITE)
def test_mediapipe_metadata_displayer_matches_the_card(
    name: str, package: ConversionResult, mediapipe_view: Any
) -> None:
    card, entry = package.card, package.variant(name)
    shown = mediapipe_view[name]["displayer"]
    assert shown is not None, mediapipe_view[name]["error"]
    assert (shown["name"], shown["version"]) == (card.name, card.version)
    assert name in shown["description"]
    (subgraph,) = shown["subgraph_metadata"]
    (image,) = subgraph["input_tensor_metadata"]
    properties = image["content"]["content_properties"]
    assert properties["color_space"] == "RGB"
    assert properties["default_size"] == {"width": card.input.width, "height": card.input.height}
    units = image.get("process_units", [])
    if entry.input_dtype == "float32":
        # Raw 0..255 pixels in: the model scales them itself, so MediaPipe must not.
        assert units == [{"options_type": "NormalizationOptions", "options": {"mean": [0.0] * 3, "std": [1.0] * 3}}]
    else:
        assert units == []
    (scores,) = subgraph["output_tensor_metadata"]
    assert scores["associated_files"][0]["name"] == md.LABELS_NAME
    assert scores["associated_files"][0]["type"] == "TENSOR_AXIS_LABELS"
    assert [f["name"] for f in shown["associated_files"]] == [md.METADATA_NAME]


@pytest.mark.parametrize("name", TFLITE)
def test_edge_metadata_reads_the_same_files(name: str, package: ConversionResult) -> None:
    entry = package.variant(name)
    meta = md.read_tflite(Path(package.package_uri) / entry.file)
    assert (meta.name, meta.version, meta.variant) == (package.card.name, package.card.version, name)
    assert meta.labels == package.card.labels
    assert (meta.input.height, meta.input.width, meta.input.dtype) == (
        package.card.input.height,
        package.card.input.width,
        entry.input_dtype,
    )
    assert (meta.input.scale, meta.input.zero_point) == (entry.input_scale, entry.input_zero_point)
