"""Training speed and time-to-quality: today's recipe and the one it replaced, side by side in one run.

    .venv/bin/python bench/train.py [--products 20] [--photos 60] [--photo-size 256] [--steps 40]

Generates (once, cached under <workspace>/bench/train/) the synthetic catalogue the demo
trains on, and the same catalogue with --new-products more, and ingests both with the
real Beam job (the second incrementally, as the demo does). Then, for each recipe (`old` =
`pipelines.train.settings.LEGACY_RECIPE`, `new` = the defaults), in its own child process
(Keras' dtype policy and TF's thread pools are process-wide):

(a) compute ceiling: train-step images/s of `model.fit` on one batch held in memory as
    tensors (no input work at all), the recipe's batch size, precision, BatchNorm kernel
    and compilation;
(b) real pipeline: images/s of the same compiled model fed by the real tf.data pipeline
    (`pipelines.train.data.training_dataset`: interleave, decode, resize, cache, shuffle,
    batched augmentation, prefetch), and its ratio to (a). First epochs (tracing, cache
    fill) are untimed on both sides;
(c) first model: `train()` from scratch with the recipe, its whole schedule as the demo runs
    it: the wall time and epoch at which eval macro F1 first reached --target, the final
    (best-epoch) F1, and the whole run's time;
(d) retrain: the same, warm-started from the old recipe's first model (both recipes from
    that one parent) on the catalogue with the new products: what an ML engineer waits
    for when products arrive.

Goals (issue 19): time to F1 >= target at least 2.5x shorter with the new recipe than the
old one in the same run (judged for (c) and (d) each); real pipeline >= 0.9 of the ceiling. The machine is shared: the
load average is printed, and only ratios within one run are meaningful.
Prints a table and writes bench/results/train.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "train.json"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def datasets(work: Path, products: int, photos: int, photo_size: int, new_products: int) -> tuple[str, str]:
    """The ingested catalogue's first version and the next one with `new_products` more (built once per parameters)."""
    from edgeloop import synth
    from pipelines.ingest import IngestOptions, ingest

    root = work / f"p{products}x{photos}@{photo_size}+{new_products}"
    out = root / "datasets"
    for version, add in (("v0001", 0), ("v0002", new_products)):
        if (out / version / "dataset.json").exists():
            continue
        # Exactly as the demo: the first catalogue, then new products photographed and ingested on top.
        synth.generate(
            root / "photos", n_products=products, images_per_product=photos, size=photo_size, seed=0, add_products=add
        )
        previous = None if version == "v0001" else "v0001"
        options = IngestOptions(
            input=str(root / "photos"),
            output=str(out),
            dataset_version=version,
            previous=previous,
            running_mode="in_memory",
            num_workers=1,
            record=False,
        )
        ingest(options)
    return str(out / "v0001"), str(out / "v0002")


def recipe(name: str, threads: int) -> Any:
    from pipelines.train.settings import LEGACY_RECIPE, TrainSettings

    overrides = LEGACY_RECIPE if name == "old" else {}
    return TrainSettings(threads=threads, **overrides)  # type: ignore[arg-type]


def throughput(dataset_uri: str, steps: int, settings: Any) -> dict[str, Any]:
    """Images/s of fit on one in-memory batch (the ceiling) and on the real tf.data pipeline."""
    import keras
    import numpy as np
    import tensorflow as tf

    from edgeloop import examples
    from pipelines.train import compute, data, fused
    from pipelines.train import model as m
    from pipelines.train.source import open_dataset

    s = settings
    data.configure_tf(threads=s.threads, seed=s.seed, deterministic=s.deterministic)
    used = compute.resolve(s)
    view = open_dataset(dataset_uri)
    n_train = sum(view.class_counts("train"))
    n = len(view.labels)
    per_epoch = math.ceil(n_train / s.batch_size)
    epochs = 1 + max(1, math.ceil(steps / per_epoch))
    with examples.local_shards(list(view.shards["train"])) as paths:
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
        with m.precision(used.precision):
            model = m.build_model(
                n,
                alpha=s.alpha,
                size=s.size,
                dropout=s.dropout,
                weights=None,
                pretrained=False,
                fused_batchnorm=s.fused_kernels,
            )
        adam = fused.Adam if s.fused_kernels else keras.optimizers.Adam
        model.compile(
            optimizer=adam(1e-3),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=s.label_smoothing),
            jit_compile=used.jit_compile,
        )
        model.optimizer.build(model.trainable_variables)

        def timed(source: Any) -> tuple[float, float]:
            stamps: list[float] = []
            mark = keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: stamps.append(time.perf_counter()))
            start = time.perf_counter()
            model.fit(source, epochs=epochs, verbose=0, callbacks=[mark], shuffle=False)
            steady = stamps[-1] - stamps[0]  # every epoch after the first
            return stamps[0] - start, per_epoch * s.batch_size * (epochs - 1) / steady

        # The ceiling: one batch already in memory as tensors, replayed; no input work at all.
        rng = np.random.default_rng(0)
        x = tf.constant(rng.uniform(0, 255, (s.batch_size, s.size, s.size, 3)).astype("float32"))
        y = tf.one_hot(np.arange(s.batch_size) % n, n)
        first_ceiling, ceiling = timed(tf.data.Dataset.from_tensors((x, y)).repeat(per_epoch))
        first_real, real = timed(ds)
    return {
        "compute": used.model_dump(mode="json"),
        "train_examples": n_train,
        "batch_size": s.batch_size,
        "steps_per_epoch": per_epoch,
        "epochs_timed": epochs - 1,
        "first_epoch_ceiling_s": first_ceiling,  # mostly tracing the train step
        "first_epoch_real_s": first_real,  # decoding into the cache (the step is traced by then)
        "ceiling_images_per_s": ceiling,
        "real_images_per_s": real,
        "ratio": real / ceiling,
    }


