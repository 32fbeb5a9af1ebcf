"""The ingest job: `ingest(options)` for Python callers (CLI, Airflow), `run(argv)` for Beam-style launches.

The driver lists the input, skips files the previous version already saw, claims the
dataset version, runs the Beam pipeline (`transforms.IngestImages`), checks that every
input file is accounted for, then writes `dataset.json` and the warehouse rows.

The runner is always chosen explicitly. The default is the DirectRunner's engine
(`FnApiRunner`) with `direct_running_mode=multi_processing` and `direct_num_workers=2`:
plain `DirectRunner` would first try Prism, which downloads a binary at start-up.
Any other runner is named with `--runner` and every flag ingest does not know goes to
Beam untouched. On Dataflow, ship this package to the workers as a wheel:

    uv build --wheel
    edgeloop ingest --input gs://shop-photos/products --output gs://shop-ml/datasets \\
        --previous latest --max-side 512 \\
        --runner DataflowRunner --project my-project --region europe-west1 \\
        --temp_location gs://shop-ml/tmp --extra_package dist/edgeloop-0.1.0-py3-none-any.whl

(`python -m pipelines.ingest` takes the same flags.) The driver lists the input and
writes `dataset.json`, so it needs read access to the photos and write access to the
output; workers need the same.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import math
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from edgeloop import quiet, storage
from edgeloop.dataset import (
    DATASET_JSON,
    SCHEMA_VERSION,
    BeamInfo,
    Conflict,
    Counts,
    DatasetFiles,
    DatasetInfo,
    DatasetVersionError,
    FileRef,
    ShardRef,
    Source,
    SplitInfo,
    load_dataset_info,
)
from edgeloop.errors import ConfigError, EdgeloopError, PreconditionFailed
from edgeloop.examples import FEATURES

from . import jsonl
from .elements import DEAD_LETTERS, DUPLICATES, INVENTORY, PLAN, SHARDS, WORK, InputFile
from .errors import CountMismatchError, EmptyInputError, IngestError
from .listing import is_catalogue, list_inputs, normalize, relative, split_known
from .options import IngestOptions, parse_argv
from .rules import parse_version
from .versions import free_version, latest_version

log = logging.getLogger(__name__)

LISTING_CHUNK = 5_000


@dataclasses.dataclass(frozen=True)
class IngestResult:
    """What one ingest call did. `created` is False when there was nothing new to add."""

    dataset_version: str
    uri: str
    dataset_json: str
    created: bool
    parent_version: str | None
    counts: Counts
    examples: dict[str, int]
    num_classes: int
    new_classes: tuple[str, ...]
    warnings: tuple[str, ...]
    runner: str
    seconds: float
    warehouse_error: str | None = None


# --------------------------------------------------------------------------- runner


def pipeline_options(options: IngestOptions) -> Any:
    """Beam `PipelineOptions`: ours first, then the pass-through flags (which win on a clash)."""
    from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions

    args: list[str] = []
    if options.is_direct:
        args += [
            f"--direct_running_mode={options.running_mode}",
            f"--direct_num_workers={options.num_workers}",
            # Worker processes otherwise log every channel they open at INFO.
            f"--default_sdk_harness_log_level={quiet.worker_log_level()}",
        ]
    else:
        args.append(f"--runner={options.runner}")
    args += list(options.beam_args)
    po = PipelineOptions(args)
    # Workers import our DoFns by module path; pickling the caller's __main__ would only add risk.
    po.view_as(SetupOptions).save_main_session = False
    return po


def make_runner(options: IngestOptions, po: Any) -> Any:
    """The runner object for the DirectRunner case (Prism never), else None (Beam resolves `--runner`)."""
    if not options.is_direct:
        return None
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    # As the DirectRunner does, so worker processes see the pipeline options.
    encoded = JobServiceHandle.encode_pipeline_options(po.get_all_options(drop_default=True))
    info = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
    return fn_runner.FnApiRunner(provision_info=info)


def _beam_info(options: IngestOptions, po: Any) -> BeamInfo:
    import apache_beam
    from apache_beam.options.pipeline_options import DirectOptions

    if options.is_direct:
        direct = po.view_as(DirectOptions)
        return BeamInfo(
            version=apache_beam.__version__,
            runner="DirectRunner",
            running_mode=direct.direct_running_mode,
            num_workers=direct.direct_num_workers,
            args=list(options.beam_args),
        )
    return BeamInfo(version=apache_beam.__version__, runner=options.runner, args=list(options.beam_args))


# --------------------------------------------------------------------------- driver steps


def _check_layout(input_uri: str, root: str) -> None:
    if not is_catalogue(input_uri) and relative(input_uri, root) is not None:
        raise ConfigError(
            f"--output {root!r} is inside --input {input_uri!r}: the next run would ingest the dataset as photos; "
            "write the dataset somewhere else"
        )


def _load_previous(ref: str | None, root: str) -> DatasetInfo | None:
    if ref is None:
        return None
    if ref == "latest":
        latest = latest_version(root)
        if latest is None:
            log.info("--previous latest: no dataset under %s yet, building the first version", root)
            return None
        ref = latest
    try:
        parse_version(ref)
        uri = storage.join(root, ref)
    except ValueError:
        uri = ref
    info = load_dataset_info(uri)
    if normalize(info.root) != root:
        raise DatasetVersionError(
            f"--previous {ref!r} lives under {info.root!r}, not under --output {root!r}; an incremental version "
            "references its parent's shards by path, so both must share one dataset root"
        )
    return info


def _known_files(previous: DatasetInfo) -> tuple[dict[str, tuple[int, int | None]], dict[str, dict[str, Any]]]:
    """({uri: (size, generation)} of every file earlier versions saw, {uri: row} of their label conflicts)."""
    known: dict[str, tuple[int, int | None]] = {}
    conflicts: dict[str, dict[str, Any]] = {}
    for ref in previous.files.inventory:
        for row in jsonl.read_jsonl(previous.uri(ref.path)):
            known[row["uri"]] = (int(row["size"]), row.get("generation"))
            if row.get("outcome") == "conflict":
                conflicts[row["uri"]] = {**row, "dataset_version": ref.dataset_version}
            else:
                conflicts.pop(row["uri"], None)  # a later version saw the file again
    return known, conflicts


def _choose_version(options: IngestOptions, root: str, previous: DatasetInfo | None) -> str:
    if options.dataset_version is None:
        return free_version(root)
    version = options.dataset_version
    if storage.exists(storage.join(root, version, DATASET_JSON)):
        raise DatasetVersionError(
            f"dataset {version} already exists under {root!r} and versions are never rewritten; "
            "omit --version to take the next free one"
        )
    if previous is not None and parse_version(version) <= parse_version(previous.dataset_version):
        raise DatasetVersionError(
            f"--version {version} is not after --previous {previous.dataset_version}; pick a later version"
        )
    return version


def _claim(root: str, version: str, options: IngestOptions) -> str:
    work = storage.join(root, version, WORK)
    claim = storage.join(work, "claim.json")
    body = json.dumps({"started_at": dt.datetime.now(dt.UTC).isoformat(), "input": options.input})
    try:
        storage.write_text(claim, body, if_absent=True)
    except PreconditionFailed:
        raise DatasetVersionError(
            f"dataset {version} under {root!r} is claimed by another run or left over from a failed one "
            f"({claim}); delete {storage.join(root, version)} or pass another --version"
        ) from None
    return work


def _write_listing(work: str, files: Sequence[InputFile], work_units: int) -> list[str]:
    """Chunks of the listing for the workers to read: the pipeline graph stays small at any scale.

    At least 16 (or two per work unit) chunks when there are enough files: `Create`
    spreads the chunks over the workers, so chunks are the unit of parallel probing.
    """
    per_chunk = min(LISTING_CHUNK, max(50, math.ceil(len(files) / max(16, 2 * work_units))))
    uris = []
    for start in range(0, len(files), per_chunk):
        uri = storage.join(work, f"inputs-{start // per_chunk:05d}.jsonl")
        jsonl.write_jsonl(uri, (dataclasses.asdict(f) for f in files[start : start + per_chunk]))
        uris.append(uri)
    return uris


def build_pipeline(p: Any, chunks: Sequence[str], inventories: Sequence[tuple[str, str]], config: Any) -> None:
    """Add the whole job to pipeline `p`."""
    import apache_beam as beam

    from .transforms import IngestImages, read_existing, read_listing_chunk

    inputs = {
        "files": p | "ListingChunks" >> beam.Create(list(chunks)) | "ReadListing" >> beam.FlatMap(read_listing_chunk)
    }
    if inventories:
        inputs["existing"] = (
            p | "Inventories" >> beam.Create(list(inventories)) | "ReadInventories" >> beam.FlatMap(read_existing)
        )
    inputs | "Ingest" >> IngestImages(config)


def _run_beam(options: IngestOptions, build: Any) -> BeamInfo:
    import apache_beam as beam
    from apache_beam.runners.runner import PipelineState

    po = pipeline_options(options)
    runner = make_runner(options, po)
    info = _beam_info(options, po)
    log.info(
        "running Beam %s on %s%s",
        info.version,
        info.runner,
        f" ({info.running_mode}, {info.num_workers} workers)" if info.running_mode else "",
    )
    p = beam.Pipeline(runner=runner, options=po)
    build(p)
    # Local workers forward their start-up chatter (option parsing, cache folders) as warnings; the
    # job's real failures still arrive as the exception from wait_until_finish.
    relay = logging.getLogger("apache_beam.runners.portability.local_job_service")
    level = relay.level
    if options.is_direct:
        relay.setLevel(max(level, logging.ERROR))
    try:
        with quiet.native_stderr():  # local worker processes print their start-up chatter there
            result = p.run()
            state = result.wait_until_finish()
    finally:
        relay.setLevel(level)
    if state != PipelineState.DONE:
        raise IngestError(f"the Beam job ended in state {state}; see the runner's logs (runner {info.runner})")
    return info


def _read_reports(version_uri: str) -> dict[str, list[dict[str, Any]]]:
    """The job's report files (a report with no rows has no file: one is written, empty, where readers expect it)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name in (SHARDS, PLAN, DEAD_LETTERS, DUPLICATES):
        uri = storage.join(version_uri, name)
        if storage.exists(uri):
            out[name] = list(jsonl.read_jsonl(uri))
        else:
            out[name] = []
            if not name.startswith(WORK):
                jsonl.write_jsonl(uri, [])
    return out


