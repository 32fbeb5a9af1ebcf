"""Training input pipeline and time-to-quality on the synthetic catalogue.

    .venv/bin/python bench/train.py [--products 20] [--photos 60] [--photo-size 128] [--steps 40]

Generates (once, cached under <workspace>/bench/train/) the synthetic catalogue and
ingests it with the real Beam job, then measures in this process:

(a) input-bound test: training steps/s of `model.fit` fed by the real tf.data pipeline
    (`pipelines.train.data.training_dataset`: parallel interleave, decode, resize, cache,
    shuffle, batched augmentation, prefetch) vs `fit` fed the same pipeline's batches
    replayed from an in-memory cache (the baseline: no input work at all). Same compiled
    model, same batch size; each side's first epoch (tracing, cache fill) is untimed.
    Target ratio >= 0.9.
(b) time to quality: `train()` with the DEFAULT settings (no downloaded weights: the first
    model trains from scratch), stopping once eval macro F1 >= --target. Reports the wall
    time and epoch at which the bar was reached, the process CPU time, and the load
    average, because the machine is shared.

Prints a table and writes bench/results/train.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = Path(__file__).resolve().parent / "results" / "train.json"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def dataset(work: Path, products: int, photos: int, photo_size: int) -> str:
    """The ingested catalogue's version folder (built once per parameter set)."""
    from edgeloop import synth
    from pipelines.ingest import IngestOptions, ingest, latest_version

    root = work / f"p{products}x{photos}@{photo_size}"
    out = root / "datasets"
    if out.exists() and (version := latest_version(str(out))):
        return str(out / version)
    synth.generate(root / "photos", n_products=products, images_per_product=photos, size=photo_size, seed=0)
    result = ingest(
        IngestOptions(
            input=str(root / "photos"), output=str(out), running_mode="in_memory", num_workers=1, record=False
        )
    )
    return result.uri


def input_bound(dataset_uri: str, steps: int, threads: int) -> dict[str, Any]:
    """Steps/s of fit on the real tf.data pipeline vs on the same batches held in memory."""
    import keras
    import tensorflow as tf

    from pipelines.train import data
    from pipelines.train import model as m
    from pipelines.train.settings import TrainSettings
    from pipelines.train.source import open_dataset

    s = TrainSettings(threads=threads)
    data.configure_tf(threads=s.threads, seed=s.seed, deterministic=s.deterministic)
    view = open_dataset(dataset_uri)
    n_train = sum(view.class_counts("train"))
    n = len(view.labels)
    with data.local_shards(list(view.shards["train"])) as paths:
        ds = data.training_dataset(
            paths,
            size=(s.size, s.size),
            n_classes=n,
            batch_size=s.batch_size,
            seed=s.seed,
            augment=s.augment,
            cache=True,
            examples=n_train,
        )
        model = m.build_model(n, alpha=s.alpha, size=s.size, dropout=s.dropout, weights=None, pretrained=False)
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=s.label_smoothing),
            jit_compile=False,
        )
        per_epoch = math.ceil(n_train / s.batch_size)

        class Timer(keras.callbacks.Callback):  # type: ignore[misc]
            def __init__(self) -> None:
                super().__init__()
                self.epochs: list[float] = []
                self.t = 0.0

            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                self.t = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                self.epochs.append(time.perf_counter() - self.t)

        epochs = 1 + max(1, math.ceil(steps / per_epoch))
        timer = Timer()
        t0 = time.perf_counter()
        model.fit(ds, epochs=epochs, verbose=0, callbacks=[timer], shuffle=False)
        real_first = timer.epochs[0]
        real_sps = per_epoch * (epochs - 1) / sum(timer.epochs[1:])
        # The same pipeline's batches replayed from memory: after the first (cache-filling,
        # untimed) epoch, fit gets ready-made batches and does no input work at all.
        mem = ds.cache().prefetch(tf.data.AUTOTUNE)
        timer_mem = Timer()
        model.fit(mem, epochs=epochs, verbose=0, callbacks=[timer_mem], shuffle=False)
        mem_sps = per_epoch * (epochs - 1) / sum(timer_mem.epochs[1:])
        # Input pipeline alone (no model): how many batches/s it can produce once cached.
        t = time.perf_counter()
        batches = sum(1 for _ in ds)
        pipeline_bps = batches / (time.perf_counter() - t)
    return {
        "train_examples": n_train,
        "batch_size": s.batch_size,
        "steps_per_epoch": per_epoch,
        "epochs_timed": epochs - 1,
        "first_epoch_s": real_first,
        "real_pipeline_steps_per_s": real_sps,
        "in_memory_steps_per_s": mem_sps,
        "ratio": real_sps / mem_sps,
        "pipeline_only_batches_per_s": pipeline_bps,
        "wall_s": time.perf_counter() - t0,
    }


