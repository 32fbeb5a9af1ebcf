"""The pure rules of ingest: split, dedupe, label map, shard planning, versions (no Beam, no TF)."""

from __future__ import annotations

import hashlib
import random
from collections import Counter

import pytest

from pipelines.ingest.rules import (
    SplitRatios,
    assign_class_splits,
    examples_per_shard,
    format_version,
    hash_fraction,
    merge_label_map,
    next_version,
    parse_version,
    resolve_hash_group,
    shard_count,
    shard_name,
    shard_of,
    split_by_hash,
)


def h(i: int | str) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


def hash_with(split: str, ratios: SplitRatios, start: int = 0) -> str:
    """A hash the plain rule puts in `split`."""
    i = start
    while split_by_hash(h(i), ratios) != split:
        i += 1
    return h(i)


# --------------------------------------------------------------------------- split rule


def test_hash_fraction_uses_the_first_64_bits() -> None:
    assert hash_fraction("0" * 64) == 0.0
    assert hash_fraction("8" + "0" * 63) == 0.5
    assert hash_fraction("f" * 64) < 1.0


def test_split_by_hash_follows_the_ratios() -> None:
    ratios = SplitRatios(train=0.7, eval=0.2, test=0.1)
    counts = Counter(split_by_hash(h(i), ratios) for i in range(20_000))
    assert counts["train"] / 20_000 == pytest.approx(0.7, abs=0.02)
    assert counts["eval"] / 20_000 == pytest.approx(0.2, abs=0.02)
    assert counts["test"] / 20_000 == pytest.approx(0.1, abs=0.02)


def test_split_ratios_refuse_bad_fractions() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        SplitRatios(train=0.5, eval=0.2, test=0.0)
    with pytest.raises(ValueError, match="outside"):
        SplitRatios(train=1.2, eval=-0.2)
    with pytest.raises(ValueError, match="above 0"):
        SplitRatios(train=1.0, eval=0.0)
    assert SplitRatios().active == ("train", "eval")
    assert SplitRatios(0.8, 0.1, 0.1).active == ("train", "eval", "test")


# --------------------------------------------------------------------------- per-product guarantees


def test_a_product_with_two_or_more_photos_gets_an_eval_photo() -> None:
    ratios = SplitRatios()
    trains = [hash_with("train", ratios, i * 1000) for i in range(3)]
    splits = assign_class_splits(trains, ratios)
    assert Counter(splits.values()) == {"train": 2, "eval": 1}
    assert splits[min(trains)] == "eval"  # the smallest hash is the one promoted


def test_a_product_with_only_eval_photos_gets_a_train_photo() -> None:
    ratios = SplitRatios()
    evals = [hash_with("eval", ratios, i * 1000) for i in range(2)]
    splits = assign_class_splits(evals, ratios)
    assert sorted(splits.values()) == ["eval", "train"]
    assert splits[max(evals)] == "train"


def test_a_single_photo_goes_to_train() -> None:
    ratios = SplitRatios()
    only = hash_with("eval", ratios)
    assert assign_class_splits([only], ratios) == {only: "train"}


def test_test_split_photos_can_be_promoted_when_nothing_else_is_left() -> None:
    ratios = SplitRatios(train=0.6, eval=0.2, test=0.2)
    tests = [hash_with("test", ratios, i * 1000) for i in range(3)]
    splits = assign_class_splits(tests, ratios)
    assert Counter(splits.values()) == {"eval": 1, "train": 1, "test": 1}


def test_earlier_versions_count_toward_the_guarantee_but_never_move() -> None:
    ratios = SplitRatios()
    new = [hash_with("train", ratios, i * 1000) for i in range(2)]
    # The product already has an eval photo in an earlier version: nothing is promoted.
    assert set(assign_class_splits(new, ratios, {"train": 3, "eval": 1}).values()) == {"train"}
    # It has one (train) photo: one of the new photos must become its eval photo.
    assert Counter(assign_class_splits(new, ratios, {"train": 1}).values()) == {"train": 1, "eval": 1}
    # One new photo, one earlier train photo: the new one is the product's eval photo.
    assert assign_class_splits(new[:1], ratios, {"train": 1}) == {new[0]: "eval"}


def test_every_product_with_two_photos_has_eval_and_train_for_any_hashes() -> None:
    rng = random.Random(7)
    for ratios in (SplitRatios(), SplitRatios(0.7, 0.2, 0.1), SplitRatios(0.5, 0.5)):
        for _ in range(300):
            n = rng.randint(2, 12)
            splits = assign_class_splits([h(rng.random()) for _ in range(n)], ratios)
            counts = Counter(splits.values())
            assert counts["eval"] >= 1 and counts["train"] >= 1, (ratios, splits)


def test_hash_ruled_splits_are_stable_as_photos_are_added() -> None:
    """On a from-scratch rebuild only photos a guarantee moved can change split (the documented trade-off)."""
    ratios = SplitRatios()
    rng = random.Random(3)
    for _ in range(300):
        before = [h(rng.random()) for _ in range(rng.randint(1, 8))]
        after = before + [h(rng.random()) for _ in range(rng.randint(1, 8))]
        first, second = assign_class_splits(before, ratios), assign_class_splits(after, ratios)
        moved = [p for p in before if first[p] != second[p]]
        assert len(moved) <= 2
        for p in moved:
            assert split_by_hash(p, ratios) in (first[p], second[p])  # the rule put it on one side
            assert first[p] != split_by_hash(p, ratios) or second[p] != split_by_hash(p, ratios)


