"""`edgeloop gate`'s output at 80 columns: the verdict, the failed checks, a count of the rest; --all for every check."""

from __future__ import annotations

import io

import typer
from rich.console import Console
from typer.testing import CliRunner

from edgeloop.card import GateCheck, GateReport
from pipelines.gate.show import print_report

CLASSES = [f"product-{i:02d}-with-a-long-catalogue-name" for i in range(21)]


def report(*, failing: int = 0, verdict: str | None = None) -> GateReport:
    """45 checks, as the demo's 21-product gate has: two floors, 21 recalls, macro F1 and 21 recalls vs production."""
    checks = [
        GateCheck(name="min_accuracy", threshold=0.8, value=0.95, passed=True, detail="accuracy 0.950 meets 0.800"),
        GateCheck(name="min_macro_f1", threshold=0.8, value=0.94, passed=True, detail="macro F1 0.940 meets 0.800"),
    ]
    checks += [
        GateCheck(
            name=f"min_class_recall:{c}",
            threshold=0.5,
            value=0.9,
            passed=True,
            detail=f"recall of {c} (12 eval photos) 0.900 meets the minimum 0.500",
        )
        for c in CLASSES
    ]
    checks.append(GateCheck(name="no_regression:macro_f1", threshold=0.02, value=0.0, passed=True, detail="no drop"))
    checks += [
        GateCheck(
            name=f"no_regression:recall:{c}",
            threshold=0.1,
            value=0.9 if i >= failing else 0.2,
            passed=i >= failing,
            detail=(
                f"recall of {c} 0.900 vs 0.900 for baseline 1"
                if i >= failing
                else f"recall of {c} fell from 0.900 to 0.200 (p = 0.001 < 0.05) against baseline 1"
            ),
        )
        for i, c in enumerate(CLASSES)
    ]
    assert len(checks) == 45
    return GateReport(
        verdict=verdict or ("fail" if failing else "pass"),
        checks=checks,
        baseline="runs/base",
        notes=["regression measured on 252 eval photos of 21 shared classes"],
    )


def cli(shown: GateReport) -> typer.Typer:
    """A root app whose `gate` prints `shown` as the real command does, exiting 1 on fail."""
    app = typer.Typer()

    @app.callback()
    def _root() -> None: ...

    @app.command("gate")
    def _gate(run_dir: str, all_checks: bool = typer.Option(False, "--all")) -> None:
        print_report(shown, run_dir, Console(), all_checks=all_checks)
        if shown.verdict == "fail":
            raise SystemExit(1)

    return app


def show(shown: GateReport, *args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli(shown), ["gate", "workspace/runs/v0002-abc", *args], env={"COLUMNS": "80"})
    return result.exit_code, result.output.splitlines()


def test_a_pass_prints_the_verdict_and_one_line_for_the_rest() -> None:
    code, lines = show(report())
    assert code == 0
    assert lines[0] == "verdict: pass for workspace/runs/v0002-abc: 0 of 45 checks failed"
    assert lines[1:] == [
        "✓ all 45 checks passed (--all lists every check)",
        "note: regression measured on 252 eval photos of 21 shared classes",
    ]


def test_a_fail_prints_the_verdict_then_each_failed_check_with_its_reason() -> None:
    code, lines = show(report(failing=2))
    assert code == 1
    assert lines[0] == "verdict: fail for workspace/runs/v0002-abc: 2 of 45 checks failed"
    text = " ".join(line.strip() for line in lines)  # Rich wraps long names: read it unwrapped
    assert sum(line.startswith("✗ ") for line in lines) == 2
    assert all(f"✗ no_regression:recall:{c} recall of {c} fell from" in text for c in CLASSES[:2])
    assert text.count("fell from 0.900 to 0.200") == 2
    assert "✓ 43 other checks passed (--all lists every check)" in lines
    assert not any("min_class_recall" in line for line in lines)
    assert max(len(line) for line in lines) <= 80


def test_all_prints_every_check_in_80_columns() -> None:
    code, lines = show(report(failing=1), "--all")
    assert code == 1
    text = "\n".join(lines)
    assert all(f"min_class_recall:{c}" in text or c[:40] in text for c in CLASSES)
    assert text.count("FAIL") == 1 and text.count("pass") >= 44
    assert max(len(line) for line in lines) <= 80


def test_a_forced_report_says_who_forced_it_and_why() -> None:
    forced = report(failing=1, verdict="forced").model_copy(update={"forced_by": "qa-lead", "forced_reason": "demo"})
    buffer = io.StringIO()
    print_report(forced, "runs/x", Console(file=buffer, width=80))
    lines = buffer.getvalue().splitlines()
    assert lines[:2] == ["verdict: forced for runs/x: 1 of 45 checks failed", "forced by qa-lead: demo"]
