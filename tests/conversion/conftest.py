"""Fixtures for conversion tests: one tiny trained model per session, settings caches cleared per test."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


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
    """MobileNetV2 alpha 0.35 at 96 px, trained briefly on synthetic product photos (trained once per session)."""
    from conversion import testing

    splits = testing.synthetic_splits(4, train_per_class=40, eval_per_class=30, size=96)
    model = testing.train(
        testing.build_model(len(splits.labels)), splits.train_images, splits.train_labels, epochs=10, batch_size=16
    )
    run = testing.write_run(tmp_path_factory.mktemp("runs") / "run-test", model, splits.labels)
    return TinyRun(run=run, model=model, splits=splits, data=splits.conversion_data(representative_samples=64))
