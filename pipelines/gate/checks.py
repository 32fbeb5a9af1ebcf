"""The gate's checks as pure functions of predictions: no TensorFlow, no files.

Regression is measured on the eval examples of the classes both models know. The
candidate is judged on its real predictions (mistaking an old product for a new one
counts against it); the baseline can only predict its own classes. Both are scored
per shared class (recall, and F1 with precision counted on those examples).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from edgeloop.card import GateCheck, GateReport
from edgeloop.metrics import EvalReport, confusion_matrix, per_class
from edgeloop.stats import PairedDrop, paired_drops
from pipelines.gate.settings import GateSettings

NO_BASELINE_NOTE = "no production baseline given: judged on absolute checks only"


def absolute_checks(report: EvalReport, s: GateSettings) -> list[GateCheck]:
    """Accuracy, macro F1 and every class's recall against their floors."""
    checks = [
        _floor("min_accuracy", "accuracy", report.accuracy, s.min_accuracy),
        _floor("min_macro_f1", "macro F1", report.macro_f1, s.min_macro_f1),
    ]
    for c in report.classes:
        checks.append(
            _floor(
                f"min_class_recall:{c.label}",
                f"recall of {c.label} ({c.support} eval photos)",
                c.recall,
                s.min_class_recall,
            )
        )
    return checks


def _floor(name: str, what: str, value: float, threshold: float) -> GateCheck:
    passed = value >= threshold
    verb = "meets" if passed else "is below"
    return GateCheck(
        name=name,
        threshold=threshold,
        value=value,
        passed=passed,
        detail=f"{what} {value:.3f} {verb} the minimum {threshold:.3f}",
    )


def shared_predictions(
    probs: npt.NDArray[np.floating], labels: Sequence[str], universe: dict[str, int]
) -> npt.NDArray[np.int64]:
    """Top-1 predictions as indices into `universe` (the shared classes first, then the rest)."""
    return np.asarray([universe[labels[int(i)]] for i in np.asarray(probs).argmax(axis=1)], dtype=np.int64)


