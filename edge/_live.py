"""The model the app calls, swappable while calls are running.

Each call takes one reference to the loaded model and uses only that, so a call in
flight during a swap finishes on the old model and the next call gets the new one.
A model is fully loaded and health-checked before it is published, and the old one
is freed only when its last caller returns (reference counting), so no call can
see a half-loaded or closed model.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from edge._store import InstalledModel
from edge.runtime import Classifier, ImageLike


@dataclasses.dataclass(frozen=True)
class Prediction:
    """Top-k for one image and which model produced it."""

    top: list[tuple[str, float]]
    model: str
    version: int
    variant: str
    latency_ms: float


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    classifier: Classifier
    entry: InstalledModel


class LiveModel:
    """Thread-safe, hot-swappable front of the current `Classifier`."""

    def __init__(self, loaded: LoadedModel, on_prediction: Callable[[Prediction], None] | None = None) -> None:
        self._slot = loaded
        self._swap_lock = threading.Lock()
        self._on_prediction = on_prediction
        self.swaps = 0

    @property
    def current(self) -> LoadedModel:
        return self._slot

    @property
    def version(self) -> int:
        return self._slot.entry.version

    @property
    def labels(self) -> list[str]:
        return list(self._slot.classifier.labels)

    def swap(self, loaded: LoadedModel) -> LoadedModel:
        """Publish `loaded` for the next call; returns the model it replaced."""
        with self._swap_lock:
            old, self._slot = self._slot, loaded  # one reference store: atomic for every reader
            self.swaps += 1
        return old

    def run(self, image: ImageLike, k: int = 3) -> Prediction:
        """Top-k for one image, with the version that answered."""
        slot = self._slot
        t0 = time.perf_counter()
        top = slot.classifier.classify(image, k)
        latency = (time.perf_counter() - t0) * 1000
        pred = Prediction(top, slot.entry.model, slot.entry.version, slot.entry.variant, latency)
        if self._on_prediction is not None:
            self._on_prediction(pred)
        return pred

    def classify(self, image: ImageLike, k: int = 3) -> list[tuple[str, float]]:
        """Top-k (label, score) for one image, like `Classifier.classify`."""
        return self.run(image, k).top

    def classify_batch(self, images: Sequence[ImageLike], k: int = 3) -> list[list[tuple[str, float]]]:
        return self._slot.classifier.classify_batch(images, k)

    def predict(self, images: Any) -> Any:
        """Probabilities for a batch, from one model even if a swap happens meanwhile."""
        return self._slot.classifier.predict(images)
