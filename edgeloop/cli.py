"""The `edgeloop` command.

The kernel never imports a stage: each stage contributes its sub-commands through the
`edgeloop.cli` entry-point group (a function taking the root Typer app), so a device
that installs only `edgeloop[edge]` gets only the commands it can run.
"""

from __future__ import annotations

import logging
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from edgeloop.errors import EdgeloopError

log = logging.getLogger("edgeloop")
console = Console(stderr=True)

# `edgeloop --help` reads in the order of the loop. Stages register their own commands (the
# kernel imports none of them), so the kernel only says where each name goes; a command not
# listed here still works and shows under "More".
LOOP: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("1. Photos → dataset", ("data", "ingest")),
    ("2. Train and gate", ("train", "gate")),
    ("3. Convert", ("convert",)),
    ("4. Publish and serve", ("serve", "publish", "keys", "registry")),
    ("5. Release", ("models", "versions", "alias", "rollback", "audit")),
    ("6. Devices", ("bench",)),
    ("7. Monitor", ("telemetry", "sql")),
    ("The whole loop on synthetic photos", ("demo",)),
)
MORE = "More"
_RANK = {name: rank for rank, name in enumerate(name for _, names in LOOP for name in names)}
_PANEL = {name: panel for panel, names in LOOP for name in names}


class _LoopOrder(TyperGroup):
    """Lists sub-commands in the loop's order rather than in the order plugins registered them."""

    def list_commands(self, ctx: Any) -> list[str]:  # Any: typer vendors click, its Context is private
        return sorted(super().list_commands(ctx), key=lambda name: _RANK.get(name, len(_RANK)))


app = typer.Typer(
    cls=_LoopOrder,
    name="edgeloop",
    help=(
        "Keep on-device image classifiers current: photos in, signed quantized models out to devices, "
        "telemetry back. Settings come from EDGELOOP_* variables or a .env file."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Product photos: generate a synthetic catalogue for demos and tests.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@app.callback()
def _root(
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level",
            help="DEBUG, INFO, WARNING or ERROR; DEBUG also shows TensorFlow's and Beam's start-up chatter.",
        ),
    ] = None,
) -> None:
    from edgeloop.quiet import quiet
    from edgeloop.settings import get_settings, setup_logging

    level = log_level or get_settings().log_level
    setup_logging(level)
    quiet(level)  # before any command imports TensorFlow


@data_app.command("synth")
def synth(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write class-per-folder JPEGs into.")] = Path(
        "workspace/photos"
    ),
    products: Annotated[int, typer.Option(help="Number of products in the catalogue.", min=1)] = 20,
    images: Annotated[int, typer.Option(help="Photos per product.", min=1)] = 60,
    size: Annotated[int, typer.Option(help="Photo side in pixels.", min=32)] = 256,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same bytes.")] = 0,
    difficulty: Annotated[
        float, typer.Option(help="0 = easy to tell apart, 1 = near-identical products.", min=0.0, max=1.0)
    ] = 0.3,
    add_products: Annotated[
        int, typer.Option("--add-products", help="Append N new products to an existing folder.", min=0)
    ] = 0,
    plant_bad: Annotated[
        bool,
        typer.Option("--plant-bad", help="Also plant corrupt, truncated, CMYK, huge, rotated and duplicate files."),
    ] = False,
) -> None:
    """Generate deterministic photos of unpackaged products (soaps, bath bombs, bottles)."""
    from rich.progress import Progress

    from edgeloop import synth as synth_mod

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("rendering photos", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = synth_mod.generate(
            output,
            n_products=products,
            images_per_product=images,
            size=size,
            seed=seed,
            difficulty=difficulty,
            add_products=add_products,
            plant_bad=plant_bad,
            progress=advance,
        )
    console.print(
        f"[green]wrote[/] {report.images_written} photos of {len(report.products)} products to {output}"
        + (f" ({len(report.new_products)} new)" if report.new_products else "")
        + (f", planted {len(report.planted)} test files" if report.planted else "")
    )
    typer.echo(str(output))


@app.command("sql")
def sql(
    query: Annotated[str, typer.Argument(help='SQL to run, e.g. "SELECT * FROM v_best_run_per_dataset".')],
    output_format: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    warehouse: Annotated[
        str | None, typer.Option(help="Warehouse URL (default: EDGELOOP_WAREHOUSE or the workspace DuckDB file).")
    ] = None,
) -> None:
    """Query the metrics warehouse (DuckDB or BigQuery) in SQL. Tables and views: `edgeloop sql "SHOW TABLES"` on DuckDB."""
    from edgeloop import warehouse as wh_mod
    from edgeloop.render import print_rows

    if output_format not in ("table", "json", "csv"):
        raise EdgeloopError(f"unknown --format {output_format!r}; use table, json or csv")
    # Read-only: a query needs neither DuckDB's write lock (it runs beside the console and other readers,
    # and on a read-only file) nor BigQuery edit rights.
    with wh_mod.connect(warehouse, read_only=True) as wh:
        rows = wh.query(query)
    print_rows(rows, output_format)


def _demo_command() -> None:
    from edgeloop.demo import demo

    app.command("demo")(demo)


def _load_plugins() -> None:
    for ep in sorted(entry_points(group="edgeloop.cli"), key=lambda e: e.name):
        try:
            register = ep.load()
        except ImportError as exc:
            # A stage whose extra is not installed simply has no command here.
            log.debug("command group %s unavailable: %s", ep.name, exc)
            continue
        register(app)


def _arrange() -> None:
    """Put every registered command and group in its loop panel (`LOOP`)."""
    for command in app.registered_commands:
        command.rich_help_panel = _PANEL.get(command.name or "", MORE)
    for group in app.registered_groups:
        group.rich_help_panel = _PANEL.get(group.name if isinstance(group.name, str) else "", MORE)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; a user mistake prints one line, not a traceback."""
    _demo_command()
    _load_plugins()
    _arrange()
    try:
        app(args=argv, standalone_mode=False)
    except EdgeloopError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        return 2
    except typer.Abort:
        console.print("aborted")
        return 130
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int) else 1
    except Exception as exc:
        # Usage errors arrive here in non-standalone mode; typer may vendor its own click,
        # so recognise them by shape rather than by class.
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            return code
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