def test_incremental_assignment_never_changes_earlier_photos() -> None:
    """Incremental runs pass earlier photos as counts only, so their splits cannot change."""
    ratios = SplitRatios()
    rng = random.Random(11)
    earlier = [h(rng.random()) for _ in range(5)]
    first = assign_class_splits(earlier, ratios)
    later = [h(rng.random()) for _ in range(5)]
    second = assign_class_splits(later, ratios, Counter(first.values()))
    assert set(second) == set(later)  # only new photos get a split


# --------------------------------------------------------------------------- dedupe


def test_same_photo_in_one_product_is_kept_once() -> None:
    d = resolve_hash_group({"p/a/2.jpg": "a", "p/a/1.jpg": "a", "p/a/3.jpg": "a"})
    assert d.keep == "p/a/1.jpg"
    assert d.duplicates == {"p/a/2.jpg": "p/a/1.jpg", "p/a/3.jpg": "p/a/1.jpg"}
    assert d.conflicts == () and d.labels == ("a",)


def test_same_photo_in_two_products_is_a_conflict_and_excluded() -> None:
    d = resolve_hash_group({"p/a/1.jpg": "a", "p/b/1.jpg": "b"})
    assert d.keep is None and d.duplicates == {}
    assert d.conflicts == ("p/a/1.jpg", "p/b/1.jpg") and d.labels == ("a", "b")


def test_a_photo_already_in_an_earlier_version() -> None:
    same = resolve_hash_group({"p/a/new.jpg": "a"}, {"p/a/old.jpg": "a"})
    assert same.keep is None and same.duplicates == {"p/a/new.jpg": "p/a/old.jpg"}
    other = resolve_hash_group({"p/b/new.jpg": "b"}, {"p/a/old.jpg": "a"})
    assert other.keep is None and other.conflicts == ("p/b/new.jpg",) and other.labels == ("a", "b")


def test_a_new_copy_of_an_excluded_photo_joins_the_conflict() -> None:
    d = resolve_hash_group({"p/c/1.jpg": "c"}, {}, {"p/a/1.jpg": "a", "p/b/1.jpg": "b"})
    assert d.keep is None and d.conflicts == ("p/c/1.jpg",) and d.labels == ("a", "b", "c")
    # Once only one product holds the photo, a copy of it is written.
    d = resolve_hash_group({"p/a/2.jpg": "a"}, {}, {"p/a/1.jpg": "a"})
    assert d.keep == "p/a/2.jpg" and d.conflicts == ()


# --------------------------------------------------------------------------- label map


def test_first_label_map_is_sorted_and_later_ones_append() -> None:
    first = merge_label_map([], ["rose-soap", "lavender-soap", "mint-bar"])
    assert first == ["lavender-soap", "mint-bar", "rose-soap"]
    second = merge_label_map(first, ["mint-bar", "aloe-gel", "zest-bomb"])
    assert second[:3] == first and second[3:] == ["aloe-gel", "zest-bomb"]
    assert merge_label_map(second, []) == second  # a product with no new photos keeps its index
    with pytest.raises(ValueError, match="twice"):
        merge_label_map(["a", "a"], [])


# --------------------------------------------------------------------------- shards


def test_shards_aim_at_the_target_size_but_give_every_worker_work() -> None:
    # 2,000 photos of 40 kB: by size one shard would do; 8 work units cut it into 250s.
    assert examples_per_shard(2000, 2000 * 40_000, target_bytes=128 << 20, min_shards=8) == 250
    # 1M photos of 100 kB: the size target wins (~1,342 per 128 MiB shard).
    assert examples_per_shard(10**6, 10**11, target_bytes=128 << 20, min_shards=8) == 1342
    # Never absurdly small shards just to feed workers.
    assert examples_per_shard(100, 100 * 40_000, target_bytes=128 << 20, min_shards=8) == 50
    assert shard_count(1600, 250) == 7 and shard_count(0, 250) == 1


def test_shard_of_is_spread_and_independent_of_the_split() -> None:
    ratios = SplitRatios()
    hits = Counter(shard_of(h(i), 4) for i in range(4000))
    assert all(800 < n < 1200 for n in hits.values())
    train = [h(i) for i in range(4000) if split_by_hash(h(i), ratios) == "train"]
    assert len({shard_of(x, 4) for x in train}) == 4
    assert shard_name("eval", 3, 12) == "eval-00003-of-00012.tfrecord.gz"


# --------------------------------------------------------------------------- versions


def test_versions() -> None:
    assert format_version(3) == "v0003"
    assert parse_version("v0012") == 12
    with pytest.raises(ValueError, match="v0001"):
        parse_version("12")
    assert next_version([]) == "v0001"
    assert next_version(["v0001", "v0007", "junk", "v0003"]) == "v0008"
