"""The check a model passes after a swap: probes run, outputs finite and sane, latency within budget."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from edge._options import HealthOptions
from edge.runtime import Classifier


@dataclasses.dataclass(frozen=True)
class HealthReport:
    ok: bool
    problems: tuple[str, ...]
    median_latency_ms: float
    probes: int


def synthetic_probes(height: int, width: int, count: int) -> list[NDArray[np.uint8]]:
    """Deterministic probe images: mid-grey, a gradient, seeded noise, ... (no app assets needed)."""
    probes: list[NDArray[np.uint8]] = [np.full((height, width, 3), 128, np.uint8)]
    ramp = np.linspace(0, 255, width, dtype=np.float32)
    probes.append(np.repeat(np.broadcast_to(ramp, (height, width))[..., None], 3, axis=2).astype(np.uint8))
    rng = np.random.default_rng(20261123)
    while len(probes) < count:
        probes.append(rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8))
    return probes[: max(count, 0)]


def probe_inputs(clf: Classifier, options: HealthOptions) -> list[NDArray[np.uint8]]:
    from PIL import Image

    images = [clf.pixels(Image.open(Path(p))) for p in options.probe_images]
    if not images:
        images = synthetic_probes(clf.size[1], clf.size[0], options.synthetic_probes)
    return images


def check(clf: Classifier, options: HealthOptions | None = None) -> HealthReport:
    """Run the probes one by one (batch 1, as the app does) after a warm-up; never raises for model faults."""
    options = options or HealthOptions()
    problems: list[str] = []
    images = probe_inputs(clf, options)
    # Integer outputs are only accurate to one quantization step per class.
    scale = clf.backend.output_quant[0] or (clf.metadata.output_scale or 0.0)
    tolerance = options.sum_tolerance + scale * len(clf.labels) / 2
    latencies: list[float] = []
    try:
        clf.predict(np.stack(images[:1]))  # warm-up: first-call allocation is not the model's latency
        for i, image in enumerate(images):
            t0 = time.perf_counter()
            probs = clf.predict(image[None, ...])
            latencies.append((time.perf_counter() - t0) * 1000)
            if probs.shape != (1, len(clf.labels)):
                problems.append(f"probe {i}: output shape {probs.shape}, expected (1, {len(clf.labels)})")
                continue
            if not np.all(np.isfinite(probs)):
                problems.append(f"probe {i}: non-finite outputs ({int(np.sum(~np.isfinite(probs)))} of {probs.size})")
                continue
            if probs.min() < -1e-6 or probs.max() > 1 + 1e-6:
                problems.append(f"probe {i}: scores outside [0, 1] ({probs.min():.3g}..{probs.max():.3g})")
            total = float(probs.sum())
            if abs(total - 1.0) > tolerance:
                problems.append(f"probe {i}: probabilities sum to {total:.4f}, not 1 ± {tolerance:.3f}")
    except Exception as exc:  # any engine failure on a probe means the model must not serve
        problems.append(f"inference failed: {exc!r}")
    # The median, not the worst probe: one probe delayed by a busy device must not block a good model forever.
    typical = float(np.median(latencies)) if latencies else 0.0
    if typical > options.latency_budget_ms:
        problems.append(f"probes took {typical:.1f} ms (median); budget {options.latency_budget_ms:.0f} ms")
    return HealthReport(not problems, tuple(problems), typical, len(images))
