"""The Keras callback of a training phase: eval metrics each epoch, early stopping with best-weight restore, NaN stop.

Imports Keras at module level: `pipelines.train.core` imports this module only inside a run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from edgeloop import runs
from edgeloop.metrics import macro_f1
from pipelines.train.options import EpochRecord
from pipelines.train.settings import TrainSettings


class Monitor(keras.callbacks.Callback):  # type: ignore[misc]
    """Watches one phase of `epochs` epochs; each finished epoch goes to `history` and then to `on_epoch`."""

    def __init__(
        self,
        phase: str,
        eval_x: np.ndarray,
        eval_y: np.ndarray,
        n_classes: int,
        settings: TrainSettings,
        epochs: int,
        history: list[EpochRecord],
        on_epoch: Callable[[EpochRecord], None],
    ) -> None:
        super().__init__()
        self.phase = phase
        self.eval_x, self.eval_y, self.n_classes = eval_x, eval_y, n_classes
        self.settings = settings
        self.epochs = epochs
        self.history = history
        self.on_epoch = on_epoch
        self.nan = False
        self.nan_value = ""
        self.nan_epoch = 0
        self.best: float | None = None
        self.best_f1 = 0.0
        self.best_weights: list[Any] | None = None
        self.best_epoch = 0
        self.last_eval: int | None = None  # epoch of the latest eval
        self.started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.started = time.monotonic()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            self.nan, self.nan_value = True, str(loss)
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs if logs is not None else {}
        loss = float(logs.get("loss", float("nan")))
        if not math.isfinite(loss):
            self.nan, self.nan_value = True, str(loss)
        record = EpochRecord(
            phase=self.phase,  # type: ignore[arg-type]
            epoch=epoch + 1,
            loss=loss if math.isfinite(loss) else None,
            accuracy=_finite(logs.get("accuracy")),
            val_loss=None,
            val_accuracy=None,
            val_macro_f1=None,
            learning_rate=_finite(np.asarray(self.model.optimizer.learning_rate)),
            duration_s=0.0,
        )
        if self.nan:
            self.nan_epoch = epoch + 1
            self.model.stop_training = True
        elif self._eval_due(epoch + 1):
            probs = runs.predict(self.model, self.eval_x)
            picked = np.clip(probs[np.arange(len(self.eval_y)), self.eval_y], 1e-7, 1.0)
            record.val_loss = _finite(-np.log(picked).mean())
            record.val_accuracy = float(np.mean(probs.argmax(1) == self.eval_y))
            record.val_macro_f1 = macro_f1(self.eval_y, probs.argmax(1), self.n_classes)
            logs.update(val_loss=record.val_loss, val_accuracy=record.val_accuracy, val_macro_f1=record.val_macro_f1)
            self._early_stop(record)
        record.duration_s = time.monotonic() - self.started
        self.history.append(record)
        self.on_epoch(record)

    def _eval_due(self, epoch: int) -> bool:
        # Every epoch while the curve climbs (the first half of the schedule); then every eval_every
        # epochs, each eval being a full pass over the eval split. The last epoch always.
        if epoch >= self.epochs or epoch <= self.epochs // 2 or self.last_eval is None:
            return True
        return epoch - self.last_eval >= self.settings.eval_every

    def _early_stop(self, record: EpochRecord) -> None:
        s = self.settings
        f1 = record.val_macro_f1 or 0.0
        self.last_eval = record.epoch
        score = f1 if s.early_stopping_metric == "val_macro_f1" else -(record.val_loss or math.inf)
        if self.best is None or score > self.best + 1e-6:
            self.best, self.best_f1, self.best_epoch = score, f1, record.epoch
            self.best_weights = self.model.get_weights()
        elif record.epoch - self.best_epoch >= s.patience:
            self.model.stop_training = True
        if s.target_macro_f1 is not None and f1 >= s.target_macro_f1:
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.best_weights is not None and not self.nan:
            self.model.set_weights(self.best_weights)


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    f = float(value)
    return f if math.isfinite(f) else None
