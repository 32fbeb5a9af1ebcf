"""`train(options) -> TrainResult`: the one entry point the CLI and Airflow call.

A run inserts a `running` row into training_runs first, records every epoch as it
ends, and closes its row with the outcome (succeeded, invalid_input, nan_loss, failed)
whatever happens, so the warehouse explains runs that never produced a model.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from conversion.card import Lineage, ModelCard, write_card
from edge.manifest import InputSpec
from edgeloop import examples, runs, storage, warehouse
from edgeloop import tables as t
from edgeloop.runs import RunFolder, RunFolderError
from edgeloop.settings import get_settings
from pipelines.train import compute, records
from pipelines.train.errors import InvalidInput, NanLoss, TrainError
from pipelines.train.labels import LabelMapChange, check_warm_start, class_weights, compare_label_maps
from pipelines.train.metrics import EvalReport, confusion_png, evaluate, macro_f1
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
    from conversion.card import read_card

    try:
        parent = RunFolder.resolve(uri, "warm-start source")
    except RunFolderError as exc:
        raise InvalidInput(str(exc)) from None
    try:
        card = read_card(parent.uri)
    except Exception as exc:
        raise InvalidInput(f"warm-start source {uri!r} has no readable model_card.json ({exc})") from None
    return parent.model, card


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


def _train(
    options: TrainOptions, run_id: str, run_dir: str, row: dict[str, Any], history: list[EpochRecord], t0: float
) -> TrainResult:
    import keras

    from pipelines.train import data
    from pipelines.train import model as m

    s = options.settings
    view = open_dataset(options.dataset)
    row.update(dataset_version=view.version, n_classes=len(view.labels))
    labels = list(view.labels)
    notes: list[str] = []

    parent_uri: str | None = None
    change: LabelMapChange | None = None
    if options.warm_start:
        parent_uri, parent_card = _read_parent(options.warm_start)
        change = compare_label_maps(parent_card.labels, labels)
        check_warm_start(change, allow_removed=options.allow_removed_classes, parent=options.warm_start)
        if change.removed:
            notes.append(f"classes removed since the parent model (allowed by flag): {list(change.removed)}")
            log.warning("run %s: %s", run_id, notes[-1])
        if change.added:
            log.info("run %s: %d new class(es): %s", run_id, len(change.added), list(change.added))

    data.configure_tf(threads=s.threads, seed=s.seed, deterministic=s.deterministic)
    used = compute.resolve(s)
    row["settings"]["compute"] = used.model_dump(mode="json")
    log.info("run %s: precision %s, XLA %s", run_id, used.precision, "on" if used.jit_compile else "off")
    size = (s.size, s.size)
    with examples.local_shards(list(view.shards["eval"])) as eval_paths:
        eval_x, eval_y = examples.arrays(eval_paths, size)
    train_counts = _check_counts(view, eval_y)

    pretrained = options.warm_start is not None or options.weights != "none"
    # An edgeloop parent learned these very products, BatchNorm statistics included: its whole
    # network goes on training with live statistics. A foreign backbone (imagenet, a weights
    # file) keeps its statistics frozen and fine-tunes only its top layers (keras-io's recipe).
    live_bn = options.warm_start is not None or not pretrained
    with contextlib.ExitStack() as stack:
        weights: str | None = None
        if not options.warm_start and options.weights == "imagenet":
            weights = "imagenet"
        elif not options.warm_start and options.weights != "none":
            if not storage.exists(options.weights):
                raise InvalidInput(f"backbone weights file {options.weights!r} does not exist; check the path")
            weights = str(stack.enter_context(storage.local_copy(options.weights)))

        def build(policy: str, weights: str | None) -> Any:
            # The policy is global in Keras: set while building this model only, restored after.
            with m.precision(policy):
                built = m.build_model(
                    len(labels), alpha=s.alpha, size=s.size, dropout=s.dropout, weights=weights, pretrained=not live_bn
                )
            if live_bn:
                m.fast_batchnorm(built)
            return built

        model = build(used.precision, weights)
    if parent_uri is not None and change is not None:
        m.warm_start(model, runs.load_model(parent_uri), dict(change.carried))

    shards = list(view.shards["train"])
    n_train = sum(train_counts) or None
    with examples.local_shards(shards) as train_paths:
        if n_train is None:
            n_train = int(examples.decoded_dataset(train_paths, size).reduce(0, lambda n, _: n + 1))
        fits = n_train * s.size * s.size * 3 <= s.cache_limit_mb * (1 << 20)
        cache = s.cache == "memory" or (s.cache == "auto" and fits)
        train_ds = data.training_dataset(
            train_paths,
            size=size,
            n_classes=len(labels),
            batch_size=s.batch_size,
            seed=s.seed,
            augment=s.augment,
            cache=cache,
            examples=n_train,
        )
        steps = math.ceil(n_train / s.batch_size)
        weights_by_class = class_weights(train_counts) if s.class_weights and any(train_counts) else None
        phases: list[tuple[str, int | None, int, float]] = []
        if pretrained:
            if s.head_epochs:
                phases.append(("head", None, s.head_epochs, s.head_learning_rate))
            if options.warm_start:
                phases.append(("finetune", 0, s.warm_start_epochs, s.warm_start_learning_rate))
            else:
                phases.append(("finetune", s.fine_tune_layers, s.epochs, s.fine_tune_learning_rate))
        else:
            phases.append(("train", 0, s.epochs, s.learning_rate))
        for phase, unfreeze, epochs, lr in phases:
            m.set_trainable(model, backbone_layers=unfreeze, freeze_batchnorm=not live_bn)
            warmup = min(s.warmup_epochs, max(0, epochs - 1)) * steps if phase != "head" else 0
            schedule = keras.optimizers.schedules.CosineDecay(
                initial_learning_rate=lr if not warmup else lr * 0.1,
                decay_steps=max(1, epochs * steps - warmup),
                alpha=0.01,
                warmup_target=lr if warmup else None,
                warmup_steps=warmup,
            )
            model.compile(
                optimizer=keras.optimizers.Adam(schedule),
                loss=keras.losses.CategoricalCrossentropy(label_smoothing=s.label_smoothing),
                metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
                jit_compile=used.jit_compile,
            )
            # Slots made now, not inside the first traced step: creating variables there makes
            # tf.function trace the whole train step twice (~30 s per phase on 2 cores).
            model.optimizer.build(model.trainable_variables)
            monitor = _monitor(phase, eval_x, eval_y, len(labels), s, history, epochs, options, run_id)
            model.fit(
                train_ds, epochs=epochs, class_weight=weights_by_class, callbacks=[monitor], verbose=0, shuffle=False
            )
            if monitor.nan:
                finetune = "warm_start_learning_rate" if options.warm_start else "fine_tune_learning_rate"
                setting = {"head": "head_learning_rate", "finetune": finetune}.get(phase, "learning_rate")
                raise NanLoss(
                    f"loss became {monitor.nan_value} in the {phase} phase at epoch {monitor.nan_epoch} "
                    f"(learning rate {lr:g}); lower the learning rate (EDGELOOP_TRAIN_{setting.upper()}) "
                    "and check the data"
                )
            log.info("run %s: %s phase done, best eval macro F1 %.4f", run_id, phase, monitor.best_f1)

    if used.precision != "float32":
        # The saved model must compute in float32 (conversion and devices expect it): same weights,
        # float32 layers. Mixed precision keeps its variables in float32, so nothing is rounded.
        trained, model = model, build("float32", None)
        model.set_weights(trained.get_weights())
    probs = runs.predict(model, eval_x)
    report = evaluate(probs, eval_y, labels)
    finished = _now()
    duration = time.monotonic() - t0
    card = ModelCard(
        name=options.model_name,
        version=run_id,
        created_at=finished,
        labels=labels,
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
            code_commit=row["code_commit"],
            parent_model=options.warm_start,
            backbone_source=row["backbone_source"],
        ),
        training={
            "backbone": backbone_name(s),
            "settings": s.model_dump(mode="json"),
            "compute": used.model_dump(mode="json"),
            "notes": notes,
        },
    )
    folder = RunFolder(run_dir)
    with _local_dir(run_dir) as out:
        model.save(out / runs.MODEL)
        model.export(str(out / runs.SAVED_MODEL), format="tf_saved_model", verbose=False)
    write_card(run_dir, card)
    storage.write_text(folder.eval, report.model_dump_json(indent=2) + "\n")
    storage.write_bytes(folder.confusion, confusion_png(report))
    storage.write_text(folder.history, json.dumps([h.model_dump() for h in history], indent=2) + "\n")

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


def _monitor(
    phase: str,
    eval_x: np.ndarray,
    eval_y: np.ndarray,
    n_classes: int,
    s: TrainSettings,
    history: list[EpochRecord],
    epochs: int,
    options: TrainOptions,
    run_id: str,
) -> Any:
    """A Keras callback: eval metrics each epoch, early stopping with best-weight restore, NaN stop."""
    import keras

    class Monitor(keras.callbacks.Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.nan = False
            self.nan_value = ""
            self.nan_epoch = 0
            self.best: float | None = None
            self.best_f1 = 0.0
            self.best_weights: list[Any] | None = None
            self.best_epoch = 0
            self.last_eval: int | None = None  # epoch of the latest eval
            self.started = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.started = time.monotonic()

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            loss = float((logs or {}).get("loss", 0.0))
            if not math.isfinite(loss):
                self.nan, self.nan_value = True, str(loss)
                self.model.stop_training = True

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            logs = logs if logs is not None else {}
            loss = float(logs.get("loss", float("nan")))
            if not math.isfinite(loss):
                self.nan, self.nan_value = True, str(loss)
            record = EpochRecord(
                phase=phase,  # type: ignore[arg-type]
                epoch=epoch + 1,
                loss=loss if math.isfinite(loss) else None,
                accuracy=_finite(logs.get("accuracy")),
                val_loss=None,
                val_accuracy=None,
                val_macro_f1=None,
                learning_rate=_finite(np.asarray(self.model.optimizer.learning_rate)),
                duration_s=0.0,
            )
            if self.nan:
                self.nan_epoch = epoch + 1
                self.model.stop_training = True
            elif self._eval_due(epoch + 1):
                probs = runs.predict(self.model, eval_x)
                picked = np.clip(probs[np.arange(len(eval_y)), eval_y], 1e-7, 1.0)
                record.val_loss = _finite(-np.log(picked).mean())
                record.val_accuracy = float(np.mean(probs.argmax(1) == eval_y))
                record.val_macro_f1 = macro_f1(eval_y, probs.argmax(1), n_classes)
                logs.update(
                    val_loss=record.val_loss, val_accuracy=record.val_accuracy, val_macro_f1=record.val_macro_f1
                )
                self._early_stop(record)
            record.duration_s = time.monotonic() - self.started
            history.append(record)
            # Written as each epoch ends, so a long run can be followed (and a crash explained) in SQL.
            # The run's first write made the tables; checking them again costs ~0.3 s an epoch.
            _upsert(options.warehouse, t.EPOCH_METRICS, records.epoch_rows(run_id, [record], _now()), ensure=False)
            if options.progress is not None:
                options.progress(record, epochs)

        def _eval_due(self, epoch: int) -> bool:
            # Every epoch while the curve climbs (the first half of the schedule); then every eval_every
            # epochs, each eval being a full pass over the eval split. The last epoch always.
            if epoch >= epochs or epoch <= epochs // 2 or self.last_eval is None:
                return True
            return epoch - self.last_eval >= s.eval_every

        def _early_stop(self, record: EpochRecord) -> None:
            f1 = record.val_macro_f1 or 0.0
            self.last_eval = record.epoch
            score = f1 if s.early_stopping_metric == "val_macro_f1" else -(record.val_loss or math.inf)
            if self.best is None or score > self.best + 1e-6:
                self.best, self.best_f1, self.best_epoch = score, f1, record.epoch
                self.best_weights = self.model.get_weights()
            elif record.epoch - self.best_epoch >= s.patience:
                self.model.stop_training = True
            if s.target_macro_f1 is not None and f1 >= s.target_macro_f1:
                self.model.stop_training = True

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            if self.best_weights is not None and not self.nan:
                self.model.set_weights(self.best_weights)

    return Monitor()


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    f = float(value)
    return f if math.isfinite(f) else None
