"""Jinja filters of the console: how times, sizes and ratios read on a page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any


def when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def size(value: int | None) -> str:
    if value is None:
        return "—"
    amount = float(value)
    for unit in ("B", "KiB", "MiB"):
        if amount < 1024 or unit == "MiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GiB"


def ratio(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} ms"


def drift(psi: float | None) -> str:
    """The usual reading of a PSI (release health rolls back above its `max_psi`, 0.25 by default)."""
    if psi is None:
        return "—"
    return "stable" if psi < 0.1 else ("drifting" if psi <= 0.25 else "shifted")


FILTERS: dict[str, Callable[..., Any]] = {"when": when, "size": size, "ratio": ratio, "ms": ms, "drift": drift}
