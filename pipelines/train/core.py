"""`train(options) -> TrainResult`: the one entry point the CLI and Airflow call.

A run inserts a `running` row into training_runs first, records every epoch as it
ends, and closes its row with the outcome (succeeded, invalid_input, nan_loss, failed)
whatever happens, so the warehouse explains runs that never produced a model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import json
import logging
import math
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edge.manifest import InputSpec
from edgeloop import examples, runs, storage, warehouse
from edgeloop import tables as t
from edgeloop.card import Lineage, ModelCard, write_card
from edgeloop.errors import CardError
from edgeloop.metrics import EvalReport, confusion_png, evaluate
from edgeloop.runs import RunFolder, RunFolderError, model_and_card
from edgeloop.settings import get_settings
from pipelines.train import compute, records
from pipelines.train.errors import InvalidInput, NanLoss, TrainError
from pipelines.train.labels import LabelMapChange, check_warm_start, class_weights, compare_label_maps
from pipelines.train.options import EpochRecord, TrainOptions, TrainResult, new_run_id
from pipelines.train.settings import TrainSettings
from pipelines.train.source import DatasetView, open_dataset

log = logging.getLogger(__name__)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _upsert(url: str | None, table: t.Table, rows: list[dict[str, Any]], *, ensure: bool = True) -> None:
    # One short connection per write: DuckDB allows one writer process, and an analyst's
    # query must not wait for a whole training run.
    with warehouse.connect(url, ensure=ensure) as wh:
        wh.upsert(table, rows)


def backbone_name(settings: TrainSettings) -> str:
    return f"mobilenet_v2 alpha={settings.alpha} size={settings.size}"


def train(options: TrainOptions) -> TrainResult:
    """Train, evaluate and record one model; raises `TrainError` (status recorded) when it cannot."""
    s = options.settings
    run_id = options.run_id or new_run_id()
    runs_root = options.runs_root or str(get_settings().path("runs"))
    run_dir = RunFolder.of(runs_root, run_id).uri
    started = _now()
    t0 = time.monotonic()
    row: dict[str, Any] = {
        "run_id": run_id,
        "dataset_version": str(options.dataset).rstrip("/").rsplit("/", 1)[-1],
        "status": "running",
        "started_at": started,
        "backbone": backbone_name(s),
        "backbone_source": _backbone_source(options),
        "code_commit": records.code_commit(),
        "settings": {**s.model_dump(mode="json"), "dataset": options.dataset, "warm_start": options.warm_start},
        "model_uri": RunFolder(run_dir).model,
    }
    _upsert(options.warehouse, t.TRAINING_RUNS, [row])
    log.info("run %s: training on %s (%s)", run_id, options.dataset, row["backbone_source"])
    history: list[EpochRecord] = []
    try:
        return _train(options, run_id, run_dir, row, history, t0)
    except BaseException as exc:
        status = exc.status if isinstance(exc, TrainError) else "failed"
        message = str(exc) if isinstance(exc, TrainError) else f"{type(exc).__name__}: {exc}"
        row.update(status=status, message=message, finished_at=_now(), duration_s=time.monotonic() - t0)
        row["epochs"] = len(history)
        _upsert(options.warehouse, t.EPOCH_METRICS, records.epoch_rows(run_id, history, _now()))
        _upsert(options.warehouse, t.TRAINING_RUNS, [row])
        log.error("run %s ended %s: %s", run_id, status, message)
        raise


def _backbone_source(options: TrainOptions) -> str:
    if options.warm_start:
        return f"warm_start:{options.warm_start}"
    if options.weights in ("none", "imagenet"):
        return options.weights
    return f"file:{options.weights}"


def _read_parent(uri: str) -> tuple[str, ModelCard]:
    try:
        return model_and_card(uri, "warm-start source")
    except (RunFolderError, CardError) as exc:
        raise InvalidInput(str(exc)) from None


def _check_counts(view: DatasetView, eval_labels: np.ndarray) -> list[int]:
    n = len(view.labels)
    eval_counts = np.bincount(eval_labels, minlength=n)[:n] if eval_labels.size else np.zeros(n, dtype=np.int64)
    empty = [view.labels[i] for i in range(n) if eval_counts[i] == 0]
    if empty:
        raise InvalidInput(
            f"dataset {view.version} has no eval examples for class(es) {empty}; add photos of them "
            "(ingest puts about 1 in 5 in eval) before training, or their recall cannot be measured"
        )
    train_counts = view.class_counts("train")
    if any(train_counts):
        missing = [view.labels[i] for i, c in enumerate(train_counts) if c == 0]
        if missing:
            raise InvalidInput(f"dataset {view.version} has no train examples for class(es) {missing}; add photos")
    return train_counts


@contextlib.contextmanager
def _local_dir(uri: str) -> Iterator[Path]:
    """A local folder whose files end up at `uri` (directly when local, uploaded afterwards otherwise)."""
    if storage.is_local(uri):
        path = storage.local_path(uri)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="edgeloop-run-") as tmp:
        yield Path(tmp)
        for file in sorted(Path(tmp).rglob("*")):
            if file.is_file():
                storage.upload(file, storage.join(uri, file.relative_to(tmp).as_posix()))


def record_run(run_dir: str, warehouse_url: str | None = None) -> None:
    """(Re)write a finished run's training_runs, epoch_metrics and class_metrics rows from its folder.

    Rows are keyed by run id (and phase/epoch, label), so recording a run twice changes
    nothing; this also backfills a fresh warehouse from run folders.
    """
    run = RunFolder(run_dir)
    row = json.loads(storage.read_text(run.run))
    history = [EpochRecord.model_validate(h) for h in json.loads(storage.read_text(run.history))]
    report = EvalReport.model_validate_json(storage.read_text(run.eval))
    at = dt.datetime.fromisoformat(row["finished_at"])
    with warehouse.connect(warehouse_url) as wh:
        wh.upsert(t.EPOCH_METRICS, records.epoch_rows(row["run_id"], history, at))
        wh.upsert(t.CLASS_METRICS, records.class_rows(row["run_id"], report, at))
        wh.upsert(t.TRAINING_RUNS, [row])


def _warm_start_parent(
    options: TrainOptions, labels: list[str], run_id: str, notes: list[str]
) -> tuple[str, LabelMapChange] | None:
    """(parent model URI, label map change) of a warm start, checked; None when training from scratch."""
    if not options.warm_start:
        return None
    parent_uri, parent_card = _read_parent(options.warm_start)
    change = compare_label_maps(parent_card.labels, labels)
    check_warm_start(change, allow_removed=options.allow_removed_classes, parent=options.warm_start)
    if change.removed:
        notes.append(f"classes removed since the parent model (allowed by flag): {list(change.removed)}")
        log.warning("run %s: %s", run_id, notes[-1])
    if change.added:
        log.info("run %s: %d new class(es): %s", run_id, len(change.added), list(change.added))
    return parent_uri, change


def _pretrained(options: TrainOptions) -> bool:
    return options.warm_start is not None or options.weights != "none"


def _live_batchnorm(options: TrainOptions) -> bool:
    # An edgeloop parent learned these very products, BatchNorm statistics included: its whole
    # network goes on training with live statistics. A foreign backbone (imagenet, a weights
    # file) keeps its statistics frozen and fine-tunes only its top layers (keras-io's recipe).
    return options.warm_start is not None or not _pretrained(options)


def _build(options: TrainOptions, n_classes: int, policy: str, weights: str | None, *, fused: bool = False) -> Any:
    from pipelines.train import model as m

    s = options.settings
    live_bn = _live_batchnorm(options)
    # The policy is global in Keras: set while building this model only, restored after.
    with m.precision(policy):
        built = m.build_model(
            n_classes,
            alpha=s.alpha,
            size=s.size,
            dropout=s.dropout,
            weights=weights,
            pretrained=not live_bn,
            fused_batchnorm=fused,
        )
    if live_bn:
        m.fast_batchnorm(built)
    return built


def _initial_model(
    options: TrainOptions, n_classes: int, policy: str, parent: tuple[str, LabelMapChange] | None
) -> Any:
    """The model before its first epoch: built on the run's backbone weights, or carrying the parent's."""
    from pipelines.train import model as m

    with contextlib.ExitStack() as stack:
        model = _build(
            options, n_classes, policy, _backbone_weights(options, stack), fused=options.settings.fused_kernels
        )
    if parent is not None:
        parent_uri, change = parent
        m.warm_start(model, runs.load_model(parent_uri), dict(change.carried))
    return model


def _backbone_weights(options: TrainOptions, stack: contextlib.ExitStack) -> str | None:
    """None, "imagenet", or a local copy of the weights file (kept while `stack` is open)."""
    if options.warm_start or options.weights == "none":
        return None
    if options.weights == "imagenet":
        return "imagenet"
    if not storage.exists(options.weights):
        raise InvalidInput(f"backbone weights file {options.weights!r} does not exist; check the path")
    return str(stack.enter_context(storage.local_copy(options.weights)))


@dataclasses.dataclass(frozen=True)
class _Phase:
    """One `fit` of a recipe: the backbone layers that train (None: none, 0: all), for how long, how fast."""

    name: str
    unfreeze: int | None
    epochs: int
    learning_rate: float
    setting: str  # the learning-rate setting, named when the loss goes NaN


def _phases(options: TrainOptions) -> list[_Phase]:
    """The recipe of this start (see `pipelines.train`): from scratch, a warm start, or a foreign backbone."""
    s = options.settings
    if not _pretrained(options):
        return [_Phase("train", 0, s.epochs, s.learning_rate, "learning_rate")]
    recipe = [_Phase("head", None, s.head_epochs, s.head_learning_rate, "head_learning_rate")] if s.head_epochs else []
    if options.warm_start:
        recipe.append(
            _Phase("finetune", 0, s.warm_start_epochs, s.warm_start_learning_rate, "warm_start_learning_rate")
        )
    else:
        recipe.append(
            _Phase("finetune", s.fine_tune_layers, s.epochs, s.fine_tune_learning_rate, "fine_tune_learning_rate")
        )
    return recipe


@dataclasses.dataclass(frozen=True)
class _Fit:
    """What every phase of one run's training shares."""

    options: TrainOptions
    run_id: str
    used: compute.Compute
    eval_x: np.ndarray
    eval_y: np.ndarray
    n_classes: int
    history: list[EpochRecord]


