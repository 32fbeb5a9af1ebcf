"""Session fixtures for the training and gate tests (imported explicitly by those modules).

One small synthetic catalogue is photographed, ingested by the real Beam job (v0001: 3
products; v0002: the same plus 1 new product, ingested incrementally), and trained on
once per session: a from-scratch base model on v0001, then a warm start on v0002.
Every test reuses these runs; each builds only what it alone needs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from pipelines.train.options import TrainResult
from pipelines.train.settings import AugmentSettings, TrainSettings

# Tiny and quick: MobileNetV2 alpha 0.35 at 96 px on a few dozen photos, 2 TF threads.
BASE_SETTINGS = TrainSettings(
    alpha=0.35,
    size=96,
    batch_size=16,
    epochs=8,
    learning_rate=3e-3,
    patience=8,
    threads=2,
    seed=7,
    augment=AugmentSettings(rotation=0.02, zoom=0.05, translation=0.05),
)
WARM_SETTINGS = BASE_SETTINGS.model_copy(
    update={"head_epochs": 3, "warm_start_epochs": 3, "head_learning_rate": 3e-3, "patience": 3}
)


@dataclasses.dataclass(frozen=True)
class TrainEnv:
    root: Path
    warehouse: str
    runs: str
    v1: str
    v2: str


@dataclasses.dataclass(frozen=True)
class Runs:
    base: TrainResult
    warm: TrainResult


# Each test module that imports these fixtures gets its own FixtureDef, so a session-scoped
# fixture would run once per module; this cache makes it once per process.
_CACHE: dict[str, Any] = {}


@pytest.fixture(scope="session")
def train_env(tmp_path_factory: pytest.TempPathFactory) -> TrainEnv:
    if "env" not in _CACHE:
        _CACHE["env"] = _make_env(tmp_path_factory)
    env: TrainEnv = _CACHE["env"]
    return env


@pytest.fixture(scope="session")
def runs(train_env: TrainEnv) -> Runs:
    if "runs" not in _CACHE:
        _CACHE["runs"] = _make_runs(train_env)
    made: Runs = _CACHE["runs"]
    return made


def _make_env(tmp_path_factory: pytest.TempPathFactory) -> TrainEnv:
    from edgeloop import synth
    from pipelines.ingest import IngestOptions, ingest

    root = tmp_path_factory.mktemp("train")
    warehouse = f"duckdb:///{root / 'warehouse.duckdb'}"
    photos, datasets = root / "photos", root / "datasets"
    synth_args = {"images_per_product": 24, "size": 96, "seed": 3, "difficulty": 0.0}
    synth.generate(photos, n_products=3, **synth_args)  # type: ignore[arg-type]
    common = {"output": str(datasets), "eval_fraction": 0.3, "running_mode": "in_memory", "num_workers": 1}
    v1 = ingest(IngestOptions(input=str(photos), warehouse=warehouse, **common))  # type: ignore[arg-type]
    synth.generate(photos, n_products=3, add_products=1, **synth_args)  # type: ignore[arg-type]
    v2 = ingest(IngestOptions(input=str(photos), previous=v1.dataset_version, warehouse=warehouse, **common))  # type: ignore[arg-type]
    return TrainEnv(root=root, warehouse=warehouse, runs=str(root / "runs"), v1=v1.uri, v2=v2.uri)


def _make_runs(train_env: TrainEnv) -> Runs:
    from pipelines.train.core import train
    from pipelines.train.options import TrainOptions

    base = train(
        TrainOptions(
            dataset=train_env.v1, runs_root=train_env.runs, warehouse=train_env.warehouse, settings=BASE_SETTINGS
        )
    )
    warm = train(
        TrainOptions(
            dataset=train_env.v2,
            warm_start=base.run_dir,
            runs_root=train_env.runs,
            warehouse=train_env.warehouse,
            settings=WARM_SETTINGS,
        )
    )
    return Runs(base=base, warm=warm)
