"""The images conversion needs, as plain arrays, and the one place that reads them from a dataset.

`convert()` takes a `ConversionData`; callers that have arrays (tests, notebooks) pass
them directly, and the CLI / Airflow get them from the reader of the Examples contract
(`edgeloop.examples.split_arrays`) via `load`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conversion.errors import LabelMismatch, MissingData

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ConversionData:
    """Eval images with their labels (parity), and train images (int8 calibration).

    Images are raw RGB pixels, uint8 (N, H, W, 3), at the model's input size.
    """

    eval_images: NDArray[np.uint8]
    eval_labels: NDArray[np.int64]
    representative: NDArray[np.uint8]
    labels: list[str]  # the dataset's label map, index order

    def check(self, card_labels: Sequence[str], height: int, width: int, *, need_representative: bool) -> None:
        """Refuse data that cannot judge this model: another label map, wrong size, nothing to calibrate on."""
        if list(card_labels) != list(self.labels):
            raise LabelMismatch(label_difference(card_labels, self.labels))
        for name, images in (("eval", self.eval_images), ("representative", self.representative)):
            if images.size == 0:
                continue
            if images.ndim != 4 or images.shape[1:] != (height, width, 3) or images.dtype != np.uint8:
                raise MissingData(
                    f"{name} images have shape {images.shape} and dtype {images.dtype}; the model takes "
                    f"uint8 (N, {height}, {width}, 3): read them at the model's input size"
                )
        if len(self.eval_images) == 0:
            raise MissingData("no eval images: the eval split is empty, so parity cannot be measured; re-run ingest")
        if len(self.eval_labels) != len(self.eval_images):
            raise MissingData(f"{len(self.eval_images)} eval images but {len(self.eval_labels)} labels")
        bad = [int(v) for v in np.unique(self.eval_labels) if not 0 <= v < len(self.labels)]
        if bad:
            raise LabelMismatch(f"eval labels {bad} are outside the label map of {len(self.labels)} classes")
        if need_representative and len(self.representative) == 0:
            raise MissingData(
                "no representative images: int8 variants need train images to calibrate on; "
                "check the dataset's train split, or skip tflite_int8/onnx_int8 with --variants"
            )


def label_difference(card: Sequence[str], dataset: Sequence[str]) -> str:
    """What differs between two label maps, in words."""
    missing = [label for label in card if label not in dataset]
    added = [label for label in dataset if label not in card]
    parts = [f"the model card has {len(card)} labels, the dataset {len(dataset)}"]
    if missing:
        parts.append(f"only in the card: {missing[:5]}{' …' if len(missing) > 5 else ''}")
    if added:
        parts.append(f"only in the dataset: {added[:5]}{' …' if len(added) > 5 else ''}")
    if not missing and not added:
        first = next(i for i, (a, b) in enumerate(zip(card, dataset, strict=False)) if a != b)
        parts.append(f"the order differs from index {first} ({card[first]!r} vs {dataset[first]!r})")
    return (
        "label map mismatch: " + "; ".join(parts) + ". The model was trained on another dataset version: "
        "convert it with the dataset it was trained on, or retrain on this one"
    )


def load(
    dataset_uri: str | None, *, height: int, width: int, representative_samples: int, eval_limit: int | None
) -> ConversionData:
    """Read eval and representative images through the Examples contract's reader."""
    if not dataset_uri:
        raise MissingData(
            "the model card names no dataset (lineage.dataset_uri), so there are no eval or representative "
            "images; pass the data to convert() or fix the training run's card"
        )
    from edgeloop import examples as reader

    eval_images, eval_labels, labels = _read(reader, dataset_uri, "eval", (height, width), eval_limit)
    # Read a few times more train images than needed and sample, so calibration sees every class
    # even when the reader returns examples grouped by class.
    train_images, _, _ = _read(reader, dataset_uri, "train", (height, width), representative_samples * 4)
    if len(train_images) > representative_samples:
        pick = np.random.default_rng(0).choice(len(train_images), representative_samples, replace=False)
        train_images = train_images[np.sort(pick)]
    log.info("read %d eval and %d representative images from %s", len(eval_images), len(train_images), dataset_uri)
    return ConversionData(
        eval_images=np.asarray(eval_images, dtype=np.uint8),
        eval_labels=np.asarray(eval_labels, dtype=np.int64),
        representative=np.asarray(train_images, dtype=np.uint8),
        labels=[str(label) for label in labels],
    )


def _read(reader: Any, uri: str, split: str, size: tuple[int, int], limit: int | None) -> tuple[Any, Any, Any]:
    from edgeloop.errors import EdgeloopError

    try:
        return reader.split_arrays(uri, split=split, size=size, limit=limit)
    except (FileNotFoundError, EdgeloopError) as exc:
        raise MissingData(f"cannot read the {split} split of dataset {uri!r}: {exc}") from None
