"""Fixtures shared by every test: an isolated workspace and a real GCS emulator on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own workspace and warehouse; nothing leaks from the developer's .env."""
    for name in list(os.environ):
        if name.startswith("EDGELOOP_") and name != "EDGELOOP_BQ_PROJECT":
            monkeypatch.delenv(name)
    monkeypatch.setenv("EDGELOOP_WORKSPACE", str(tmp_path / "workspace"))
    monkeypatch.chdir(tmp_path)
    from edgeloop.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """A real PostgreSQL server for the session (initdb + pg_ctl on a free loopback port), stopped at the end."""
    from registry_api.testing_postgres import running_server

    with running_server() as server:
        if isinstance(server, str):
            pytest.skip(server)
        yield server


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """A gcp-storage-emulator process on a free loopback port; yields its base URL."""
    port = free_port()
    exe = Path(sys.executable).with_name("gcp-storage-emulator")
    proc = subprocess.Popen(
        [str(exe), "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120  # generous: a loaded CI box starts the emulator slowly
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gcp-storage-emulator exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("gcp-storage-emulator did not start within 120 s")
    url = f"http://127.0.0.1:{port}"
    old = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = url
    try:
        yield url
    finally:
        if old is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = old
        proc.terminate()
        proc.wait(10)


@pytest.fixture()
def gcs_bucket(gcs_emulator: str) -> str:
    """A fresh, empty bucket on the emulator; yields `gs://<bucket>`."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="edgeloop-test", credentials=AnonymousCredentials())
    name = f"edgeloop-{uuid.uuid4().hex[:10]}"
    client.create_bucket(name)
    return f"gs://{name}"
