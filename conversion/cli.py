"""`edgeloop convert`: the CLI face of `conversion.convert`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the `convert` command to the root app."""
    app.command("convert")(convert_command)


def convert_command(
    run: Annotated[str, typer.Option("--run", help="Training run folder (workspace/runs/<run_id>), local or gs://.")],
    variants: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated variants (tflite_fp32, tflite_fp16, tflite_dynamic, tflite_int8, onnx_fp32, onnx_int8) or `all`."
        ),
    ] = None,
    output: Annotated[
        str | None, typer.Option(help="Package folder (default: <workspace>/packages/<model>/<run_id>).")
    ] = None,
    representative_samples: Annotated[
        int | None, typer.Option("--representative-samples", min=1, help="Train images used to calibrate int8.")
    ] = None,
    opset: Annotated[int | None, typer.Option(help="ONNX opset for tf2onnx.")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads for parity and latency.")] = None,
    runs: Annotated[int | None, typer.Option(min=1, help="Timed latency runs per variant.")] = None,
    eval_limit: Annotated[int | None, typer.Option("--eval-limit", min=1, help="Cap on eval images.")] = None,
    ignore_gate: Annotated[
        bool, typer.Option("--ignore-gate", help="Convert even if the run failed its gate (recorded in the card).")
    ] = False,
    allow_select_tf_ops: Annotated[
        bool,
        typer.Option("--allow-select-tf-ops", help="Let TFLite fall back to TF kernels for ops it lacks (needs Flex)."),
    ] = False,
    no_latency: Annotated[bool, typer.Option("--no-latency", help="Skip latency measurement.")] = False,
) -> None:
    """Convert a trained model to every TFLite / ONNX variant, prove each on the eval split, and package it."""
    from conversion.pipeline import ConvertOptions, convert

    result = convert(
        run,
        options=ConvertOptions(
            variants=variants.split(",") if variants else None,
            output=output,
            representative_samples=representative_samples,
            opset=opset,
            threads=threads,
            runs=runs,
            eval_limit=eval_limit,
            ignore_gate=ignore_gate,
            allow_select_tf_ops=allow_select_tf_ops,
            measure_latency=not no_latency,
        ),
    )
    typer.echo(result.table)
    typer.echo(str(Path(result.package_uri)) if "://" not in result.package_uri else result.package_uri)
