"""`convert()`: every variant of a trained model, proven on eval data and packaged.

    result = convert("workspace/runs/<run_id>", data=ConversionData(...))   # or data=None: read the dataset
    result.package_uri, result.card.publishable_variants(), print(result.table)

For each variant in the table (`edge.variants`): export (`conversion.exporters`), embed
labels and input spec (`edge.metadata`; TFLite files also get the standard TFLite Metadata
MediaPipe Tasks reads, `conversion.tflite_metadata`), read the file back (`conversion.inspection`),
run the eval split through `edge.runtime` — the code devices run — and judge it against
the Keras model (`conversion.gate`), then time it with `edge.bench` in a fresh process.
A variant that fails is kept for inspection, marked not publishable, with the reason.
The package is built in a temporary folder and moved into place whole.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conversion import gate, inspection, tflite_metadata
from conversion.data import ConversionData
from conversion.errors import ConversionError, RunGateFailed
from conversion.report import app_usage, markdown_table
from conversion.settings import ConvertSettings, get_convert_settings, onnx_reduce_range, opset_problem
from edge import metadata as md
from edge.manifest import InputSpec
from edge.variants import VARIANTS, VariantSpec
from edgeloop import storage
from edgeloop.card import (
    CARD_NAME,
    ConversionInfo,
    ModelCard,
    VariantEntry,
    VariantLatency,
    read_card,
)
from edgeloop.errors import CardError, ConfigError
from edgeloop.runs import RunFolder

log = logging.getLogger(__name__)

LABELS_NAME = "labels.txt"
NHWC_DENOTATION = ("DATA_BATCH", "DATA_FEATURE", "DATA_FEATURE", "DATA_CHANNEL")
BENCHMARK_NAME = "benchmark.md"
PARITY_BATCH = 32


@dataclasses.dataclass(frozen=True)
class ConvertOptions:
    """Per-call options; `None` means "the setting" (`EDGELOOP_CONVERT_*`)."""

    variants: Sequence[str] | None = None
    output: str | None = None  # the package folder; default <packages>/<model>/<run_id>
    representative_samples: int | None = None
    opset: int | None = None
    threads: int | None = None
    runs: int | None = None
    warmup: int | None = None
    eval_limit: int | None = None
    ignore_gate: bool = False
    allow_select_tf_ops: bool = False
    measure_latency: bool = True
    record: bool = True  # upsert one `conversions` row per variant into the warehouse
    thresholds: gate.Thresholds | None = None


@dataclasses.dataclass(frozen=True)
class ConversionResult:
    """Where the package went and what is in it."""

    package_uri: str
    card: ModelCard
    table: str  # the Markdown benchmark table (also `benchmark.md` in the package)
    seconds: float

    @property
    def publishable(self) -> list[str]:
        return [v.variant for v in self.card.variants if v.publishable]

    def variant(self, name: str) -> VariantEntry:
        for entry in self.card.variants:
            if entry.variant == name:
                return entry
        raise KeyError(name)


@dataclasses.dataclass(frozen=True)
class _Resolved:
    variants: tuple[str, ...]
    opset: int
    representative_samples: int
    threads: int
    runs: int
    warmup: int
    eval_limit: int | None
    thresholds: gate.Thresholds
    onnx_reduce_range: bool
    tflite_dynamic_hybrid: bool
    allow_select_tf_ops: bool
    measure_latency: bool
    ignore_gate: bool


@dataclasses.dataclass(frozen=True)
class _EvalSet:
    """The images every variant is judged and calibrated with."""

    images: NDArray[np.uint8]
    labels: NDArray[np.int64]
    representative: NDArray[np.uint8]


@dataclasses.dataclass(frozen=True)
class _Reference:
    """The Keras model's answers on the eval images: what every variant must match."""

    probs: NDArray[np.float32]
    metrics: gate.Metrics


