"""The parity gate: metrics of a variant against the Keras model, and the rules they must pass.

Pure numpy, no TensorFlow: the fast suite tests these rules directly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conversion.settings import ConvertSettings
from edge.variants import VariantSpec
from edgeloop.card import GateCheck
from edgeloop.metrics import confusion_matrix, per_class
from edgeloop.stats import PairedDrop, paired_drops


@dataclasses.dataclass(frozen=True)
class Metrics:
    """Classification metrics of one model on the eval split."""

    accuracy: float
    macro_f1: float
    class_recall: dict[str, float]


@dataclasses.dataclass(frozen=True)
class Parity:
    """A variant's metrics and how closely it follows the Keras model."""

    metrics: Metrics
    agreement: float  # share of images whose top-1 equals Keras' top-1
    max_abs_diff: float  # largest |p_variant - p_keras| over images and classes
    n_images: int
    paired: dict[str, PairedDrop] = dataclasses.field(default_factory=dict)  # per class, vs Keras on the same images


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """The parity gate's limits; `ConvertSettings` holds their defaults. Drops are fractions (0.01 = 1 point)."""

    max_f1_drop: float
    max_recall_drop: float
    significance: float  # a recall drop fails only when a paired exact test gives p below this
    min_agreement_quantized: float
    min_agreement_fp32: float
    max_abs_diff_fp32: float

    @classmethod
    def from_settings(cls, settings: ConvertSettings) -> Thresholds:
        """The settings' values of every threshold (each field is named as its setting)."""
        return cls(**{field.name: getattr(settings, field.name) for field in dataclasses.fields(cls)})


def classification_metrics(y_true: NDArray[Any], y_pred: NDArray[Any], labels: Sequence[str]) -> Metrics:
    """Accuracy, macro F1 and per-class recall (`edgeloop.metrics`); classes absent from eval are left out."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"need equal, non-empty label arrays; got {y_true.shape} and {y_pred.shape}")
    _, recall, f1, support = per_class(confusion_matrix(y_true, y_pred, len(labels)))
    present = support > 0  # a class with no eval images has no recall to lose
    return Metrics(
        accuracy=float(np.mean(y_true == y_pred)),
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        class_recall={label: float(recall[i]) for i, label in enumerate(labels) if present[i]},
    )


def parity(probs: NDArray[Any], reference: NDArray[Any], y_true: NDArray[Any], labels: Sequence[str]) -> Parity:
    """Metrics of `probs` and its agreement with the reference (Keras) probabilities."""
    probs = np.asarray(probs, dtype=np.float32)
    reference = np.asarray(reference, dtype=np.float32)
    if probs.shape != reference.shape:
        raise ValueError(f"variant output {probs.shape} does not match the Keras output {reference.shape}")
    top = probs.argmax(axis=1)
    ref_top = reference.argmax(axis=1)
    drops = paired_drops(np.asarray(y_true), top, ref_top, len(labels))
    return Parity(
        metrics=classification_metrics(y_true, top, labels),
        agreement=float(np.mean(top == ref_top)),
        max_abs_diff=float(np.max(np.abs(probs - reference))),
        n_images=int(probs.shape[0]),
        paired={label: d for label, d in zip(labels, drops, strict=True) if d.support},
    )


def is_quantized(spec: VariantSpec) -> bool:
    """fp16 halves the weights, so it is judged like the integer variants."""
    return spec.quantization != "fp32"


def checks(spec: VariantSpec, variant: Parity, keras: Metrics, thresholds: Thresholds) -> list[GateCheck]:
    """Every gate rule for one variant, passed or not."""
    out: list[GateCheck] = []
    f1_drop = keras.macro_f1 - variant.metrics.macro_f1
    out.append(
        GateCheck(
            name="macro_f1_drop",
            value=f1_drop,
            threshold=thresholds.max_f1_drop,
            passed=f1_drop <= thresholds.max_f1_drop + 1e-12,
            detail=f"macro-F1 {variant.metrics.macro_f1:.4f} vs Keras {keras.macro_f1:.4f}: "
            f"drop {100 * f1_drop:.2f} points (max {100 * thresholds.max_f1_drop:.2f})",
        )
    )
    for label, keras_recall in keras.class_recall.items():
        rec = variant.metrics.class_recall.get(label, 0.0)
        drop = keras_recall - rec
        detail = (
            f"recall of {label!r} {rec:.4f} vs Keras {keras_recall:.4f}: "
            f"drop {100 * drop:.2f} points (max {100 * thresholds.max_recall_drop:.2f})"
        )
        passed = drop <= thresholds.max_recall_drop + 1e-12
        paired = variant.paired.get(label)
        if paired is not None and not passed:
            # One photo of 14 is 7 points: a drop only counts when the photos show it is not noise.
            passed = not paired.is_regression(thresholds.max_recall_drop, thresholds.significance)
            detail += f"; {paired.describe(thresholds.significance)}"
        out.append(
            GateCheck(
                name=f"class_recall_drop:{label}",
                value=drop,
                threshold=thresholds.max_recall_drop,
                passed=passed,
                detail=detail,
            )
        )
    min_agreement = thresholds.min_agreement_quantized if is_quantized(spec) else thresholds.min_agreement_fp32
    out.append(
        GateCheck(
            name="top1_agreement",
            value=variant.agreement,
            threshold=min_agreement,
            passed=variant.agreement >= min_agreement - 1e-12,
            detail=f"top-1 agreement with Keras {100 * variant.agreement:.2f}% "
            f"(min {100 * min_agreement:.2f}%) on {variant.n_images} images",
        )
    )
    if not is_quantized(spec):
        out.append(
            GateCheck(
                name="max_abs_diff",
                value=variant.max_abs_diff,
                threshold=thresholds.max_abs_diff_fp32,
                passed=variant.max_abs_diff <= thresholds.max_abs_diff_fp32,
                detail=f"max abs probability difference {variant.max_abs_diff:.2e} (max {thresholds.max_abs_diff_fp32:.0e})",
            )
        )
    return out


def failures(found: Sequence[GateCheck]) -> list[str]:
    """The failed checks in words: which check, value vs threshold."""
    return [f"parity gate failed: {c.detail}" for c in found if not c.passed]
