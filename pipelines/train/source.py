"""What training needs to know about a dataset version, read without TensorFlow.

`dataset.json` and its reader are the kernel's contract (`edgeloop.dataset`); this module
adapts it into the few facts training uses and turns its errors into `InvalidInput`, so
a missing or unreadable version ends the run with status `invalid_input`. Shard lists
always come from `dataset.json` (incremental versions reference earlier versions'
shards), never from a folder listing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from edgeloop.dataset import DatasetVersionError, load_dataset_info
from pipelines.train.errors import InvalidInput


@dataclasses.dataclass(frozen=True)
class DatasetView:
    """A dataset version: its label map, shard URIs per split and example counts per split and class."""

    uri: str
    version: str
    labels: tuple[str, ...]
    shards: Mapping[str, tuple[str, ...]]
    counts: Mapping[str, Mapping[str, int]]  # split -> label -> examples

    def class_counts(self, split: str) -> list[int]:
        """Examples per class index in `split`."""
        per = self.counts.get(split, {})
        return [int(per.get(label, 0)) for label in self.labels]


def open_dataset(uri: str) -> DatasetView:
    """Read a dataset version folder; `InvalidInput` when it does not exist or cannot be trained on."""
    uri = str(uri).rstrip("/")
    try:
        info = load_dataset_info(uri)
    except DatasetVersionError as exc:
        raise InvalidInput(f"dataset version {uri!r} cannot be used: {exc}") from None
    for split in ("train", "eval"):
        if split not in info.splits or not info.splits[split].shards:
            raise InvalidInput(f"dataset {uri!r} has no {split} shards; re-run ingest (its eval_fraction must be > 0)")
    if not info.label_map:
        raise InvalidInput(f"dataset {uri!r} has an empty label map; ingest found no products")
    return DatasetView(
        uri=uri,
        version=info.dataset_version,
        labels=tuple(info.label_map),
        shards={split: tuple(info.shard_uris(split)) for split in info.splits},
        counts={split: dict(s.per_class) for split, s in info.splits.items()},
    )
