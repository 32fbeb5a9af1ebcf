"""`edgeloop ingest`: photos → a new dataset version, with a live status and a summary table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.table import Table

    from .job import IngestResult


def register(app: typer.Typer) -> None:
    """Add the `ingest` command to the root `edgeloop` app."""
    app.command(
        "ingest",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        epilog="Flags not listed here go to Beam untouched, e.g. --runner DataflowRunner --project P --region R "
        "--temp_location gs://B/tmp.",
    )(ingest_command)


def ingest_command(
    ctx: typer.Context,
    input: Annotated[
        str,
        typer.Option(
            "--input", "-i", help="Folder or gs:// prefix, one sub-folder per product; or a .csv/.jsonl of uri,label."
        ),
    ],
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Dataset root (default: <workspace>/datasets).")
    ] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Version to write, e.g. v0003 (default: next free).")
    ] = None,
    previous: Annotated[
        str | None,
        typer.Option("--previous", help="Extend this version incrementally: vNNNN, 'latest', or its folder URI."),
    ] = None,
    max_side: Annotated[
        int | None, typer.Option("--max-side", help="Shrink so the longer side is at most N px.")
    ] = None,
    quality: Annotated[int, typer.Option("--quality", help="JPEG quality when re-encoding.")] = 90,
    min_side: Annotated[int, typer.Option("--min-side", help="Reject photos with a side under N px.")] = 32,
    max_bytes: Annotated[int, typer.Option("--max-bytes", help="Reject files over N bytes.")] = 50 * 1024 * 1024,
    max_pixels: Annotated[int, typer.Option("--max-pixels", help="Reject photos over N pixels.")] = 50_000_000,
    eval_fraction: Annotated[float, typer.Option("--eval-fraction", help="Share of photos in eval.")] = 0.2,
    test_fraction: Annotated[float, typer.Option("--test-fraction", help="Share of photos in test.")] = 0.0,
    min_per_class: Annotated[int, typer.Option("--min-per-class", help="Warn about products with fewer photos.")] = 10,
    shard_mb: Annotated[int, typer.Option("--shard-mb", help="Target shard size in MiB.")] = 128,
    min_shards: Annotated[
        int | None, typer.Option("--min-shards", help="At least N shards (default: 8 per local worker).")
    ] = None,
    runner: Annotated[str, typer.Option("--runner", help="Beam runner.")] = "DirectRunner",
    workers: Annotated[int, typer.Option("--workers", help="DirectRunner worker processes.")] = 2,
    running_mode: Annotated[
        str, typer.Option("--running-mode", help="DirectRunner mode: multi_processing, multi_threading or in_memory.")
    ] = "multi_processing",
    warehouse: Annotated[
        str | None, typer.Option("--warehouse", help="Warehouse URL (default: from settings).")
    ] = None,
    record: Annotated[bool, typer.Option("--warehouse-rows/--no-warehouse", help="Write warehouse rows.")] = True,
) -> None:
    """Validate, dedupe, split and shard product photos into gzip TFRecords plus dataset.json."""
    from rich.console import Console

    from edgeloop.settings import get_settings

    from .job import ingest
    from .options import build

    console = Console(stderr=True)
    options = build(
        input=input,
        output=output or str(get_settings().path("datasets")),
        dataset_version=version,
        previous=previous,
        max_side=max_side,
        jpeg_quality=quality,
        min_side=min_side,
        max_bytes=max_bytes,
        max_pixels=max_pixels,
        eval_fraction=eval_fraction,
        test_fraction=test_fraction,
        min_per_class=min_per_class,
        shard_mb=shard_mb,
        min_shards=min_shards,
        runner=runner,
        num_workers=workers,
        running_mode=running_mode,
        warehouse=warehouse,
        record=record,
        beam_args=tuple(ctx.args),
    )
    with console.status(f"ingesting {options.input} → {options.output} ({options.runner})"):
        result = ingest(options)
    console.print(summary_table(result))
    if result.new_classes:
        console.print(f"new products: {', '.join(result.new_classes)}", highlight=False)
    if result.warehouse_error:
        console.print(f"[yellow]warehouse rows not written:[/] {result.warehouse_error}", highlight=False)
    typer.echo(result.dataset_json)


def summary_table(result: IngestResult) -> Table:
    """A Rich table of what one ingest run did."""
    from rich.table import Table

    c = result.counts
    verb = "wrote" if result.created else "unchanged:"
    table = Table(title=f"{verb} {result.dataset_version} ({result.num_classes} products)", title_justify="left")
    table.add_column("files")
    table.add_column("count", justify="right")
    rows = [
        ("listed", c.listed),
        ("already in parent", c.known),
        ("input (this run)", c.input),
        ("written", c.written),
        ("duplicates", c.duplicates),
        ("conflicts", c.conflicts),
        ("dead letters", c.dead_letters),
    ]
    rows += [(f"  {reason}", n) for reason, n in c.dead_letter_reasons.items()]
    rows += [(f"examples in {split}", n) for split, n in result.examples.items()]
    for name, value in rows:
        table.add_row(name, str(value))
    return table