def time_to_quality(
    dataset_uri: str, target: float, runs_root: str, warehouse: str, base: Any, parent: str | None = None
) -> dict[str, Any]:
    from pipelines.train.core import train
    from pipelines.train.options import TrainOptions

    # The whole schedule runs (as in the demo): the final F1 is the recipe's, the wall time is when it first
    # reached the target.
    settings = base.model_copy(update={"target_macro_f1": None})
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    reached: dict[str, Any] = {}

    def progress(record: Any, total: int) -> None:
        if not reached and record.val_macro_f1 is not None and record.val_macro_f1 >= target:
            reached.update(
                epoch=record.epoch,
                phase=record.phase,
                wall_s=time.perf_counter() - t0,
                cpu_s=cpu_seconds() - cpu0,
                macro_f1=record.val_macro_f1,
            )

    result = train(
        TrainOptions(
            dataset=dataset_uri,
            runs_root=runs_root,
            warehouse=warehouse,
            settings=settings,
            progress=progress,
            warm_start=parent,
        )
    )
    return {
        "settings": settings.model_dump(mode="json"),
        "target_macro_f1": target,
        "reached": reached or None,
        "epochs_run": len(result.history),
        "phases": sorted({h.phase for h in result.history}),
        "final_macro_f1": result.eval.macro_f1,
        "final_accuracy": result.eval.accuracy,
        "total_wall_s": time.perf_counter() - t0,
        "total_cpu_s": cpu_seconds() - cpu0,
        "first_epoch_s": result.history[0].duration_s,
        "evals": sum(h.val_macro_f1 is not None for h in result.history),
        "run_dir": result.run_dir,
    }


def child(args: argparse.Namespace, work: Path) -> int:
    """One recipe's measurements, as JSON on the last line of stdout."""
    settings = recipe(args.child, args.threads)
    out: dict[str, Any] = {"recipe": args.child, "settings": settings.model_dump(mode="json")}
    if "input" not in args.skip:
        out["throughput"] = throughput(args.dataset, args.steps, settings)
    if "quality" not in args.skip:
        out["time_to_quality"] = time_to_quality(
            args.dataset,
            args.target,
            str(work / "runs"),
            f"duckdb:///{work / f'warehouse-{args.child}.duckdb'}",
            settings,
            parent=args.parent,
        )
    sys.stdout.write(json.dumps(out, default=str) + "\n")
    return 0


