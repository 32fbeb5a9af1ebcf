"""The paired test both gates use to tell a regression from one unlucky photo."""

from __future__ import annotations

import numpy as np
import pytest

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
