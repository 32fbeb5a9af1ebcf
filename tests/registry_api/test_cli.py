"""`edgeloop keys create|list|revoke` on the database, and `edgeloop serve` answering on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from edgeloop.cli import main
from registry_api import create_app


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


@pytest.mark.slow
def test_serve_starts_uvicorn_and_logs_json_access_lines(registry_env: Path, tmp_path: Path) -> None:
    from registry_api.testing import Server

    port = Server({}).port
    env = {**os.environ, "EDGELOOP_REGISTRY_PORT": str(port)}
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "edgeloop.cli", "serve"], env=env, stderr=log, stdout=log)
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                    break
                except httpx.HTTPError:
                    assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
                    time.sleep(0.2)
            assert response.status_code == 200
            assert response.json()["checks"] == {"database": "ok", "storage": "ok"}
            assert httpx.get(f"http://127.0.0.1:{port}/v1/keys").json()["keys"][0]["current"] is True
        finally:
            proc.terminate()
            proc.wait(20)
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    assert {"method": "GET", "path": "/readyz", "status": 200}.items() <= lines[0].items()
    assert "duration_ms" in lines[0] and "key_id" in lines[0]
    assert (registry_env / "registry" / "signing_key.pem").exists()