def _fit(fit: _Fit, model: Any, view: DatasetView, train_counts: list[int]) -> None:
    """Train `model` in place on the train split, phase by phase."""
    from pipelines.train import data

    s = fit.options.settings
    size = (s.size, s.size)
    n_train = sum(train_counts) or None
    with examples.local_shards(list(view.shards["train"])) as train_paths:
        if n_train is None:
            n_train = int(examples.decoded_dataset(train_paths, size).reduce(0, lambda n, _: n + 1))
        fits = n_train * s.size * s.size * 3 <= s.cache_limit_mb * (1 << 20)
        cache = s.cache == "memory" or (s.cache == "auto" and fits)
        train_ds = data.training_dataset(
            train_paths,
            size=size,
            n_classes=fit.n_classes,
            batch_size=s.batch_size,
            seed=s.seed,
            augment=s.augment,
            cache=cache,
            examples=n_train,
        )
        steps = math.ceil(n_train / s.batch_size)
        weights_by_class = class_weights(train_counts) if s.class_weights and any(train_counts) else None
        for phase in _phases(fit.options):
            _fit_phase(fit, model, train_ds, phase, steps, weights_by_class)


def _fit_phase(
    fit: _Fit, model: Any, train_ds: Any, phase: _Phase, steps: int, weights_by_class: dict[int, float] | None
) -> None:
    import keras

    from pipelines.train import fused
    from pipelines.train import model as m
    from pipelines.train.monitor import Monitor

    s = fit.options.settings
    m.set_trainable(model, backbone_layers=phase.unfreeze, freeze_batchnorm=not _live_batchnorm(fit.options))
    lr, epochs = phase.learning_rate, phase.epochs
    warmup = min(s.warmup_epochs, max(0, epochs - 1)) * steps if phase.name != "head" else 0
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=lr if not warmup else lr * 0.1,
        decay_steps=max(1, epochs * steps - warmup),
        alpha=0.01,
        warmup_target=lr if warmup else None,
        warmup_steps=warmup,
    )
    adam = fused.Adam if s.fused_kernels else keras.optimizers.Adam
    model.compile(
        optimizer=adam(schedule),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=s.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        jit_compile=fit.used.jit_compile,
    )
    # Slots made now, not inside the first traced step: creating variables there makes
    # tf.function trace the whole train step twice (~30 s per phase on 2 cores).
    model.optimizer.build(model.trainable_variables)
    on_epoch = functools.partial(_epoch_ended, fit.options, fit.run_id, epochs)
    monitor = Monitor(phase.name, fit.eval_x, fit.eval_y, fit.n_classes, s, epochs, fit.history, on_epoch)
    model.fit(train_ds, epochs=epochs, class_weight=weights_by_class, callbacks=[monitor], verbose=0, shuffle=False)
    if monitor.nan:
        raise NanLoss(
            f"loss became {monitor.nan_value} in the {phase.name} phase at epoch {monitor.nan_epoch} "
            f"(learning rate {lr:g}); lower the learning rate (EDGELOOP_TRAIN_{phase.setting.upper()}) "
            "and check the data"
        )
    log.info("run %s: %s phase done, best eval macro F1 %.4f", fit.run_id, phase.name, monitor.best_f1)


