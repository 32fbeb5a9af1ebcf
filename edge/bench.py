"""The latency harness: one implementation for `edgeloop bench` on devices and for conversion.

Warm-up runs, then N timed runs of the model's own invoke path, percentiles from the
raw samples; init time is the load (interpreter or session creation, allocation);
peak memory is the process's resident high-water mark over load + runs.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class LatencyStats:
    runs: int
    warmup: int
    threads: int | None
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    init_ms: float
    peak_mem_mb: float

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _reset_peak_rss() -> bool:
    # Linux lets a process reset its own VmHWM; elsewhere we report the lifetime peak.
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def percentile(samples: list[float], q: float) -> float:
    """Linear-interpolated percentile of raw samples (numpy's default method)."""
    return float(np.percentile(np.asarray(samples), q))


def measure(
    load: Callable[[], Callable[[], object]], *, runs: int = 50, warmup: int = 5, threads: int | None = None
) -> LatencyStats:
    """Time `load()` (init) and then `runs` calls of the function it returns, after `warmup` calls."""
    if runs < 1:
        raise ValueError(f"runs={runs}: need at least one timed run")
    gc.collect()
    _reset_peak_rss()
    start = time.perf_counter_ns()
    invoke = load()
    init_ms = (time.perf_counter_ns() - start) / 1e6
    for _ in range(warmup):
        invoke()
    samples = []
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection mid-run would be charged to the model
    try:
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            invoke()
            samples.append((time.perf_counter_ns() - t0) / 1e6)
    finally:
        if gc_was_enabled:
            gc.enable()
    return LatencyStats(
        runs=runs,
        warmup=warmup,
        threads=threads,
        p50_ms=percentile(samples, 50),
        p90_ms=percentile(samples, 90),
        p99_ms=percentile(samples, 99),
        mean_ms=statistics.fmean(samples),
        std_ms=statistics.pstdev(samples),
        min_ms=min(samples),
        max_ms=max(samples),
        init_ms=init_ms,
        peak_mem_mb=_peak_rss_mb(),
    )


def bench_file(
    path: str | Path, *, runs: int = 50, warmup: int = 5, threads: int | None = None, seed: int = 0
) -> LatencyStats:
    """Latency of one model file on this machine, on a fixed random image, batch 1."""
    from edge.runtime import load as load_model

    def load() -> Callable[[], object]:
        clf = load_model(path, threads=threads or os.cpu_count())
        rng = np.random.default_rng(seed)
        pixels = rng.integers(0, 256, size=(1, clf.size[1], clf.size[0], 3), dtype=np.uint8)
        batch = clf.to_input(pixels)
        run = clf.backend.run
        return lambda: run(batch)

    return measure(load, runs=runs, warmup=warmup, threads=threads)


def main(argv: list[str] | None = None) -> int:
    """`python -m edge.bench FILE [--runs N] [--warmup N] [--threads N]`: print `LatencyStats` as JSON.

    Running each file in its own process keeps peak memory per model rather than cumulative.
    """
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m edge.bench", description="Latency of one model file.")
    parser.add_argument("file")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    stats = bench_file(args.file, runs=args.runs, warmup=args.warmup, threads=args.threads)
    print(json.dumps(stats.as_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
