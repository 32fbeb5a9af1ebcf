"""The ingest job end to end: ~200 synthetic photos with planted bad files, then more photos and a
new product incrementally, a from-scratch rebuild, multi-processing workers, the CLI and GCS."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from edgeloop import storage, synth
from edgeloop.dataset import DatasetInfo
from edgeloop.tfrecord import decode_example, read_tfrecords
from pipelines.ingest import IngestOptions, IngestResult, ingest, load_dataset_info
from pipelines.ingest.jsonl import read_jsonl
from pipelines.ingest.rules import SplitRatios, split_by_hash
from pipelines.ingest.versions import list_versions

pytestmark = [pytest.mark.beam, pytest.mark.slow]

PRODUCTS, PHOTOS, SIZE = 8, 24, 96
DEAD_REASONS = {"corrupt": "corrupt", "truncated": "truncated", "not-image": "not-an-image", "empty": "empty",
                "too-small": "too-small"}  # fmt: skip


def options(input_uri: str, output: str, **kw: object) -> IngestOptions:
    # In-process engine: the multi-processing default is exercised once, in its own test.
    values: dict[str, object] = {"max_side": 80, "running_mode": "in_memory", "num_workers": 1, "min_per_class": 5}
    values.update(kw)
    return IngestOptions(input=input_uri, output=output, **values)  # type: ignore[arg-type]


def examples(info: DatasetInfo) -> dict[str, list[dict[str, list[bytes] | list[int] | list[float]]]]:
    return {
        split: [decode_example(r) for uri in info.shard_uris(split) for r in read_tfrecords(uri)]
        for split in info.splits
    }


def text(values: object) -> str:
    assert isinstance(values, list) and isinstance(values[0], bytes)
    return values[0].decode()


def num(values: object) -> int:
    assert isinstance(values, list) and isinstance(values[0], int)
    return values[0]


@dataclasses.dataclass
class Story:
    photos: Path
    out: Path
    planted: dict[str, str]
    v1: IngestResult
    v2: IngestResult
    v3: IngestResult
    new_product: str


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Story:
    """v1 from ~200 photos + planted files; then more photos and a product → v2 (incremental) and v3 (rebuild)."""
    base = tmp_path_factory.mktemp("ingest")
    photos, out = base / "photos", base / "datasets"
    report = synth.generate(photos, n_products=PRODUCTS, images_per_product=PHOTOS, size=SIZE, plant_bad=True)
    v1 = ingest(options(str(photos), str(out), record=False))
    grown = synth.generate(photos, n_products=PRODUCTS, images_per_product=PHOTOS + 4, size=SIZE, add_products=1,
                           plant_bad=True)  # fmt: skip
    # A third copy of the photo v1 left out as a conflict, filed under the new product.
    conflict = next(rel for rel, kind in report.planted.items() if kind == "duplicate-conflict")
    third = photos / grown.new_products[0] / "third-copy.jpg"
    third.write_bytes((photos / conflict).read_bytes())
    v2 = ingest(options(str(photos), str(out), previous="v0001", record=False))
    v3 = ingest(options(str(photos), str(base / "rebuilt"), record=False))
    return Story(photos, out, report.planted, v1, v2, v3, grown.new_products[0])


def test_every_file_is_accounted_for(story: Story) -> None:
    for result in (story.v1, story.v2, story.v3):
        c = result.counts
        assert c.input == c.written + c.duplicates + c.conflicts + c.dead_letters
        assert c.listed == c.known + c.input
    n_files = PRODUCTS * PHOTOS + len(story.planted)
    assert story.v1.counts.input == n_files and story.v1.counts.known == 0
    assert story.v1.counts.written == n_files - 5 - 1 - 2  # 5 unusable, 1 duplicate, 2 files in conflict


def test_dead_letters_name_each_bad_file_with_its_reason(story: Story) -> None:
    rows = list(read_jsonl(str(story.out / "v0001" / "dead_letters.jsonl")))
    got = {Path(r["uri"]).relative_to(story.photos).as_posix(): r["reason"] for r in rows}
    want = {rel: DEAD_REASONS[kind] for rel, kind in story.planted.items() if kind in DEAD_REASONS}
    assert got == want
    assert all(r["detail"] for r in rows)


def test_usable_oddities_are_written_upright_and_rgb(story: Story) -> None:
    info = load_dataset_info(story.v1.uri)
    by_source = {text(ex["image/source"]): ex for exs in examples(info).values() for ex in exs}
    for rel, kind in story.planted.items():
        if kind in ("cmyk", "palette-alpha", "grey", "huge", "exif-rotated"):
            ex = by_source[str(story.photos / rel)]
            im = Image.open(io.BytesIO(ex["image/encoded"][0]))  # type: ignore[arg-type]
            assert (im.format, im.mode) == ("JPEG", "RGB"), kind
            assert max(im.size) <= 80 and im.size == (num(ex["image/width"]), num(ex["image/height"])), kind
            if kind in ("exif-rotated", "huge"):
                assert im.width > im.height, kind  # landscape once upright


def test_duplicates_and_conflicts_are_reported(story: Story) -> None:
    rows = list(read_jsonl(str(story.out / "v0001" / "duplicates.jsonl")))
    kinds = Counter(r["kind"] for r in rows)
    assert kinds == {"duplicate": 1, "conflict": 2}
    same = next(r for r in rows if r["kind"] == "duplicate")
    assert story.planted[Path(same["uri"]).relative_to(story.photos).as_posix()] == "duplicate-same"
    conflict_rel = next(rel for rel, k in story.planted.items() if k == "duplicate-conflict")
    info = load_dataset_info(story.v1.uri)
    assert len(info.conflicts) == 1 and str(story.photos / conflict_rel) in info.conflicts[0].uris
    assert len(info.conflicts[0].labels) == 2
    sources = {text(ex["image/source"]) for exs in examples(info).values() for ex in exs}
    assert not sources & set(info.conflicts[0].uris)  # neither copy is trained on


def test_records_carry_the_original_hash_and_decode(story: Story) -> None:
    info = load_dataset_info(story.v1.uri)
    total = 0
    for split, exs in examples(info).items():
        assert len(exs) == info.splits[split].examples
        for ex in exs:
            source = text(ex["image/source"])
            assert text(ex["image/sha256"]) == hashlib.sha256(Path(source).read_bytes()).hexdigest()
            assert text(ex["image/format"]) == "jpeg"
            label = num(ex["image/class/label"])
            assert info.label_map[label] == text(ex["image/class/text"]) == Path(source).parent.name
            im = Image.open(io.BytesIO(ex["image/encoded"][0]))  # type: ignore[arg-type]
            im.load()
            total += 1
    assert total == story.v1.counts.written


def test_every_product_has_an_eval_photo(story: Story) -> None:
    for result in (story.v1, story.v2, story.v3):
        info = load_dataset_info(result.uri)
        for label in info.label_map:
            assert info.splits["eval"].per_class[label] >= 1, (result.dataset_version, label)
            assert info.splits["train"].per_class[label] >= 1, (result.dataset_version, label)


def test_first_label_map_is_sorted(story: Story) -> None:
    info = load_dataset_info(story.v1.uri)
    assert info.label_map == sorted(info.label_map) and len(info.label_map) == PRODUCTS


def test_incremental_version_processes_only_new_photos(story: Story) -> None:
    c = story.v2.counts
    assert c.known == story.v1.counts.input  # nothing seen before was read again
    assert c.input == PRODUCTS * 4 + (PHOTOS + 4) + 1  # 4 more of each product, the new product, a third copy


def test_a_new_copy_of_an_earlier_conflict_is_a_conflict_too(story: Story) -> None:
    (row,) = [r for r in read_jsonl(str(story.out / "v0002" / "duplicates.jsonl")) if r["kind"] == "conflict"]
    assert Path(row["uri"]).name == "third-copy.jpg" and len(row["labels"]) == 3
    assert row["earlier_versions"] == ["v0001"]
    assert story.v3.counts.conflicts == 3  # a rebuild sees all three copies at once
    assert story.v2.parent_version == "v0001" and story.v2.created


def test_incremental_version_references_earlier_shards(story: Story) -> None:
    v1, v2 = load_dataset_info(story.v1.uri), load_dataset_info(story.v2.uri)
    for split in v1.splits:
        old = [s.path for s in v1.splits[split].shards]
        refs = v2.splits[split].shards
        assert [s.path for s in refs[: len(old)]] == old and all(s.dataset_version == "v0001" for s in refs[: len(old)])
        assert all(s.dataset_version == "v0002" and s.path.startswith("v0002/") for s in refs[len(old) :])
        assert v2.splits[split].examples == v1.splits[split].examples + sum(s.examples for s in refs[len(old) :])
    on_disk = sorted(p.name for p in (story.out / "v0002").rglob("*.tfrecord.gz"))
    assert on_disk == sorted(
        Path(s.path).name for sp in v2.splits.values() for s in sp.shards if s.dataset_version == "v0002"
    )
    assert list_versions(str(story.out)) == ["v0001", "v0002"]


def test_label_map_keeps_indices_and_appends_the_new_product(story: Story) -> None:
    v1, v2 = load_dataset_info(story.v1.uri), load_dataset_info(story.v2.uri)
    assert v2.label_map[: len(v1.label_map)] == v1.label_map
    assert v2.label_map[len(v1.label_map) :] == [story.new_product] == v2.new_classes
    for ex in examples(v2)["train"]:
        assert v2.label_map[num(ex["image/class/label"])] == text(ex["image/class/text"])


def test_splits_do_not_move_when_photos_are_added(story: Story) -> None:
    def split_of(info: DatasetInfo) -> dict[str, str]:
        return {text(ex["image/sha256"]): s for s, exs in examples(info).items() for ex in exs}

    v1 = split_of(load_dataset_info(story.v1.uri))
    v2 = split_of(load_dataset_info(story.v2.uri))
    v3 = split_of(load_dataset_info(story.v3.uri))
    assert all(v2[h] == s for h, s in v1.items())  # incremental: frozen
    # From scratch: a photo can only move if a per-product guarantee moved it in one build or the other.
    ratios = SplitRatios()
    moved = [h for h, s in v1.items() if v3[h] != s]
    assert all(v1[h] != split_by_hash(h, ratios) or v3[h] != split_by_hash(h, ratios) for h in moved)
    assert len(moved) <= 2 * PRODUCTS


def test_nothing_new_writes_no_version(story: Story) -> None:
    again = ingest(options(str(story.photos), str(story.out), previous="latest", record=False))
    assert not again.created and again.dataset_version == "v0002" and again.counts.input == 0
    assert list_versions(str(story.out)) == ["v0001", "v0002"]


def test_dataset_json_records_sources_options_and_beam(story: Story) -> None:
    info = load_dataset_info(story.v2.uri)
    assert [s.dataset_version for s in info.sources] == ["v0001", "v0002"]
    assert info.options["max_side"] == 80 and info.beam.runner == "DirectRunner" and info.beam.version
    assert [f.path for f in info.files.inventory] == ["v0001/files.jsonl.gz", "v0002/files.jsonl.gz"]
    assert set(info.features) >= {"image/encoded", "image/class/label", "image/sha256", "image/source"}
    assert not (story.out / "v0002" / "_work").exists()


def test_warehouse_rows_and_a_small_product_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from edgeloop import warehouse

    synth.generate(tmp_path / "p", n_products=2, images_per_product=3, size=64)
    result = ingest(options(str(tmp_path / "p"), str(tmp_path / "out"), min_per_class=4))
    assert result.warehouse_error is None
    assert any("fewer than --min-per-class 4" in w for w in result.warnings)
    assert "fewer than --min-per-class 4" in caplog.text
    with warehouse.connect() as wh:
        (row,) = wh.query("SELECT * FROM datasets")
        classes = wh.query("SELECT split, label, examples FROM dataset_classes ORDER BY split, label_index")
    assert row["dataset_version"] == "v0001" and row["n_input"] == 6 and row["n_written"] == 6 and row["n_known"] == 0
    assert sum(r["examples"] for r in classes) == 6 and {r["split"] for r in classes} == {"train", "eval"}


def test_multi_processing_workers(tmp_path: Path) -> None:
    """The default engine: two worker processes (the only test that pays their start-up)."""
    synth.generate(tmp_path / "p", n_products=3, images_per_product=6, size=64, plant_bad=True)
    result = ingest(IngestOptions(input=str(tmp_path / "p"), output=str(tmp_path / "out"), record=False))
    info = load_dataset_info(result.uri)
    assert info.beam.running_mode == "multi_processing" and info.beam.num_workers == 2
    c = result.counts
    assert c.input == c.written + c.duplicates + c.conflicts + c.dead_letters and c.written > 0
    assert sum(len(exs) for exs in examples(info).values()) == c.written


def test_cli_prints_a_summary_and_the_dataset_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgeloop.cli import main

    synth.generate(tmp_path / "p", n_products=2, images_per_product=4, size=64)
    code = main(["ingest", "-i", str(tmp_path / "p"), "-o", str(tmp_path / "out"), "--max-side", "48",
                 "--running-mode", "in_memory", "--workers", "1", "--no-warehouse"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0
    assert out.strip() == str(tmp_path / "out" / "v0001" / "dataset.json")
    assert "written" in err and "dead letters" in err and "v0001" in err


@pytest.mark.gcs
def test_reads_photos_from_and_writes_the_dataset_to_gcs(gcs_bucket: str, tmp_path: Path) -> None:
    local = tmp_path / "p"
    synth.generate(local, n_products=3, images_per_product=5, size=64)
    for path in sorted(local.rglob("*.jpg")):
        storage.upload(path, f"{gcs_bucket}/photos/{path.relative_to(local).as_posix()}")
    storage.write_bytes(f"{gcs_bucket}/photos/{path.parent.name}/empty.jpg", b"")
    out = f"{gcs_bucket}/datasets"
    result = ingest(options(f"{gcs_bucket}/photos", out, record=False))
    assert (
        result.uri == f"{out}/v0001"
        and result.counts.written == 15
        and result.counts.dead_letter_reasons == {"empty": 1}
    )
    info = load_dataset_info(f"{out}/v0001")
    sources = set()
    for exs in examples(info).values():
        for ex in exs:
            source = text(ex["image/source"])
            assert source.startswith(f"{gcs_bucket}/photos/")
            assert text(ex["image/sha256"]) == storage.sha256(source)[0]
            sources.add(source)
    assert len(sources) == 15
    assert not any("/_work/" in o.uri for o in storage.list_objects(f"{out}/"))
    # The generation of each object is what incremental mode compares: nothing new, nothing written.
    again = ingest(options(f"{gcs_bucket}/photos", out, previous="v0001", record=False))
    assert not again.created and again.counts.known == 16