def _counts(
    listed: int, known: int, new: int, shards: Sequence[Mapping[str, Any]], dead: Sequence[Mapping[str, Any]],
    dups: Sequence[Mapping[str, Any]],
) -> Counts:  # fmt: skip
    kinds = Counter(d["kind"] for d in dups)
    return Counts(
        listed=listed,
        known=known,
        input=new,
        written=sum(int(s["examples"]) for s in shards),
        duplicates=kinds["duplicate"],
        conflicts=kinds["conflict"],
        dead_letters=len(dead),
        dead_letter_reasons=dict(sorted(Counter(d["reason"] for d in dead).items())),
    )


def _splits(
    options: IngestOptions,
    version: str,
    label_map: Sequence[str],
    shards: Sequence[Mapping[str, Any]],
    previous: DatasetInfo | None,
) -> dict[str, SplitInfo]:
    names = set(options.ratios.active) | set(previous.splits if previous else ())
    out: dict[str, SplitInfo] = {}
    for split in sorted(names, key=("train", "eval", "test").index):
        before = previous.splits.get(split) if previous else None
        refs = list(before.shards) if before else []
        per_class: Counter[str] = Counter(before.per_class if before else {})
        for s in sorted((s for s in shards if s["split"] == split), key=lambda s: s["path"]):
            refs.append(ShardRef(path=s["path"], dataset_version=version, examples=s["examples"], bytes=s["bytes"]))
            per_class.update(dict(s["per_class"]))
        out[split] = SplitInfo(
            examples=sum(per_class.values()),
            per_class={label: per_class.get(label, 0) for label in label_map},
            shards=refs,
        )
    return out


