"""The DAGs retrain the model the demo publishes: one default name, so a retrain warm-starts from its production."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest


def test_dags_demo_and_train_default_to_one_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from dags._settings import DagSettings
    from edgeloop import demo
    from pipelines.train import cli as train_cli
    from pipelines.train.options import TrainOptions

    monkeypatch.delenv("EDGELOOP_DAGS_MODEL_NAME", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env of the caller's folder
    cli_default = inspect.signature(train_cli.train_command).parameters["model_name"].default
    names = {
        "dags": DagSettings().model_name,
        "demo": demo.MODEL,
        "train options": TrainOptions(dataset="unused").model_name,
        "edgeloop train --model-name": cli_default,
    }
    assert set(names.values()) == {"shelf-products"}, names


def test_the_dags_follow_edgeloop_dags_model_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from dags._settings import DagSettings

    monkeypatch.setenv("EDGELOOP_DAGS_MODEL_NAME", "hair-care")
    assert DagSettings().model_name == "hair-care"
