"""Training: a dataset version in, a MobileNetV2 product classifier and its metrics out.

    from pipelines.train import TrainOptions, TrainSettings, train

    result = train(TrainOptions(dataset="workspace/datasets/v0001"))            # first model
    result = train(TrainOptions(dataset="workspace/datasets/v0002",
                                warm_start=result.run_dir))                     # new products

Three starts, each with its recipe (settings in `TrainSettings`):

- from scratch (the default, no downloads): the whole network, live BatchNorm statistics,
  `epochs` at `learning_rate` (cosine decay);
- warm start from an earlier edgeloop model (new products): `head_epochs` with the backbone
  frozen, then the whole network with live statistics for `warm_start_epochs` at
  `warm_start_learning_rate` — the parent learned these very products;
- a foreign backbone (`--weights imagenet` or a weights file): the head, then the top
  `fine_tune_layers` with BatchNorm frozen (keras-io's transfer-learning recipe).

Also: `edgeloop train --dataset … [--warm-start runs/<id>]`. The reader of the Examples
contract for every stage is `edgeloop.examples`. Importing this package does not import
TensorFlow.
"""

from __future__ import annotations

from .errors import InvalidInput, NanLoss, TrainError
from .options import EpochRecord, TrainOptions, TrainResult, new_run_id
from .settings import AugmentSettings, TrainSettings, get_train_settings


def train(options: TrainOptions) -> TrainResult:
    """Train, evaluate and record one model (see `pipelines.train.core.train`)."""
    from .core import train as _train

    return _train(options)


__all__ = [
    "AugmentSettings",
    "EpochRecord",
    "InvalidInput",
    "NanLoss",
    "TrainError",
    "TrainOptions",
    "TrainResult",
    "TrainSettings",
    "get_train_settings",
    "new_run_id",
    "train",
]