def parse_variants(text: str | Sequence[str]) -> tuple[str, ...]:
    """Variant names from `all`, a comma-separated string or a list; unknown names are refused."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names or names == ["all"]:
        return tuple(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ConfigError(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)} or `all`")
    return tuple(dict.fromkeys(names))


def _resolve(options: ConvertOptions, settings: ConvertSettings) -> _Resolved:
    def pick(value: Any, default: Any) -> Any:
        return default if value is None else value

    opset = settings.opset  # checked when the settings were read
    if options.opset is not None:
        if problem := opset_problem(options.opset):
            raise ConfigError(f"--opset {problem}")
        opset = int(options.opset)
    resolved = _Resolved(
        variants=parse_variants(pick(options.variants, settings.variants)),
        opset=opset,
        representative_samples=int(pick(options.representative_samples, settings.representative_samples)),
        threads=int(pick(options.threads, settings.threads)),
        runs=int(pick(options.runs, settings.runs)),
        warmup=int(pick(options.warmup, settings.warmup)),
        eval_limit=pick(options.eval_limit, settings.eval_limit),
        onnx_reduce_range=onnx_reduce_range(settings.onnx_reduce_range),
        tflite_dynamic_hybrid=settings.tflite_dynamic_hybrid,
        thresholds=options.thresholds or gate.Thresholds.from_settings(settings),
        allow_select_tf_ops=options.allow_select_tf_ops,
        measure_latency=options.measure_latency,
        ignore_gate=options.ignore_gate,
    )
    for name in ("representative_samples", "threads", "runs"):
        if getattr(resolved, name) < 1:
            raise ConfigError(f"{name}={getattr(resolved, name)}: must be at least 1")
    return resolved


def convert(
    run: str | Path, *, data: ConversionData | None = None, options: ConvertOptions | None = None
) -> ConversionResult:
    """Convert the training run at `run` (a folder with `model.keras` and `model_card.json`) into a package.

    `data` holds the eval and representative images; when omitted they are read from the
    dataset named in the card's lineage. Raises `ConversionError` (an `EdgeloopError`) for
    anything a person must fix; nothing is left half-written.
    """
    started = time.perf_counter()
    options = options or ConvertOptions()
    opts = _resolve(options, get_convert_settings())
    run_uri = str(run)
    card = _run_card(run_uri, ignore_gate=opts.ignore_gate)
    evals = _eval_set(card, data, opts)
    final_uri = options.output or storage.join(_packages_root(), card.name, card.lineage.run_id)
    with _build_folder(final_uri) as build, tempfile.TemporaryDirectory(prefix="edgeloop-convert-") as work:
        model = _load_keras(run_uri, card)
        reference = _keras_reference(model, evals, card.labels)
        entries = _variants(model, card, evals, reference, build, Path(work), opts)
        info = _conversion_info(card, evals, reference.metrics, opts)
        new_card = card.model_copy(update={"variants": entries, "conversion": info})
        table = _write_package(build, new_card, reference.metrics)
    if options.record:
        record(new_card, final_uri)
    seconds = time.perf_counter() - started
    log.info(
        "package %s: %d of %d variants publishable (%.0f s)",
        final_uri,
        len(new_card.publishable_variants()),
        len(entries),
        seconds,
    )
    return ConversionResult(package_uri=final_uri, card=new_card, table=table, seconds=seconds)


def _run_card(run_uri: str, *, ignore_gate: bool) -> ModelCard:
    """The run's card; a run that failed its gate is refused unless `ignore_gate`."""
    try:
        card = read_card(run_uri)
    except CardError as exc:
        raise ConversionError(str(exc)) from None
    if card.gate is not None and not card.gate.passed:
        failed = "; ".join(c.detail or c.name for c in card.gate.checks if not c.passed)
        if not ignore_gate:
            raise RunGateFailed(
                f"run {card.lineage.run_id} failed its gate ({failed or 'verdict ' + card.gate.verdict}); "
                "fix the model, or pass --ignore-gate to convert anyway (recorded in the card)"
            )
        log.warning("run %s failed its gate; converting anyway because of --ignore-gate", card.lineage.run_id)
    elif card.gate is None:
        log.warning("run %s has no gate report; converting without one", card.lineage.run_id)
    return card


def _eval_set(card: ModelCard, data: ConversionData | None, opts: _Resolved) -> _EvalSet:
    """The images to judge and calibrate with (read from the card's dataset when not given), checked and capped."""
    spec_in = card.input
    needs_calibration = any(VARIANTS[v].quantization == "int8" for v in opts.variants)
    if data is None:
        from conversion import data as data_mod

        data = data_mod.load(
            card.lineage.dataset_uri,
            height=spec_in.height,
            width=spec_in.width,
            representative_samples=opts.representative_samples,
            eval_limit=opts.eval_limit,
        )
    data.check(card.labels, spec_in.height, spec_in.width, need_representative=needs_calibration)
    images, labels = data.eval_images, data.eval_labels
    if opts.eval_limit is not None:
        images, labels = images[: opts.eval_limit], labels[: opts.eval_limit]
    return _EvalSet(images=images, labels=labels, representative=data.representative[: opts.representative_samples])


