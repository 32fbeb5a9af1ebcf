"""Warehouse rows of a training run (natural keys, so re-writing a run replaces its rows)."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgeloop.metrics import EvalReport
from pipelines.train.options import EpochRecord


def code_commit() -> str | None:
    """`git rev-parse HEAD` of the checkout this code runs from, or None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) == 40 else None


def epoch_rows(run_id: str, history: Sequence[EpochRecord], at: dt.datetime) -> list[dict[str, Any]]:
    return [{"run_id": run_id, "recorded_at": at, **h.model_dump()} for h in history]


def class_rows(run_id: str, report: EvalReport, at: dt.datetime) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_id,
            "label": c.label,
            "label_index": c.index,
            "precision": c.precision,
            "recall": c.recall,
            "f1": c.f1,
            "support": c.support,
            "recorded_at": at,
        }
        for c in report.classes
    ]
