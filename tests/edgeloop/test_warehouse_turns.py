"""Processes take turns at a DuckDB file behind edgeloop's own lock, not DuckDB's alone (bench/duckdb_handover.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgeloop.errors import WarehouseError
from edgeloop.warehouse import DuckDBWarehouse

# Another process that takes `<file>.lock` as a writer would, says so, and holds it until its stdin closes.
HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
mode = fcntl.LOCK_EX if sys.argv[2] == "exclusive" else fcntl.LOCK_SH
try:
    fcntl.lockf(fd, mode | fcntl.LOCK_NB)
except OSError:
    print("busy", flush=True)
    sys.exit(0)
print("held", flush=True)
sys.stdin.read()
"""


def _holder(lock: Path, mode: str) -> tuple[subprocess.Popen[str], str]:
    """The holder process and its answer: "held" (it has the lock now) or "busy"."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock), mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _end(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(30)


def test_a_writer_waits_while_another_process_has_its_turn(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    with DuckDBWarehouse(url) as wh:
        wh.query("CREATE TABLE t (id VARCHAR PRIMARY KEY)")
    # The other writer has closed DuckDB's file (its lock is free) but is still in its turn, e.g. checkpointing.
    holder, answer = _holder(tmp_path / "w.duckdb.lock", "exclusive")
    try:
        assert answer == "held"
        with pytest.raises(WarehouseError, match=r"w\.duckdb\.lock"):
            DuckDBWarehouse(url, lock_timeout_s=0.2)
        with pytest.raises(WarehouseError, match=r"w\.duckdb\.lock"):
            DuckDBWarehouse(url, read_only=True, lock_timeout_s=0.2)
    finally:
        _end(holder)
    with DuckDBWarehouse(url, lock_timeout_s=0.2) as wh:  # its turn over, ours begins
        wh.query("INSERT INTO t VALUES ('a')")


def test_connections_of_one_process_share_its_turn_and_end_it_together(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    lock = tmp_path / "w.duckdb.lock"
    first = DuckDBWarehouse(url)
    second = DuckDBWarehouse(url, lock_timeout_s=0.2)  # DuckDB shares its instance in-process; so do we
    second.close()
    probe, answer = _holder(lock, "shared")
    assert answer == "busy"  # `first` still writes: no reader may start
    _end(probe)
    first.close()
    probe, answer = _holder(lock, "exclusive")
    assert answer == "held"
    _end(probe)


def test_readers_of_several_processes_share_the_file(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    with DuckDBWarehouse(url) as wh:
        wh.query("CREATE TABLE t (id INTEGER)")
    reader, answer = _holder(tmp_path / "w.duckdb.lock", "shared")
    try:
        assert answer == "held"
        with DuckDBWarehouse(url, read_only=True, lock_timeout_s=0.2) as wh:
            assert wh.query("SELECT count(*) AS n FROM t") == [{"n": 0}]
    finally:
        _end(reader)
