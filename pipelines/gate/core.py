"""`gate(run_dir, baseline=None, settings) -> GateReport`: may this model go on to conversion?

Both models are run on the same eval examples (the candidate's dataset version, read
through `edgeloop.examples`), so the regression check compares like with like even
when the baseline was trained on an older, smaller catalogue. The report goes into the
run's gate.json and model_card.json and, one row per check, into gate_results.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import os
from typing import Any

import numpy as np

from edgeloop import storage, warehouse
from edgeloop import tables as t
from edgeloop.card import GateReport, ModelCard, write_card
from edgeloop.errors import CardError
from edgeloop.examples import split_arrays
from edgeloop.metrics import evaluate
from edgeloop.runs import RunFolder, RunFolderError, load_model, model_and_card, predict
from pipelines.gate.checks import NO_BASELINE_NOTE, absolute_checks, decide, regression_checks
from pipelines.gate.errors import GateError
from pipelines.gate.settings import GateSettings, get_gate_settings

log = logging.getLogger(__name__)


def default_forced_by() -> str:
    """Who is forcing: $USER, else the login name."""
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _model_and_card(uri: str, role: str) -> tuple[str, ModelCard]:
    try:
        return model_and_card(uri, role)
    except (RunFolderError, CardError) as exc:
        raise GateError(str(exc)) from None


def gate(
    run_dir: str,
    baseline: str | None = None,
    settings: GateSettings | None = None,
    *,
    force: bool = False,
    forced_by: str | None = None,
    reason: str | None = None,
    warehouse_url: str | None = None,
) -> GateReport:
    """Judge a training run; writes gate.json, the card's `gate` and gate_results rows."""

    s = settings or get_gate_settings()
    if force and not (reason or "").strip():
        raise GateError("--force needs --reason 'why this model may go on anyway'; the reason is recorded")
    forced_by = (forced_by or default_forced_by()) if force else None
    run_dir = str(run_dir).rstrip("/")
    model_uri, card = _model_and_card(run_dir, "run")
    dataset_uri = card.lineage.dataset_uri
    if not dataset_uri:
        raise GateError(
            f"the card of {run_dir!r} names no dataset_uri; the gate needs the eval split it was trained on"
        )
    size = (card.input.height, card.input.width)
    images, y_true, labels = split_arrays(dataset_uri, "eval", size)
    if labels != card.labels:
        raise GateError(f"dataset {dataset_uri!r} no longer has the label map of {run_dir!r}; was it rewritten?")
    candidate_probs = predict(load_model(model_uri), images)
    report = evaluate(candidate_probs, y_true, labels)
    checks = absolute_checks(report, s)
    notes: list[str] = []
    if baseline is None:
        notes.append(NO_BASELINE_NOTE)
    else:
        base_model_uri, base_card = _model_and_card(baseline, "baseline")
        base_size = (base_card.input.height, base_card.input.width)
        base_images = images
        if base_size != size:
            base_images, base_y, _ = split_arrays(dataset_uri, "eval", base_size)
            if not np.array_equal(base_y, y_true):
                raise GateError("eval examples differ between input sizes; the dataset changed while gating")
        baseline_probs = predict(load_model(base_model_uri), base_images)
        more, more_notes = regression_checks(
            candidate_probs,
            labels,
            baseline_probs,
            base_card.labels,
            y_true,
            s,
            baseline_name=f"baseline {base_card.version}",
        )
        checks += more
        notes += more_notes
    result = decide(checks, notes, baseline=baseline, force=force, forced_by=forced_by, reason=reason)
    _record(run_dir, card, result, warehouse_url)
    log.info(
        "gate %s: %s (%d checks, %d failed)",
        card.version,
        result.verdict,
        len(checks),
        sum(not c.passed for c in checks),
    )
    return result


def _record(run_dir: str, card: ModelCard, result: GateReport, warehouse_url: str | None) -> None:
    storage.write_text(RunFolder(run_dir).gate, result.model_dump_json(indent=2) + "\n")
    write_card(run_dir, card.model_copy(update={"gate": result}))
    at = dt.datetime.now(dt.UTC)
    rows: list[dict[str, Any]] = [
        {
            "run_id": card.lineage.run_id,
            "check_name": c.name,
            "threshold": c.threshold,
            "value": c.value,
            "passed": c.passed,
            "detail": c.detail,
            "verdict": result.verdict,
            "baseline": result.baseline,
            "forced_by": result.forced_by,
            "forced_reason": result.forced_reason,
            "evaluated_at": at,
        }
        for c in result.checks
    ]
    with warehouse.connect(warehouse_url) as wh:
        # A re-gate replaces the run's checks: a different baseline can mean different check names.
        wh.query(f"DELETE FROM {t.GATE_RESULTS.name} WHERE run_id = ?", [card.lineage.run_id])
        wh.upsert(t.GATE_RESULTS, rows)
