"""`edgeloop keys create|list|revoke` on the database, and `edgeloop serve` answering on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from edgeloop.cli import main
from edgeloop.errors import WarehouseError
from registry_api import create_app
from registry_api.core.config import get_registry_settings
from registry_api.telemetry import ServingClaim


def test_keys_create_list_revoke(registry_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "create", "--name", "airflow", "--role", "publisher"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("elk_")
    assert main(["keys", "create", "--name", "airflow", "--role", "publisher"]) == 2  # names are unique
    assert main(["keys", "create", "--name", "x", "--role", "admin"]) == 2
    capsys.readouterr()
    assert main(["keys", "list", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(k["name"], k["role"], k["revoked_at"]) for k in listed] == [("airflow", "publisher", None)]
    assert token not in json.dumps(listed)
    with TestClient(create_app()) as client:
        assert client.get("/v1/models", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert main(["keys", "revoke", "airflow"]) == 0
    with TestClient(create_app()) as client:
        assert client.get("/v1/models", headers={"Authorization": f"Bearer {token}"}).status_code == 401


@contextlib.contextmanager
def _serving(port: int, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`edgeloop serve` in its own process on `port`, answering /readyz."""
    env = {**os.environ, "EDGELOOP_REGISTRY_PORT": str(port)}
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "edgeloop.cli", "serve"], env=env, stderr=log, stdout=log)
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                    break
                except httpx.HTTPError:
                    assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
                    time.sleep(0.2)
            yield proc
        finally:
            proc.terminate()
            proc.wait(20)


@pytest.mark.slow
def test_serve_starts_uvicorn_and_logs_json_access_lines(registry_env: Path, tmp_path: Path) -> None:
    from registry_api.testing import Server

    port = Server({}).port
    log_path = tmp_path / "serve.log"
    with _serving(port, log_path):
        response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert response.status_code == 200
        assert response.json()["checks"] == {"database": "ok", "storage": "ok"}
        assert httpx.get(f"http://127.0.0.1:{port}/v1/keys").json()["keys"][0]["current"] is True
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    assert {"method": "GET", "path": "/readyz", "status": 200}.items() <= lines[0].items()
    assert "duration_ms" in lines[0] and "key_id" in lines[0]
    assert (registry_env / "registry" / "signing_key.pem").exists()


@pytest.mark.slow
def test_a_second_server_on_one_duckdb_file_is_refused_naming_the_first(
    registry_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Serving processes taking turns at one DuckDB file lost acknowledged telemetry: one serves it."""
    from registry_api.testing import Server

    port = Server({}).port
    with _serving(port, tmp_path / "serve.log") as first:
        monkeypatch.setenv("EDGELOOP_REGISTRY_PORT", str(Server({}).port))  # serve writes --port here
        assert main(["serve"]) == 2
        message = capsys.readouterr().err.replace("\n", " ")
        assert f"served by another registry process (pid {first.pid})" in message
        assert "EDGELOOP_REGISTRY_TELEMETRY_SINK=inbox" in message and "Traceback" not in message
        # An app built in this process is refused at start-up too, before it takes any telemetry.
        with pytest.raises(WarehouseError, match="served by another registry process"), TestClient(create_app()):
            pass
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200  # the first serves on
    # The claim ends with the process that held it.
    key = ServingClaim.take(get_registry_settings().warehouse)
    assert key is not None
    ServingClaim.give_back(key)


def test_replicas_on_the_inbox_and_bigquery_claim_no_file(registry_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGELOOP_REGISTRY_TELEMETRY_SINK", "inbox")
    monkeypatch.setenv("EDGELOOP_REGISTRY_TELEMETRY_LOADER", "off")
    get_registry_settings.cache_clear()
    with TestClient(create_app()) as client:
        assert client.app.state.registry.claim is None  # type: ignore[attr-defined]
    assert ServingClaim.take("bigquery://project/dataset") is None
    assert ServingClaim.take("duckdb:///:memory:") is None