def run_child(name: str, args: argparse.Namespace, uri: str, *, parent: str | None = None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", name, "--dataset", uri, "--threads", str(args.threads)]
    cmd += ["--steps", str(args.steps), "--target", str(args.target)]
    skips = [*args.skip, "input"] if parent else args.skip
    for skip in skips:
        cmd += ["--skip", skip]
    if parent:
        cmd += ["--parent", parent]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def fmt(value: float | None, spec: str = ".0f") -> str:
    return "-" if value is None else format(value, spec)


def quality_rows(scenario: str, a: dict[str, Any], b: dict[str, Any], target: float) -> list[tuple[str, ...]]:
    """Time to quality, old recipe (a) against new (b), for one scenario."""
    ha, hb = a["reached"], b["reached"]

    def reached(hit: dict[str, Any] | None, key: str, spec: str = ".0f") -> str:
        if not hit:
            return "not reached"
        where = f" ({hit['phase']})" if key == "epoch" and len(a["phases"]) > 1 else ""
        return format(hit[key], spec) + where

    # A recipe that never reaches the bar is charged its whole run: the ratio is then a lower bound.
    ta = ha["wall_s"] if ha else a["total_wall_s"]
    tb = hb["wall_s"] if hb else None
    speedup = None if tb is None else ta / tb
    shown = fmt(speedup, ".2f") + ("" if speedup is None or ha else " (old never reached it: >=)")
    met = "-" if speedup is None else ("yes" if speedup >= 2.5 else "NO")
    return [
        (f"**{scenario}**: epoch reaching macro F1 >= {target}", reached(ha, "epoch", "d"), reached(hb, "epoch", "d"),
         "", ""),
        (f"{scenario}: wall s to macro F1 >= {target}", reached(ha, "wall_s"), reached(hb, "wall_s"), "", ""),
        (f"{scenario}: speed-up old / new", "", shown, ">= 2.5", met),
        (f"{scenario}: epochs run / evals", f"{a['epochs_run']} / {a['evals']}", f"{b['epochs_run']} / {b['evals']}",
         "", ""),
        (f"{scenario}: final eval macro F1", fmt(a["final_macro_f1"], ".4f"), fmt(b["final_macro_f1"], ".4f"),
         ">= old's", "yes" if b["final_macro_f1"] >= a["final_macro_f1"] else "NO"),
        (f"{scenario}: whole run wall / CPU s (incl. export)", f"{a['total_wall_s']:.0f} / {a['total_cpu_s']:.0f}",
         f"{b['total_wall_s']:.0f} / {b['total_cpu_s']:.0f}", "", ""),
    ]  # fmt: skip


def table(results: dict[str, Any], target: float) -> list[tuple[str, ...]]:
    """(measure, old, new, goal, met) rows."""
    old, new = results["old"], results["new"]
    rows: list[tuple[str, ...]] = []
    if "throughput" in old and "throughput" in new:
        a, b = old["throughput"], new["throughput"]
        rows += [
            ("batch size / precision / XLA", f"{a['batch_size']} / {a['compute']['precision']} / "
             f"{a['compute']['jit_compile']}", f"{b['batch_size']} / {b['compute']['precision']} / "
             f"{b['compute']['jit_compile']}", "", ""),
            ("compute ceiling, images/s (one batch in memory)", fmt(a["ceiling_images_per_s"]),
             fmt(b["ceiling_images_per_s"]), "", ""),
            ("real pipeline, images/s", fmt(a["real_images_per_s"]), fmt(b["real_images_per_s"]), "", ""),
            ("real / ceiling", fmt(a["ratio"], ".2f"), fmt(b["ratio"], ".2f"), ">= 0.9 (new)",
             "yes" if b["ratio"] >= 0.9 else "NO"),
            ("first epoch in memory (tracing), s", fmt(a["first_epoch_ceiling_s"]), fmt(b["first_epoch_ceiling_s"]),
             "", ""),
            ("first epoch on the pipeline (cache fill), s", fmt(a["first_epoch_real_s"]), fmt(b["first_epoch_real_s"]),
             "", ""),
        ]  # fmt: skip
    for scenario, key in (("first model", "time_to_quality"), ("retrain", "retrain")):
        if key in old and key in new:
            rows += quality_rows(scenario, old[key], new[key], target)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=20)
    parser.add_argument("--photos", type=int, default=60)
    parser.add_argument("--photo-size", type=int, default=256, help="Photo side; the demo's synth default.")
    parser.add_argument("--steps", type=int, default=60, help="Timed steps per throughput measurement.")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--new-products", type=int, default=2, help="Products that arrive before the retrain.")
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--skip", choices=["input", "quality"], action="append", default=[])
    parser.add_argument("--results", type=Path, default=RESULTS, help="Where to write the JSON.")
    parser.add_argument("--child", choices=["old", "new"], help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--parent", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    from edgeloop.settings import get_settings

    work = get_settings().path("bench", "train").resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.child:
        from edgeloop.quiet import quiet

        quiet("INFO")  # TensorFlow's C++ start-up lines, as the CLI hides them
        return child(args, work)
    load_before = os.getloadavg()
    t = time.perf_counter()
    first, second = datasets(work, args.products, args.photos, args.photo_size, args.new_products)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_before": load_before},
        "args": {k: str(v) for k, v in vars(args).items()},
        "datasets": [first, second],
        "dataset_prepare_s": time.perf_counter() - t,
    }
    for name in ("old", "new"):
        results[name] = run_child(name, args, first)
    if "quality" not in args.skip:
        # Both recipes warm-start from the same parent, the old recipe's first model (today's production).
        parent = results["old"]["time_to_quality"]["run_dir"]
        for name in ("old", "new"):
            results[name]["retrain"] = run_child(name, args, second, parent=parent)["time_to_quality"]
    results["machine"]["load_after"] = os.getloadavg()
    rows = table(results, args.target)
    rows.append(("load average before -> after (2 cores)", f"{load_before[0]:.1f}",
                 f"{results['machine']['load_after'][0]:.1f}", "", ""))  # fmt: skip
    print(
        f"\nbench/train.py  ({args.products} products x {args.photos} photos @ {args.photo_size} px; "
        f"the retrain warm-starts from the old first model with {args.new_products} new products)\n"
    )
    print("| measure | old recipe | new recipe | goal | met |\n|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nwrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