def _epoch_ended(options: TrainOptions, run_id: str, epochs: int, record: EpochRecord) -> None:
    # Written as each epoch ends, so a long run can be followed (and a crash explained) in SQL.
    # The run's first write made the tables; checking them again costs ~0.3 s an epoch.
    _upsert(options.warehouse, t.EPOCH_METRICS, records.epoch_rows(run_id, [record], _now()), ensure=False)
    if options.progress is not None:
        options.progress(record, epochs)


def _card(
    options: TrainOptions,
    run_id: str,
    view: DatasetView,
    report: EvalReport,
    used: compute.Compute,
    notes: list[str],
    code_commit: str | None,
    backbone_source: str,
    created_at: dt.datetime,
) -> ModelCard:
    s = options.settings
    return ModelCard(
        name=options.model_name,
        version=run_id,
        created_at=created_at,
        labels=list(view.labels),
        input=InputSpec(height=s.size, width=s.size, dtype="float32"),
        metrics={
            "accuracy": report.accuracy,
            "top3_accuracy": report.top3_accuracy,
            "macro_f1": report.macro_f1,
            "ece": report.ece,
            "eval_examples": report.examples,
            "class_recall": {c.label: c.recall for c in report.classes},
        },
        lineage=Lineage(
            dataset_version=view.version,
            dataset_uri=view.uri,
            run_id=run_id,
            code_commit=code_commit,
            parent_model=options.warm_start,
            backbone_source=backbone_source,
        ),
        training={
            "backbone": backbone_name(s),
            "settings": s.model_dump(mode="json"),
            "compute": used.model_dump(mode="json"),
            "notes": notes,
        },
    )


