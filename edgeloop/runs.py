"""The run folder contract: what one training run leaves behind, and how to find its model.

    <runs>/<run_id>/model.keras        the trained model: raw RGB pixels (0..255, float32) in, probabilities out
    <runs>/<run_id>/saved_model/       the same model as a TF SavedModel
    <runs>/<run_id>/model_card.json    the model card (labels, input spec, metrics, lineage; later the gate)
    <runs>/<run_id>/eval.json          the final model's EvalReport on the eval split
    <runs>/<run_id>/history.json       one EpochRecord per epoch
    <runs>/<run_id>/confusion.png      the eval confusion matrix
    <runs>/<run_id>/run.json           the run's training_runs row (what `record_run` replays)
    <runs>/<run_id>/gate.json          the gate's report, once the run is gated

Training writes the folder; the gate, conversion and the DAGs read it, naming files only
through `RunFolder`. Keras is imported only by `load_model` and `predict`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from edgeloop import storage
from edgeloop.card import CARD_NAME, ModelCard, read_card
from edgeloop.errors import CardError, EdgeloopError

MODEL = "model.keras"
SAVED_MODEL = "saved_model"
CARD = CARD_NAME  # the card module owns its file name
EVAL = "eval.json"
HISTORY = "history.json"
CONFUSION = "confusion.png"
RUN = "run.json"
GATE = "gate.json"


class RunFolderError(EdgeloopError):
    """A path given as a training run holds no model."""


class _File:
    """A run-folder attribute that is the URI of one of its files."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, run: RunFolder, owner: type | None = None) -> str:
        return storage.join(run.uri, self.name)


@dataclasses.dataclass(frozen=True)
class RunFolder:
    """A training run's folder (any storage URI); `keras_file` when a .keras file stands in for its model."""

    uri: str
    keras_file: str | None = None

    @classmethod
    def of(cls, runs_root: str, run_id: str) -> RunFolder:
        return cls(storage.join(runs_root, run_id))

    @classmethod
    def resolve(cls, uri: str, what: str = "run") -> RunFolder:
        """A run folder, or a .keras file whose folder holds the rest; `RunFolderError` when there is no model."""
        uri = str(uri).rstrip("/")
        folder, _, name = uri.rpartition("/")
        run = cls(folder or ".", keras_file=uri) if name.endswith(".keras") else cls(uri)
        if not storage.exists(run.model):
            raise RunFolderError(
                f"{what} {uri!r} holds no {MODEL}; pass a run folder (workspace/runs/<id>) "
                "or a .keras file written by `edgeloop train`"
            )
        return run

    @property
    def model(self) -> str:
        return self.keras_file or storage.join(self.uri, MODEL)

    saved_model = _File(SAVED_MODEL)
    card = _File(CARD)
    eval = _File(EVAL)
    history = _File(HISTORY)
    confusion = _File(CONFUSION)
    run = _File(RUN)
    gate = _File(GATE)


def model_and_card(uri: str, what: str = "run") -> tuple[str, ModelCard]:
    """The Keras model URI and the card of a run folder or .keras file (the gate's runs, a warm start's parent).

    `RunFolderError` without a model; `CardError`, naming `what`, for a missing or malformed card.
    """
    run = RunFolder.resolve(uri, what)
    try:
        return run.model, read_card(run.uri)
    except CardError as exc:
        raise CardError(f"{what} {uri!r}: {exc}") from None


def load_model(uri: str) -> Any:
    """A saved edgeloop `.keras` model from any storage URI."""
    import keras

    with storage.local_copy(uri) as path:
        return keras.models.load_model(path, compile=False)


def predict(model: Any, images: Any, batch_size: int = 64) -> Any:
    """Probabilities for uint8 or float images (values 0..255), through Keras' compiled predict step."""
    import numpy as np

    n = len(images)
    if n == 0:
        return np.zeros((0, model.output_shape[-1]), dtype="float32")
    # Padded to whole batches: a short last batch has another shape, and Keras traces the
    # predict step again for it (seconds for MobileNetV2, at every eval of a training phase).
    x = np.asarray(images, dtype="float32")
    padded = np.zeros((-(-n // batch_size) * batch_size, *x.shape[1:]), dtype="float32")
    padded[:n] = x
    return np.asarray(model.predict(padded, batch_size=batch_size, verbose=0))[:n]
