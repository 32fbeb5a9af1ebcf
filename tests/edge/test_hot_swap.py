"""Hot swap: calls in flight finish on the old model, the next call gets the new one, nothing ever fails."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from edge_testkit import LABELS
from numpy.typing import NDArray

import edge
from edge import InstalledModel, LiveModel, LoadedModel, Runtime

IMAGE = np.full((16, 16, 3), 30, np.uint8)


def loaded(path: Path, version: int) -> LoadedModel:
    clf = edge.load(path)
    entry = InstalledModel("shelf-products", version, "onnx_fp32", "0" * 64, 1, path.name, tuple(clf.labels))
    return LoadedModel(clf, entry)


class GatedRuntime(Runtime):
    """The real engine, paused mid-call until the test opens the gate: makes "in flight" deterministic."""

    def __init__(self, inner: Runtime) -> None:
        self.inner = inner
        self.name = inner.name
        self.input_dtype, self.output_dtype = inner.input_dtype, inner.output_dtype
        self.input_quant, self.output_quant = inner.input_quant, inner.output_quant
        self.entered = threading.Event()
        self.gate = threading.Event()

    def run(self, batch: NDArray[Any]) -> NDArray[Any]:
        self.entered.set()
        self.gate.wait(120)  # generous: only the test opening the gate should end the wait
        return self.inner.run(batch)


def test_in_flight_call_finishes_on_the_old_model(onnx_v1: Path, onnx_v2: Path) -> None:
    old_model = loaded(onnx_v1, 1)
    gated = GatedRuntime(old_model.classifier.backend)
    old_model.classifier.backend = gated
    live = LiveModel(old_model)
    result: list[edge.Prediction] = []
    caller = threading.Thread(target=lambda: result.append(live.run(IMAGE, k=4)))
    caller.start()
    assert gated.entered.wait(120)  # the call is inside the old model's engine now
    live.swap(loaded(onnx_v2, 2))
    new = live.run(IMAGE, k=4)  # a call made after the swap uses v2 at once, while v1's call is still open
    assert new.version == 2 and len(new.top) == 4
    gated.gate.set()
    caller.join(120)
    (old,) = result
    assert old.version == 1 and len(old.top) == len(LABELS)  # finished on v1 (3 labels), not failed


def test_concurrent_callers_during_200_swaps_never_fail(onnx_v1: Path, onnx_v2: Path, onnx_v3: Path) -> None:
    models = [loaded(onnx_v1, 1), loaded(onnx_v2, 2), loaded(onnx_v3, 3)]
    live = LiveModel(models[0])
    stop = threading.Event()
    errors: list[BaseException] = []
    calls = [0] * 4
    mismatched = [0]

    def worker(i: int) -> None:
        while not stop.is_set():
            try:
                pred = live.run(IMAGE, k=5)
                # A call sees one whole model: its labels match the version that answered.
                if len(pred.top) != (3 if pred.version == 1 else 4):
                    mismatched[0] += 1
                probs = live.predict(np.stack([IMAGE, IMAGE]))
                assert probs.shape[0] == 2 and np.all(np.isfinite(probs))
                calls[i] += 1
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    deadline = time.monotonic() + 120
    for n in range(200):
        # Swap only once the callers have finished another call since the last swap: the swaps
        # interleave with calls on a machine of any speed (a fixed pause did not promise that).
        done = sum(calls)
        while sum(calls) == done and not errors:
            assert time.monotonic() < deadline, f"callers stalled after {done} calls"
            time.sleep(0.0002)
        live.swap(models[n % 3])
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    print(
        f"\n200 swaps under 4 concurrent callers: {sum(calls)} calls in {elapsed:.2f} s, "
        f"{len(errors)} failures, {mismatched[0]} half-swapped answers"
    )
    assert not errors and mismatched[0] == 0 and live.swaps == 200 and sum(calls) >= 200
