"""Why a training run could not go on; each error carries the `training_runs.status` it records.

EdgeloopError
└── TrainError           status "failed"
    ├── InvalidInput     status "invalid_input": the dataset or warm-start model cannot be trained on
    └── NanLoss          status "nan_loss": the loss became NaN or infinite; rows up to then are kept
"""

from __future__ import annotations

from edgeloop.errors import EdgeloopError


class TrainError(EdgeloopError):
    """Training stopped; the message says why and what to do."""

    status = "failed"


class InvalidInput(TrainError):
    """The dataset version or the warm-start model cannot be used as given."""

    status = "invalid_input"


class NanLoss(TrainError):
    """The loss diverged to NaN or infinity."""

    status = "nan_loss"