def _conflicts(dups: Sequence[Mapping[str, Any]]) -> list[Conflict]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for d in dups:
        if d["kind"] == "conflict":
            groups.setdefault(d["sha256"], []).append(d)
    return [
        Conflict(
            sha256=sha,
            labels=sorted({label for r in rows for label in r["labels"]}),
            uris=sorted(r["uri"] for r in rows),
            earlier_versions=sorted({v for r in rows for v in r.get("earlier_versions", [])}),
        )
        for sha, rows in sorted(groups.items())
    ]


def _warnings(
    options: IngestOptions,
    splits: Mapping[str, SplitInfo],
    label_map: Sequence[str],
    counts: Counts,
    conflicts: Sequence[Conflict],
    gone: int,
    previous: DatasetInfo | None,
    version_uri: str,
) -> list[str]:
    out = []
    for label in label_map:
        total = sum(s.per_class.get(label, 0) for s in splits.values())
        if total < options.min_per_class:
            out.append(
                f"product {label!r} has {total} photo(s), fewer than --min-per-class {options.min_per_class}; "
                "add photos of it (or lower the threshold)"
            )
    if conflicts:
        out.append(
            f"{len(conflicts)} photo(s) are filed under more than one product and were left out; "
            f"see {storage.join(version_uri, DUPLICATES)} and move each to its one product"
        )
    if counts.dead_letters:
        out.append(
            f"{counts.dead_letters} file(s) could not be used ({counts.dead_letter_reasons}); "
            f"see {storage.join(version_uri, DEAD_LETTERS)}"
        )
    if gone:
        out.append(
            f"{gone} file(s) seen by earlier versions are gone from the input; their examples stay in the "
            "referenced shards: build without --previous to drop them"
        )
    if previous is not None:
        before = previous.options
        now = options.model_dump(mode="json")
        changed = [k for k in ("eval_fraction", "test_fraction", "max_side", "jpeg_quality") if before.get(k) != now[k]]
        if changed:
            out.append(
                f"options {changed} differ from {previous.dataset_version}; its examples keep the old settings "
                "(build without --previous to apply them everywhere)"
            )
    return out


