"""Each Beam transform of ingest on its own: TestPipeline + assert_that, in-process FnApiRunner."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

beam = pytest.importorskip("apache_beam")

from apache_beam.runners.portability.fn_api_runner import fn_runner  # noqa: E402
from apache_beam.testing import test_pipeline  # noqa: E402
from apache_beam.testing.util import assert_that, equal_to  # noqa: E402

from edgeloop.tfrecord import decode_example, read_tfrecords  # noqa: E402
from pipelines.ingest.elements import (  # noqa: E402
    DEAD_LETTERS,
    DUPLICATES,
    INVENTORY,
    ExistingExample,
    InputFile,
    Plan,
    Planned,
    Probed,
    ShardResult,
)
from pipelines.ingest.images import ImageLimits  # noqa: E402
from pipelines.ingest.rules import SplitRatios, assign_class_splits  # noqa: E402
from pipelines.ingest.transforms import (  # noqa: E402
    REPORT,
    AssignSplits,
    PlanDataset,
    ProbeImages,
    ResolveDuplicates,
    WriteReports,
    WriteShards,
)

pytestmark = [pytest.mark.beam]


def pipeline() -> test_pipeline.TestPipeline:
    # The in-process engine of the DirectRunner, named explicitly (plain DirectRunner tries Prism first).
    return test_pipeline.TestPipeline(runner=fn_runner.FnApiRunner())


def jpeg(path: Path, seed: int, size: tuple[int, int] = (96, 64)) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path, "JPEG", quality=90)
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fake_sha(n: int) -> str:
    return hashlib.sha256(f"photo-{n}".encode()).hexdigest()


def probed(uri: str, label: str, digest: str, size: int = 1000) -> Probed:
    return Probed(uri, label, size, 1, digest, 96, 64, "JPEG", size)


def matches(check: Callable[[list[Any]], None]) -> Callable[[Iterable[Any]], None]:
    def _match(actual: Iterable[Any]) -> None:
        check(list(actual))

    return _match


def input_file(path: Path, label: str | None, **kw: Any) -> InputFile:
    size = path.stat().st_size if path.exists() else 0
    return InputFile(str(path), label, size, 1, **kw)


def test_probe_images_sorts_good_photos_from_dead_letters(tmp_path: Path) -> None:
    good = jpeg(tmp_path / "rose" / "good.jpg", 1)
    truncated = tmp_path / "rose" / "truncated.jpg"
    truncated.write_bytes(jpeg(tmp_path / "x.jpg", 2).read_bytes()[:900])
    text = tmp_path / "rose" / "note.jpg"
    text.write_text("not a photo\n")
    empty = tmp_path / "rose" / "empty.jpg"
    empty.write_bytes(b"")
    loose = jpeg(tmp_path / "loose.jpg", 3)
    files = [
        input_file(good, "rose"),
        input_file(truncated, "rose"),
        input_file(text, "rose"),
        input_file(empty, "rose"),
        input_file(loose, None),
        InputFile(str(tmp_path / "rose" / "gone.jpg"), "rose", 0, None, missing=True),
    ]
    with pipeline() as p:
        out = p | beam.Create(files) | ProbeImages(ImageLimits(), max_side=None)
        assert_that(
            out.photos | beam.MapTuple(lambda h, ph: (h, ph.uri, ph.label, ph.width, ph.height)),
            equal_to([(sha(good), str(good), "rose", 96, 64)]),
            label="photos",
        )
        dead = out[REPORT] | beam.Filter(lambda r: r[0] == DEAD_LETTERS)
        assert_that(
            dead | beam.MapTuple(lambda _, row: (Path(row["uri"]).name, row["reason"])),
            equal_to(
                [
                    ("truncated.jpg", "truncated"),
                    ("note.jpg", "not-an-image"),
                    ("empty.jpg", "empty"),
                    ("loose.jpg", "no-label"),
                    ("gone.jpg", "missing"),
                ]
            ),
            label="dead",
        )
        inventory = out[REPORT] | beam.Filter(lambda r: r[0] == INVENTORY)
        assert_that(
            inventory | beam.MapTuple(lambda _, row: row["outcome"]), equal_to(["dead-letter"] * 5), label="inventory"
        )


def test_resolve_duplicates_keeps_one_and_reports_the_rest() -> None:
    x, y, z, w = (fake_sha(i) for i in range(4))
    new = [
        probed("in/a/1.jpg", "a", x),
        probed("in/a/2.jpg", "a", x),  # same product twice: kept once
        probed("in/b/1.jpg", "b", y),
        probed("in/c/1.jpg", "c", y),  # two products: both excluded
        probed("in/d/new.jpg", "d", z),  # already in v0001 as d: a duplicate
        probed("in/e/new.jpg", "e", w),  # already in v0001 as f: a conflict
    ]
    old = [(z, ExistingExample("in/d/old.jpg", "d", "v0001")), (w, ExistingExample("in/f/old.jpg", "f", "v0001"))]

    def check_reports(reports: list[Any]) -> None:
        got = {(r["uri"], r["kind"], r["of_uri"], tuple(r["labels"]), tuple(r["earlier_versions"])) for r in reports}
        assert got == {
            ("in/a/2.jpg", "duplicate", "in/a/1.jpg", ("a",), ()),
            ("in/b/1.jpg", "conflict", None, ("b", "c"), ()),
            ("in/c/1.jpg", "conflict", None, ("b", "c"), ()),
            ("in/d/new.jpg", "duplicate", "in/d/old.jpg", ("d",), ("v0001",)),
            ("in/e/new.jpg", "conflict", None, ("e", "f"), ("v0001",)),
        }

    with pipeline() as p:
        keyed = [(ph.sha256, ph) for ph in new] + old
        out = p | beam.Create(keyed) | ResolveDuplicates()
        assert_that(
            out.unique | beam.MapTuple(lambda label, ph: (label, ph.uri)),
            equal_to([("a", "in/a/1.jpg")]),
            label="unique",
        )
        reports = out[REPORT] | beam.Filter(lambda r: r[0] == DUPLICATES) | beam.MapTuple(lambda _, row: row)
        assert_that(reports, matches(check_reports), label="reports")


def test_assign_splits_applies_the_rules_per_product() -> None:
    ratios = SplitRatios()
    photos = [probed(f"in/a/{i}.jpg", "a", fake_sha(i)) for i in range(6)]
    photos += [probed(f"in/b/{i}.jpg", "b", fake_sha(100 + i)) for i in range(3)]
    prior = {"b": {"train": 2, "eval": 1}}
    want = {
        **assign_class_splits([p.sha256 for p in photos[:6]], ratios),
        **assign_class_splits([p.sha256 for p in photos[6:]], ratios, prior["b"]),
    }

    def check(planned: list[Planned]) -> None:
        assert {pl.photo.sha256: pl.split for pl in planned} == want
        assert Counter(pl.split for pl in planned if pl.photo.label == "a")["eval"] >= 1

    with pipeline() as p:
        keyed = p | beam.Create([(ph.label, ph) for ph in photos])
        assert_that(keyed | AssignSplits(ratios, prior), matches(check))


def test_plan_dataset_appends_new_products_and_sizes_shards() -> None:
    planned = [Planned(probed(f"in/{lbl}/{i}.jpg", lbl, fake_sha(i)), "eval" if i % 5 == 0 else "train")
               for i, lbl in enumerate("cadc" * 50)]  # fmt: skip
    with pipeline() as p:
        first = p | "First" >> beam.Create(planned) | "Sorted" >> PlanDataset((), 1 << 30, 4)
        later = p | "Later" >> beam.Create(planned) | "Appended" >> PlanDataset(("zeta", "a"), 1 << 30, 4)
        # 200 photos (160 train, 40 eval), at least 4 work units: 50 per shard.
        assert_that(first, equal_to([Plan(("a", "c", "d"), (("eval", 1), ("train", 4)))]), label="first")
        assert_that(later | beam.Map(lambda plan: plan.label_map), equal_to([("zeta", "a", "c", "d")]), label="later")


def test_write_shards_writes_equal_shards_that_parse_back(tmp_path: Path) -> None:
    files = [jpeg(tmp_path / "in" / ("rose" if i % 2 else "mint") / f"{i}.jpg", i, (200, 100)) for i in range(12)]
    planned = [
        Planned(probed(str(f), f.parent.name, sha(f), f.stat().st_size), "eval" if i < 4 else "train")
        for i, f in enumerate(files)
    ]
    changed = jpeg(tmp_path / "in" / "rose" / "changed.jpg", 99)
    planned.append(Planned(probed(str(changed), "rose", fake_sha(5)), "train"))  # bytes differ from its hash
    root = str(tmp_path / "out")
    index = {"mint": 0, "rose": 1}

    def check_shards(results: list[ShardResult]) -> None:
        by_split = {r.split: r for r in results}
        assert by_split["train"].path == "v0001/train/train-00000-of-00001.tfrecord.gz"
        assert by_split["train"].examples == 8 and by_split["eval"].examples == 4
        for result in results:
            records = [decode_example(r) for r in read_tfrecords(f"{root}/{result.path}")]
            assert len(records) == result.examples
            assert [r["image/sha256"][0] for r in records] == sorted(r["image/sha256"][0] for r in records)
            for r in records:
                source = Path(r["image/source"][0].decode())  # type: ignore[union-attr]
                assert r["image/sha256"] == [sha(source).encode()]
                assert r["image/class/label"] == [index[source.parent.name]]
                im = Image.open(io.BytesIO(r["image/encoded"][0]))  # type: ignore[arg-type]
                assert im.size == (100, 50) and r["image/width"] == [100] and r["image/height"] == [50]

    with pipeline() as p:
        plan = p | "Plan" >> beam.Create([Plan(("mint", "rose"), (("eval", 1), ("train", 1)))])
        out = p | beam.Create(planned) | WriteShards(root, "v0001", plan, Plan((), ()), max_side=100, quality=80)
        rows = out[REPORT]
        assert_that(
            rows
            | beam.Filter(lambda r: r[0] == DEAD_LETTERS)
            | beam.MapTuple(lambda _, d: (Path(d["uri"]).name, d["reason"])),
            equal_to([("changed.jpg", "changed")]),
            label="dead",
        )
        assert_that(
            rows | beam.Filter(lambda r: r[0] == INVENTORY) | beam.MapTuple(lambda _, e: e["outcome"]),
            equal_to(["written"] * 12 + ["dead-letter"]),
            label="inventory",
        )
        assert_that(out.shards, matches(check_shards), label="shards")


def test_write_reports_writes_one_sorted_file_per_name(tmp_path: Path) -> None:
    rows = [("a.jsonl", {"uri": "b", "n": 2}), ("a.jsonl", {"uri": "a", "n": 1}), ("b.jsonl.gz", {"uri": "c"})]
    with pipeline() as p:
        counts = p | beam.Create(rows) | WriteReports(str(tmp_path))
        assert_that(counts, equal_to([("a.jsonl", 2), ("b.jsonl.gz", 1)]))
    assert [json.loads(line)["uri"] for line in (tmp_path / "a.jsonl").read_text().splitlines()] == ["a", "b"]
    assert gzip.decompress((tmp_path / "b.jsonl.gz").read_bytes()).startswith(b'{"uri":"c"}')
