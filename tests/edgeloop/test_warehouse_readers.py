"""The schema is ensured once per version, and readers (`edgeloop sql`, the console) only read.

DuckDB lets many processes read a file, or one process write it, never both at once: a
read-only open fails while another process has the file open read-write. So a reader shares
the file with other readers and waits for a writer's turn (edgeloop's turn lock), and a writer
on an up-to-date file writes nothing but its rows.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeloop import tables as t
from edgeloop import views, warehouse

EDGELOOP = [sys.executable, "-m", "edgeloop.cli"]

# Another process holding a connection ("reader" or "writer") until its stdin gives a line; a writer
# then adds a run, so whoever waited for its turn sees it.
HOLDER = """
import sys
from edgeloop import tables, warehouse
reader = sys.argv[2] == "reader"
wh = warehouse.DuckDBWarehouse(sys.argv[1], read_only=True) if reader else warehouse.connect(sys.argv[1])
print("open", flush=True)
sys.stdin.readline()
if sys.argv[2] == "writer":
    wh.upsert(tables.TRAINING_RUNS, [{"run_id": "late", "dataset_version": "v1", "status": "succeeded",
                                      "started_at": "2026-11-23T07:00:00"}])
wh.close()
"""


@pytest.fixture()
def url(tmp_path: Path) -> str:
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    with warehouse.connect(url) as wh:
        wh.upsert(t.TRAINING_RUNS, [{"run_id": "r1", "dataset_version": "v1", "status": "succeeded",
                                     "started_at": "2026-11-23T07:00:00"}])  # fmt: skip
    return url


def digest(url: str) -> str:
    return hashlib.sha256(Path(url.removeprefix("duckdb:///")).read_bytes()).hexdigest()


def sql(url: str, query: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EDGELOOP, "sql", query, "--format", "json", "--warehouse", url],
        capture_output=True,
        text=True,
        timeout=120,
    )


@contextlib.contextmanager
def other_process(url: str, role: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, role], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "open"
        yield proc
    finally:
        proc.stdin.close()
        assert proc.wait(60) == 0


def test_a_writer_on_an_up_to_date_warehouse_writes_nothing_but_its_rows(url: str) -> None:
    before = digest(url)
    with warehouse.connect(url) as wh:
        assert wh.query("SELECT count(*) AS n FROM v_best_run_per_dataset") == [{"n": 1}]
    assert digest(url) == before  # no table checked into the file, no view made again


def test_only_a_changed_view_is_made_again(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with warehouse.connect(url) as wh:
        first = {r["name"]: r["ensured_at"] for r in wh.query("SELECT name, ensured_at FROM _edgeloop_schema")}
    assert set(first) == {tb.name for tb in t.ALL} | set(views.VIEWS)
    description, _ = views.VIEWS["v_latest_dataset"]
    monkeypatch.setitem(views.VIEWS, "v_latest_dataset", (description, "SELECT 42 AS answer"))
    with warehouse.connect(url) as wh:
        assert wh.query("SELECT * FROM v_latest_dataset") == [{"answer": 42}]
        now = {r["name"]: r["ensured_at"] for r in wh.query("SELECT name, ensured_at FROM _edgeloop_schema")}
    assert [name for name in now if now[name] != first[name]] == ["v_latest_dataset"]


def test_sql_on_a_read_only_file_answers_and_changes_nothing(url: str) -> None:
    path = Path(url.removeprefix("duckdb:///"))
    before = digest(url)
    mode = path.stat().st_mode
    path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    try:
        done = sql(url, "SELECT run_id FROM v_best_run_per_dataset")
    finally:
        path.chmod(mode)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"run_id": "r1"}]
    assert digest(url) == before


def test_sql_answers_while_another_process_reads(url: str) -> None:
    # The console keeps a read-only connection open between pages; a query must not wait for it to go idle.
    with other_process(url, "reader"):
        done = sql(url, "SELECT count(*) AS n FROM training_runs")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == [{"n": 1}]


def test_sql_waits_for_a_writers_turn_then_sees_its_rows(url: str) -> None:
    with other_process(url, "writer") as writer:
        query = subprocess.Popen(
            [*EDGELOOP, "sql", "SELECT run_id FROM training_runs ORDER BY 1", "--format", "json", "--warehouse", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
    out, err = query.communicate(timeout=120)
    assert query.returncode == 0, err
    assert json.loads(out) == [{"run_id": "late"}, {"run_id": "r1"}]


def test_sql_on_a_fresh_workspace_creates_the_empty_tables_once(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'new' / 'wh.duckdb'}"
    with warehouse.connect(url, read_only=True) as wh:
        assert wh.query("SELECT count(*) AS n FROM v_best_run_per_dataset") == [{"n": 0}]
    before = digest(url)
    with warehouse.connect(url, read_only=True) as wh:
        assert isinstance(wh, warehouse.DuckDBWarehouse)
        with pytest.raises(warehouse.WarehouseError, match="read-only"):
            wh.query("DELETE FROM training_runs")
    assert digest(url) == before


def test_a_bigquery_reader_sends_no_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("google.cloud.bigquery", reason="install the gcp extra: uv sync --extra gcp")
    # Credentials that need no network until a request is made, and an endpoint that counts connections.
    creds = tmp_path / "adc.json"
    creds.write_text(
        json.dumps({"type": "authorized_user", "client_id": "x", "client_secret": "y", "refresh_token": "z"})
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(creds))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", f"http://127.0.0.1:{listener.getsockname()[1]}")
        with warehouse.connect("bigquery://acme-analytics/edgeloop", read_only=True) as wh:
            assert isinstance(wh, warehouse.BigQueryWarehouse)
        with pytest.raises(BlockingIOError):
            listener.accept()  # no dataset create, no table get, no view job
