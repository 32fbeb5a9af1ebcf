"""Ingest: product photos (one folder per product) → sharded gzip TFRecords + `dataset.json`.

    from pipelines.ingest import IngestOptions, ingest, load_dataset_info

    result = ingest(IngestOptions(input="photos", output="datasets", max_side=512))
    info = load_dataset_info(result.uri)          # the contract for readers (no TensorFlow needed)
    info.shard_uris("train"), info.label_map

Also: `edgeloop ingest --input … --output …`, and `run(argv)` / `python -m pipelines.ingest`
for Beam-style launches (unknown flags go to Beam). Importing this package does not
import Beam or TensorFlow.
"""

from __future__ import annotations

from edgeloop.dataset import DatasetInfo, DatasetVersionError, ShardRef, SplitInfo, load_dataset_info

from .errors import (
    CatalogueError,
    CountMismatchError,
    EmptyInputError,
    IngestError,
    InputNotFoundError,
)
from .job import IngestResult, ingest, run
from .options import IngestOptions
from .versions import latest_version, list_versions

__all__ = [
    "CatalogueError",
    "CountMismatchError",
    "DatasetInfo",
    "DatasetVersionError",
    "EmptyInputError",
    "IngestError",
    "IngestOptions",
    "IngestResult",
    "InputNotFoundError",
    "ShardRef",
    "SplitInfo",
    "ingest",
    "latest_version",
    "list_versions",
    "load_dataset_info",
    "run",
]
