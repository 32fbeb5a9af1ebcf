"""Printing rows for people (Rich tables) and for programs (JSON, CSV)."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


def print_rows(rows: Sequence[Mapping[str, Any]], output_format: str = "table", title: str | None = None) -> None:
    """Print rows as a Rich table, JSON lines-free array, or CSV on standard output."""
    if output_format == "json":
        sys.stdout.write(json.dumps(list(rows), default=str, indent=2) + "\n")
        return
    columns = list(rows[0].keys()) if rows else []
    if output_format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        return
    table = Table(title=title, show_lines=False)
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row[c]) for c in columns))
    Console().print(table)
    if not rows:
        Console(stderr=True).print("(no rows)")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
