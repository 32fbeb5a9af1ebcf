"""Evaluation metrics from predicted probabilities: pure numpy, shared by training, the gate and conversion.

Macro averages are taken over the classes that have eval examples (`support > 0`); a
class the model never predicts gets precision 0, not NaN, so averages stay defined.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

FloatArray = npt.NDArray[np.floating]
IntArray = npt.NDArray[np.integer]


class ClassMetrics(BaseModel):
    label: str
    index: int
    precision: float
    recall: float
    f1: float
    support: int


class EvalReport(BaseModel):
    """How a model did on one eval split."""

    examples: int
    accuracy: float
    top3_accuracy: float
    macro_f1: float
    ece: float = Field(description="Expected calibration error (15 equal-width confidence bins).")
    labels: list[str]
    classes: list[ClassMetrics]
    confusion: list[list[int]] = Field(description="Rows: true class, columns: predicted class.")

    def recall_of(self, label: str) -> float:
        return next(c.recall for c in self.classes if c.label == label)


def confusion_matrix(y_true: IntArray, y_pred: IntArray, n_classes: int) -> IntArray:
    """Counts of (true, predicted) pairs."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def per_class(cm: IntArray) -> tuple[FloatArray, FloatArray, FloatArray, IntArray]:
    """Precision, recall, F1 and support per class from a confusion matrix."""
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    support = cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return precision, recall, f1, support


def macro_f1(y_true: IntArray, y_pred: IntArray, n_classes: int, classes: Sequence[int] | None = None) -> float:
    """Mean F1 over `classes` (default: every class with eval examples)."""
    _, _, f1, support = per_class(confusion_matrix(y_true, y_pred, n_classes))
    idx = np.asarray(classes if classes is not None else np.flatnonzero(support > 0), dtype=np.int64)
    return float(f1[idx].mean()) if idx.size else 0.0


def top_k_accuracy(probs: FloatArray, y_true: IntArray, k: int) -> float:
    if len(y_true) == 0:
        return 0.0
    k = min(k, probs.shape[1])
    top = np.argpartition(-probs, k - 1, axis=1)[:, :k]
    return float(np.mean(np.any(top == np.asarray(y_true)[:, None], axis=1)))


def expected_calibration_error(probs: FloatArray, y_true: IntArray, bins: int = 15) -> float:
    """Support-weighted gap between confidence and accuracy over equal-width confidence bins."""
    if len(y_true) == 0:
        return 0.0
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(y_true)
    # Bin i holds confidences in (i/bins, (i+1)/bins]; a confidence of exactly 0 joins bin 0.
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(float(correct[mask].mean()) - float(confidence[mask].mean()))
    return float(ece)


def evaluate(probs: FloatArray, y_true: IntArray, labels: Sequence[str]) -> EvalReport:
    """Every eval metric from an N×C probability matrix and N true class indices."""
    probs = np.asarray(probs, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64)
    n = len(labels)
    if probs.ndim != 2 or probs.shape[1] != n or probs.shape[0] != y_true.shape[0]:
        raise ValueError(f"probabilities of shape {probs.shape} do not match {y_true.shape[0]} examples × {n} labels")
    y_pred = probs.argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred, n)
    precision, recall, f1, support = per_class(cm)
    present = support > 0
    return EvalReport(
        examples=int(y_true.shape[0]),
        accuracy=float(np.mean(y_pred == y_true)) if y_true.size else 0.0,
        top3_accuracy=top_k_accuracy(probs, y_true, 3),
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        ece=expected_calibration_error(probs, y_true),
        labels=list(labels),
        classes=[
            ClassMetrics(
                label=label,
                index=i,
                precision=float(precision[i]),
                recall=float(recall[i]),
                f1=float(f1[i]),
                support=int(support[i]),
            )
            for i, label in enumerate(labels)
        ],
        confusion=cm.tolist(),
    )


def confusion_png(report: EvalReport, *, cell: int = 18, label_width: int = 150) -> bytes:
    """The confusion matrix as a PNG heat map (row-normalised), drawn with Pillow."""
    import io

    from PIL import Image, ImageDraw, ImageFont

    cm = np.asarray(report.confusion, dtype=np.float64)
    n = cm.shape[0]
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    top = 24
    width, height = label_width + n * cell + 8, top + n * cell + 8
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    draw.text(
        (4, 4),
        f"confusion (rows = true), acc {report.accuracy:.3f}, macro F1 {report.macro_f1:.3f}",
        fill="black",
        font=font,
    )
    for i in range(n):
        draw.text((4, top + i * cell + 3), report.labels[i][:24], fill="black", font=font)
        for j in range(n):
            v = norm[i, j]
            # Diagonal in blue shades, errors in red, so mistakes stand out at a glance.
            shade = int(255 * (1 - v))
            color = (shade, shade, 255) if i == j else (255, shade, shade)
            x0, y0 = label_width + j * cell, top + i * cell
            draw.rectangle((x0, y0, x0 + cell - 1, y0 + cell - 1), fill=color, outline=(220, 220, 220))
            if cm[i, j] and cell >= 16:
                draw.text((x0 + 2, y0 + 3), str(int(cm[i, j])), fill="black" if v < 0.6 else "white", font=font)
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()
