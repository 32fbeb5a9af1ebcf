"""Telemetry through the registry database (telemetry_sink=inbox): durable before the receipt, loaded exactly once.

Runs on SQLite and on a real PostgreSQL (the `database_url` fixture). The loader is crashed in a real
child process (os._exit between its steps, by count), then run again.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edgeloop import tables, warehouse
from edgeloop.cli import main
from registry_api import create_app, db, inbox
from registry_api.core.config import get_registry_settings
from registry_api.testing import Harness, create_keys
from registry_api.testing import telemetry_batch as _batch

CHILD = Path(__file__).with_name("loader_child.py")


@contextlib.contextmanager
def _inbox_registry(workspace: Path, monkeypatch: pytest.MonkeyPatch, **settings: str) -> Iterator[Harness]:
    """A registry taking telemetry into the inbox, with these EDGELOOP_REGISTRY_* settings besides."""
    monkeypatch.setenv("EDGELOOP_REGISTRY_TELEMETRY_SINK", "inbox")
    for name, value in settings.items():
        monkeypatch.setenv(f"EDGELOOP_REGISTRY_{name.upper()}", value)
    get_registry_settings.cache_clear()
    tokens = create_keys()
    with TestClient(create_app()) as client:
        yield Harness(client, tokens["publisher"], tokens["device"], tokens["reader"], workspace, tokens["qa"])


@pytest.fixture()
def inbox_harness(registry_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """Nothing loads the inbox until the test says so (loader off)."""
    with _inbox_registry(registry_env, monkeypatch, telemetry_loader="off") as harness:
        yield harness


def _engine() -> db.Engine:
    return db.make_engine(get_registry_settings().database)


def _warehouse_rows() -> tuple[int, int]:
    with warehouse.connect(get_registry_settings().warehouse) as wh:
        row = wh.query("SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM telemetry_events")[0]
    return int(row["n"]), int(row["d"])


def _post(h: Harness, body: str) -> dict[str, int]:
    response = h.client.post(
        "/v1/telemetry", content=body, headers={**h.auth(h.device), "content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_the_receipt_comes_after_the_inbox_commit_and_the_load_puts_each_event_in_once(
    inbox_harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = _engine()
    sent = _batch(300)
    assert _post(inbox_harness, sent.model_dump_json()) == {"accepted": 300, "duplicates": 0}
    assert inbox.pending(engine) == 300  # durable in the shared database when acknowledged
    again = type(sent)(events=[*sent.events[:100], *_batch(50).events, sent.events[0]])
    assert _post(inbox_harness, again.model_dump_json()) == {"accepted": 50, "duplicates": 101}

    assert main(["telemetry", "load"]) == 0
    assert "loaded 350 events (350 new to the warehouse); 0 waiting" in capsys.readouterr().out
    assert _warehouse_rows() == (350, 350)
    # Resent after the load: the inbox no longer holds it, so it is accepted again, and the next load adds nothing.
    assert _post(inbox_harness, sent.model_dump_json()) == {"accepted": 300, "duplicates": 0}
    assert main(["telemetry", "load"]) == 0
    assert "loaded 300 events (0 new to the warehouse)" in capsys.readouterr().out
    assert _warehouse_rows() == (350, 350)
    assert inbox.pending(engine) == 0
    engine.dispose()


def test_the_embedded_loader_empties_the_inbox_into_the_warehouse(
    registry_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _inbox_registry(registry_env, monkeypatch, telemetry_load_interval_s="0.05") as h:
        engine = _engine()
        for _ in range(3):
            assert _post(h, _batch(200).model_dump_json())["accepted"] == 200
        deadline = time.monotonic() + 60  # a bound on a hang, not a speed check
        while inbox.pending(engine) > 0:
            assert time.monotonic() < deadline, f"{inbox.pending(engine)} events still in the inbox"
            time.sleep(0.05)
        last = _batch(10)
        assert _post(h, last.model_dump_json())["accepted"] == 10
    # Shutting down loads what came last (and lets go of the DuckDB file).
    assert inbox.pending(engine) == 0
    assert _warehouse_rows() == (610, 610)
    engine.dispose()


# A child process each (seconds of imports): the fast suite keeps one, the full suite all three.
@pytest.mark.parametrize(
    ("step", "load_number"),
    [
        pytest.param("read", 2, marks=pytest.mark.slow),
        ("written", 2),
        pytest.param("written", 3, marks=pytest.mark.slow),
    ],
)
def test_a_loader_killed_between_its_steps_leaves_every_event_to_the_next_exactly_once(
    inbox_harness: Harness, step: str, load_number: int, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = _engine()
    for _ in range(5):
        assert _post(inbox_harness, _batch(100).model_dump_json())["accepted"] == 100
    settings = get_registry_settings()
    inbox_harness.client.app.state.registry.writer.close()  # type: ignore[attr-defined]  # the DuckDB file
    cmd = [sys.executable, str(CHILD), settings.database, settings.warehouse, "150", step, str(load_number)]
    died = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert died.returncode == 9, died.stderr  # it did die where it was told to
    loads_done = load_number - 1 if step == "read" else load_number  # "written": the warehouse has that load
    in_warehouse = _warehouse_rows()
    assert in_warehouse[0] == in_warehouse[1] == min(500, loads_done * 150)
    assert inbox.pending(engine) == 500 - (load_number - 1) * 150  # the interrupted load's rows are all still there

    assert main(["telemetry", "load"]) == 0
    out = capsys.readouterr().out
    assert f"loaded {500 - (load_number - 1) * 150} events ({500 - in_warehouse[0]} new" in out
    assert _warehouse_rows() == (500, 500)
    assert inbox.pending(engine) == 0
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_batch_committing_while_a_load_runs_is_not_deleted_unloaded(inbox_harness: Harness) -> None:
    """PostgreSQL draws seq before commit: a slow batch can commit a lower seq during a load of higher ones."""
    engine = _engine()
    slow, fast = _batch(20), _batch(30)
    with engine.connect() as conn:
        conn.execute(db.TelemetryInboxRow.__table__.insert(), inbox.inbox_rows(slow.events, db.utcnow()))
        assert _post(inbox_harness, fast.model_dump_json())["accepted"] == 30  # higher seq, committed first
        wh = warehouse.connect(get_registry_settings().warehouse)

        def commit_slow(step: str) -> None:  # after the load read `fast`, before it deletes what it read
            if step == "written":
                conn.commit()

        loader = inbox.InboxLoader(
            engine, lambda data: wh.insert_new_ndjson(tables.TELEMETRY_EVENTS, data), 100, commit_slow
        )
        assert loader.acquire()
        assert loader.load_once() == inbox.LoadResult(30, 30)
    assert inbox.pending(engine) == 20
    assert loader.load_once() == inbox.LoadResult(20, 20)
    loader.release()
    wh.close()
    assert _warehouse_rows() == (50, 50)
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_one_loader_at_a_time_and_the_lease_passes_on_when_its_holder_dies(
    inbox_harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = _engine()
    first, second, third = (inbox.InboxLoader(engine, lambda data: 0, 100) for _ in range(3))
    assert first.acquire()
    assert not second.acquire()
    assert main(["telemetry", "load"]) == 2
    assert "another telemetry loader holds the lease" in capsys.readouterr().err.replace("\n", " ")
    first.release()  # its connection must not go back to the pool still holding the lock
    assert second.acquire()
    assert not third.acquire()
    assert second._conn is not None
    second._conn.connection.driver_connection.close()  # type: ignore[union-attr]  # its session ends, as on a crash
    deadline = time.monotonic() + 60  # the server ends that backend (and its lock) when it notices: a bound on a hang
    while not third.acquire():
        assert time.monotonic() < deadline, "the lease of a closed session was never let go"
        time.sleep(0.05)
    third.release()
    second.release()
    engine.dispose()


def test_a_batch_of_thousands_gets_exact_counts(registry_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    limits = {"max_telemetry_events": "6000", "max_telemetry_bytes": str(8 * 1024 * 1024)}
    with _inbox_registry(registry_env, monkeypatch, telemetry_loader="off", **limits) as h:
        first = _batch(2500)
        assert _post(h, first.model_dump_json()) == {"accepted": 2500, "duplicates": 0}
        # 2,500 resent, 2,500 new, 500 of those repeated within the batch.
        fresh = _batch(2500).events
        mixed = type(first)(events=[*first.events, *fresh, *fresh[:500]])
        assert _post(h, mixed.model_dump_json()) == {"accepted": 2500, "duplicates": 3000}
    engine = _engine()
    assert inbox.pending(engine) == 5000
    engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # refused before any database is opened
def test_serve_refuses_several_workers_on_one_duckdb_file_and_names_the_inbox(
    registry_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGELOOP_REGISTRY_WORKERS", "1")  # serve writes --workers here: undone after the test
    assert main(["serve", "--workers", "2"]) == 2
    message = capsys.readouterr().err.replace("\n", " ")
    assert "a DuckDB warehouse accepts one writing process" in message
    assert "EDGELOOP_REGISTRY_TELEMETRY_SINK=inbox" in message
