"""The decisions of ingest as pure functions: split, dedupe, label map, shards, versions.

Everything here is deterministic in its inputs and imports neither Beam nor TensorFlow,
so the fast test suite covers the rules and the Beam job only wires them together.

Splits and their stability
--------------------------
A photo's split comes from its content hash: the leading bits of its sha256, read
as a fraction in [0, 1), below `train` → train, below `train + eval` → eval,
else test. Adding photos never changes that fraction, so hash-ruled photos never move.

The hash alone can leave a small product with no eval photo (or no train photo), so
per product, after the hash rule:

1. with 2+ photos and none in eval, its photo with the *smallest* hash (among this
   run's new photos in train, else in test) goes to eval;
2. with 2+ photos and none in train, its photo with the *largest* hash (among this
   run's new photos outside train, sparing an eval photo needed by rule 1) goes to train;
3. a product's only photo goes to train (one photo can teach but not measure).

Photos already in an earlier version count toward "has an eval/train photo" but are
never moved (incremental runs do not even read them). So in incremental mode every
split is frozen forever. The trade-off: on a from-scratch rebuild, the at most one
or two photos per product that a rule above moved can move back when the product
gains photos (e.g. a new photo lands in eval by hash, and the old promoted photo
returns to train). Training on v2 could then include a photo v1 evaluated on. Build
new versions incrementally (`--previous`) to keep every split fixed; rebuild from
scratch only when you accept that a handful of promoted photos may change sides.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

SPLITS = ("train", "eval", "test")
_VERSION = re.compile(r"^v(\d{4,})$")


# --------------------------------------------------------------------------- split


@dataclasses.dataclass(frozen=True)
class SplitRatios:
    """Fractions of photos per split, by content hash; they must sum to 1."""

    train: float = 0.8
    eval: float = 0.2
    test: float = 0.0

    def __post_init__(self) -> None:
        for name in SPLITS:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} fraction {value!r} is outside [0, 1]")
        if not math.isclose(self.train + self.eval + self.test, 1.0, abs_tol=1e-9):
            raise ValueError(
                f"split fractions train={self.train} eval={self.eval} test={self.test} "
                "must sum to 1; lower --eval-fraction/--test-fraction"
            )
        if self.train <= 0 or self.eval <= 0:
            raise ValueError("train and eval fractions must both be above 0")

    @property
    def active(self) -> tuple[str, ...]:
        """The splits that can receive photos."""
        return tuple(s for s in SPLITS if getattr(self, s) > 0)


def hash_fraction(sha256: str) -> float:
    """The photo's position in [0, 1) used by the split rule (the hash's first 53 bits: exact in a float)."""
    return (int(sha256[:16], 16) >> 11) / 2.0**53


def split_by_hash(sha256: str, ratios: SplitRatios) -> str:
    """The split the hash rule alone gives a photo."""
    f = hash_fraction(sha256)
    if f < ratios.train:
        return "train"
    if f < ratios.train + ratios.eval:
        return "eval"
    return "test" if ratios.test > 0 else "eval"


def assign_class_splits(
    hashes: Iterable[str], ratios: SplitRatios, prior: Mapping[str, int] | None = None
) -> dict[str, str]:
    """Splits for one product's new photos, given its counts per split in earlier versions.

    See the module docstring for the rules and their stability.
    """
    new = sorted(set(hashes))
    splits = {h: split_by_hash(h, ratios) for h in new}
    prior_counts = Counter(prior or {})
    total = len(new) + sum(prior_counts.values())
    have = prior_counts + Counter(splits.values())
    if not new:
        return splits
    if total == 1:
        splits[new[0]] = "train"
        return splits
    promoted: str | None = None
    if have["eval"] == 0:
        pool = [h for h in new if splits[h] == "train"] or [h for h in new if splits[h] == "test"]
        if pool:
            promoted = pool[0]
            have[splits[promoted]] -= 1
            splits[promoted] = "eval"
            have["eval"] += 1
    if have["train"] == 0:
        # Take from test first; from eval only when eval keeps a photo afterwards.
        pool = [h for h in new if splits[h] == "test"]
        if not pool and have["eval"] >= 2:
            pool = [h for h in new if splits[h] == "eval" and h != promoted]
        if pool:
            splits[pool[-1]] = "train"
    return splits


# --------------------------------------------------------------------------- dedupe


@dataclasses.dataclass(frozen=True)
class HashGroupDecision:
    """What happens to the files that share one content hash.

    `keep` is the file to write (or None), `duplicates` maps dropped files to the file
    they repeat, `conflicts` lists files excluded because the photo is filed under
    more than one product.
    """

    keep: str | None
    duplicates: dict[str, str]
    conflicts: tuple[str, ...]
    labels: tuple[str, ...]


def resolve_hash_group(
    files: Mapping[str, str], existing: Mapping[str, str] | None = None, excluded: Mapping[str, str] | None = None
) -> HashGroupDecision:
    """Decide for the new files `{uri: label}` sharing one hash.

    `existing` are earlier examples of the photo `{uri: label}`; `excluded` are earlier
    conflict copies still in the input. Same product everywhere: the first new URI (sorted)
    is kept, or none if an earlier version already holds the photo; the rest are
    duplicates. Two or more products: every new file is a conflict and none is written (an
    earlier example stays in its shard; the report names it).
    """
    existing = dict(existing or {})
    labels = tuple(sorted(set(files.values()) | set(existing.values()) | set((excluded or {}).values())))
    uris = sorted(files)
    if len(labels) > 1:
        return HashGroupDecision(None, {}, tuple(uris), labels)
    if existing:
        first = min(existing)
        return HashGroupDecision(None, dict.fromkeys(uris, first), (), labels)
    keep = uris[0]
    return HashGroupDecision(keep, dict.fromkeys(uris[1:], keep), (), labels)


# --------------------------------------------------------------------------- label map


def merge_label_map(previous: Sequence[str], labels: Iterable[str]) -> list[str]:
    """Earlier products keep their index; new ones are appended in sorted order."""
    if len(set(previous)) != len(previous):
        raise ValueError(f"label map {list(previous)!r} names a product twice")
    known = set(previous)
    return [*previous, *sorted(set(labels) - known)]


# --------------------------------------------------------------------------- shards


def examples_per_shard(
    n_examples: int, est_bytes: int, *, target_bytes: int, min_shards: int, min_per_shard: int = 50
) -> int:
    """How many examples go in one shard across all splits of this run.

    Shards aim at `target_bytes`, but a run is cut into at least `min_shards` pieces
    of work so every worker gets some (unless that would make shards under
    `min_per_shard` examples, which only slows readers down).
    """
    if n_examples <= 0:
        return 1
    per_example = max(1.0, est_bytes / n_examples)
    by_bytes = max(1, int(target_bytes // per_example))
    by_work = max(min_per_shard, math.ceil(n_examples / max(1, min_shards)))
    return max(1, min(by_bytes, by_work))


def shard_count(n_examples: int, per_shard: int) -> int:
    return max(1, math.ceil(n_examples / max(1, per_shard)))


def shard_of(sha256: str, n_shards: int) -> int:
    """The shard of a photo: hash digits the split rule does not use, so the two are independent."""
    return int(sha256[16:32], 16) % n_shards


def shard_name(split: str, index: int, n_shards: int) -> str:
    return f"{split}-{index:05d}-of-{n_shards:05d}.tfrecord.gz"


# --------------------------------------------------------------------------- versions


def format_version(number: int) -> str:
    return f"v{number:04d}"


def parse_version(name: str) -> int:
    """The number of `v0007`; raises ValueError for anything else."""
    match = _VERSION.match(name)
    if not match:
        raise ValueError(f"dataset version {name!r} is not of the form v0001")
    return int(match.group(1))


def next_version(taken: Iterable[str]) -> str:
    """One past the highest `vNNNN` in `taken` (other names are ignored)."""
    numbers = [int(m.group(1)) for name in taken if (m := _VERSION.match(name))]
    return format_version(max(numbers, default=0) + 1)


__all__ = [
    "SPLITS",
    "HashGroupDecision",
    "SplitRatios",
    "assign_class_splits",
    "examples_per_shard",
    "format_version",
    "hash_fraction",
    "merge_label_map",
    "next_version",
    "parse_version",
    "resolve_hash_group",
    "shard_count",
    "shard_name",
    "shard_of",
    "split_by_hash",
]
