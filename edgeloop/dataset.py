"""The dataset contract: `dataset.json`, read without TensorFlow or Beam.

Ingest writes one dataset version per run:

    <out>/v0002/dataset.json          this file: the only thing readers need
    <out>/v0002/train/*.tfrecord.gz   shards written by this run
    <out>/v0002/eval/*.tfrecord.gz
    <out>/v0002/dead_letters.jsonl    files that could not be used, with reasons
    <out>/v0002/duplicates.jsonl      duplicates and label conflicts
    <out>/v0002/files.jsonl.gz        every input file this run saw (for the next incremental run)

**Readers take the shard list from `dataset.json`, never from a folder listing**: an
incremental version references the shards of earlier versions instead of copying them,
so `v0002/train/` holds only the new shards while `splits.train.shards` lists all of
them, each with the version that owns it. Shard paths are relative to the dataset root
(the folder holding the `vNNNN` folders), so a root copied elsewhere stays valid.

    info = load_dataset_info("gs://bucket/datasets/v0002")     # or .../v0002/dataset.json
    files = info.shard_uris("train")                           # absolute URIs, in order
    names = info.label_map                                     # index -> product name
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, computed_field

from edgeloop import storage
from edgeloop.errors import EdgeloopError, NotFound, StorageError

SCHEMA_VERSION = 1
DATASET_JSON = "dataset.json"


class DatasetVersionError(EdgeloopError):
    """A dataset version is taken, missing or unreadable."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class FileRef(_Model):
    """A file of the dataset: its path under the root and the version that wrote it."""

    path: str
    dataset_version: str


class ShardRef(FileRef):
    """One TFRecord shard."""

    examples: int
    bytes: int


class SplitInfo(_Model):
    """Everything in one split, earlier versions' shards included."""

    examples: int
    per_class: dict[str, int]
    shards: list[ShardRef]


class Counts(_Model):
    """What happened to the files of one run. `input == written + duplicates + conflicts + dead_letters`."""

    listed: int = Field(description="Files found under the input.")
    known: int = Field(description="Files skipped: the parent version already saw them (same URI, size, generation).")
    input: int = Field(description="Files this run processed: listed - known.")
    written: int
    duplicates: int
    conflicts: int
    dead_letters: int
    dead_letter_reasons: dict[str, int]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def identity_holds(self) -> bool:
        """Every input file ended up written, a duplicate, a conflict or a dead letter (recorded, and checked by the job)."""
        return self.input == self.written + self.duplicates + self.conflicts + self.dead_letters


class Source(_Model):
    """Where one run (this version or an ancestor) read photos from."""

    input: str
    dataset_version: str
    files: int
    written: int


class Conflict(_Model):
    """One photo filed under more than one product; excluded until someone fixes the folders."""

    sha256: str
    labels: list[str]
    uris: list[str]
    earlier_versions: list[str] = Field(default_factory=list)


class BeamInfo(_Model):
    version: str
    runner: str
    running_mode: str | None = None
    num_workers: int | None = None
    args: list[str] = Field(default_factory=list)


class DatasetFiles(_Model):
    dead_letters: str
    duplicates: str
    inventory: list[FileRef]


class DatasetInfo(_Model):
    """A parsed `dataset.json`. `root` is where the `vNNNN` folders live (set by the loader)."""

    schema_version: int
    dataset_version: str
    parent_version: str | None
    created_at: dt.datetime
    label_map: list[str]
    new_classes: list[str]
    splits: dict[str, SplitInfo]
    counts: Counts
    sources: list[Source]
    conflicts: list[Conflict]
    warnings: list[str]
    files: DatasetFiles
    features: dict[str, str]
    options: dict[str, Any]
    beam: BeamInfo

    _root: str = PrivateAttr(default="")

    @property
    def root(self) -> str:
        return self._root

    @property
    def num_classes(self) -> int:
        return len(self.label_map)

    @property
    def examples(self) -> int:
        return sum(s.examples for s in self.splits.values())

    def uri(self, path: str) -> str:
        """The absolute URI of a path stored in this file."""
        return storage.join(self._root, path)

    def shard_uris(self, split: str) -> list[str]:
        """Absolute URIs of every shard of `split` (earlier versions' shards included)."""
        if split not in self.splits:
            raise KeyError(f"{self.dataset_version} has no split {split!r}; it has {sorted(self.splits)}")
        return [self.uri(s.path) for s in self.splits[split].shards]

    def label_index(self, name: str) -> int:
        return self.label_map.index(name)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)


def _locate(uri: str) -> tuple[str, str]:
    """(root, dataset.json URI) for a version folder or a dataset.json URI."""
    uri = uri.rstrip("/")
    if uri.endswith("/" + DATASET_JSON) or uri == DATASET_JSON:
        json_uri = uri
        folder = uri[: -len(DATASET_JSON)].rstrip("/")
    else:
        folder, json_uri = uri, storage.join(uri, DATASET_JSON)
    root = folder.rsplit("/", 1)[0] if "/" in folder else "."
    return root, json_uri


def load_dataset_info(uri: str) -> DatasetInfo:
    """Read the `dataset.json` of a version folder (`.../v0003`) or of the file itself."""
    root, json_uri = _locate(uri)
    try:
        text = storage.read_text(json_uri)
    except NotFound:
        raise DatasetVersionError(
            f"no dataset at {uri!r} ({json_uri} does not exist); point at a version folder such as "
            "<out>/v0001, written by `edgeloop ingest`"
        ) from None
    except StorageError as exc:
        raise DatasetVersionError(f"cannot read {json_uri!r}: {exc}") from None
    try:
        info = DatasetInfo.model_validate_json(text)
    except ValidationError as exc:
        raise DatasetVersionError(
            f"{json_uri!r} is not a valid dataset.json ({exc.error_count()} problems, first: "
            f"{exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}); re-run ingest to rewrite it"
        ) from None
    if info.schema_version > SCHEMA_VERSION:
        raise DatasetVersionError(
            f"{json_uri!r} has schema_version {info.schema_version}, newer than this edgeloop reads "
            f"({SCHEMA_VERSION}); upgrade edgeloop"
        )
    info._root = root
    return info


__all__ = [
    "DATASET_JSON",
    "SCHEMA_VERSION",
    "BeamInfo",
    "Conflict",
    "Counts",
    "DatasetFiles",
    "DatasetInfo",
    "DatasetVersionError",
    "FileRef",
    "ShardRef",
    "Source",
    "SplitInfo",
    "load_dataset_info",
]
