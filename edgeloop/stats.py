"""The statistics both gates, release health and the console share: one copy of each formula.

Percentiles of histograms and the predicted-label PSI (release health's drift measure, shown on
the console's field page), and the paired test that tells a per-class recall regression from
one unlucky photo.

Is a per-class drop a regression or one unlucky photo? A class with 14 eval photos cannot show
a 3-point recall drop: one photo is 7 points. So a drop only counts as a regression when it is
larger than the tolerance *and* more than noise: among the class's photos, those the reference
got right and the candidate wrong (`lost`) against the reverse (`gained`) are compared with a
one-sided exact McNemar test. With few photos a small drop passes (the absolute recall floor
still applies); with many photos the same drop is significant and fails — the rule tightens as
evidence grows.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

# Predicted labels the eval split never saw still count, in a bin of their own.
OTHER_LABEL = "<other>"
PSI_FLOOR = 1e-4


def percentile(values: Mapping[float, int] | Sequence[float], q: float) -> float | None:
    """The q-th percentile (0–100) with linear interpolation, as numpy's default.

    `values` is either plain samples or a histogram {value: count}, which is what the
    warehouse returns so that millions of events never travel to the worker.
    """
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} is outside 0–100")
    hist = _as_histogram(values)
    total = sum(hist.values())
    if total == 0:
        return None
    rank = (total - 1) * q / 100.0
    lo_rank, hi_rank = math.floor(rank), math.ceil(rank)
    lo = hi = None
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        if lo is None and seen > lo_rank:
            lo = value
        if seen > hi_rank:
            hi = value
            break
    assert lo is not None and hi is not None  # total > 0 and ranks < total
    return lo + (hi - lo) * (rank - lo_rank)


def _as_histogram(values: Mapping[float, int] | Sequence[float]) -> dict[float, int]:
    if isinstance(values, Mapping):
        return {float(k): int(v) for k, v in values.items() if v > 0}
    hist: dict[float, int] = {}
    for v in values:
        hist[float(v)] = hist.get(float(v), 0) + 1
    return hist


def psi(expected: Mapping[str, float], actual: Mapping[str, float]) -> float | None:
    """Population stability index of two label distributions (counts or shares).

    Σ (a − e) · ln(a / e) over the union of labels, shares floored at 1e-4 so a label
    missing on one side adds a large but finite term. Rule of thumb: < 0.1 stable,
    0.1–0.25 drifting, > 0.25 a different population. None when either side is empty.
    """
    e_total = sum(v for v in expected.values() if v > 0)
    a_total = sum(v for v in actual.values() if v > 0)
    if e_total <= 0 or a_total <= 0:
        return None
    total = 0.0
    for label in set(expected) | set(actual):
        e = max(expected.get(label, 0.0) / e_total, PSI_FLOOR)
        a = max(actual.get(label, 0.0) / a_total, PSI_FLOOR)
        total += (a - e) * math.log(a / e)
    return total


def label_psi(eval_labels: Mapping[str, float], predicted: Mapping[str, float]) -> float | None:
    """PSI of the field's predicted labels against the eval split's labels.

    A predicted label the eval split never had goes to `OTHER_LABEL`: an app that reports a
    new product (or garbage) drifts, rather than being compared label by label with nothing.
    """
    binned: dict[str, float] = {}
    for label, count in predicted.items():
        key = label if label in eval_labels else OTHER_LABEL
        binned[key] = binned.get(key, 0) + count
    return psi(eval_labels, binned)


@dataclasses.dataclass(frozen=True)
class PairedDrop:
    """How a candidate's recall on one class compares with a reference on the same photos."""

    support: int  # photos of the class
    lost: int  # reference right, candidate wrong
    gained: int  # reference wrong, candidate right
    p_value: float  # one-sided exact McNemar: chance of losing this many net under "no change"

    @property
    def drop(self) -> float:
        return (self.lost - self.gained) / self.support if self.support else 0.0

    def is_regression(self, tolerance: float, alpha: float) -> bool:
        return self.drop > tolerance + 1e-12 and self.p_value < alpha

    def describe(self, alpha: float) -> str:
        noise = "significant" if self.p_value < alpha else "within noise"
        return (
            f"lost {self.lost}, gained {self.gained} of {self.support} photos; "
            f"paired exact test p={self.p_value:.3f} ({noise} at {alpha:g})"
        )


def mcnemar_one_sided(lost: int, gained: int) -> float:
    """P(at least `lost` of the `lost + gained` discordant photos go against the candidate | no change)."""
    n = lost + gained
    if n == 0 or lost <= gained:
        return 1.0
    return min(1.0, sum(math.comb(n, i) for i in range(lost, n + 1)) / 2**n)


def paired_drops(
    y_true: npt.NDArray[np.integer],
    candidate_pred: npt.NDArray[np.integer],
    reference_pred: npt.NDArray[np.integer],
    classes: int,
) -> list[PairedDrop]:
    """One `PairedDrop` per class index (0..classes-1); predictions index the same label list as `y_true`."""
    y = np.asarray(y_true, dtype=np.int64)
    cand_ok = np.asarray(candidate_pred, dtype=np.int64) == y
    ref_ok = np.asarray(reference_pred, dtype=np.int64) == y
    out = []
    for k in range(classes):
        mine = y == k
        lost = int(np.sum(mine & ref_ok & ~cand_ok))
        gained = int(np.sum(mine & ~ref_ok & cand_ok))
        out.append(PairedDrop(int(mine.sum()), lost, gained, mcnemar_one_sided(lost, gained)))
    return out
