"""The shared statistics: the gates' paired test, and the percentiles and PSI of release health and the console."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from edgeloop import stats
from edgeloop.stats import mcnemar_one_sided, paired_drops


@pytest.mark.parametrize(
    ("lost", "gained", "p"),
    [(0, 0, 1.0), (1, 0, 0.5), (5, 0, 1 / 32), (3, 3, 1.0), (1, 4, 1.0), (6, 1, 8 / 128), (10, 2, 79 / 4096)],
)
def test_one_sided_exact_mcnemar(lost: int, gained: int, p: float) -> None:
    assert mcnemar_one_sided(lost, gained) == pytest.approx(p)


def test_paired_drops_count_lost_and_gained_per_class() -> None:
    y = np.array([0, 0, 0, 0, 1, 1, 2])
    reference = np.array([0, 0, 1, 0, 1, 0, 2])
    candidate = np.array([0, 1, 0, 2, 1, 1, 2])
    a, b, c = paired_drops(y, candidate, reference, 3)
    assert (a.support, a.lost, a.gained) == (4, 2, 1) and a.drop == pytest.approx(0.25)
    assert (b.support, b.lost, b.gained, b.drop) == (2, 0, 1, -0.5)
    assert (c.lost, c.gained, c.p_value) == (0, 0, 1.0)
    assert not b.is_regression(0.0, 1.0)  # a gain is never a regression
    assert a.is_regression(0.1, 1.0) and not a.is_regression(0.1, 0.05)


# --------------------------------------------------------------------------- percentiles and PSI


@pytest.mark.parametrize("q", [0, 5, 50, 90, 95, 99, 100])
def test_percentile_matches_numpy_on_samples_and_on_histograms(q: float) -> None:
    rng = random.Random(7)
    samples = [round(rng.lognormvariate(3, 0.5), 1) for _ in range(501)]
    hist: dict[float, int] = {}
    for s in samples:
        hist[s] = hist.get(s, 0) + 1
    expected = float(np.percentile(samples, q))
    assert stats.percentile(samples, q) == pytest.approx(expected)
    assert stats.percentile(hist, q) == pytest.approx(expected)


def test_percentile_edge_cases() -> None:
    assert stats.percentile([], 50) is None
    assert stats.percentile({1.0: 0}, 50) is None
    assert stats.percentile([4.0], 95) == 4.0
    assert stats.percentile([1.0, 2.0], 50) == 1.5
    with pytest.raises(ValueError, match="outside"):
        stats.percentile([1.0], 101)


def test_psi_is_zero_for_the_same_distribution_whatever_the_scale() -> None:
    assert stats.psi({"a": 10, "b": 30}, {"a": 1, "b": 3}) == pytest.approx(0.0)


def test_psi_matches_the_textbook_formula() -> None:
    expected = {"a": 0.5, "b": 0.3, "c": 0.2}
    actual = {"a": 0.3, "b": 0.3, "c": 0.4}
    by_hand = sum((actual[k] - expected[k]) * math.log(actual[k] / expected[k]) for k in expected)
    assert stats.psi(expected, actual) == pytest.approx(by_hand)
    # Symmetric in its arguments, and positive for any difference.
    assert stats.psi(actual, expected) == pytest.approx(by_hand)
    assert by_hand > 0


def test_psi_of_a_label_missing_on_one_side_is_large_but_finite() -> None:
    value = stats.psi({"a": 50, "b": 50}, {"a": 100})
    assert value is not None and 1.0 < value < 10.0
    assert stats.psi({}, {"a": 1}) is None
    assert stats.psi({"a": 1}, {}) is None


def test_label_psi_bins_labels_the_eval_split_never_had() -> None:
    eval_split = {"a": 50, "b": 50}
    assert stats.label_psi(eval_split, {"a": 40, "x": 5, "y": 5}) == pytest.approx(
        stats.psi(eval_split, {"a": 40, stats.OTHER_LABEL: 10})
    )
    assert stats.label_psi(eval_split, {}) is None
