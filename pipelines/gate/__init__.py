"""The gate: may this model go on? Thresholds plus "no regression against production", with reasons.

    from pipelines.gate import GateSettings, gate

    report = gate("workspace/runs/<id>", baseline="workspace/runs/<production id>")
    report.verdict, [c.detail for c in report.checks if not c.passed]

Also: `edgeloop gate RUN_DIR [--baseline …] [--force --reason …]` (exit 0 pass, 1 fail).
Importing this package does not import TensorFlow.
"""

from __future__ import annotations

from typing import Any

from edgeloop.card import GateCheck, GateReport

from .checks import absolute_checks, decide, regression_checks
from .errors import GateError
from .settings import GateSettings, get_gate_settings


def gate(run_dir: str, baseline: str | None = None, settings: GateSettings | None = None, **kwargs: Any) -> GateReport:
    """Judge a training run (see `pipelines.gate.core.gate`)."""
    from .core import gate as _gate

    return _gate(run_dir, baseline, settings, **kwargs)


__all__ = [
    "GateCheck",
    "GateError",
    "GateReport",
    "GateSettings",
    "absolute_checks",
    "decide",
    "gate",
    "get_gate_settings",
    "regression_checks",
]