def _keras_reference(model: Any, evals: _EvalSet, labels: Sequence[str]) -> _Reference:
    """The Keras model's probabilities and metrics on the eval images, batched as the variants are."""
    probs = np.asarray(
        model.predict(evals.images.astype(np.float32), batch_size=PARITY_BATCH, verbose=0), dtype=np.float32
    )
    metrics = gate.classification_metrics(evals.labels, probs.argmax(axis=1), labels)
    log.info(
        "keras reference on %d eval images: accuracy %.4f, macro-F1 %.4f",
        len(evals.images),
        metrics.accuracy,
        metrics.macro_f1,
    )
    return _Reference(probs=probs, metrics=metrics)


def _variants(
    model: Any, card: ModelCard, evals: _EvalSet, reference: _Reference, build: Path, work: Path, opts: _Resolved
) -> list[VariantEntry]:
    """Export, embed, judge and time every variant into `build`; a failed variant stays, not publishable."""
    from conversion.exporters import ExportContext, export

    ctx = ExportContext(
        model=model,
        height=card.input.height,
        width=card.input.width,
        representative=evals.representative,
        workdir=work,
        opset=opts.opset,
        allow_select_tf_ops=opts.allow_select_tf_ops,
        onnx_reduce_range=opts.onnx_reduce_range,
        dynamic_hybrid=opts.tflite_dynamic_hybrid,
    )
    entries = []
    for name in opts.variants:
        spec = VARIANTS[name]
        exported = export(name, ctx)
        target = build / f"{card.name}-{name}{spec.suffix}"
        found = _embed(exported.path, target, spec, card)
        entry = _judge(spec, target, found, evals, reference, card, opts)
        entry = entry.model_copy(update={"export_seconds": round(exported.seconds, 2)})
        if opts.measure_latency:
            entry = _with_latency(entry, target, opts)
        entries.append(entry)
        log.info(
            "%s: %s%s",
            name,
            "publishable" if entry.publishable else "NOT publishable",
            f" — {entry.reason}" if entry.reason else "",
        )
    return entries


def _conversion_info(card: ModelCard, evals: _EvalSet, keras_metrics: gate.Metrics, opts: _Resolved) -> ConversionInfo:
    """How the variants were made and judged, for the card."""
    return ConversionInfo(
        converted_at=dt.datetime.now(dt.UTC),
        options={
            "variants": list(opts.variants),
            "opset": opts.opset,
            "representative_samples": opts.representative_samples,
            "threads": opts.threads,
            "runs": opts.runs,
            "warmup": opts.warmup,
            "eval_limit": opts.eval_limit,
            "allow_select_tf_ops": opts.allow_select_tf_ops,
            "onnx_int8": {"format": "QDQ", "per_channel": True, "reduce_range": opts.onnx_reduce_range},
            "tflite_dynamic_hybrid": opts.tflite_dynamic_hybrid,
            "thresholds": dataclasses.asdict(opts.thresholds),
        },
        gate_ignored=bool(opts.ignore_gate and card.gate is not None and not card.gate.passed),
        run_gate_verdict=card.gate.verdict if card.gate else None,
        n_eval_images=len(evals.images),
        n_representative_images=len(evals.representative),
        keras_accuracy=keras_metrics.accuracy,
        keras_macro_f1=keras_metrics.macro_f1,
        keras_class_recall=keras_metrics.class_recall,
        host=host_info(),
    )