def _cleanup(work: str) -> None:
    for obj in list(storage.list_objects(work.rstrip("/") + "/")):
        storage.delete(obj.uri)
    if storage.is_local(work):
        with contextlib.suppress(OSError):  # not empty (someone else's file) or already gone: leave it
            storage.local_path(work).rmdir()


def _record_warehouse(info: DatasetInfo, options: IngestOptions, input_uri: str, version_uri: str) -> str | None:
    """Upsert the `datasets` and `dataset_classes` rows; a failure is reported, not raised
    (dataset.json is already written and a retry must not create another version)."""
    from edgeloop import tables, warehouse

    c = info.counts
    row = {
        "dataset_version": info.dataset_version,
        "created_at": info.created_at,
        "parent_version": info.parent_version,
        "input_uri": input_uri,
        "output_uri": version_uri,
        "n_input": c.input,
        "n_known": c.known,
        "n_written": c.written,
        "n_duplicates": c.duplicates,
        "n_conflicts": c.conflicts,
        "n_dead_letters": c.dead_letters,
        "n_classes": info.num_classes,
        "runner": info.beam.runner,
        "beam_version": info.beam.version,
        "options": info.options,
        "label_map": dict(enumerate(info.label_map)),
    }
    class_rows = [
        {
            "dataset_version": info.dataset_version,
            "split": split,
            "label": label,
            "label_index": index,
            "examples": s.per_class.get(label, 0),
        }
        for split, s in info.splits.items()
        for index, label in enumerate(info.label_map)
    ]
    try:
        with warehouse.connect(options.warehouse) as wh:
            wh.upsert(tables.DATASETS, [row])
            wh.upsert(tables.DATASET_CLASSES, class_rows)
    except EdgeloopError as exc:
        log.error("dataset %s is written but the warehouse refused its rows: %s", info.dataset_version, exc)
        return str(exc)
    return None


@dataclasses.dataclass(frozen=True)
class _Listing:
    """The input as this run sees it: every file listed, the new ones, and what earlier versions already saw."""

    files: list[InputFile]
    new: list[InputFile]
    old: list[InputFile]
    gone: int  # files earlier versions saw that are no longer listed
    earlier_conflicts: dict[str, dict[str, Any]]


