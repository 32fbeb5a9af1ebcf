"""Edge benchmarks: harness overhead of `edge.bench` against a bare invoke() loop, and SDK hot paths.

    .venv/bin/python bench/edge_sdk.py [--runs 100] [--rounds 10] [--threads 1] [--no-tflite]

Builds a small conv classifier (96x96x3 raw pixels -> softmax) as ONNX (onnx helpers) and,
when TensorFlow is importable, as TFLite (Keras + TFLiteConverter); files are cached in
bench/results/models/. For each file, rounds alternate a bare loop (`interpreter.invoke()` /
`session.run()` with the input already set) and `edge.bench.bench_file` in ABBA order, so
machine noise hits both alike; figures: median and best-round p50, and the per-call overhead
measured in adjacent pairs on one loaded model. Also times `Classifier.classify`
(preprocessing included), `LiveModel.run`, and a telemetry `record`. Prints a table and
writes bench/results/edge.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
SIZE = 96
LABELS = [f"product-{i:02d}" for i in range(20)]
# ~135 M multiply-adds: a few ms on one core, the order of a small MobileNet on a phone.
LAYERS = ((32, 1), (64, 2), (128, 2), (256, 2))


def _meta(variant: str, dtype: str) -> Any:
    from edge.manifest import InputSpec
    from edge.metadata import ModelMetadata

    return ModelMetadata(
        name="bench-net",
        version="1",
        variant=variant,
        labels=LABELS,
        input=InputSpec(height=SIZE, width=SIZE, dtype=dtype),  # type: ignore[arg-type]
    )


def build_onnx(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edge.metadata import onnx_metadata_props

    rng = np.random.default_rng(0)
    inits, nodes, x, cin = [], [helper.make_node("Transpose", ["pixels"], ["nchw"], perm=[0, 3, 1, 2])], "nchw", 3
    inits.append(numpy_helper.from_array(np.array(1 / 255, np.float32), "scale"))
    nodes.append(helper.make_node("Mul", [x, "scale"], ["x0"]))
    x = "x0"
    for i, (cout, stride) in enumerate(LAYERS):
        w = rng.normal(0, (2 / (9 * cin)) ** 0.5, (cout, cin, 3, 3)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(np.zeros(cout, np.float32), f"b{i}")]
        nodes += [
            helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], strides=[stride, stride], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", [f"c{i}"], [f"r{i}"]),
        ]
        x, cin = f"r{i}", cout
    inits += [
        numpy_helper.from_array(rng.normal(0, 0.05, (cin, len(LABELS))).astype(np.float32), "wd"),
        numpy_helper.from_array(np.zeros(len(LABELS), np.float32), "bd"),
    ]
    nodes += [
        helper.make_node("GlobalAveragePool", [x], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("Gemm", ["flat", "wd", "bd"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "bench-net",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [None, SIZE, SIZE, 3])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [None, len(LABELS)])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    helper.set_model_props(model, onnx_metadata_props(_meta("onnx_fp32", "float32")))
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def build_tflite(path: Path) -> Path:
    import tensorflow as tf

    from edge.metadata import tflite_with_metadata

    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input((SIZE, SIZE, 3), dtype="float32")
    x = tf.keras.layers.Rescaling(1 / 255)(inputs)
    for filters, stride in LAYERS:
        x = tf.keras.layers.Conv2D(filters, 3, strides=stride, padding="same", activation="relu")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    outputs = tf.keras.layers.Dense(len(LABELS), activation="softmax")(x)
    flat = tf.lite.TFLiteConverter.from_keras_model(tf.keras.Model(inputs, outputs)).convert()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tflite_with_metadata(flat, _meta("tflite_fp32", "float32")))
    return path


def bare_loop(path: Path, runs: int, warmup: int, threads: int) -> float:
    """p50 (ms) of the engine's own call with the input already in place: the floor any harness can reach."""
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (1, SIZE, SIZE, 3)).astype(np.float32)
    call: Callable[[], object]
    if path.suffix == ".tflite":
        from ai_edge_litert.interpreter import Interpreter

        interp = Interpreter(model_path=str(path), num_threads=threads)
        interp.allocate_tensors()
        interp.set_tensor(interp.get_input_details()[0]["index"], batch)
        call = interp.invoke
    else:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def call() -> object:
            return session.run(None, {name: batch})

    for _ in range(warmup):
        call()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    return float(np.percentile(samples, 50))


def time_calls(fn: Callable[[], object], runs: int) -> float:
    fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    return float(np.percentile(samples, 50))


def paired_overhead_us(path: Path, runs: int, threads: int, clock: Callable[[], int] = time.perf_counter_ns) -> float:
    """Median extra time per call of the harness's invoke path over the bare engine call, measured in
    adjacent pairs on one loaded model, so machine load cancels out (it hits both halves of a pair alike).
    With `clock=time.thread_time_ns` (and one thread, so the engine runs on the caller's thread) it counts
    CPU time only: time stolen by other processes on a shared machine drops out."""
    import edge

    clf = edge.load(path, threads=threads)
    batch = clf.to_input(np.random.default_rng(0).integers(0, 256, (1, SIZE, SIZE, 3), dtype=np.uint8))
    backend: Any = clf.backend
    if path.suffix == ".tflite":
        interp = backend._interp
        interp.set_tensor(backend._input["index"], batch)
        bare: Callable[[], object] = interp.invoke
    else:
        session, name = backend._session, backend._input_name

        def bare() -> object:
            return session.run(None, {name: batch})

    run = backend.run

    def ours() -> object:
        return run(batch)

    for _ in range(10):
        bare(), ours()
    diffs = []
    for i in range(runs):
        first, second = (bare, ours) if i % 2 else (ours, bare)
        t0 = clock()
        first()
        t1 = clock()
        second()
        t2 = clock()
        a, b = (t1 - t0, t2 - t1) if first is ours else (t2 - t1, t1 - t0)
        diffs.append((a - b) / 1e3)
    return float(np.median(diffs))


