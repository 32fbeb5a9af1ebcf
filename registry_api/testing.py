"""What registry tests and benchmarks share: real model packages (small files, correct cards), keys of
every role, an in-process client harness and a uvicorn server. The app never imports it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.events import TelemetryBatch, TelemetryEvent
from edge.manifest import InputSpec
from edge.variants import VARIANTS
from edgeloop.card import CARD_NAME, GateCheck, GateReport, Lineage, ModelCard, VariantEntry

if TYPE_CHECKING:  # benchmarks use the packages and keys, not the in-process client
    from fastapi.testclient import TestClient

DEFAULT_VARIANTS = ("tflite_int8", "tflite_fp32", "onnx_fp32", "onnx_int8")


def make_package(
    folder: Path,
    *,
    name: str = "shelf-products",
    run: str = "run-1",
    variants: tuple[str, ...] = DEFAULT_VARIANTS,
    unpublishable: tuple[str, ...] = (),
    verdict: str = "pass",
    sizes: dict[str, int] | None = None,
    labels: tuple[str, ...] = ("lavender-soap", "rose-bath-bomb", "mint-shampoo-bar"),
    metrics: dict[str, Any] | None = None,
    checks: tuple[GateCheck, ...] = (),
) -> Path:
    """A package folder: one deterministic file per variant (content depends on `run`) and its card."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for variant in variants:
        rng = random.Random(f"{run}/{variant}")
        data = rng.randbytes((sizes or {}).get(variant, 2048 + rng.randrange(2048)))
        entry = variant_entry(variant, data, agreement=0.99, unpublishable=variant in unpublishable)
        (folder / entry.file).write_bytes(data)
        entries.append(entry)
    card = ModelCard(
        name=name,
        version=run,
        created_at=dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC),
        labels=list(labels),
        metrics=metrics or {},
        input=InputSpec(height=96, width=96, dtype="uint8"),
        gate=GateReport(verdict=verdict, forced_by="qa-lead" if verdict == "forced" else None, checks=list(checks)),
        lineage=Lineage(dataset_version="v1", run_id=run),
        variants=entries,
    )
    (folder / CARD_NAME).write_text(card.model_dump_json(indent=2))
    return folder


def variant_entry(variant: str, data: bytes, *, agreement: float, unpublishable: bool = False) -> VariantEntry:
    """The card's entry for `data` as the file of `variant` (named as conversion names it)."""
    spec = VARIANTS[variant]
    return VariantEntry(
        variant=variant,
        file=f"model_{variant}{spec.suffix}",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        runtime=spec.runtime,
        quantization=spec.quantization,
        input_dtype=spec.input_dtype,
        output_dtype=spec.output_dtype,
        weights_quantized=spec.weights_quantized,
        agreement=agreement,
        publishable=not unpublishable,
        reason="agreement below 0.98" if unpublishable else "",
    )


def telemetry_batch(n: int) -> TelemetryBatch:
    """n new inference events (fresh event_ids) from seven devices."""
    return TelemetryBatch(
        events=[
            TelemetryEvent(
                device_id=f"d{i % 7}",
                kind="inference",
                model="shelf-products",
                version=1,
                variant="tflite_int8",
                latency_ms=3.5,
                top1_label="lavender-soap",
                top1_score=0.9,
                detail={"i": i},
            )
            for i in range(n)
        ]
    )


def multipart(folder: Path) -> list[tuple[str, tuple[str, bytes]]]:
    """httpx `files=` for a package folder: the card as `card`, every other file as `files`."""
    parts = [("card", (CARD_NAME, (folder / CARD_NAME).read_bytes()))]
    for path in sorted(folder.iterdir()):
        if path.name != CARD_NAME:
            parts.append(("files", (path.name, path.read_bytes())))
    return parts


@dataclasses.dataclass
class Harness:
    client: TestClient
    publisher: str
    device: str
    reader: str
    workspace: Path
    qa: str

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def publish(self, folder: Path, token: str | None = None) -> Any:
        return self.client.post(
            "/v1/models/shelf-products/versions",
            files=multipart(folder),
            headers=self.auth(token or self.publisher),
        )

    def set_alias(self, alias: str, body: dict[str, Any], model: str = "shelf-products") -> Any:
        return self.client.put(f"/v1/models/{model}/aliases/{alias}", json=body, headers=self.auth(self.publisher))

    def manifest(self, **params: Any) -> Any:
        headers = self.auth(self.device)
        etag = params.pop("etag", None)
        if etag:
            headers["If-None-Match"] = etag
        return self.client.get("/v1/models/shelf-products/manifest", params=params, headers=headers)


def create_keys(database: str | None = None, **rates: float) -> dict[str, str]:
    """One key per role, straight on the database (default: the configured one), as `edgeloop keys create` does."""
    from registry_api import crud, db
    from registry_api.core.config import get_registry_settings
    from registry_api.core.security import Role

    engine = db.make_engine(database or get_registry_settings().database)
    db.init_db(engine)
    tokens = {}
    with db.session_factory(engine).begin() as session:
        for role in Role:
            _, minted = crud.create_key(session, f"{role.value}-key", role, rates.get(role.value))
            tokens[role.value] = minted.token
    engine.dispose()
    return tokens


class Server:
    """A real `uvicorn` process serving the registry on a free loopback port (same env, same files)."""

    def __init__(self, env: dict[str, str], workers: int = 1) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.env = env
        self.workers = workers
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Any = None

    def start(self, timeout: float = 120) -> None:
        import subprocess
        import sys
        import time

        import httpx

        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "registry_api.main:create_app_from_env",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("uvicorn did not start")

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, no flushing; what was committed must be all there is."""
        import signal

        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except Exception:
                self.kill()
