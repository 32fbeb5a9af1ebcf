"""Processes take turns at a DuckDB file behind edgeloop's own lock, not DuckDB's alone (bench/duckdb_handover.py)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
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


@contextlib.contextmanager
def other_process(lock: Path, mode: str) -> Iterator[str]:
    """Another process trying `lock` as a writer ("exclusive") or a reader ("shared"): "held" or "busy"."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock), mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        yield proc.stdout.readline().strip()
    finally:
        proc.stdin.close()
        proc.wait(30)


def warehouse_with_table(tmp_path: Path) -> str:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    with DuckDBWarehouse(url) as wh:
        wh.query("CREATE TABLE t (id VARCHAR PRIMARY KEY)")
    return url


def test_a_writer_waits_while_another_process_has_its_turn(tmp_path: Path) -> None:
    url = warehouse_with_table(tmp_path)
    # The other writer has closed DuckDB's file (its lock is free) but is still in its turn, e.g. checkpointing.
    with other_process(tmp_path / "w.duckdb.lock", "exclusive") as answer:
        assert answer == "held"
        with pytest.raises(WarehouseError, match=r"w\.duckdb\.lock"):
            DuckDBWarehouse(url, lock_timeout_s=0.2)
        with pytest.raises(WarehouseError, match=r"w\.duckdb\.lock"):
            DuckDBWarehouse(url, read_only=True, lock_timeout_s=0.2)
    with DuckDBWarehouse(url, lock_timeout_s=0.2) as wh:  # its turn over, ours begins
        wh.query("INSERT INTO t VALUES ('a')")


def test_connections_of_one_process_share_its_turn_and_end_it_together(tmp_path: Path) -> None:
    url = warehouse_with_table(tmp_path)
    first = DuckDBWarehouse(url)
    second = DuckDBWarehouse(url, lock_timeout_s=0.2)  # DuckDB shares its instance in-process; so do we
    second.close()
    with other_process(tmp_path / "w.duckdb.lock", "shared") as answer:
        assert answer == "busy"  # `first` still writes: no reader may start
    first.close()
    with other_process(tmp_path / "w.duckdb.lock", "exclusive") as answer:
        assert answer == "held"


def test_readers_of_several_processes_share_the_file(tmp_path: Path) -> None:
    url = warehouse_with_table(tmp_path)
    with other_process(tmp_path / "w.duckdb.lock", "shared") as answer:
        assert answer == "held"
        with DuckDBWarehouse(url, read_only=True, lock_timeout_s=0.2) as wh:
            assert wh.query("SELECT count(*) AS n FROM t") == [{"n": 0}]
