"""`edgeloop demo`: the whole loop on embedded defaults, run the way a person would run it.

Every step is an `edgeloop …` (or `python -m sample_app …`) command in a subprocess,
printed before it runs, so the demo doubles as a tutorial and as an end-to-end check of
the CLI. The kernel imports no stage: it only runs their commands. Everything lands in
the workspace (default ./workspace): photos, datasets, runs, packages, registry, device,
warehouse.

The story: a catalogue of products is photographed; a first model is trained, gated,
converted and published as `production`; a kiosk app starts using it. Then new products
arrive; the model is retrained warm from production, gated against it, converted and
published; the running app swaps to it without a restart.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from edgeloop.errors import EdgeloopError
from edgeloop.settings import DEFAULT_MODEL

console = Console(stderr=True)
MODEL = DEFAULT_MODEL


class DemoStepFailed(EdgeloopError):
    """A demo step exited non-zero; its own output above says why."""


@dataclasses.dataclass(frozen=True)
class Step:
    output: str
    ok: bool

    def __bool__(self) -> bool:
        return self.ok


def _edgeloop(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgeloop.cli", *args]


def _show(argv: list[str]) -> str:
    if argv[:3] == _edgeloop():
        argv = ["edgeloop", *argv[3:]]
    elif argv[:1] == [sys.executable]:
        argv = ["python", *argv[1:]]
    return " ".join(shlex.quote(a) for a in argv)


def step(title: str, argv: list[str], *, ok_codes: tuple[int, ...] = (0,)) -> Step:
    """Run one command, echoing it and its output; return its output and whether it exited 0."""
    console.rule(f"[bold]{title}")
    console.print(f"[cyan]$ {_show(argv)}[/]", highlight=False)
    start = time.monotonic()
    result = subprocess.run(argv, text=True, stdout=subprocess.PIPE, check=False)
    if result.stdout:
        sys.stderr.write(result.stdout)
    console.print(f"[dim]({time.monotonic() - start:.1f} s)[/]")
    if result.returncode not in ok_codes:
        raise DemoStepFailed(f"step {title!r} failed with exit code {result.returncode}: {_show(argv)}")
    return Step(result.stdout, result.returncode == 0)


def _last_line(done: Step) -> str:
    lines = [line.strip() for line in done.output.splitlines() if line.strip()]
    if not lines:
        raise DemoStepFailed("a step printed nothing where the demo expected a value")
    return lines[-1]


def _published_version(done: Step) -> str:
    match = re.search(r"version (\d+)", done.output)
    if not match:
        raise DemoStepFailed(f"`edgeloop publish` did not print a version: {done.output!r}")
    return match.group(1)


def _next_version(root: Path) -> str:
    numbers = [int(m.group(1)) for p in root.glob("v*") if (m := re.fullmatch(r"v(\d{4,})", p.name))]
    return f"v{max(numbers, default=0) + 1:04d}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DemoStepFailed(f"the registry exited with code {proc.returncode}; see its log above")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise DemoStepFailed(f"the registry at {url} did not answer /healthz within {timeout_s:.0f} s")


def _train_round(
    label: str, ws: Path, photos: Path, run_id: str, *, warm_start: str | None, baseline: str | None
) -> Path | None:
    datasets = ws / "datasets"
    version = _next_version(datasets)
    previous = ["--previous", "latest"] if warm_start else []
    step(
        f"{label}: ingest photos into dataset {version} (Beam, DirectRunner)",
        _edgeloop("ingest", "--input", str(photos), "--output", str(datasets), "--version", version, *previous),
    )
    warm = ["--warm-start", warm_start] if warm_start else []
    run_dir = Path(
        _last_line(
            step(
                f"{label}: train MobileNetV2" + (" warm-started from production" if warm_start else ""),
                _edgeloop(
                    "train", "--dataset", str(datasets / version), "--model-name", MODEL, "--run-id", run_id, *warm
                ),
            )
        )
    )
    gate_base = ["--baseline", baseline] if baseline else []
    # The first model must pass for the demo to go on. A retrain the gate refuses is the product
    # working as intended (production stays where it is), so the demo says so and goes on.
    passed = step(
        f"{label}: gate the model" + (" against production" if baseline else ""),
        _edgeloop("gate", str(run_dir), *gate_base),
        ok_codes=(0, 1) if baseline else (0,),
    )
    if not passed:
        console.print(
            f"[yellow]the gate refused {run_dir.name}: not converted, not published; production stays as it is[/]"
        )
        return None
    step(f"{label}: convert to TFLite and ONNX variants, prove parity", _edgeloop("convert", "--run", str(run_dir)))
    return run_dir


def demo(
    products: Annotated[int, typer.Option(help="Products in the first catalogue.", min=2)] = 20,
    images: Annotated[int, typer.Option(help="Photos per product.", min=4)] = 80,
    new_products: Annotated[
        int, typer.Option(help="Products that arrive before the retrain (0 = no retrain).", min=0)
    ] = 2,
) -> None:
    """Run every stage on a synthetic catalogue: photos → dataset → model → gate → package → registry → device."""
    from edgeloop.settings import get_settings

    ws = get_settings().workspace.resolve()
    os.environ["EDGELOOP_WORKSPACE"] = str(ws)  # every step sees the same workspace, whatever its cwd
    photos = ws / "photos"
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")

    step(
        "1. product photos arrive (synthetic catalogue)",
        _edgeloop("data", "synth", "--output", str(photos), "--products", str(products), "--images", str(images)),
    )
    console.print(f"[green]photos are in[/] {photos}")
    run1 = _train_round("2. first model", ws, photos, f"demo-{stamp}-1", warm_start=None, baseline=None)
    if run1 is None:  # the first gate raises instead; kept for the type checker
        raise DemoStepFailed("the first model did not pass its gate")
    package1 = ws / "packages" / MODEL / run1.name

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    console.rule("[bold]3. start the registry")
    console.print(f"[cyan]$ edgeloop serve --port {port} &[/]")
    registry = subprocess.Popen(_edgeloop("serve", "--port", str(port)))
    app: subprocess.Popen[bytes] | None = None
    try:
        _wait_healthy(url, registry)
        publisher = _last_line(
            step(
                "   a publisher key",
                _edgeloop("keys", "create", "--name", f"demo-publisher-{stamp}", "--role", "publisher"),
            )
        )
        device = _last_line(
            step("   a device key", _edgeloop("keys", "create", "--name", f"demo-kiosk-{stamp}", "--role", "device"))
        )
        qa = _last_line(step("   a QA key", _edgeloop("keys", "create", "--name", f"demo-qa-{stamp}", "--role", "qa")))
        reader = _last_line(
            step(
                "   a reader key (for the console)",
                _edgeloop("keys", "create", "--name", f"demo-reader-{stamp}", "--role", "reader"),
            )
        )
        registry_flags = ["--registry", url, "--api-key", publisher]
        published = step(
            "4. publish the package and point production at it",
            _edgeloop("publish", str(package1), "--alias", "production", "--reason", "first model", *registry_flags),
        )
        device_store = ws / "device"
        kiosk = [
            sys.executable, "-m", "sample_app", "run", "--registry", url, "--api-key", device,
            "--model", MODEL, "--store", str(device_store),
            "--trust-registry-keys", "--poll-interval", "2", "--interval", "0.2",
        ]  # fmt: skip
        app_cmd = [*kiosk, "--photos", str(photos)]
        step("5. a kiosk app downloads, verifies and uses it", [*app_cmd, "--mode", "latest", "--iterations", "10"])
        step(
            "6. QA benchmarks every variant on this device and uploads the figures",
            _edgeloop("bench", "--registry", url, "--model", MODEL, "--version", _published_version(published), "--api-key", qa,
                      "--runs", "30", "--upload"),
        )  # fmt: skip

        arrived: list[str] = []
        if new_products:
            known = {d.name for d in photos.iterdir() if d.is_dir()}
            step(
                f"7. {new_products} new products arrive",
                _edgeloop("data", "synth", "--output", str(photos), "--products", str(products),
                          "--images", str(images), "--add-products", str(new_products)),
            )  # fmt: skip
            arrived = sorted(d.name for d in photos.iterdir() if d.is_dir() and d.name not in known)
            console.rule("[bold]   the kiosk keeps running while the retrain happens")
            console.print(f"[cyan]$ {_show([*app_cmd, '--duration', '…'])} &[/]", highlight=False)
            app = subprocess.Popen([*app_cmd, "--duration", "3600"])
            run2 = _train_round("8. retrain", ws, photos, f"demo-{stamp}-2", warm_start=str(run1), baseline=str(run1))
            if run2 is not None:
                package2 = ws / "packages" / MODEL / run2.name
                step(
                    "9. publish the new version and move production to it",
                    _edgeloop(
                        "publish", str(package2), "--alias", "production", "--reason", "new products", *registry_flags
                    ),
                )
                console.print("[dim]   waiting for the kiosk to pick it up…[/]")
                time.sleep(8)
            app.terminate()
            app.wait(30)
            app = None
            step(
                "   the kiosk's model store: what it runs now",
                [sys.executable, "-m", "sample_app", "status", "--store", str(device_store)],
            )

        step(
            "10. analysts query runs, classes, conversions and field telemetry",
            _edgeloop("sql", "SELECT run_id, dataset_version, status, round(macro_f1, 3) AS macro_f1, "
                      "round(duration_s) AS seconds FROM training_runs ORDER BY started_at"),
        )  # fmt: skip
        step("", _edgeloop("sql", "SELECT variant, size_bytes, round(macro_f1, 3) AS f1, round(agreement, 3) AS agreement, "
                           "round(latency_p50_ms, 2) AS p50_ms, publishable FROM conversions ORDER BY model_version, variant"))  # fmt: skip
        step("", _edgeloop("sql", "SELECT version, kind, count(*) AS events, round(avg(latency_ms), 2) AS mean_ms "
                           "FROM telemetry_events GROUP BY ALL ORDER BY ALL"))  # fmt: skip
        # The last word is the device's: what a shopper sees when pointing it at a product that just arrived.
        shown = photos / arrived[0] if arrived else photos
        step(
            f"11. the kiosk, on the model it runs now, looks at {shown.name}",
            [*kiosk, "--photos", str(shown), "--mode", "latest", "--iterations", "6"],
        )
    finally:
        if app is not None:
            app.terminate()
            app.wait(30)
        registry.terminate()
        registry.wait(30)

    console.rule("[bold green]demo finished")
    console.print(f"everything is under {ws}")
    console.print(
        "see it all in the release console: start the registry again and log in with the reader key\n"
        f"  edgeloop serve --port {port} &\n"
        f"  open {url}/console/   (key: {reader})",
        highlight=False,
    )
    console.print(
        "watch the same loop scheduled by Airflow:\n"
        f"  AIRFLOW_HOME={ws / 'airflow'} AIRFLOW__CORE__DAGS_FOLDER={Path.cwd() / 'dags'} "
        "AIRFLOW__CORE__LOAD_EXAMPLES=False .venv/bin/airflow standalone",
        highlight=False,
    )
