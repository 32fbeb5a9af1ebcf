"""`python -m sample_app run|classify|status`: a small kiosk app built only on `edge/`."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

import edge
from edge import DeviceInfo, UpdateMode, persistent_device_id
from edge.cli import default_device_class
from sample_app.app import AppOptions, list_photos, run, status

cli = typer.Typer(
    name="sample_app",
    help="Classify product photos with a model kept current from an edgeloop registry.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(soft_wrap=True)  # one line per photo, even when piped

Store = Annotated[Path, typer.Option("--store", help="Where models, telemetry and the device id live.")]


def parse_keys(values: list[str] | None) -> dict[str, str]:
    keys = {}
    for value in values or []:
        key_id, sep, key = value.partition("=")
        if not sep or not key_id or not key:
            raise typer.BadParameter(f"{value!r}: use KEY_ID=BASE64 (from GET /v1/keys)")
        keys[key_id] = key
    return keys


@cli.callback()
def _root(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log the SDK's decisions.")] = False) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@cli.command("run")
def run_command(
    registry: Annotated[str, typer.Option(envvar="EDGELOOP_REGISTRY_URL", help="Registry base URL.")],
    model: Annotated[str, typer.Option(help="Model name in the registry.")] = "shelf-products",
    photos: Annotated[Path | None, typer.Option(help="Folder of photos to classify (class sub-folders ok).")] = None,
    camera: Annotated[bool, typer.Option(help="Use the first camera if there is one (needs OpenCV).")] = False,
    api_key: Annotated[
        str | None, typer.Option(envvar="EDGELOOP_API_KEY", help="A registry key with role device.")
    ] = None,
    public_key: Annotated[list[str] | None, typer.Option(help="Pinned signing key KEY_ID=BASE64 (repeatable).")] = None,
    trust_registry_keys: Annotated[
        bool, typer.Option(help="On first run, pin the keys the registry lists (trust on first use).")
    ] = False,
    alias: Annotated[str, typer.Option(help="Alias to follow.")] = "production",
    mode: Annotated[UpdateMode, typer.Option(help="When to update.")] = UpdateMode.LOCAL_THEN_BACKGROUND,
    bundled_model: Annotated[
        Path | None, typer.Option(help="Model shipped with the app (used until an update).")
    ] = None,
    bundled_version: Annotated[
        int, typer.Option(help="Registry version number of --bundled-model (0: older than any).", min=0)
    ] = 0,
    runtime: Annotated[str | None, typer.Option(help="litert or onnxruntime (default: first installed).")] = None,
    poll_interval: Annotated[float, typer.Option(help="Seconds between registry polls (jittered).", min=0.1)] = 30.0,
    interval: Annotated[float, typer.Option(help="Seconds between two photos.", min=0.0)] = 0.5,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    iterations: Annotated[int | None, typer.Option(help="Stop after this many photos.", min=1)] = None,
    device_class: Annotated[
        str | None,
        typer.Option(
            help="Device class sent with polls and telemetry (default: as `edgeloop bench`, e.g. linux-x86_64)."
        ),
    ] = None,
    store: Store = Path("workspace/device"),
) -> None:
    """Classify photos in a loop, showing the model version; updates swap in while it runs."""
    options = AppOptions(
        registry_url=registry,
        model=model,
        store_dir=store,
        photos=photos,
        camera=camera,
        api_key=api_key,
        public_keys=parse_keys(public_key),
        trust_registry_keys=trust_registry_keys,
        alias=alias,
        mode=mode,
        bundled_model=bundled_model,
        bundled_version=bundled_version,
        runtime=runtime,
        poll_interval_s=poll_interval,
        interval_s=interval,
        duration_s=duration,
        iterations=iterations,
        device=DeviceInfo(
            device_id=persistent_device_id(store),
            # The class QA benchmarks under, so the console shows field and bench figures side by side.
            device_class=device_class or default_device_class(),
            app_version="sample-app/0.1",
        ),
    )
    try:
        summary = run(options, show=lambda line: console.print(line, highlight=False))
    except edge.EdgeError as exc:
        console.print(f"[red]{type(exc).__name__}:[/] {exc}")
        raise typer.Exit(1) from None
    versions = " -> ".join(f"v{v}" for v in summary.versions_seen)
    console.print(
        f"{summary.iterations} photos from {summary.source} in {summary.elapsed_s:.1f} s; models used: {versions}; "
        f"swaps: {summary.swaps}; telemetry still queued: {summary.telemetry_pending}"
    )


@cli.command("classify")
def classify_command(
    images: Annotated[list[Path], typer.Argument(help="Photos, or folders of photos.")],
    store: Store = Path("workspace/device"),
    model_file: Annotated[
        Path | None, typer.Option("--model-file", help="Use this file instead of the store's.")
    ] = None,
    top: Annotated[int, typer.Option(help="Labels to show per photo.", min=1)] = 3,
) -> None:
    """Classify photos once with the installed model (no network)."""
    from PIL import Image

    if model_file is None:
        entry = edge.ModelStore(store).usable()
        if entry is None:
            console.print(
                f"[red]no model installed in {store}[/]; run `python -m sample_app run` first or pass --model-file"
            )
            raise typer.Exit(1)
        model_file = edge.ModelStore(store).path_of(entry)
    clf = edge.load(model_file)
    paths = [p for item in images for p in (list_photos(item) if item.is_dir() else [item])]
    for path in paths:
        with Image.open(path) as img:
            ranked = clf.classify(img, k=top)
        console.print(f"{path}: " + ", ".join(f"{label} {score:.2f}" for label, score in ranked), highlight=False)


@cli.command("status")
def status_command(store: Store = Path("workspace/device")) -> None:
    """What this device has installed, blocked and queued."""
    json.dump(status(store), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    cli()
