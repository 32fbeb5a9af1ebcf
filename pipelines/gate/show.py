"""The gate report as a person reads it on an 80-column terminal.

By default: the verdict, each failed check with its reason, and one line counting the rest
(a report has one check per class, so 45 checks are common). `--all` prints every check.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from edgeloop.card import GateCheck, GateReport

_COLOUR = {"pass": "green", "forced": "yellow"}


def print_report(report: GateReport, run_dir: str, console: Console, *, all_checks: bool = False) -> None:
    """Print the verdict first, then the failed checks (every check with `all_checks`), then the notes."""
    failed = [c for c in report.checks if not c.passed]
    colour = _COLOUR.get(report.verdict, "red")
    console.print(
        f"verdict: [bold {colour}]{report.verdict}[/] for {run_dir}: "
        f"{len(failed)} of {len(report.checks)} checks failed",
        highlight=False,
    )
    if report.forced_by:
        console.print(f"forced by {report.forced_by}: {report.forced_reason}", highlight=False)
    if all_checks:
        console.print(_table(report.checks))
    else:
        for check in failed:
            console.print(f"[red]✗[/] [bold]{check.name}[/]", highlight=False)
            console.print(Padding(Text(check.detail or _numbers(check)), (0, 0, 0, 2)))  # the reason, indented
        rest = len(report.checks) - len(failed)
        if rest:
            passed = f"{rest} other checks passed" if failed else f"all {rest} checks passed"
            console.print(f"[green]✓[/] {passed} (--all lists every check)", highlight=False)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False)


def _numbers(check: GateCheck) -> str:
    value = "no value" if check.value is None else f"value {check.value:.3f}"
    return value + ("" if check.threshold is None else f", threshold {check.threshold:.3f}")


def _table(checks: list[GateCheck]) -> Table:
    # The reason goes under the check's name: a fifth column would leave each a dozen characters at 80.
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("check (reason)", ratio=1, overflow="fold")
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("threshold", justify="right", no_wrap=True)
    table.add_column("result", no_wrap=True)
    for c in checks:
        table.add_row(
            f"{c.name}\n[dim]{c.detail}[/]" if c.detail else c.name,
            "" if c.value is None else f"{c.value:.3f}",
            "" if c.threshold is None else f"{c.threshold:.3f}",
            "[green]pass[/]" if c.passed else "[red]FAIL[/]",
        )
    return table
