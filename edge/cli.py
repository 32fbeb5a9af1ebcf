"""`edgeloop bench`: latency of model files, or of every publishable variant of a registry version, on this device.

Registered through the `edgeloop.cli` entry point (`edge = "edge.cli:register"`); needs
only the edge extra, so QA runs it on the target phone board, kiosk or Raspberry Pi.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import platform
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

log = logging.getLogger(__name__)

CSV_FIELDS = (
    "model",
    "version",
    "variant",
    "runtime",
    "file",
    "device_class",
    "threads",
    "runs",
    "warmup",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "mean_ms",
    "std_ms",
    "min_ms",
    "max_ms",
    "init_ms",
    "peak_mem_mb",
    "uploaded",
)


@dataclasses.dataclass(frozen=True)
class BenchTarget:
    """One file to time and what it is."""

    path: Path
    model: str
    version: int | None
    variant: str
    runtime: str


@dataclasses.dataclass
class BenchRow:
    target: BenchTarget
    stats: Any  # edge.bench.LatencyStats
    device_class: str
    uploaded: bool = False

    def as_dict(self) -> dict[str, Any]:
        t = self.target
        return {
            "model": t.model,
            "version": t.version,
            "variant": t.variant,
            "runtime": t.runtime,
            "file": str(t.path),
            "device_class": self.device_class,
            **self.stats.as_dict(),
            "uploaded": self.uploaded,
        }


def default_device_class() -> str:
    """EDGELOOP_DEVICE_CLASS, else `<os>-<machine>` (e.g. linux-aarch64 on a Raspberry Pi)."""
    return os.environ.get("EDGELOOP_DEVICE_CLASS") or f"{platform.system().lower()}-{platform.machine().lower()}"


def file_targets(paths: list[Path]) -> list[BenchTarget]:
    from edge import metadata as md
    from edge.variants import RUNTIME_OF_SUFFIX

    targets = []
    for path in paths:
        meta = md.read(path)
        digits = "".join(ch for ch in meta.version if ch.isdigit())
        targets.append(
            BenchTarget(path, meta.name, int(digits) if digits else None, meta.variant, RUNTIME_OF_SUFFIX[path.suffix])
        )
    return targets


def registry_targets(
    registry: str, model: str, version: int, read_key: str | None, cache: Path, variants: list[str] | None
) -> list[BenchTarget]:
    """Download every publishable variant of `model` v`version` this device can run (sha256-verified)."""
    from edge._client import RegistryClient
    from edge._download import download_artifact
    from edge.runtime import available_runtimes
    from edge.variants import VARIANTS

    runtimes = available_runtimes()
    targets = []
    with RegistryClient(registry, read_key) as client:
        info = client.get_json(f"/v1/models/{model}/versions/{version}", f"{model} v{version}")
        for v in info["variants"]:
            name = v["variant"]
            if not v.get("publishable") or (variants and name not in variants):
                continue
            if v["runtime"] not in runtimes or name not in VARIANTS:
                log.warning("skipping %s: runtime %s is not installed here", name, v["runtime"])
                continue
            folder = cache / v["sha256"]
            result = download_artifact(
                client.http,
                client.artifact_url(f"/v1/artifacts/{v['sha256']}"),
                folder,
                sha256=v["sha256"],
                size=v["size"],
            )
            path = folder / f"{model}-v{version}-{name}{VARIANTS[name].suffix}"
            result.path.replace(path)
            targets.append(BenchTarget(path, model, version, name, v["runtime"]))
    return targets


def upload(registry: str, api_key: str | None, rows: list[BenchRow], device_id: str | None) -> None:
    from edge._client import RegistryClient
    from edge.events import BenchmarkReport

    with RegistryClient(registry, api_key) as client:
        for row in rows:
            t, s = row.target, row.stats
            if t.version is None:
                raise typer.BadParameter(f"{t.path}: no registry version known; bench by --model/--version to upload")
            report = BenchmarkReport(
                device_class=row.device_class,
                device_id=device_id,
                model=t.model,
                version=t.version,
                variant=t.variant,
                runtime=t.runtime,
                threads=s.threads,
                runs=s.runs,
                p50_ms=s.p50_ms,
                p90_ms=s.p90_ms,
                p99_ms=s.p99_ms,
                mean_ms=s.mean_ms,
                std_ms=s.std_ms,
                init_ms=s.init_ms,
                peak_mem_mb=s.peak_mem_mb,
            )
            client.post_benchmark(report.model_dump(mode="json"))
            row.uploaded = True


def print_table(rows: list[BenchRow]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"edgeloop bench on {rows[0].device_class if rows else default_device_class()}")
    for col in (
        "model",
        "v",
        "variant",
        "threads",
        "runs",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "mean ms",
        "std ms",
        "init ms",
        "peak MB",
    ):
        table.add_column(col, justify="left" if col in ("model", "variant") else "right")
    for row in rows:
        s = row.stats
        table.add_row(
            row.target.model,
            str(row.target.version or "-"),
            row.target.variant,
            str(s.threads or "-"),
            str(s.runs),
            *(f"{x:.3f}" for x in (s.p50_ms, s.p90_ms, s.p99_ms, s.mean_ms, s.std_ms)),
            f"{s.init_ms:.1f}",
            f"{s.peak_mem_mb:.0f}",
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # piped or captured: do not squeeze the numbers into 80 columns
    console.print(table)


def write_outputs(rows: list[BenchRow], json_path: Path | None, csv_path: Path | None) -> None:
    records = [r.as_dict() for r in rows]
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(records, indent=2) + "\n")
    if csv_path:
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        with open(csv_path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(records)


def bench(
    files: Annotated[list[Path] | None, typer.Argument(help="Model files (.tflite / .onnx) to time.")] = None,
    registry: Annotated[
        str | None, typer.Option(envvar="EDGELOOP_REGISTRY_URL", help="Registry base URL (with --model/--version).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Registry model name: bench every publishable variant.")] = None,
    version: Annotated[int | None, typer.Option(help="Registry version number.", min=1)] = None,
    variant: Annotated[list[str] | None, typer.Option(help="Only these variants (repeatable).")] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="EDGELOOP_API_KEY", help="Registry key; for --upload a qa (or publisher) key.")
    ] = None,
    read_key: Annotated[
        str | None,
        typer.Option(envvar="EDGELOOP_READ_KEY", help="Key with read scope to list variants (default --api-key)."),
    ] = None,
    runs: Annotated[int, typer.Option(help="Timed runs.", min=1)] = 50,
    warmup: Annotated[int, typer.Option(help="Untimed warm-up runs.", min=0)] = 5,
    threads: Annotated[int | None, typer.Option(help="Inference threads (default: all cores).", min=1)] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON here.")] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write the results as CSV here.")] = None,
    upload_results: Annotated[
        bool, typer.Option("--upload", help="POST each result to the registry's /v1/benchmarks.")
    ] = False,
    device_class: Annotated[
        str | None, typer.Option(help="Device class reported (default: EDGELOOP_DEVICE_CLASS or <os>-<machine>).")
    ] = None,
    device_id: Annotated[str | None, typer.Option(help="Pseudonymous device id sent with --upload.")] = None,
    cache: Annotated[
        Path | None, typer.Option(help="Where registry variants are downloaded (default: a temp folder).")
    ] = None,
) -> None:
    """Time model files, or every publishable variant of a registry version, on this device."""
    from edge.bench import bench_file

    if not files and not (registry and model and version):
        raise typer.BadParameter("give model files, or --registry with --model and --version")
    if upload_results and not registry:
        raise typer.BadParameter("--upload needs --registry")
    device = device_class or default_device_class()
    with tempfile.TemporaryDirectory(prefix="edgeloop-bench-") as tmp:
        targets = file_targets(list(files or []))
        if registry and model and version:
            targets += registry_targets(registry, model, version, read_key or api_key, cache or Path(tmp), variant)
        if not targets:
            raise typer.BadParameter("nothing to bench: no publishable variant runs on this device")
        rows = []
        for target in targets:
            log.info("benchmarking %s (%s)", target.path, target.variant)
            stats = bench_file(target.path, runs=runs, warmup=warmup, threads=threads)
            rows.append(BenchRow(target, stats, device))
        if upload_results and registry:
            upload(registry, api_key, rows, device_id)
    print_table(rows)
    write_outputs(rows, json_out, csv_out)


def register(app: typer.Typer) -> None:
    """Add `bench` to the `edgeloop` command (entry point `edgeloop.cli: edge`)."""
    app.command("bench")(bench)