def bench_model(path: Path, runs: int, rounds: int, threads: int) -> dict[str, Any]:
    from edge.bench import bench_file

    bare: list[float] = []
    ours: list[float] = []
    stats = None
    for i in range(rounds):
        # ABBA order: a load drift over the run hits both sides equally.
        order = ("bare", "ours") if i % 2 == 0 else ("ours", "bare")
        for side in order:
            if side == "bare":
                bare.append(bare_loop(path, runs, 10, threads))
            else:
                stats = bench_file(path, runs=runs, warmup=10, threads=threads)
                ours.append(stats.p50_ms)
    assert stats is not None
    bare_med, ours_med = statistics.median(bare), statistics.median(ours)
    bare_min, ours_min = min(bare), min(ours)
    return {
        "file": path.name,
        "runtime": "litert" if path.suffix == ".tflite" else "onnxruntime",
        "threads": threads,
        "runs_per_round": runs,
        "rounds": rounds,
        "bare_p50_ms": bare_med,
        "harness_p50_ms": ours_med,
        "overhead_pct": 100 * (ours_med - bare_med) / bare_med,
        "bare_p50_min_ms": bare_min,
        "harness_p50_min_ms": ours_min,
        "overhead_min_pct": 100 * (ours_min - bare_min) / bare_min,
        "paired_overhead_us_per_call": paired_overhead_us(path, runs * 2, threads),
        "paired_overhead_cpu_us_per_call": paired_overhead_us(path, runs * 2, threads, time.thread_time_ns),
        "bare_p50_per_round": bare,
        "harness_p50_per_round": ours,
        "last_harness_stats": stats.as_dict(),
    }


def sdk_paths(path: Path, runs: int, threads: int) -> dict[str, float]:
    """Per-call cost of what an app calls: classify (resize from 640x480 included), LiveModel.run, telemetry."""
    import edge
    from edge import DeviceInfo, InstalledModel, LiveModel, LoadedModel, TelemetryOptions, TelemetryQueue

    clf = edge.load(path, threads=threads)
    photo = np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    ready = clf.pixels(photo)
    live = LiveModel(LoadedModel(clf, InstalledModel("bench-net", 1, "x", "0" * 64, 1, path.name, tuple(LABELS))))
    with tempfile.TemporaryDirectory() as tmp:
        queue = TelemetryQueue(Path(tmp) / "q.sqlite", TelemetryOptions(), DeviceInfo(device_id="bench"))
        record_ms = time_calls(lambda: queue.record("inference", latency_ms=1.0, top1_label="x", top1_score=0.5), runs)
        queue.close()
    return {
        "classify_640x480_p50_ms": time_calls(lambda: clf.classify(photo), runs),
        "classify_model_size_p50_ms": time_calls(lambda: clf.classify(ready), runs),
        "live_model_run_p50_ms": time_calls(lambda: live.run(ready), runs),
        "telemetry_record_p50_ms": record_ms,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-tflite", action="store_true", help="Skip the TFLite model (no TensorFlow needed).")
    parser.add_argument("--out", type=Path, default=RESULTS / "edge.json")
    parser.add_argument("--models-dir", type=Path, default=RESULTS / "models", help="Cache of the built model files.")
    args = parser.parse_args(argv)

    models_dir = args.models_dir
    files = [models_dir / "bench-net.onnx"]
    if not files[0].exists():
        build_onnx(files[0])
    if not args.no_tflite:
        tfl = models_dir / "bench-net.tflite"
        if not tfl.exists():
            build_tflite(tfl)
        files.insert(0, tfl)

    results = [bench_model(f, args.runs, args.rounds, args.threads) for f in files]
    sdk = {f.name: sdk_paths(f, args.runs, args.threads) for f in files}

    header = (
        f"{'model':<20}{'runtime':<13}{'bare p50':>10}{'ours p50':>10}{'overhead':>10}"
        f"{'bare min':>10}{'ours min':>10}{'overhead':>10}{'paired us/call':>16}{'paired CPU us':>15}"
    )
    print("p50 in ms: median over rounds, and best round (least disturbed by other load)")
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['file']:<20}{r['runtime']:<13}{r['bare_p50_ms']:>10.3f}{r['harness_p50_ms']:>10.3f}"
            f"{r['overhead_pct']:>9.2f}%{r['bare_p50_min_ms']:>10.3f}{r['harness_p50_min_ms']:>10.3f}"
            f"{r['overhead_min_pct']:>9.2f}%{r['paired_overhead_us_per_call']:>16.1f}"
            f"{r['paired_overhead_cpu_us_per_call']:>15.1f}"
        )
    print()
    print(
        f"{'model':<22}{'classify 640x480':>18}{'classify 96x96':>16}{'LiveModel.run':>15}{'telemetry rec':>15}  (p50 ms)"
    )
    for name, s in sdk.items():
        print(
            f"{name:<22}{s['classify_640x480_p50_ms']:>18.4f}{s['classify_model_size_p50_ms']:>16.4f}"
            f"{s['live_model_run_p50_ms']:>15.4f}{s['telemetry_record_p50_ms']:>15.4f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": "python bench/edge_sdk.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "harness_overhead": results,
        "sdk_paths": sdk,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
