"""Is a per-class drop a regression or one unlucky photo? A paired test, shared by both gates.

A class with 14 eval photos cannot show a 3-point recall drop: one photo is 7 points. So
a drop only counts as a regression when it is larger than the tolerance *and* more than
noise: among the class's photos, those the reference got right and the candidate wrong
(`lost`) against the reverse (`gained`) are compared with a one-sided exact McNemar test.
With few photos a small drop passes (the absolute recall floor still applies); with many
photos the same drop is significant and fails — the rule tightens as evidence grows.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import numpy.typing as npt


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
