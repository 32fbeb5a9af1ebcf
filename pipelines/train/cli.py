"""`edgeloop train`: one training run from the command line, with a per-epoch progress display."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from edgeloop.settings import DEFAULT_MODEL


def register(app: typer.Typer) -> None:
    """Add `train` to the root CLI (entry point `edgeloop.cli: train`)."""
    app.command("train")(train_command)


def train_command(
    dataset: Annotated[
        str, typer.Option("--dataset", "-d", help="Dataset version folder, e.g. workspace/datasets/v0001.")
    ],
    warm_start: Annotated[
        str | None, typer.Option("--warm-start", help="Earlier run folder (workspace/runs/<id>) to start from.")
    ] = None,
    weights: Annotated[
        str, typer.Option(help="Backbone init without --warm-start: none, imagenet (downloads), or a weights file.")
    ] = "none",
    alpha: Annotated[float | None, typer.Option(help="MobileNetV2 width: 0.35, 0.5, 0.75 or 1.0.")] = None,
    size: Annotated[int | None, typer.Option(help="Input side in pixels (96-224).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs of the main phase (from scratch or fine-tune).")] = None,
    warm_start_epochs: Annotated[
        int | None, typer.Option("--warm-start-epochs", help="Whole-network epochs after the head, with --warm-start.")
    ] = None,
    head_epochs: Annotated[
        int | None, typer.Option("--head-epochs", help="Frozen-backbone epochs (pretrained).")
    ] = None,
    fine_tune_layers: Annotated[
        int | None, typer.Option("--fine-tune-layers", help="Top backbone layers to fine-tune (0 = all).")
    ] = None,
    learning_rate: Annotated[float | None, typer.Option("--learning-rate", help="Main-phase learning rate.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (same seed + data = same metrics).")] = None,
    threads: Annotated[int | None, typer.Option(help="TensorFlow intra-op threads (0 = all cores).")] = None,
    no_augment: Annotated[bool, typer.Option("--no-augment", help="Switch training-time augmentation off.")] = False,
    allow_removed_classes: Annotated[
        bool, typer.Option("--allow-removed-classes", help="Accept a dataset that lost classes the parent knew.")
    ] = False,
    model_name: Annotated[str, typer.Option("--model-name", help="Model name on the card.")] = DEFAULT_MODEL,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Run id to use (default: a new one).")] = None,
) -> None:
    """Train a product classifier (MobileNetV2 transfer learning) and record it in the warehouse."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pipelines.train.core import train
    from pipelines.train.options import EpochRecord, TrainOptions
    from pipelines.train.settings import get_train_settings

    base = get_train_settings()
    overrides: dict[str, Any] = {
        k: v
        for k, v in {
            "alpha": alpha,
            "size": size,
            "epochs": epochs,
            "warm_start_epochs": warm_start_epochs,
            "head_epochs": head_epochs,
            "fine_tune_layers": fine_tune_layers,
            "learning_rate": learning_rate,
            "batch_size": batch_size,
            "seed": seed,
            "threads": threads,
        }.items()
        if v is not None
    }
    if no_augment:
        overrides["augment"] = base.augment.model_copy(update={"enabled": False})
    # Validate overrides like environment values: one readable error, not a traceback.
    settings = type(base).model_validate({**base.model_dump(), **overrides})
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[metrics]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        tasks: dict[str, Any] = {}

        def on_epoch(record: EpochRecord, total: int) -> None:
            if record.phase not in tasks:
                tasks[record.phase] = progress.add_task(record.phase, total=total, metrics="")
            f1 = f"{record.val_macro_f1:.3f}" if record.val_macro_f1 is not None else "-"
            loss = f"{record.loss:.3f}" if record.loss is not None else "NaN"
            progress.update(tasks[record.phase], completed=record.epoch, metrics=f"loss {loss}  eval macro F1 {f1}")

        result = train(
            TrainOptions(
                dataset=dataset,
                warm_start=warm_start,
                weights=weights,
                allow_removed_classes=allow_removed_classes,
                model_name=model_name,
                run_id=run_id,
                settings=settings,
                progress=on_epoch,
            )
        )
    console.print(
        f"[green]run {result.run_id}[/]: accuracy {result.eval.accuracy:.3f}, macro F1 {result.eval.macro_f1:.3f}, "
        f"top-3 {result.eval.top3_accuracy:.3f}, ECE {result.eval.ece:.3f} in {result.duration_s:.0f} s"
    )
    typer.echo(result.run_dir)
