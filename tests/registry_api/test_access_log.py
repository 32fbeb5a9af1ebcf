"""The access log belongs to the app that `create_app` built, not to the process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_each_app_owns_its_access_log(registry_env: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from registry_api import create_app
    from registry_api.core.config import RegistrySettings

    logged = create_app(RegistrySettings(access_log=True))
    quiet = create_app(RegistrySettings(access_log=False))  # a second app must not switch the first one's log off
    with TestClient(logged) as client:
        assert client.get("/readyz").status_code == 200
    with TestClient(quiet) as client:
        assert client.get("/v1/keys").status_code == 200

    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [("GET", "/readyz", 200)]