def _list(input_uri: str, previous: DatasetInfo | None) -> _Listing:
    files = list_inputs(input_uri)
    known, earlier_conflicts = _known_files(previous) if previous else ({}, {})
    new, old = split_known(files, known)
    listed_uris = {f.uri for f in files}
    gone = sum(1 for uri in known if uri not in listed_uris)
    log.info(
        "%d files under %s: %d new, %d already in %s",
        len(files),
        input_uri,
        len(new),
        len(old),
        previous.dataset_version if previous else "no earlier version",
    )
    return _Listing(files, new, old, gone, earlier_conflicts)


def _unchanged(
    options: IngestOptions, root: str, previous: DatasetInfo, listing: _Listing, started: float
) -> IngestResult:
    """The result of a run that found nothing new: the previous version stands."""
    log.info("nothing new since %s; no version written", previous.dataset_version)
    return IngestResult(
        dataset_version=previous.dataset_version,
        uri=storage.join(root, previous.dataset_version),
        dataset_json=storage.join(root, previous.dataset_version, DATASET_JSON),
        created=False,
        parent_version=previous.parent_version,
        counts=Counts(
            listed=len(listing.files),
            known=len(listing.old),
            input=0,
            written=0,
            duplicates=0,
            conflicts=0,
            dead_letters=0,
            dead_letter_reasons={},
        ),
        examples={k: v.examples for k, v in previous.splits.items()},
        num_classes=previous.num_classes,
        new_classes=(),
        warnings=(),
        runner=options.runner,
        seconds=time.monotonic() - started,
    )


def _inventories(work: str, previous: DatasetInfo | None, listing: _Listing) -> list[tuple[str, str]]:
    """(inventory URI, version) of every file earlier versions saw, for the job to dedupe against."""
    inventories = [(previous.uri(r.path), r.dataset_version) for r in previous.files.inventory] if previous else []
    # Copies of a photo left out as a label conflict, still in the input unchanged: a new copy joins the conflict.
    live_conflicts = [listing.earlier_conflicts[f.uri] for f in listing.old if f.uri in listing.earlier_conflicts]
    if live_conflicts:
        conflicts_uri = storage.join(work, "earlier-conflicts.jsonl")
        jsonl.write_jsonl(conflicts_uri, live_conflicts)
        inventories.append((conflicts_uri, ""))
    return inventories


def _config(options: IngestOptions, root: str, version: str, previous: DatasetInfo | None) -> Any:
    from .transforms import IngestConfig

    return IngestConfig(
        root=root,
        version=version,
        limits=options.limits,
        ratios=options.ratios,
        max_side=options.max_side,
        quality=options.jpeg_quality,
        target_bytes=options.shard_mb * 1024 * 1024,
        min_shards=options.work_units,
        previous_labels=tuple(previous.label_map) if previous else (),
        prior={
            label: {s: v.per_class.get(label, 0) for s, v in previous.splits.items()} for label in previous.label_map
        }
        if previous
        else {},
    )


def _accounted(
    reports: Mapping[str, list[dict[str, Any]]],
    listing: _Listing,
    version: str,
    version_uri: str,
    work: str,
    input_uri: str,
    first: bool,
) -> Counts:
    """The run's counts, once every input file is accounted for and a first version holds a photo."""
    counts = _counts(
        len(listing.files),
        len(listing.old),
        len(listing.new),
        reports[SHARDS],
        reports[DEAD_LETTERS],
        reports[DUPLICATES],
    )
    if not counts.identity_holds:
        raise CountMismatchError(
            f"{version}: {counts.input} input files but {counts.written} written + {counts.duplicates} duplicates + "
            f"{counts.conflicts} conflicts + {counts.dead_letters} dead letters; this is a bug in ingest, please "
            f"report it with {work}"
        )
    if first and counts.written == 0:
        raise EmptyInputError(
            f"none of the {counts.input} files under {input_uri!r} is a usable photo "
            f"({counts.dead_letter_reasons}); see {storage.join(version_uri, DEAD_LETTERS)}"
        )
    return counts


