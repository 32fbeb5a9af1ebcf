"""TF-free gate logic: absolute floors, regression on shared classes, verdicts and forcing."""

from __future__ import annotations

import numpy as np
import pytest

from edgeloop.metrics import evaluate
from pipelines.gate.checks import NO_BASELINE_NOTE, absolute_checks, decide, regression_checks
from pipelines.gate.settings import GateSettings


def onehot(pred: list[int], n: int) -> np.ndarray:
    probs = np.full((len(pred), n), 0.01)
    probs[np.arange(len(pred)), pred] = 0.9
    return probs


def test_absolute_checks_name_value_threshold_and_reason() -> None:
    y = np.array([0, 0, 1, 1])
    report = evaluate(onehot([0, 0, 1, 0], 2), y, ["rose-soap", "mint-balm"])
    checks = absolute_checks(report, GateSettings(min_accuracy=0.8, min_macro_f1=0.5, min_class_recall=0.6))
    by = {c.name: c for c in checks}
    assert set(by) == {"min_accuracy", "min_macro_f1", "min_class_recall:rose-soap", "min_class_recall:mint-balm"}
    assert not by["min_accuracy"].passed and by["min_accuracy"].value == pytest.approx(0.75)
    assert by["min_macro_f1"].passed
    assert not by["min_class_recall:mint-balm"].passed
    assert (
        by["min_class_recall:mint-balm"].detail
        == "recall of mint-balm (2 eval photos) 0.500 is below the minimum 0.600"
    )


def test_regression_on_shared_classes_flags_the_class_that_fell() -> None:
    labels_new = ["a", "b", "c"]  # c is new
    y = np.array([0] * 4 + [1] * 8 + [2, 2])
    baseline = onehot([0] * 4 + [1] * 8 + [0, 1], 2)  # perfect on a and b; c unknown to it
    candidate = onehot([0] * 4 + [1, 1, 2, 2, 2, 2, 0, 0] + [2, 2], 3)  # b collapses: mistaken for the new class c
    checks, notes = regression_checks(
        candidate, labels_new, baseline, ["a", "b"], y, GateSettings(), baseline_name="baseline r1"
    )
    by = {c.name: c for c in checks}
    assert set(by) == {"no_regression:macro_f1", "no_regression:recall:a", "no_regression:recall:b"}
    assert by["no_regression:recall:a"].passed
    fell = by["no_regression:recall:b"]
    assert not fell.passed and fell.value == pytest.approx(0.25) and fell.threshold == pytest.approx(0.9)
    assert fell.detail == (
        "recall of b fell from 1.000 in baseline r1 to 0.250, a drop of 0.750, more than the 0.100 allowed "
        "(lost 6, gained 0 of 8 photos; paired exact test p=0.016 (significant at 0.05))"
    )
    assert not by["no_regression:macro_f1"].passed
    assert any("new since baseline r1" in n and "'c'" in n for n in notes)
    assert any("12 eval photos of 2 shared classes" in n for n in notes)


@pytest.mark.parametrize(
    ("photos", "lost", "passed"),
    [
        (14, 1, True),  # one photo of 14 is 7 points: noise, not a regression
        (14, 2, True),
        (14, 5, False),  # p = 1/32
        (100, 12, False),  # the same 12-point drop is significant with enough photos
        (100, 10, True),  # within the 0.10 tolerance, however many photos show it
    ],
)
def test_a_recall_drop_fails_only_beyond_tolerance_and_noise(photos: int, lost: int, passed: bool) -> None:
    y = np.array([0] * photos + [1] * 10)  # b: a second class the models agree on
    pred = y.copy()
    pred[:lost] = 1
    checks, _ = regression_checks(
        onehot(list(pred), 2), ["a", "b"], onehot(list(y), 2), ["a", "b"], y, GateSettings(), baseline_name="p"
    )
    check = {c.name: c for c in checks}["no_regression:recall:a"]
    assert check.passed is passed, check.detail
    assert f"lost {lost}, gained 0 of {photos} photos" in check.detail


def test_significance_one_fails_every_drop_beyond_tolerance() -> None:
    y = np.array([0] * 10 + [1] * 10)
    pred = y.copy()
    pred[:2] = 1
    checks, _ = regression_checks(
        onehot(list(pred), 2), ["a", "b"], onehot(list(y), 2), ["a", "b"], y, GateSettings(significance=1.0),
        baseline_name="p",
    )  # fmt: skip
    assert not {c.name: c for c in checks}["no_regression:recall:a"].passed


def test_equal_models_pass_regression() -> None:
    y = np.array([0, 1, 1, 0])
    probs = onehot([0, 1, 0, 0], 2)
    checks, _ = regression_checks(probs, ["a", "b"], probs, ["a", "b"], y, GateSettings(), baseline_name="b")
    assert all(c.passed for c in checks)


def test_no_shared_class_gives_a_note_not_a_check() -> None:
    checks, notes = regression_checks(
        onehot([0], 1), ["x"], onehot([0], 1), ["y"], np.array([0]), GateSettings(), baseline_name="b"
    )
    assert checks == [] and "no class in common" in notes[-1]


def test_verdicts_and_forcing() -> None:
    y = np.array([0, 1])
    bad = absolute_checks(evaluate(onehot([1, 1], 2), y, ["a", "b"]), GateSettings())
    good = absolute_checks(evaluate(onehot([0, 1], 2), y, ["a", "b"]), GateSettings())
    assert decide(good, [NO_BASELINE_NOTE], baseline=None).verdict == "pass"
    failed = decide(bad, [], baseline="runs/x")
    assert failed.verdict == "fail" and not failed.passed and failed.forced_by is None
    forced = decide(bad, [], baseline=None, force=True, forced_by="ana", reason="demo tomorrow")
    assert forced.verdict == "forced" and forced.passed
    assert (forced.forced_by, forced.forced_reason) == ("ana", "demo tomorrow")
    assert "overridden by ana: demo tomorrow" in forced.notes[-1]
