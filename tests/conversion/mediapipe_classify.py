"""Classify photos with MediaPipe Tasks' ImageClassifier; runs inside the MediaPipe tool environment.

    python mediapipe_classify.py SPEC.json    # {"models": [...], "images": "eval.npy", "output": "out.json"}

For each model file: MediaPipe's metadata displayer JSON, the category name of every
output index (from the first photo, all categories kept), the top-1 index per photo, and
the error MediaPipe gave if it refused the file.
The interop test (test_mediapipe_interop.py) compares these with the package.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def classify(model: str, images: Any) -> dict[str, Any]:
    """What MediaPipe makes of one file; a refusal is recorded, not raised, so the test can name it."""
    import mediapipe as mp
    import numpy as np
    from mediapipe.tasks.python import BaseOptions, vision
    from mediapipe.tasks.python.metadata import metadata

    seen: dict[str, Any] = {"displayer": None, "names": [], "top1": [], "error": None}
    try:
        seen["displayer"] = json.loads(metadata.MetadataDisplayer.with_model_file(model).get_metadata_json())
    except ValueError as exc:  # "The model does not have metadata."
        seen["error"] = f"displayer: {exc}"
    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=model), max_results=-1)
    try:
        classifier = vision.ImageClassifier.create_from_options(options)
    except (RuntimeError, ValueError) as exc:  # e.g. "requires specifying NormalizationOptions metadata"
        seen["error"] = f"ImageClassifier: {exc}"
        return seen
    names: dict[int, str | None] = {}
    with classifier:
        for pixels in images:
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(pixels))
            categories = classifier.classify(image).classifications[0].categories
            if not names:
                names = {c.index: c.category_name for c in categories}
            seen["top1"].append(int(max(categories, key=lambda c: c.score).index))
    seen["names"] = [names.get(i) for i in range(len(names))]
    return seen


def main(argv: list[str]) -> int:
    import numpy as np

    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    images = np.load(spec["images"])
    out = {model: classify(model, images) for model in spec["models"]}
    Path(spec["output"]).write_text(json.dumps(out), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
