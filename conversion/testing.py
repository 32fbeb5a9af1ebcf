"""A stand-in training run for tests and benchmarks: synthetic photos, a small MobileNetV2, a run folder.

It follows the trained-model contract of `pipelines/train` — `Input((H, W, 3), float32)`
taking raw 0..255 pixels, rescaling to [-1, 1] inside the model, softmax float32 out —
so conversion can be tested and benchmarked without the training stage. Not a trainer:
no augmentation, no transfer learning, just enough steps for confident predictions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conversion.data import ConversionData
from edge.manifest import InputSpec
from edgeloop import runs
from edgeloop.card import CARD_NAME, GateCheck, GateReport, Lineage, ModelCard

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SyntheticSplits:
    labels: list[str]
    train_images: NDArray[np.uint8]
    train_labels: NDArray[np.int64]
    eval_images: NDArray[np.uint8]
    eval_labels: NDArray[np.int64]

    def conversion_data(self, representative_samples: int = 200) -> ConversionData:
        pick = np.random.default_rng(0).permutation(len(self.train_images))[:representative_samples]
        return ConversionData(
            eval_images=self.eval_images,
            eval_labels=self.eval_labels,
            representative=self.train_images[np.sort(pick)],
            labels=list(self.labels),
        )


def synthetic_splits(
    n_products: int, *, train_per_class: int, eval_per_class: int, size: int, seed: int = 0, difficulty: float = 0.0
) -> SyntheticSplits:
    """Photos rendered by `edgeloop.synth` straight into arrays (no JPEG round trip)."""
    from edgeloop import synth

    products = synth.catalogue(n_products, seed=seed, difficulty=difficulty)
    images: dict[str, list[NDArray[np.uint8]]] = {"train": [], "eval": []}
    labels: dict[str, list[int]] = {"train": [], "eval": []}
    for index, spec in enumerate(products):
        for photo in range(train_per_class + eval_per_class):
            split = "train" if photo < train_per_class else "eval"
            images[split].append(np.asarray(synth.render(spec, photo, size=size, seed=seed), dtype=np.uint8))
            labels[split].append(index)
    return SyntheticSplits(
        labels=[p.name for p in products],
        train_images=np.stack(images["train"]),
        train_labels=np.asarray(labels["train"], dtype=np.int64),
        eval_images=np.stack(images["eval"]),
        eval_labels=np.asarray(labels["eval"], dtype=np.int64),
    )


def build_model(n_classes: int, *, size: int = 96, alpha: float = 0.35, seed: int = 0) -> Any:
    """MobileNetV2 (random init) with the training stage's contract: raw pixels in, softmax out."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(size, size, 3), dtype="float32", name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    base = keras.applications.MobileNetV2(
        input_shape=(size, size, 3), alpha=alpha, include_top=False, weights=None, pooling="avg"
    )
    # Short training from scratch: a fast-moving BatchNorm average makes inference-mode
    # statistics match the trained weights after a few dozen steps instead of thousands.
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.8
    x = base(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="mobilenet_v2_tiny")


def train(
    model: Any, images: NDArray[np.uint8], labels: NDArray[np.int64], *, epochs: int, batch_size: int = 32
) -> Any:
    import keras

    # XLA compilation of the train step costs minutes on a small CPU box and saves seconds here.
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=False,
    )
    model.fit(images.astype(np.float32), labels, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0)
    return model


def write_run(
    folder: str | Path,
    model: Any,
    labels: list[str],
    *,
    name: str = "shelf-products",
    run_id: str = "run-test",
    gate_passed: bool = True,
    dataset_uri: str | None = None,
) -> Path:
    """A training run folder as `pipelines/train` writes it: `model.keras` + `model_card.json`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / runs.MODEL)
    size = int(model.inputs[0].shape[1])
    check = GateCheck(
        name="min_macro_f1",
        threshold=0.5,
        value=0.9 if gate_passed else 0.1,
        passed=gate_passed,
        detail="macro-F1 0.90 >= 0.50" if gate_passed else "macro-F1 0.10 < 0.50",
    )
    card = ModelCard(
        name=name,
        version=run_id,
        created_at=dt.datetime.now(dt.UTC),
        labels=labels,
        input=InputSpec(height=size, width=size, dtype="float32"),
        gate=GateReport(verdict="pass" if gate_passed else "fail", checks=[check]),
        lineage=Lineage(dataset_version="synthetic", dataset_uri=dataset_uri, run_id=run_id),
    )
    (folder / CARD_NAME).write_text(card.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return folder
