"""Sample-app fixtures: the edge test kit (tiny real models, the real registry under uvicorn) and photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest_edge import *  # noqa: F403  (the edge fixtures: model files, registry)


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    """A class-per-folder photo folder, like `edgeloop data synth` writes."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    for product in ("lavender-soap", "rose-bath-bomb"):
        (root / product).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(root / product / f"{i}.jpg")
    (root / "notes.txt").write_text("not a photo")
    return root
