"""Benchmark conversion: size, latency and accuracy of every variant at two model sizes.

    .venv/bin/python bench/convert.py [--epochs 20] [--runs 50] [--threads 2] [--skip-224]

* demo: MobileNetV2 alpha 0.35 at 96 px, trained on synthetic product photos
  (edgeloop.synth), so accuracy and macro-F1 are meaningful;
* 224: MobileNetV2 alpha 1.0 at 224 px, random init (no ImageNet download here), for
  size and latency; its parity numbers judge quantization noise, not accuracy.

Each model goes through `conversion.convert` (latency via edge.bench in a fresh process
per variant), and a second time with the settings issue 19 replaced (hybrid dynamic-range
kernels, 7-bit ONNX weights: `EDGELOOP_CONVERT_TFLITE_DYNAMIC_HYBRID=true`,
`EDGELOOP_CONVERT_ONNX_REDUCE_RANGE=on`) for tflite_dynamic and onnx_int8, so before and
after are timed in the same interleaved rounds. Prints one table per model plus the
targets, and writes bench/results/convert.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "convert.json"

TARGETS = {
    "int8_size_ratio_max": 0.30,
    "fp16_size_ratio_about": 0.5,
    "int8_p50_ratio_max": 0.65,
    "onnx_int8_p50_ratio_max": 0.5,  # issue 19, on a VNNI CPU at 224 px
    "dynamic_p50_ratio_max": 1.1,  # no inversion: at most fp32's latency plus noise
    "int8_f1_drop_max_points": 1.0,
}
# The settings issue 19 replaced, applied to a second conversion of the same model.
LEGACY_ENV = {"EDGELOOP_CONVERT_TFLITE_DYNAMIC_HYBRID": "true", "EDGELOOP_CONVERT_ONNX_REDUCE_RANGE": "on"}
LEGACY_VARIANTS = ("tflite_dynamic", "onnx_int8")


def convert_legacy(run: Path, data: Any, output: Path, runs: int, threads: int) -> Any:
    """The same run converted with the replaced settings (tflite_dynamic and onnx_int8 only)."""
    from conversion import ConvertOptions, convert
    from conversion.settings import get_convert_settings

    saved = {k: os.environ.get(k) for k in LEGACY_ENV}
    os.environ.update(LEGACY_ENV)
    get_convert_settings.cache_clear()
    try:
        options = ConvertOptions(output=str(output), runs=runs, threads=threads, record=False, variants=LEGACY_VARIANTS)
        return convert(run, data=data, options=options)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_convert_settings.cache_clear()


def bench_model(
    label: str,
    *,
    size: int,
    alpha: float,
    epochs: int,
    classes: int,
    train_per_class: int,
    eval_per_class: int,
    runs: int,
    threads: int,
    rounds: int,
    workdir: Path,
) -> dict[str, Any]:
    import statistics

    from conversion import ConvertOptions, convert, testing
    from conversion.pipeline import bench_subprocess

    started = time.perf_counter()
    splits = testing.synthetic_splits(
        classes, train_per_class=train_per_class, eval_per_class=eval_per_class, size=size
    )
    model = testing.build_model(classes, size=size, alpha=alpha)
    if epochs:
        testing.train(model, splits.train_images, splits.train_labels, epochs=epochs, batch_size=16)
    train_s = time.perf_counter() - started
    run = testing.write_run(workdir / label / "run", model, splits.labels, run_id=f"bench-{label}")
    result = convert(
        run,
        data=splits.conversion_data(representative_samples=min(200, len(splits.train_images))),
        options=ConvertOptions(output=str(workdir / label / "package"), runs=runs, threads=threads, record=False),
    )
    info = result.card.conversion
    assert info is not None  # convert() always fills it
    legacy = convert_legacy(run, splits.conversion_data(min(200, len(splits.train_images))),
                            workdir / label / "package-legacy", runs, threads)  # fmt: skip
    # On a shared box one sequential pass is at the mercy of whoever else is running: time every
    # file again in interleaved rounds (fresh process each) and keep the median p50 per variant.
    files = [(v.variant, Path(result.package_uri) / v.file, v) for v in result.card.variants]
    files += [(f"{v.variant} (before)", Path(legacy.package_uri) / v.file, v) for v in legacy.card.variants]
    p50_rounds: dict[str, list[float]] = {name: [] for name, _, _ in files}
    for _ in range(rounds - 1):
        for name, path, _ in files:
            stats = bench_subprocess(path, runs=runs, warmup=5, threads=threads)
            p50_rounds[name].append(float(stats["p50_ms"]))
    variants: dict[str, dict[str, Any]] = {}
    for name, _, v in files:
        if v.latency:
            p50_rounds[name].append(v.latency.p50_ms)
        variants[name] = {
            "size_bytes": v.size,
            "p50_ms": statistics.median(p50_rounds[name]) if p50_rounds[name] else None,
            "p50_ms_rounds": p50_rounds[name],
            "p90_ms": v.latency.p90_ms if v.latency else None,
            "p99_ms": v.latency.p99_ms if v.latency else None,
            "init_ms": v.latency.init_ms if v.latency else None,
            "peak_mem_mb": v.latency.peak_mem_mb if v.latency else None,
            "accuracy": v.accuracy,
            "macro_f1": v.macro_f1,
            "f1_drop_points": None if v.macro_f1 is None else 100 * (info.keras_macro_f1 - v.macro_f1),
            "agreement": v.agreement,
            "max_abs_diff": v.max_abs_diff,
            "publishable": v.publishable,
            "reason": v.reason,
        }

    from conversion.inspection import size_breakdown

    sizes = {name: size_breakdown(path) for name, path, _ in files if "(before)" not in name}

    def ratio(a: str, b: str, key: str) -> float | None:
        x, y = variants[a][key], variants[b][key]
        return None if x is None or y is None else float(x) / float(y)

    ratios = {
        "tflite_int8_size": ratio("tflite_int8", "tflite_fp32", "size_bytes"),
        "tflite_fp16_size": ratio("tflite_fp16", "tflite_fp32", "size_bytes"),
        "tflite_dynamic_size": ratio("tflite_dynamic", "tflite_fp32", "size_bytes"),
        "onnx_int8_size": ratio("onnx_int8", "onnx_fp32", "size_bytes"),
        "tflite_int8_p50": ratio("tflite_int8", "tflite_fp32", "p50_ms"),
        "tflite_fp16_p50": ratio("tflite_fp16", "tflite_fp32", "p50_ms"),
        "tflite_dynamic_p50": ratio("tflite_dynamic", "tflite_fp32", "p50_ms"),
        "onnx_int8_p50": ratio("onnx_int8", "onnx_fp32", "p50_ms"),
        "tflite_dynamic_p50_before": ratio("tflite_dynamic (before)", "tflite_fp32", "p50_ms"),
        "onnx_int8_p50_before": ratio("onnx_int8 (before)", "onnx_fp32", "p50_ms"),
    }
    return {
        "model": f"MobileNetV2 alpha={alpha} {size}px",
        "trained_epochs": epochs,
        "classes": classes,
        "train_images": len(splits.train_images),
        "eval_images": info.n_eval_images,
        "keras_accuracy": info.keras_accuracy,
        "keras_macro_f1": info.keras_macro_f1,
        "train_seconds": round(train_s, 1),
        "convert_seconds": round(result.seconds, 1),
        "variants": variants,
        "size_breakdown": sizes,
        "ratios": ratios,
        "table": result.table,
    }


def verdicts(result: dict[str, Any], *, judge_f1: bool, vnni: bool) -> list[tuple[str, float | None, str, bool | None]]:
    r, v = result["ratios"], result["variants"]
    out: list[tuple[str, float | None, str, bool | None]] = []

    def add(name: str, value: float | None, target: str, ok: bool | None) -> None:
        out.append((name, value, target, ok))

    def at_most(value: float | None, limit: float) -> bool | None:
        return None if value is None else value <= limit

    for fmt in ("tflite", "onnx"):
        value = r[f"{fmt}_int8_size"]
        add(f"{fmt} int8/fp32 size", value, "<= 0.30", at_most(value, TARGETS["int8_size_ratio_max"]))
    add("tflite int8/fp32 p50", r["tflite_int8_p50"], "<= 0.65", at_most(r["tflite_int8_p50"], 0.65))
    limit = TARGETS["onnx_int8_p50_ratio_max"]
    add("onnx int8/fp32 p50 (before: 7-bit weights)", r["onnx_int8_p50_before"], f"<= {limit}", None)
    # The goal is set for CPUs with VNNI; without it onnxruntime's depthwise and first convolutions
    # run no faster in int8 than in fp32 (measured per op), so the ratio is shown, not judged.
    goal = f"<= {limit}" + ("" if vnni else " (on VNNI; this CPU has none)")
    add("onnx int8/fp32 p50", r["onnx_int8_p50"], goal, at_most(r["onnx_int8_p50"], limit) if vnni else None)
    value = r["tflite_fp16_size"]
    add("tflite fp16/fp32 size", value, "~ 0.5", None if value is None else abs(value - 0.5) <= 0.06)
    limit = TARGETS["dynamic_p50_ratio_max"]
    add("tflite dynamic/fp32 p50 (before: hybrid kernels)", r["tflite_dynamic_p50_before"], f"<= {limit}", None)
    add("tflite dynamic/fp32 p50", r["tflite_dynamic_p50"], f"<= {limit}", at_most(r["tflite_dynamic_p50"], limit))
    add("tflite dynamic/fp32 size", r["tflite_dynamic_size"], "<= 0.30", at_most(r["tflite_dynamic_size"], 0.30))
    for name in ("tflite_int8", "onnx_int8 (before)", "onnx_int8", "tflite_dynamic (before)", "tflite_dynamic"):
        value = v[name]["agreement"]
        add(f"{name} top-1 agreement with Keras", value, ">= 0.98 (the gate)", None if value is None else value >= 0.98)
    if judge_f1:
        for name in ("tflite_int8", "onnx_int8", "onnx_int8 (before)"):
            drop = v[name]["f1_drop_points"]
            add(f"{name} macro-F1 drop (points)", drop, "<= 1.0", None if drop is None else drop <= 1.0)
    return out


def print_sizes(sizes: dict[str, dict[str, int]]) -> None:
    """Bytes by kind per file, and each int8 file's parts over its fp32 file's total (issue 19's size gap)."""
    kinds = ("weights", "biases", "quant_params", "graph_and_metadata")
    print("| file (kB) | " + " | ".join(kinds) + " | total | share of fp32 |")
    print("|---" * (len(kinds) + 3) + "|")
    for name, parts in sizes.items():
        base = sizes.get(name.replace("int8", "fp32").replace("fp16", "fp32").replace("dynamic", "fp32"))
        cells = [f"{parts[k] / 1e3:.0f}" for k in (*kinds, "total")]
        share = "-" if base is None else " + ".join(f"{parts[k] / base['total']:.3f}" for k in kinds)
        print(f"| {name} | " + " | ".join(cells) + f" | {share} |")
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20, help="Training epochs of the demo-size model.")
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--train-per-class", type=int, default=60)
    parser.add_argument("--eval-per-class", type=int, default=40)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="Latency rounds per variant (median p50 is kept).")
    parser.add_argument("--skip-224", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    for noisy in ("absl", "tensorflow", "tf2onnx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    results: dict[str, Any] = {"targets": TARGETS}
    from conversion.pipeline import host_info
    from edgeloop import cpu

    results["host"] = host_info()
    results["host"]["vnni"] = ",".join(cpu.having(cpu.VNNI)) or "none"
    results["host"]["bf16"] = ",".join(cpu.having(cpu.NATIVE_BF16)) or "none"
    with tempfile.TemporaryDirectory(prefix="bench-convert-") as tmp:
        results["demo"] = bench_model(
            "demo",
            size=96,
            alpha=0.35,
            epochs=args.epochs,
            classes=args.classes,
            train_per_class=args.train_per_class,
            eval_per_class=args.eval_per_class,
            runs=args.runs,
            threads=args.threads,
            rounds=args.rounds,
            workdir=Path(tmp),
        )
        if not args.skip_224:
            results["mnv2_224"] = bench_model(
                "mnv2_224",
                size=224,
                alpha=1.0,
                epochs=0,
                classes=args.classes,
                train_per_class=8,
                eval_per_class=10,
                runs=args.runs,
                threads=args.threads,
                rounds=args.rounds,
                workdir=Path(tmp),
            )
    host = results["host"]
    print(f"\nCPU: {host['cpu']}, {host['cores']} cores; VNNI: {host['vnni']}; BF16: {host['bf16']}")
    results["command"] = "bench/convert.py " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    for key, judge_f1 in (("demo", True), ("mnv2_224", False)):
        if key not in results:
            continue
        res = results[key]
        print(
            f"\n## {res['model']} — trained {res['trained_epochs']} epochs, {res['eval_images']} eval images, "
            f"Keras accuracy {res['keras_accuracy']:.4f}, macro-F1 {res['keras_macro_f1']:.4f}\n"
        )
        print(res["table"])
        print(
            "Median p50 over rounds (ms): "
            + ", ".join(f"{name} {v['p50_ms']:.2f}" for name, v in res["variants"].items() if v["p50_ms"] is not None)
            + "\n"
        )
        print_sizes(res["size_breakdown"])
        print("| target | measured | goal | met |\n|---|---|---|---|")
        checks = verdicts(res, judge_f1=judge_f1, vnni=host["vnni"] != "none")
        res["verdicts"] = [dict(zip(("target", "value", "goal", "met"), c, strict=True)) for c in checks]
        for name, value, goal, ok in checks:
            shown = "-" if value is None else f"{value:.3f}"
            print(f"| {name} | {shown} | {goal} | {'-' if ok is None else ('yes' if ok else 'NO')} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nwrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