def time_to_quality(dataset_uri: str, target: float, runs_root: str, warehouse: str) -> dict[str, Any]:
    from pipelines.train.core import train
    from pipelines.train.options import TrainOptions
    from pipelines.train.settings import TrainSettings

    settings = TrainSettings(target_macro_f1=target)  # defaults otherwise: what `edgeloop train` uses
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    reached: dict[str, Any] = {}

    def progress(record: Any, total: int) -> None:
        if not reached and record.val_macro_f1 is not None and record.val_macro_f1 >= target:
            reached.update(
                epoch=record.epoch,
                wall_s=time.perf_counter() - t0,
                cpu_s=cpu_seconds() - cpu0,
                macro_f1=record.val_macro_f1,
            )

    result = train(
        TrainOptions(
            dataset=dataset_uri, runs_root=runs_root, warehouse=warehouse, settings=settings, progress=progress
        )
    )
    return {
        "settings": settings.model_dump(mode="json"),
        "target_macro_f1": target,
        "reached": reached or None,
        "epochs_run": len(result.history),
        "final_macro_f1": result.eval.macro_f1,
        "final_accuracy": result.eval.accuracy,
        "total_wall_s": time.perf_counter() - t0,
        "total_cpu_s": cpu_seconds() - cpu0,
        "first_epoch_s": result.history[0].duration_s,
        "run_dir": result.run_dir,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=20)
    parser.add_argument("--photos", type=int, default=60)
    parser.add_argument("--photo-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=60, help="Timed steps per input-bound measurement.")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--skip", choices=["input", "quality"], action="append", default=[])
    parser.add_argument("--results", type=Path, default=RESULTS, help="Where to write the JSON.")
    args = parser.parse_args(argv)

    from edgeloop.settings import get_settings

    work = get_settings().path("bench", "train").resolve()
    work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    t = time.perf_counter()
    uri = dataset(work, args.products, args.photos, args.photo_size)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_before": load_before},
        "args": vars(args),
        "dataset": uri,
        "dataset_prepare_s": time.perf_counter() - t,
    }
    if "input" not in args.skip:
        results["input_bound"] = input_bound(uri, args.steps, args.threads)
    if "quality" not in args.skip:
        results["time_to_quality"] = time_to_quality(
            uri, args.target, str(work / "runs"), f"duckdb:///{work / 'warehouse.duckdb'}"
        )
    results["machine"]["load_after"] = os.getloadavg()

    rows: list[tuple[str, str]] = []
    if ib := results.get("input_bound"):
        rows += [
            ("steps/s, real tf.data pipeline", f"{ib['real_pipeline_steps_per_s']:.3f}"),
            ("steps/s, same batches in memory (baseline)", f"{ib['in_memory_steps_per_s']:.3f}"),
            ("ratio real / in-memory (target >= 0.9)", f"{ib['ratio']:.3f}"),
            ("pipeline alone, batches/s (no model)", f"{ib['pipeline_only_batches_per_s']:.1f}"),
            ("first epoch incl. tracing + cache fill, s", f"{ib['first_epoch_s']:.1f}"),
        ]
    if tq := results.get("time_to_quality"):
        hit = tq["reached"]
        rows += [
            (f"macro F1 >= {tq['target_macro_f1']} reached at epoch", str(hit["epoch"]) if hit else "not reached"),
            ("  wall time to reach it, s", f"{hit['wall_s']:.0f}" if hit else "-"),
            ("  process CPU time to reach it, s", f"{hit['cpu_s']:.0f}" if hit else "-"),
            ("final eval macro F1 / accuracy", f"{tq['final_macro_f1']:.3f} / {tq['final_accuracy']:.3f}"),
            ("whole run wall / CPU s (incl. export)", f"{tq['total_wall_s']:.0f} / {tq['total_cpu_s']:.0f}"),
        ]
    rows.append(
        ("load average before -> after (2 cores)", f"{load_before[0]:.1f} -> {results['machine']['load_after'][0]:.1f}")
    )
    width = max(len(r[0]) for r in rows)
    print(f"\nbench/train.py  ({args.products} products x {args.photos} photos @ {args.photo_size} px)")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nwrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
