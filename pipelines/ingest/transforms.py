"""The Beam transforms of the ingest job; `IngestImages` wires them together.

    InputFile ─ ProbeImages ─(sha256)─ ResolveDuplicates ─(product)─ AssignSplits ─ Planned
    Planned ─ PlanDataset ─ Plan (label map, shards per split: one side input)
    Planned ─(shard)─ WriteShards ─ gzip TFRecords
    every step's report rows ─(file name)─ WriteReports ─ dead_letters.jsonl, duplicates.jsonl, ...

Image bytes never cross a shuffle. `ProbeImages` reads each photo to hash it and check
it, and only small metadata goes on to dedupe, split and shard planning; `WriteShards`
reads each kept photo again inside the step that writes its shard. On the DirectRunner
every shuffled element sits in the runner's memory, so shuffling bytes would make
memory grow with the number of photos; this way it stays flat.

The graph is kept small on purpose: Beam's fixed cost (building, translating and
scheduling the graph) grows with the number of transforms, and on one machine it is
paid on every run. So reports go through one grouping instead of one combine per file.

All DoFns live at module level and hold only small options, so multi-process and
remote workers unpickle them by reference. TensorFlow is never imported: Examples are
built by `edgeloop.examples.encode` (`PreparedImage.example`).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.metrics.metric import Metrics
from apache_beam.pvalue import AsSingleton, DoOutputsTuple, PCollection, TaggedOutput

from edgeloop import storage
from edgeloop.errors import StorageError
from edgeloop.tfrecord import TFRecordWriter

from . import jsonl
from .elements import (
    DEAD_LETTERS,
    DUPLICATES,
    INVENTORY,
    PLAN,
    SHARDS,
    DeadLetter,
    DuplicateRecord,
    ExistingExample,
    InputFile,
    InventoryEntry,
    Plan,
    Planned,
    Probed,
    ShardResult,
)
from .images import BadImage, ImageLimits, Reason, check_size, prepare_image, probe_image, sha256_hex, target_size
from .rules import (
    SplitRatios,
    assign_class_splits,
    examples_per_shard,
    merge_label_map,
    resolve_hash_group,
    shard_count,
    shard_name,
    shard_of,
)

REPORT = "report"
_NS = "edgeloop.ingest"

Row = dict[str, Any]


def _dead_rows(d: DeadLetter) -> Iterator[TaggedOutput[str, tuple[str, Row]]]:
    yield TaggedOutput(REPORT, (DEAD_LETTERS, d.to_dict()))
    entry = InventoryEntry(d.uri, d.size, d.generation, d.label, d.sha256, "dead-letter", None, d.reason)
    yield TaggedOutput(REPORT, (INVENTORY, entry.to_dict()))


# --------------------------------------------------------------------------- reading


def read_listing_chunk(uri: str) -> Iterator[InputFile]:
    """The `InputFile`s of one listing chunk written by the driver."""
    for row in jsonl.read_jsonl(uri):
        yield InputFile(**row)


def read_existing(ref: tuple[str, str]) -> Iterator[tuple[str, ExistingExample]]:
    """(sha256, example) for every photo an earlier version wrote, from its inventory `(uri, version)`,
    or for every conflict row of a file of earlier conflicts (`(uri, "")`: versions are in the rows)."""
    uri, version = ref
    for row in jsonl.read_jsonl(uri):
        if not row.get("sha256"):
            continue
        if row.get("outcome") == "written":
            yield row["sha256"], ExistingExample(row["uri"], row["label"], version or row["dataset_version"])
        elif row.get("outcome") == "conflict" and not version:
            yield row["sha256"], ExistingExample(row["uri"], row["label"], row["dataset_version"], written=False)


# --------------------------------------------------------------------------- probe


def _estimate_bytes(data_len: int, width: int, height: int, max_side: int | None) -> int:
    tw, th = target_size(width, height, max_side)
    return max(1, int(data_len * min(1.0, (tw * th) / max(1, width * height))))


class ProbeFn(beam.DoFn):
    """Read, hash and check one file → `(sha256, Probed)`, or dead-letter rows on `report`."""

    def __init__(self, limits: ImageLimits, max_side: int | None) -> None:
        self.limits = limits
        self.max_side = max_side
        self.probed = Metrics.counter(_NS, "probed")
        self.rejected = Metrics.counter(_NS, "dead_letters")

    def _dead(self, f: InputFile, reason: Reason, detail: str, sha256: str | None = None) -> Iterator[Any]:
        self.rejected.inc()
        return _dead_rows(DeadLetter(f.uri, f.label, reason.value, detail, f.size, f.generation, sha256))

    def process(self, f: InputFile) -> Iterator[Any]:
        if f.missing:
            yield from self._dead(f, Reason.MISSING, "listed in the catalogue but the file does not exist")
            return
        if f.label is None:
            yield from self._dead(f, Reason.NO_LABEL, "not inside a product folder; move it into <input>/<product>/")
            return
        try:
            check_size(f.size, self.limits)
            data = storage.read_bytes(f.uri)
        except BadImage as exc:
            yield from self._dead(f, exc.reason, exc.detail)
            return
        except StorageError as exc:
            yield from self._dead(f, Reason.UNREADABLE, str(exc))
            return
        try:
            probe = probe_image(data, self.limits)
        except BadImage as exc:
            yield from self._dead(f, exc.reason, exc.detail, sha256_hex(data) if data else None)
            return
        self.probed.inc()
        est = _estimate_bytes(len(data), probe.width, probe.height, self.max_side)
        photo = Probed(
            f.uri, f.label, len(data), f.generation, probe.sha256, probe.width, probe.height, probe.format, est
        )
        yield probe.sha256, photo


class ProbeImages(beam.PTransform[PCollection[InputFile], DoOutputsTuple]):
    """InputFile → `photos`: (sha256, Probed), and `report` rows for files that cannot be used."""

    def __init__(self, limits: ImageLimits, max_side: int | None) -> None:
        super().__init__()
        self.limits = limits
        self.max_side = max_side

    def expand(self, files: PCollection[InputFile]) -> DoOutputsTuple:
        return files | "Probe" >> beam.ParDo(ProbeFn(self.limits, self.max_side)).with_outputs(REPORT, main="photos")


# --------------------------------------------------------------------------- dedupe


class ResolveDuplicatesFn(beam.DoFn):
    """All files with one content hash (and earlier examples of it) → at most one `(product, Probed)`."""

    def __init__(self) -> None:
        self.duplicates = Metrics.counter(_NS, "duplicates")
        self.conflicts = Metrics.counter(_NS, "conflicts")

    def process(self, element: tuple[str, Iterable[Probed | ExistingExample]]) -> Iterator[Any]:
        sha, group = element
        items = list(group)
        new = sorted((i for i in items if isinstance(i, Probed)), key=lambda p: p.uri)
        if not new:
            return
        old = [i for i in items if isinstance(i, ExistingExample)]
        decision = resolve_hash_group(
            {p.uri: p.label for p in new},
            {e.uri: e.label for e in old if e.written},
            {e.uri: e.label for e in old if not e.written},
        )
        earlier = tuple(sorted({e.dataset_version for e in old}))
        for photo in new:
            if photo.uri == decision.keep:
                yield photo.label, photo
                continue
            if photo.uri in decision.duplicates:
                self.duplicates.inc()
                kind, of_uri = "duplicate", decision.duplicates[photo.uri]
            else:
                self.conflicts.inc()
                kind, of_uri = "conflict", None
            record = DuplicateRecord(
                photo.uri, photo.label, photo.size, photo.generation, sha, kind, of_uri, decision.labels, earlier
            )
            yield TaggedOutput(REPORT, (DUPLICATES, record.to_dict()))
            entry = InventoryEntry(photo.uri, photo.size, photo.generation, photo.label, sha, kind)
            yield TaggedOutput(REPORT, (INVENTORY, entry.to_dict()))


class ResolveDuplicates(beam.PTransform[PCollection[tuple[str, Any]], DoOutputsTuple]):
    """(sha256, Probed | ExistingExample) → `unique`: (product, Probed), and `report` rows for the rest."""

    def expand(self, keyed: PCollection[tuple[str, Any]]) -> DoOutputsTuple:
        return (
            keyed
            | "GroupByHash" >> beam.GroupByKey()
            | "Resolve" >> beam.ParDo(ResolveDuplicatesFn()).with_outputs(REPORT, main="unique")
        )


# --------------------------------------------------------------------------- split


class AssignSplitsFn(beam.DoFn):
    """All new photos of one product → Planned, by `rules.assign_class_splits`."""

    def __init__(self, ratios: SplitRatios, prior: Mapping[str, Mapping[str, int]]) -> None:
        self.ratios = ratios
        self.prior = {label: dict(counts) for label, counts in prior.items()}

    def process(self, element: tuple[str, Iterable[Probed]]) -> Iterator[Planned]:
        label, photos = element
        items = list(photos)
        splits = assign_class_splits((p.sha256 for p in items), self.ratios, self.prior.get(label))
        for photo in items:
            yield Planned(photo, splits[photo.sha256])


class AssignSplits(beam.PTransform[PCollection[tuple[str, Probed]], PCollection[Planned]]):
    """(product, Probed) → Planned (photo + split), product by product."""

    def __init__(self, ratios: SplitRatios, prior: Mapping[str, Mapping[str, int]] | None = None) -> None:
        super().__init__()
        self.ratios = ratios
        self.prior = dict(prior or {})

    def expand(self, photos: PCollection[tuple[str, Probed]]) -> PCollection[Planned]:
        return (
            photos
            | "GroupByProduct" >> beam.GroupByKey()
            | "Assign" >> beam.ParDo(AssignSplitsFn(self.ratios, self.prior))
        )


# --------------------------------------------------------------------------- plan


def plan_item(item: Planned) -> tuple[None, tuple[str, str, int]]:
    return None, (item.photo.label, item.split, item.photo.est_bytes)


def make_plan(
    element: tuple[None, Iterable[tuple[str, str, int]]], previous_labels: Sequence[str], target_bytes: int,
    min_shards: int,
) -> Plan:  # fmt: skip
    """The label map (earlier products first) and shards per split, equal-sized across splits
    so that shards are also even units of work."""
    labels: set[str] = set()
    sizes: dict[str, list[int]] = {}
    for label, split, est in element[1]:
        labels.add(label)
        n_b = sizes.setdefault(split, [0, 0])
        n_b[0] += 1
        n_b[1] += est
    total_n = sum(n for n, _ in sizes.values())
    total_b = sum(b for _, b in sizes.values())
    per_shard = examples_per_shard(total_n, total_b, target_bytes=target_bytes, min_shards=min_shards)
    shards = tuple(sorted((split, shard_count(n, per_shard)) for split, (n, _) in sizes.items()))
    return Plan(tuple(merge_label_map(previous_labels, labels)), shards)


class PlanDataset(beam.PTransform[PCollection[Planned], PCollection[Plan]]):
    """Planned → one Plan (none when nothing is planned)."""

    def __init__(self, previous_labels: Sequence[str], target_bytes: int, min_shards: int) -> None:
        super().__init__()
        self.previous_labels = tuple(previous_labels)
        self.target_bytes = target_bytes
        self.min_shards = min_shards

    def expand(self, planned: PCollection[Planned]) -> PCollection[Plan]:
        # One key: every photo's (label, split, size) meets in one place. Small tuples, no bytes.
        return (
            planned
            | "PlanItem" >> beam.Map(plan_item)
            | "Gather" >> beam.GroupByKey()
            | "Plan" >> beam.Map(make_plan, self.previous_labels, self.target_bytes, self.min_shards)
        )


# --------------------------------------------------------------------------- shards


def key_by_shard(item: Planned, plan: Plan) -> tuple[tuple[str, int], Planned]:
    return (item.split, shard_of(item.photo.sha256, plan.shards_of(item.split))), item


class WriteShardFn(beam.DoFn):
    """Write one shard: read each photo again, check it is unchanged, prepare it, append its Example.

    Main output: the `ShardResult`; `report`: inventory rows, and dead letters for photos
    that changed or vanished since they were probed.
    """

    def __init__(self, root: str, version: str, max_side: int | None, quality: int) -> None:
        self.root = root
        self.version = version
        self.max_side = max_side
        self.quality = quality
        self.examples = Metrics.counter(_NS, "written")
        self.rejected = Metrics.counter(_NS, "dead_letters")

    def process(self, element: tuple[tuple[str, int], Iterable[Planned]], plan: Plan) -> Iterator[Any]:
        (split, index), items = element
        index_of = {name: i for i, name in enumerate(plan.label_map)}
        rel = f"{self.version}/{split}/{shard_name(split, index, plan.shards_of(split))}"
        uri = storage.join(self.root, rel)
        per_class: Counter[str] = Counter()
        # Sorted by hash: the shard's bytes depend only on its photos, so a retry rewrites it identically.
        with TFRecordWriter(uri) as writer:
            for item in sorted(items, key=lambda i: i.photo.sha256):
                photo = item.photo
                try:
                    data = storage.read_bytes(photo.uri)
                    if sha256_hex(data) != photo.sha256:
                        raise BadImage(Reason.CHANGED, "the file changed while ingest was running; run ingest again")
                    prepared = prepare_image(data, max_side=self.max_side, quality=self.quality)
                except (BadImage, StorageError) as exc:
                    bad = exc if isinstance(exc, BadImage) else BadImage(Reason.UNREADABLE, str(exc))
                    self.rejected.inc()
                    yield from _dead_rows(
                        DeadLetter(photo.uri, photo.label, bad.reason.value, bad.detail, photo.size, photo.generation,
                                   photo.sha256)
                    )  # fmt: skip
                    continue
                writer.write(
                    prepared.example(
                        label=index_of[photo.label], text=photo.label, sha256=photo.sha256, source=photo.uri
                    )
                )
                per_class[photo.label] += 1
                self.examples.inc()
                entry = InventoryEntry(
                    photo.uri, photo.size, photo.generation, photo.label, photo.sha256, "written", split
                )
                yield TaggedOutput(REPORT, (INVENTORY, entry.to_dict()))
        if writer.records:
            result = ShardResult(rel, split, writer.records, writer.bytes, tuple(sorted(per_class.items())))
            yield TaggedOutput(REPORT, (SHARDS, dataclasses.asdict(result)))
            yield result
        else:
            storage.delete(uri)  # every photo of the shard changed under us; leave no empty file


class WriteShards(beam.PTransform[PCollection[Planned], DoOutputsTuple]):
    """Planned → gzip TFRecord shards under `<root>/<version>/<split>/`.

    Outputs: `shards` (ShardResult) and `report` rows. `plan` is the one-element Plan
    collection; `default_plan` stands in when it is empty.
    """

    def __init__(
        self,
        root: str,
        version: str,
        plan: PCollection[Plan],
        default_plan: Plan,
        *,
        max_side: int | None,
        quality: int,
    ) -> None:
        super().__init__()
        self.root = root
        self.version = version
        self.plan = plan
        self.default_plan = default_plan
        self.max_side = max_side
        self.quality = quality

    def expand(self, planned: PCollection[Planned]) -> DoOutputsTuple:
        plan = AsSingleton(self.plan, default_value=self.default_plan)
        return (
            planned
            | "KeyByShard" >> beam.Map(key_by_shard, plan)
            | "GroupByShard" >> beam.GroupByKey()
            | "Write"
            >> beam.ParDo(WriteShardFn(self.root, self.version, self.max_side, self.quality), plan).with_outputs(
                REPORT, main="shards"
            )
        )


# --------------------------------------------------------------------------- reports


def plan_rows(plan: Plan) -> tuple[str, Row]:
    return PLAN, {"label_map": list(plan.label_map), "shards": dict(plan.shards)}


class WriteReportFn(beam.DoFn):
    """All rows of one report file → the file, sorted (so reruns give equal files); yields (name, rows)."""

    def __init__(self, version_uri: str) -> None:
        self.version_uri = version_uri

    def process(self, element: tuple[str, Iterable[Row]]) -> Iterator[tuple[str, int]]:
        name, rows = element
        ordered = sorted(rows, key=lambda r: (str(r.get("uri", r.get("path", ""))), jsonl.dumps(r)))
        yield name, jsonl.write_jsonl(storage.join(self.version_uri, name), ordered)


class WriteReports(beam.PTransform[PCollection[tuple[str, Row]], PCollection[tuple[str, int]]]):
    """(file name, row) → one JSON Lines file per name under the version folder (gzip for .gz).

    One worker writes each file, so this is for reports and metadata, never image data.
    """

    def __init__(self, version_uri: str) -> None:
        super().__init__()
        self.version_uri = version_uri

    def expand(self, rows: PCollection[tuple[str, Row]]) -> PCollection[tuple[str, int]]:
        return rows | "GroupByFile" >> beam.GroupByKey() | "Write" >> beam.ParDo(WriteReportFn(self.version_uri))


# --------------------------------------------------------------------------- the job


@dataclasses.dataclass(frozen=True)
class IngestConfig:
    """What `IngestImages` needs besides its inputs (all small and picklable)."""

    root: str
    version: str
    limits: ImageLimits
    ratios: SplitRatios
    max_side: int | None
    quality: int
    target_bytes: int
    min_shards: int
    previous_labels: tuple[str, ...] = ()
    prior: Mapping[str, Mapping[str, int]] = dataclasses.field(default_factory=dict)


class IngestImages(beam.PTransform[Mapping[str, PCollection[Any]], dict[str, PCollection[Any]]]):
    """{"files": InputFile, optionally "existing": (sha256, ExistingExample)} → the job's outputs.

    Returns `reports` ((file name, count) per report file written), `shards` (ShardResult)
    and `plan` (the Plan, absent when no photo was usable).
    """

    def __init__(self, config: IngestConfig) -> None:
        super().__init__()
        self.config = config

    def expand(self, inputs: Mapping[str, PCollection[Any]]) -> dict[str, PCollection[Any]]:
        c = self.config
        probed = inputs["files"] | "ProbeImages" >> ProbeImages(c.limits, c.max_side)
        keyed = probed.photos
        if "existing" in inputs:
            keyed = (keyed, inputs["existing"]) | "WithEarlierExamples" >> beam.Flatten()
        resolved = keyed | "ResolveDuplicates" >> ResolveDuplicates()
        planned = resolved.unique | "AssignSplits" >> AssignSplits(c.ratios, c.prior)
        plan = planned | "PlanDataset" >> PlanDataset(c.previous_labels, c.target_bytes, c.min_shards)
        default_plan = Plan(tuple(c.previous_labels), ())
        written = planned | "WriteShards" >> WriteShards(
            c.root, c.version, plan, default_plan, max_side=c.max_side, quality=c.quality
        )
        reports = (
            probed[REPORT],
            resolved[REPORT],
            written[REPORT],
            plan | "PlanRows" >> beam.Map(plan_rows),
        ) | "AllReports" >> beam.Flatten()
        version_uri = storage.join(c.root, c.version)
        return {
            "reports": reports | "WriteReports" >> WriteReports(version_uri),
            "shards": written.shards,
            "plan": plan,
        }


__all__ = [
    "REPORT",
    "AssignSplits",
    "IngestConfig",
    "IngestImages",
    "PlanDataset",
    "ProbeFn",
    "ProbeImages",
    "ResolveDuplicates",
    "WriteReports",
    "WriteShardFn",
    "WriteShards",
    "make_plan",
    "read_existing",
    "read_listing_chunk",
]
