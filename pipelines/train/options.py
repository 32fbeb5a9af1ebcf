"""Typed inputs and outputs of a training run (no TensorFlow here, so the CLI and DAGs import it cheaply)."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edgeloop.metrics import EvalReport
from edgeloop.settings import DEFAULT_MODEL
from pipelines.train.settings import TrainSettings

Status = Literal["running", "succeeded", "failed", "nan_loss", "invalid_input"]


def new_run_id(now: dt.datetime | None = None) -> str:
    """Sortable and unique: UTC time to the second plus 6 random hex digits."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


class EpochRecord(BaseModel):
    """One epoch of one phase, as recorded in history.json and epoch_metrics."""

    phase: Literal["head", "finetune", "train"]
    epoch: int
    loss: float | None
    accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    val_macro_f1: float | None
    learning_rate: float | None
    duration_s: float


class TrainOptions(BaseModel):
    """What to train on and from; `settings` holds every hyper-parameter."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    dataset: str = Field(description="Dataset version folder (URI), e.g. workspace/datasets/v0001.")
    warm_start: str | None = Field(default=None, description="Earlier run or package folder (or .keras file).")
    weights: str = Field(
        default="none",
        description="Backbone init when not warm-starting: none (random), imagenet (Keras download), or a weights file.",
    )
    allow_removed_classes: bool = Field(default=False, description="Accept a label map that lost classes.")
    model_name: str = Field(default=DEFAULT_MODEL, description="Model name written on the card.")
    runs_root: str | None = Field(default=None, description="Folder of run folders (default: <workspace>/runs).")
    warehouse: str | None = Field(default=None, description="Warehouse URL (default: from settings).")
    run_id: str | None = Field(default=None, description="Reuse a run id (default: a new one).")
    settings: TrainSettings = Field(default_factory=TrainSettings)
    progress: Callable[[EpochRecord, int], None] | None = Field(
        default=None, exclude=True, description="Called after each epoch with the record and the phase's epoch budget."
    )


class TrainResult(BaseModel):
    run_id: str
    run_dir: str
    status: Status
    dataset_version: str
    labels: list[str]
    backbone_source: str
    eval: EvalReport
    history: list[EpochRecord]
    duration_s: float
    model_uri: str
    saved_model_uri: str
