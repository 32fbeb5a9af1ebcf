"""Fixtures for conversion tests: one tiny trained model per session, settings caches cleared per test."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

EVAL_PER_CLASS = 30  # kept per class, out of a pool of twice as many


@pytest.fixture(autouse=True)
def _fresh_convert_settings() -> Iterator[None]:
    from conversion.settings import get_convert_settings

    get_convert_settings.cache_clear()
    yield
    get_convert_settings.cache_clear()


@dataclasses.dataclass(frozen=True)
class TinyRun:
    run: Path  # a training run folder: model.keras + model_card.json
    model: Any
    splits: Any  # conversion.testing.SyntheticSplits
    data: Any  # conversion.data.ConversionData


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """MobileNetV2 alpha 0.35 at 96 px, trained briefly on synthetic product photos (trained once per session).

    The eval split keeps, per class, the photos the Keras model separates best (largest gap
    between its top two probabilities). A briefly trained model leaves some photos near a
    decision boundary, and there a quantized kernel flips top-1 one way on one CPU and the
    other way on the next (x86 with or without VNNI, ARM): the verdict would then be decided
    by one or two photos and the CPU. Far from the boundary only a broken conversion flips.
    """
    from conversion import testing

    pool = testing.synthetic_splits(4, train_per_class=40, eval_per_class=2 * EVAL_PER_CLASS, size=96)
    model = testing.train(
        testing.build_model(len(pool.labels)), pool.train_images, pool.train_labels, epochs=10, batch_size=16
    )
    splits = _best_separated(pool, np.asarray(model.predict(pool.eval_images.astype(np.float32), verbose=0)))
    run = testing.write_run(tmp_path_factory.mktemp("runs") / "run-test", model, splits.labels)
    return TinyRun(run=run, model=model, splits=splits, data=splits.conversion_data(representative_samples=64))


def _best_separated(pool: Any, probs: np.ndarray) -> Any:
    """`pool` with the EVAL_PER_CLASS eval photos of each class that have the largest top-1 margin, in order."""
    top2 = np.sort(probs, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    keep: list[int] = []
    for index in range(len(pool.labels)):
        members = np.flatnonzero(pool.eval_labels == index)
        keep.extend(members[np.argsort(-margin[members], kind="stable")[:EVAL_PER_CLASS]].tolist())
    chosen = np.sort(np.asarray(keep))
    return dataclasses.replace(pool, eval_images=pool.eval_images[chosen], eval_labels=pool.eval_labels[chosen])