def _dataset_info(
    options: IngestOptions,
    *,
    root: str,
    version: str,
    input_uri: str,
    created_at: dt.datetime,
    label_map: list[str],
    counts: Counts,
    reports: Mapping[str, list[dict[str, Any]]],
    listing: _Listing,
    previous: DatasetInfo | None,
    beam_info: BeamInfo,
) -> DatasetInfo:
    """The new version's `dataset.json`: its splits with earlier versions' shards, conflicts, warnings, lineage."""
    splits = _splits(options, version, label_map, reports[SHARDS], previous)
    conflicts = _conflicts(reports[DUPLICATES])
    warnings = _warnings(
        options, splits, label_map, counts, conflicts, listing.gone, previous, storage.join(root, version)
    )
    for warning in warnings:
        log.warning("%s", warning)
    info = DatasetInfo(
        schema_version=SCHEMA_VERSION,
        dataset_version=version,
        parent_version=previous.dataset_version if previous else None,
        created_at=created_at,
        label_map=label_map,
        new_classes=[lbl for lbl in label_map if previous is None or lbl not in previous.label_map],
        splits=splits,
        counts=counts,
        sources=[
            *(previous.sources if previous else []),
            Source(input=input_uri, dataset_version=version, files=counts.input, written=counts.written),
        ],
        conflicts=conflicts,
        warnings=warnings,
        files=DatasetFiles(
            dead_letters=f"{version}/{DEAD_LETTERS}",
            duplicates=f"{version}/{DUPLICATES}",
            inventory=[
                *(previous.files.inventory if previous else []),
                FileRef(path=f"{version}/{INVENTORY}", dataset_version=version),
            ],
        ),
        features=FEATURES,
        options=options.model_dump(mode="json"),
        beam=beam_info,
    )
    info._root = root
    return info


# --------------------------------------------------------------------------- entry points


def ingest(options: IngestOptions) -> IngestResult:
    """Turn the photos under `options.input` into a new dataset version under `options.output`."""
    started = time.monotonic()
    created_at = dt.datetime.now(dt.UTC)
    input_uri = normalize(options.input)
    root = normalize(options.output)
    _check_layout(input_uri, root)
    previous = _load_previous(options.previous, root)
    listing = _list(input_uri, previous)
    if previous is not None and not listing.new:
        return _unchanged(options, root, previous, listing, started)

    version = _choose_version(options, root, previous)
    version_uri = storage.join(root, version)
    work = _claim(root, version, options)
    chunks = _write_listing(work, listing.new, options.work_units)
    inventories = _inventories(work, previous, listing)
    config = _config(options, root, version, previous)
    beam_info = _run_beam(options, lambda p: build_pipeline(p, chunks, inventories, config))

    reports = _read_reports(version_uri)
    label_map = list(reports[PLAN][0]["label_map"]) if reports[PLAN] else list(config.previous_labels)
    counts = _accounted(reports, listing, version, version_uri, work, input_uri, first=previous is None)
    info = _dataset_info(
        options,
        root=root,
        version=version,
        input_uri=input_uri,
        created_at=created_at,
        label_map=label_map,
        counts=counts,
        reports=reports,
        listing=listing,
        previous=previous,
        beam_info=beam_info,
    )
    dataset_json = storage.join(version_uri, DATASET_JSON)
    storage.write_text(dataset_json, info.to_json() + "\n", if_absent=True)
    _cleanup(work)
    warehouse_error = _record_warehouse(info, options, input_uri, version_uri) if options.record else None
    seconds = time.monotonic() - started
    log.info("wrote %s: %d examples (%d new) in %.1f s", version_uri, info.examples, counts.written, seconds)
    return IngestResult(
        dataset_version=version,
        uri=version_uri,
        dataset_json=dataset_json,
        created=True,
        parent_version=info.parent_version,
        counts=counts,
        examples={k: v.examples for k, v in info.splits.items()},
        num_classes=len(label_map),
        new_classes=tuple(info.new_classes),
        warnings=tuple(info.warnings),
        runner=beam_info.runner,
        seconds=seconds,
        warehouse_error=warehouse_error,
    )


def run(argv: Sequence[str] | None = None) -> IngestResult:
    """Beam-style entry point: parse `argv` (default `sys.argv[1:]`) and ingest."""
    return ingest(parse_argv(sys.argv[1:] if argv is None else argv))


__all__ = ["IngestResult", "build_pipeline", "ingest", "make_runner", "pipeline_options", "run"]
