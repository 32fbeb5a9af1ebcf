"""`edgeloop gate`: judge a training run, print the verdict and the failed checks, exit 0 on pass and 1 on fail."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add `gate` to the root CLI (entry point `edgeloop.cli: gate`)."""
    app.command("gate")(gate_command)


def gate_command(
    run_dir: Annotated[str, typer.Argument(help="The run folder to judge, e.g. workspace/runs/<id>.")],
    baseline: Annotated[
        str | None,
        typer.Option("--baseline", help="The production model: a run or package folder holding model.keras."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Let a failing model through, on record.")] = False,
    forced_by: Annotated[str | None, typer.Option("--forced-by", help="Who forces (default: $USER).")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (required with --force).")] = None,
    min_accuracy: Annotated[float | None, typer.Option("--min-accuracy")] = None,
    min_macro_f1: Annotated[float | None, typer.Option("--min-macro-f1")] = None,
    min_class_recall: Annotated[float | None, typer.Option("--min-class-recall")] = None,
    max_macro_f1_drop: Annotated[float | None, typer.Option("--max-macro-f1-drop")] = None,
    max_class_recall_drop: Annotated[float | None, typer.Option("--max-class-recall-drop")] = None,
    significance: Annotated[
        float | None,
        typer.Option("--significance", help="p below which a per-class drop beyond the tolerance is real."),
    ] = None,
    all_checks: Annotated[
        bool, typer.Option("--all", help="Print every check, not only the failed ones and a count.")
    ] = False,
) -> None:
    """Check a model against thresholds and against production; exit code 1 when it fails."""
    from rich.console import Console

    from pipelines.gate.core import gate
    from pipelines.gate.settings import get_gate_settings
    from pipelines.gate.show import print_report

    base = get_gate_settings()
    overrides = {
        k: v
        for k, v in {
            "min_accuracy": min_accuracy,
            "min_macro_f1": min_macro_f1,
            "min_class_recall": min_class_recall,
            "max_macro_f1_drop": max_macro_f1_drop,
            "max_class_recall_drop": max_class_recall_drop,
            "significance": significance,
        }.items()
        if v is not None
    }
    settings = type(base).model_validate({**base.model_dump(), **overrides})
    report = gate(run_dir, baseline, settings, force=force, forced_by=forced_by, reason=reason)

    print_report(report, run_dir, Console(), all_checks=all_checks)
    if report.verdict == "fail":
        # SystemExit, not typer.Exit: the root CLI runs Typer non-standalone, which would swallow Exit's code.
        raise SystemExit(1)