def _write_package(build: Path, card: ModelCard, keras_metrics: gate.Metrics) -> str:
    """Labels, the benchmark table and the card beside the variant files; returns the table."""
    table = markdown_table(card.variants, keras_macro_f1=keras_metrics.macro_f1, keras_accuracy=keras_metrics.accuracy)
    (build / LABELS_NAME).write_text("\n".join(card.labels) + "\n", encoding="utf-8")
    usage = app_usage(card.variants)
    (build / BENCHMARK_NAME).write_text(f"# {card.name} {card.version}\n\n{table}{usage}", encoding="utf-8")
    (build / CARD_NAME).write_text(card.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return table


def _packages_root() -> str:
    from edgeloop.settings import get_settings

    return get_convert_settings().output or str(get_settings().path("packages"))


@contextlib.contextmanager
def _build_folder(final_uri: str) -> Iterator[Path]:
    """A temporary folder that becomes `final_uri` only if the block succeeds.

    Locally the folder is built beside the target and renamed into place (a re-run swaps
    the old package out in two renames). On GCS files are uploaded with the card last,
    so a reader that finds the card finds every file it lists.
    """
    local = storage.is_local(final_uri)
    if local:
        final = storage.local_path(final_uri)
        final.parent.mkdir(parents=True, exist_ok=True)
        build = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    else:
        build = Path(tempfile.mkdtemp(prefix="edgeloop-package-"))
    try:
        yield build
        if local:
            old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
            if final.exists():
                final.rename(old)
            build.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            names = sorted(p.name for p in build.iterdir() if p.name != CARD_NAME)
            for name in [*names, CARD_NAME]:
                storage.upload(build / name, storage.join(final_uri, name))
    finally:
        if build.exists():
            shutil.rmtree(build, ignore_errors=True)


def _load_keras(run_uri: str, card: ModelCard) -> Any:
    import keras

    model_uri = RunFolder(run_uri).model
    if not storage.exists(model_uri):
        raise ConversionError(f"{model_uri!r} does not exist: the training run did not save its Keras model")
    with storage.local_copy(model_uri) as path:
        model = keras.saving.load_model(path, compile=False)
    shape = tuple(model.inputs[0].shape[1:])
    want = (card.input.height, card.input.width, 3)
    if shape != want:
        raise ConversionError(f"{model_uri}: model input is {shape}, the card says {want}; the card is stale")
    classes = int(model.outputs[0].shape[-1])
    if classes != len(card.labels):
        raise ConversionError(
            f"{model_uri}: model has {classes} outputs, the card lists {len(card.labels)} labels; the card is stale"
        )
    return model


def _embed(raw: Path, target: Path, spec: VariantSpec, card: ModelCard) -> inspection.Inspection:
    """Write `raw` to `target` with labels and input spec inside; return the inspection of the result."""
    before = inspection.read(raw, spec)
    input_dtype = before.input_dtype if before.input_dtype in ("float32", "uint8", "int8") else spec.input_dtype
    meta = md.ModelMetadata(
        name=card.name,
        version=card.version,
        variant=spec.name,
        labels=list(card.labels),
        input=InputSpec(
            height=card.input.height,
            width=card.input.width,
            dtype=input_dtype,  # type: ignore[arg-type]  # narrowed by the check above
            scale=before.input_scale,
            zero_point=before.input_zero_point,
        ),
        output_dtype=before.output_dtype,
        output_scale=before.output_scale,
        output_zero_point=before.output_zero_point,
        runtime=spec.runtime,
        quantization=spec.quantization,
        run_id=card.lineage.run_id,
    )
    if spec.runtime == "litert":
        tflite_metadata.write(raw, target, meta)
    else:
        import onnx

        model = onnx.load(str(raw))
        props = md.onnx_metadata_props(meta)
        keep = [p for p in model.metadata_props if p.key not in props]
        del model.metadata_props[:]
        model.metadata_props.extend(keep)
        for key, value in props.items():
            model.metadata_props.add(key=key, value=value)
        model.producer_name = "edgeloop"
        # onnxruntime shows doc_string as the model's description; the denotations say which
        # input is the image and which axis is what (ONNX's TypeDenotation / DimensionDenotation).
        model.doc_string = tflite_metadata.description(meta)
        constants = {i.name for i in model.graph.initializer}
        image = next(i for i in model.graph.input if i.name not in constants).type
        image.denotation = "IMAGE"
        for dim, name in zip(image.tensor_type.shape.dim, NHWC_DENOTATION, strict=True):
            dim.denotation = name
        onnx.save(model, str(target))
    return inspection.read(target, spec)


def _predict(path: Path, images: NDArray[np.uint8], threads: int) -> NDArray[np.float32]:
    from edge.runtime import load

    clf = load(path, threads=threads)
    return np.concatenate([clf.predict(images[i : i + PARITY_BATCH]) for i in range(0, len(images), PARITY_BATCH)])


def _judge(
    spec: VariantSpec,
    path: Path,
    found: inspection.Inspection,
    evals: _EvalSet,
    reference: _Reference,
    card: ModelCard,
    opts: _Resolved,
) -> VariantEntry:
    sha, size = storage.sha256(str(path))
    reasons = [f"inspection: {p}" for p in inspection.problems(spec, found)]
    base: dict[str, Any] = {
        "variant": spec.name,
        "file": path.name,
        "sha256": sha,
        "size": size,
        "runtime": spec.runtime,
        "quantization": spec.quantization,
        "input_dtype": found.input_dtype,
        "output_dtype": found.output_dtype,
        "weights_quantized": found.weights_quantized,
        "input_scale": found.input_scale,
        "input_zero_point": found.input_zero_point,
        "output_scale": found.output_scale,
        "output_zero_point": found.output_zero_point,
        "inspection": found.as_dict(),
    }
    from edge.runtime import ModelLoadError

    try:
        probs = _predict(path, evals.images, opts.threads)
    except ModelLoadError as exc:
        return VariantEntry(**base, publishable=False, reason="; ".join([*reasons, f"runtime: {exc}"]))
    result = gate.parity(probs, reference.probs, evals.labels, card.labels)
    checks = gate.checks(spec, result, reference.metrics, opts.thresholds)
    reasons.extend(gate.failures(checks))
    return VariantEntry(
        **base,
        accuracy=result.metrics.accuracy,
        macro_f1=result.metrics.macro_f1,
        agreement=result.agreement,
        max_abs_diff=result.max_abs_diff,
        class_recall=result.metrics.class_recall,
        checks=checks,
        publishable=not reasons,
        reason="; ".join(reasons),
    )


def bench_subprocess(path: Path, *, runs: int, warmup: int, threads: int) -> dict[str, Any]:
    """`edge.bench` on one file in a fresh interpreter, so peak memory belongs to that file alone."""
    cmd = [
        sys.executable,
        "-m",
        "edge.bench",
        str(path),
        "--runs",
        str(runs),
        "--warmup",
        str(warmup),
        "--threads",
        str(threads),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise ConversionError(f"latency run failed for {path.name}: {tail[0]}")
    stats: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return stats


def _with_latency(entry: VariantEntry, path: Path, opts: _Resolved) -> VariantEntry:
    try:
        stats = bench_subprocess(path, runs=opts.runs, warmup=opts.warmup, threads=opts.threads)
    except ConversionError as exc:
        reason = "; ".join(r for r in (entry.reason, str(exc)) if r)
        return entry.model_copy(update={"publishable": False, "reason": reason})
    latency = VariantLatency(
        p50_ms=stats["p50_ms"],
        p90_ms=stats["p90_ms"],
        p99_ms=stats["p99_ms"],
        init_ms=stats["init_ms"],
        peak_mem_mb=stats["peak_mem_mb"],
        threads=stats["threads"],
        runs=stats["runs"],
    )
    log.info(
        "%s: p50 %.2f ms, p90 %.2f ms, init %.0f ms, peak %.0f MB",
        entry.variant,
        latency.p50_ms,
        latency.p90_ms,
        latency.init_ms,
        latency.peak_mem_mb,
    )
    return entry.model_copy(update={"latency": latency})


def host_info() -> dict[str, str]:
    """The CPU and runtime versions latency was measured with."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = {"cpu": cpu, "cores": str(os.cpu_count()), "python": platform.python_version()}
    for dist in ("tensorflow", "ai-edge-litert", "onnxruntime", "tf2onnx", "onnx"):
        with contextlib.suppress(importlib_metadata.PackageNotFoundError):
            info[dist] = importlib_metadata.version(dist)
    return info


def warehouse_rows(card: ModelCard, package_uri: str) -> list[dict[str, Any]]:
    """One `conversions` row per variant, keyed by (model, version, variant)."""
    converted_at = card.conversion.converted_at if card.conversion else dt.datetime.now(dt.UTC)
    rows = []
    for v in card.variants:
        lat = v.latency
        rows.append(
            {
                "model_name": card.name,
                "model_version": card.version,
                "variant": v.variant,
                "run_id": card.lineage.run_id,
                "file": storage.join(package_uri, v.file),
                "sha256": v.sha256,
                "size_bytes": v.size,
                "runtime": v.runtime,
                "quantization": v.quantization,
                "input_dtype": v.input_dtype,
                "output_dtype": v.output_dtype,
                "weights_quantized": v.weights_quantized,
                "accuracy": v.accuracy,
                "macro_f1": v.macro_f1,
                "agreement": v.agreement,
                "max_abs_diff": v.max_abs_diff,
                "latency_p50_ms": lat.p50_ms if lat else None,
                "latency_p90_ms": lat.p90_ms if lat else None,
                "latency_p99_ms": lat.p99_ms if lat else None,
                "init_ms": lat.init_ms if lat else None,
                "peak_mem_mb": lat.peak_mem_mb if lat else None,
                "publishable": v.publishable,
                "reason": v.reason,
                "gate_ignored": bool(card.conversion and card.conversion.gate_ignored),
                "converted_at": converted_at,
            }
        )
    return rows


def record(card: ModelCard, package_uri: str) -> int:
    """Upsert the card's variants into the warehouse's `conversions` table."""
    from edgeloop import tables, warehouse

    with warehouse.connect() as wh:
        return wh.upsert(tables.CONVERSIONS, warehouse_rows(card, package_uri))