def shared_scores(
    pred: npt.NDArray[np.integer], y_shared: npt.NDArray[np.integer], shared: Sequence[str], universe_size: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Recall and F1 per shared class of one model's predictions (indices into the universe)."""
    _, recall, f1, _ = per_class(confusion_matrix(np.asarray(y_shared), np.asarray(pred), universe_size))
    return {n: float(recall[i]) for i, n in enumerate(shared)}, {n: float(f1[i]) for i, n in enumerate(shared)}


def regression_checks(
    candidate_probs: npt.NDArray[np.floating],
    candidate_labels: Sequence[str],
    baseline_probs: npt.NDArray[np.floating],
    baseline_labels: Sequence[str],
    y_true: npt.NDArray[np.integer],
    s: GateSettings,
    *,
    baseline_name: str,
) -> tuple[list[GateCheck], list[str]]:
    """No regression vs the baseline on the shared classes: macro F1, then each class's recall.

    `y_true` indexes `candidate_labels`; both probability matrices cover the same examples.
    """
    notes: list[str] = []
    base_set = set(baseline_labels)
    shared = [name for name in candidate_labels if name in base_set]
    new = [name for name in candidate_labels if name not in base_set]
    dropped = [name for name in baseline_labels if name not in set(candidate_labels)]
    if new:
        notes.append(f"{len(new)} class(es) new since {baseline_name}, held to the per-class floor only: {new}")
    if dropped:
        notes.append(f"class(es) {baseline_name} knows but this model does not: {dropped}")
    if not shared:
        notes.append(f"no class in common with {baseline_name}: no regression check possible")
        return [], notes
    shared_pos = {name: i for i, name in enumerate(shared)}
    keep = np.asarray([candidate_labels[int(k)] in shared_pos for k in y_true], dtype=bool)
    y_shared = np.asarray([shared_pos[candidate_labels[int(k)]] for k in np.asarray(y_true)[keep]], dtype=np.int64)
    names = [*shared, *sorted((set(candidate_labels) | base_set) - set(shared))]
    universe = {name: i for i, name in enumerate(names)}
    cand_pred = shared_predictions(np.asarray(candidate_probs)[keep], candidate_labels, universe)
    base_pred = shared_predictions(np.asarray(baseline_probs)[keep], baseline_labels, universe)
    cand_recall, cand_f1 = shared_scores(cand_pred, y_shared, shared, len(names))
    base_recall, base_f1 = shared_scores(base_pred, y_shared, shared, len(names))
    drops = paired_drops(y_shared, cand_pred, base_pred, len(shared))
    cand_macro = float(np.mean(list(cand_f1.values())))
    base_macro = float(np.mean(list(base_f1.values())))
    notes.append(f"regression measured on {int(keep.sum())} eval photos of {len(shared)} shared classes")
    checks = [
        _no_drop(
            "no_regression:macro_f1",
            "macro F1 on shared classes",
            cand_macro,
            base_macro,
            s.max_macro_f1_drop,
            baseline_name,
        )
    ]
    for i, name in enumerate(shared):
        checks.append(_no_recall_drop(name, cand_recall[name], base_recall[name], drops[i], s, baseline_name))
    return checks, notes


def _no_recall_drop(
    label: str, value: float, base: float, drop: PairedDrop, s: GateSettings, baseline_name: str
) -> GateCheck:
    """A class's recall may fall by more than the tolerance only when too few photos show it to be real."""
    threshold = base - s.max_class_recall_drop
    failed = drop.is_regression(s.max_class_recall_drop, s.significance)
    evidence = drop.describe(s.significance)
    if failed:
        detail = (
            f"recall of {label} fell from {base:.3f} in {baseline_name} to {value:.3f}, a drop of {base - value:.3f}, "
            f"more than the {s.max_class_recall_drop:.3f} allowed ({evidence})"
        )
    elif value < threshold - 1e-9:
        detail = (
            f"recall of {label} {value:.3f} vs {base:.3f} in {baseline_name}: a drop beyond the "
            f"{s.max_class_recall_drop:.3f} allowed, but {evidence}; the recall floor still applies"
        )
    else:
        detail = (
            f"recall of {label} {value:.3f} vs {base:.3f} in {baseline_name} "
            f"(drop allowed up to {s.max_class_recall_drop:.3f}; {evidence})"
        )
    return GateCheck(
        name=f"no_regression:recall:{label}", threshold=threshold, value=value, passed=not failed, detail=detail
    )


def _no_drop(name: str, what: str, value: float, base: float, tolerance: float, baseline_name: str) -> GateCheck:
    threshold = base - tolerance
    passed = value >= threshold - 1e-9
    if passed:
        detail = f"{what} {value:.3f} vs {base:.3f} in {baseline_name} (drop allowed up to {tolerance:.3f})"
    else:
        detail = (
            f"{what} fell from {base:.3f} in {baseline_name} to {value:.3f}, "
            f"a drop of {base - value:.3f}, more than the {tolerance:.3f} allowed"
        )
    return GateCheck(name=name, threshold=threshold, value=value, passed=passed, detail=detail)


def decide(
    checks: list[GateCheck],
    notes: list[str],
    *,
    baseline: str | None,
    force: bool = False,
    forced_by: str | None = None,
    reason: str | None = None,
) -> GateReport:
    """The overall verdict: pass when every check passes; a failed gate can be forced, on record."""
    failed = [c for c in checks if not c.passed]
    verdict = "pass" if not failed else "fail"
    notes = list(notes)
    if force:
        if failed:
            verdict = "forced"
            notes.append(f"{len(failed)} failed check(s) overridden by {forced_by}: {reason}")
        else:
            notes.append(f"--force given by {forced_by} but every check passed")
    return GateReport(
        verdict=verdict,
        checks=checks,
        baseline=baseline,
        forced_by=forced_by if force else None,
        forced_reason=reason if force else None,
        notes=notes,
    )
