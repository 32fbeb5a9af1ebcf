"""The real registry (registry_api.create_app) under uvicorn on a loopback port, restartable on the same port.

Devices talk to it over real HTTP; tests publish tiny real model packages through its API.
"""

from __future__ import annotations

import base64
import datetime as dt
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from edge_testkit import SIZE

from edge.manifest import load_public_key


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RegistryServer:
    MODEL = "shelf-products"

    def __init__(self, workspace: Path, public_url: str = "", **settings: Any) -> None:
        self.workspace = workspace
        self.public_url = public_url  # where manifests say artifacts are (e.g. a misbehaving CDN)
        self.overrides = settings  # any other RegistrySettings field, e.g. max_telemetry_events
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.tokens: dict[str, str] = {}

    def settings(self) -> Any:
        from registry_api.core.config import RegistrySettings

        return RegistrySettings(
            default_variants={"litert": "tflite_fp32", "onnxruntime": "onnx_fp32"},
            rate_per_s={"publisher": 1000.0, "device": 100000.0, "reader": 1000.0},
            access_log=False,
            public_url=self.public_url,
            **self.overrides,
        )

    def start(self) -> RegistryServer:
        import uvicorn

        from registry_api.main import create_app

        config = uvicorn.Config(create_app(self.settings()), host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 120  # generous: a loaded CI box imports and migrates slowly
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("registry did not start")
            time.sleep(0.02)
        if not self.tokens:
            self.tokens = self._create_keys()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            assert self._thread is not None
            self._thread.join(20)
            self._server = None

    def _create_keys(self) -> dict[str, str]:
        # As `edgeloop keys create` does: straight on the registry database.
        from registry_api import crud, db
        from registry_api.core.security import Role

        engine = db.make_engine(self.settings().database)
        db.init_db(engine)
        tokens = {}
        with db.session_factory(engine).begin() as session:
            for role in Role:
                _, minted = crud.create_key(session, f"edge-test-{role.value}", role, None)
                tokens[role.value] = minted.token
        engine.dispose()
        return tokens

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def public_keys(self) -> dict[str, Any]:
        """What an app pins at build time: the registry's current public key(s)."""
        keys = httpx.get(f"{self.url}/v1/keys").json()["keys"]
        return {k["key_id"]: load_public_key(k["public_key"]) for k in keys}

    def public_keys_base64(self) -> dict[str, str]:
        """The same keys as an app written in another language pins them: key id -> base64 of the raw 32 bytes."""
        from cryptography.hazmat.primitives import serialization

        raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
        return {kid: base64.b64encode(key.public_bytes(*raw)).decode() for kid, key in self.public_keys().items()}

    def publish(self, files: dict[str, Path], run: str, labels: list[str]) -> int:
        """Publish a package of real model files (variant -> file); returns the registry version number."""
        from edge.manifest import InputSpec
        from edgeloop.card import CARD_NAME, GateReport, Lineage, ModelCard
        from registry_api.testing import variant_entry

        entries, parts = [], []
        for variant, path in files.items():
            data = path.read_bytes()
            entries.append(variant_entry(variant, data, agreement=1.0))
            parts.append(("files", (entries[-1].file, data)))
        card = ModelCard(
            name=self.MODEL,
            version=run,
            created_at=dt.datetime.now(dt.UTC),
            labels=labels,
            input=InputSpec(height=SIZE, width=SIZE, dtype="float32"),
            gate=GateReport(verdict="pass"),
            lineage=Lineage(dataset_version="v1", run_id=run),
            variants=entries,
        )
        parts.insert(0, ("card", (CARD_NAME, card.model_dump_json().encode())))
        response = httpx.post(
            f"{self.url}/v1/models/{self.MODEL}/versions", files=parts, headers=self.auth("publisher"), timeout=30
        )
        response.raise_for_status()
        return int(response.json()["version"])

    def set_alias(self, version: int, alias: str = "production", **body: Any) -> None:
        response = httpx.put(
            f"{self.url}/v1/models/{self.MODEL}/aliases/{alias}",
            json={"version": version, **body},
            headers=self.auth("publisher"),
        )
        response.raise_for_status()

    def rollback(self, alias: str = "production") -> None:
        response = httpx.post(
            f"{self.url}/v1/models/{self.MODEL}/aliases/{alias}/rollback", json={}, headers=self.auth("publisher")
        )
        response.raise_for_status()
