"""Airflow for the DAG tests: a throwaway home and SQLite metadata database, migrated once per session.

Airflow reads its configuration when first imported, so the environment is set here
before any test imports it; tests that need Airflow take the `airflow_home` fixture.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """AIRFLOW_HOME in a temp folder, the repo's dags/ as DAGs folder, a migrated SQLite database."""
    home = tmp_path_factory.mktemp("airflow")
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        airflow = Path(sys.executable).with_name("airflow")
        done = subprocess.run(
            [str(airflow), "db", "migrate"], env=os.environ.copy(), capture_output=True, text=True, timeout=300
        )
        if done.returncode:
            raise RuntimeError(f"airflow db migrate failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        yield home


# --------------------------------------------------------------------------- registry in-process


@dataclasses.dataclass
class RegistryServer:
    """The real registry app on a loopback port, and a publisher key for it."""

    url: str
    token: str
    settings: Any

    def client(self) -> Any:
        from dags._registry import RegistryClient

        return RegistryClient(self.url, self.token)


@pytest.fixture()
def registry_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RegistryServer]:
    """Serve `create_app` with uvicorn in a thread; point the DAG settings at it."""
    import uvicorn

    from registry_api import crud, db
    from registry_api.core.config import RegistrySettings
    from registry_api.core.security import Role
    from registry_api.main import create_app

    settings = RegistrySettings(database_url=f"sqlite:///{tmp_path / 'registry.db'}")
    engine = db.make_engine(settings.database)
    db.init_db(engine)
    with db.session_factory(engine).begin() as session:
        _, key = crud.create_key(session, "airflow", Role.publisher)
    engine.dispose()

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="registry", daemon=True)
    thread.start()
    deadline = time.monotonic() + 120  # generous: a loaded CI box imports and migrates slowly
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the registry did not start within 120 s")
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("EDGELOOP_DAGS_REGISTRY_URL", url)
    monkeypatch.setenv("EDGELOOP_DAGS_API_KEY", key.token)
    try:
        yield RegistryServer(url, key.token, settings)
    finally:
        server.should_exit = True
        thread.join(15)


# --------------------------------------------------------------------------- test data


@pytest.fixture()
def make_package() -> Any:
    return _make_package


def _make_package(folder: Path, *, model: str, run_id: str, labels: list[str], dataset_version: str) -> Path:
    """A small but complete model package: a card that passed its gates and one variant file.

    The registry checks cards and hashes, not tensors, so release-health tests need no
    TensorFlow; the retrain test publishes real converted packages instead.
    """
    from edge.manifest import InputSpec
    from edgeloop.card import GateReport, Lineage, ModelCard, VariantEntry, write_card

    folder.mkdir(parents=True, exist_ok=True)
    blob = f"model bytes of {run_id}".encode() * 64
    (folder / "model_int8.tflite").write_bytes(blob)
    card = ModelCard(
        name=model,
        version=run_id,
        created_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        labels=labels,
        input=InputSpec(height=96, width=96, dtype="uint8", scale=1.0, zero_point=0),
        gate=GateReport(verdict="pass"),
        lineage=Lineage(dataset_version=dataset_version, run_id=run_id),
        variants=[
            VariantEntry(
                variant="tflite_int8",
                file="model_int8.tflite",
                sha256=hashlib.sha256(blob).hexdigest(),
                size=len(blob),
                runtime="litert",
                quantization="int8",
                input_dtype="uint8",
                output_dtype="uint8",
                weights_quantized=True,
                publishable=True,
            )
        ],
    )
    write_card(folder, card)
    return folder


@pytest.fixture()
def run_dag(airflow_home: Path) -> Any:
    """Parse the DAGs folder as the scheduler would and run one DAG with `dag.test()`; returns task states."""

    def run(dag_id: str, logical_date: dt.datetime) -> dict[str, str]:
        from airflow.dag_processing.dagbag import DagBag

        from dags._settings import get_dag_settings

        get_dag_settings.cache_clear()  # the test changed EDGELOOP_DAGS_* since the last parse
        bag = DagBag(dag_folder=str(DAGS_FOLDER))
        assert bag.import_errors == {}, bag.import_errors
        dag_run = bag.get_dag(dag_id).test(logical_date=logical_date, run_after=logical_date)
        states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
        states["__run__"] = str(dag_run.state)
        return states

    return run
