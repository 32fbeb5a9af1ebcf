"""The small records that flow through the ingest job (never image bytes: those stay inside one step).

Plain frozen dataclasses in an importable module, so Beam workers unpickle them by reference.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any


@dataclasses.dataclass(frozen=True)
class InputFile:
    """One file to ingest. `label` is None for a file outside any product folder; `missing` for a
    catalogue row whose file does not exist."""

    uri: str
    label: str | None
    size: int
    generation: int | None = None
    missing: bool = False

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> InputFile:
        return cls(**json.loads(line))


@dataclasses.dataclass(frozen=True)
class Probed:
    """A usable photo: where it is, whose it is, its identity and upright size."""

    uri: str
    label: str
    size: int
    generation: int | None
    sha256: str
    width: int
    height: int
    format: str
    est_bytes: int


@dataclasses.dataclass(frozen=True)
class Planned:
    """A photo to write, with its split."""

    photo: Probed
    split: str


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """A file that cannot be used, and why."""

    uri: str
    label: str | None
    reason: str
    detail: str
    size: int
    generation: int | None = None
    sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class DuplicateRecord:
    """A file not written because its bytes are already in the dataset (`duplicate`) or are
    filed under more than one product (`conflict`)."""

    uri: str
    label: str
    size: int
    generation: int | None
    sha256: str
    kind: str  # "duplicate" or "conflict"
    of_uri: str | None  # for a duplicate: the file kept (or the earlier example)
    labels: tuple[str, ...]  # for a conflict: every product the photo is filed under
    earlier_versions: tuple[str, ...] = ()  # versions that already hold this photo

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["labels"] = list(self.labels)
        out["earlier_versions"] = list(self.earlier_versions)
        return out


@dataclasses.dataclass(frozen=True)
class ExistingExample:
    """A photo an earlier dataset version holds (`written`), or left out as a label conflict and
    still in the input unchanged (not `written`)."""

    uri: str
    label: str
    dataset_version: str
    written: bool = True


@dataclasses.dataclass(frozen=True)
class ShardResult:
    """One shard written by this run."""

    path: str  # relative to the dataset root
    split: str
    examples: int
    bytes: int
    per_class: tuple[tuple[str, int], ...]


@dataclasses.dataclass(frozen=True)
class InventoryEntry:
    """What became of one input file; the next incremental run skips files listed here."""

    uri: str
    size: int
    generation: int | None
    label: str | None
    sha256: str | None
    outcome: str  # "written", "duplicate", "conflict" or "dead-letter"
    split: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Plan:
    """Decided once per run from all planned photos: the label map and the shards per split."""

    label_map: tuple[str, ...]
    shards: tuple[tuple[str, int], ...]

    def shards_of(self, split: str) -> int:
        return dict(self.shards)[split]


OUTCOMES = ("written", "duplicate", "conflict", "dead-letter")

# Report files the job writes, relative to the version folder; "_work/" ones are read by the
# driver and removed once dataset.json is written.
DEAD_LETTERS = "dead_letters.jsonl"
DUPLICATES = "duplicates.jsonl"
INVENTORY = "files.jsonl.gz"
WORK = "_work"
SHARDS = f"{WORK}/shards.jsonl"
PLAN = f"{WORK}/plan.jsonl"

__all__ = [
    "DEAD_LETTERS",
    "DUPLICATES",
    "INVENTORY",
    "OUTCOMES",
    "PLAN",
    "SHARDS",
    "WORK",
    "DeadLetter",
    "DuplicateRecord",
    "ExistingExample",
    "InputFile",
    "InventoryEntry",
    "Plan",
    "Planned",
    "Probed",
    "ShardResult",
]