def _save(run_dir: str, model: Any, card: ModelCard, report: EvalReport, history: list[EpochRecord]) -> RunFolder:
    """The run folder's model, card, eval report, confusion matrix and history."""
    folder = RunFolder(run_dir)
    with _local_dir(run_dir) as out:
        model.save(out / runs.MODEL)
        model.export(str(out / runs.SAVED_MODEL), format="tf_saved_model", verbose=False)
    write_card(run_dir, card)
    storage.write_text(folder.eval, report.model_dump_json(indent=2) + "\n")
    storage.write_bytes(folder.confusion, confusion_png(report))
    storage.write_text(folder.history, json.dumps([h.model_dump() for h in history], indent=2) + "\n")
    return folder


def _train(
    options: TrainOptions, run_id: str, run_dir: str, row: dict[str, Any], history: list[EpochRecord], t0: float
) -> TrainResult:
    from pipelines.train import data

    s = options.settings
    view = open_dataset(options.dataset)
    row.update(dataset_version=view.version, n_classes=len(view.labels))
    labels = list(view.labels)
    notes: list[str] = []
    parent = _warm_start_parent(options, labels, run_id, notes)

    data.configure_tf(threads=s.threads, seed=s.seed, deterministic=s.deterministic)
    used = compute.resolve(s)
    row["settings"]["compute"] = used.model_dump(mode="json")
    log.info("run %s: precision %s, XLA %s", run_id, used.precision, "on" if used.jit_compile else "off")
    with examples.local_shards(list(view.shards["eval"])) as eval_paths:
        eval_x, eval_y = examples.arrays(eval_paths, (s.size, s.size))
    train_counts = _check_counts(view, eval_y)

    model = _initial_model(options, len(labels), used.precision, parent)
    _fit(_Fit(options, run_id, used, eval_x, eval_y, len(labels), history), model, view, train_counts)
    if used.precision != "float32" or s.fused_kernels:
        # The saved model is stock Keras computing in float32 (conversion and devices expect it):
        # the same weights in stock float32 layers. Mixed precision keeps its variables in float32
        # and the fused BatchNorm has the stock variables in their order, so nothing changes. The
        # saved model has no optimizer either way: it is loaded with compile=False.
        trained, model = model, _build(options, len(labels), "float32", None)
        model.set_weights(trained.get_weights())
    report = evaluate(runs.predict(model, eval_x), eval_y, labels)
    finished = _now()
    duration = time.monotonic() - t0
    card = _card(options, run_id, view, report, used, notes, row["code_commit"], row["backbone_source"], finished)
    folder = _save(run_dir, model, card, report, history)

    row.update(
        status="succeeded",
        message="; ".join(notes) or None,
        finished_at=finished,
        duration_s=duration,
        epochs=len(history),
        accuracy=report.accuracy,
        top3_accuracy=report.top3_accuracy,
        macro_f1=report.macro_f1,
        ece=report.ece,
    )
    storage.write_text(folder.run, json.dumps(row, indent=2, default=str) + "\n")
    record_run(run_dir, options.warehouse)
    log.info(
        "run %s succeeded in %.0f s: accuracy %.4f, macro F1 %.4f", run_id, duration, report.accuracy, report.macro_f1
    )
    return TrainResult(
        run_id=run_id,
        run_dir=run_dir,
        status="succeeded",
        dataset_version=view.version,
        labels=labels,
        backbone_source=row["backbone_source"],
        eval=report,
        history=history,
        duration_s=duration,
        model_uri=folder.model,
        saved_model_uri=folder.saved_model,
    )
