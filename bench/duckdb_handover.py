"""Does one DuckDB file survive writer processes that take turns? (a probe, not a speed benchmark)

Several processes each open the file when the lock is free, append batches of unique keys, and
close it now and then, as `edgeloop serve`, training and `edgeloop sql` do on one machine. Each
round compares the rows every process was told were committed with the rows the file holds.
Each round runs twice: writers that rely on DuckDB's own lock, and writers that open the file
through edgeloop's `DuckDBWarehouse` (its own lock on `<file>.lock`, held until DuckDB has closed).
Measured with DuckDB 2.0.0 here (`--rounds 10`): with DuckDB's lock alone 6 of 10 rounds lost
committed rows (100-500) or had a writer fail "Could not read enough bytes from file"; behind
edgeloop's lock, 0 of 10.

    python bench/duckdb_handover.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import duckdb

from edgeloop.warehouse import DuckDBWarehouse


class _Raw:
    """A writer with DuckDB's lock alone."""

    def __init__(self, path: str) -> None:
        while True:
            try:
                self._con = duckdb.connect(path)
                return
            except duckdb.IOException:
                time.sleep(0.005)  # another process holds the write lock: take turns

    def query(self, sql: str, params: list[Any]) -> Any:
        return self._con.execute(sql, params)

    def close(self) -> None:
        self._con.close()


def _writer(path: str, batches: int, seed: int, guarded: bool, out: Any) -> None:
    rng = random.Random(seed)
    committed, error = 0, None
    con: Any = None
    try:
        for _ in range(batches):
            if con is None:
                con = DuckDBWarehouse(f"duckdb:///{path}", lock_timeout_s=600) if guarded else _Raw(path)
            ids = [str(uuid.uuid4()) for _ in range(100)]
            con.query("INSERT INTO t SELECT unnest(?::VARCHAR[])", [ids])
            committed += len(ids)
            if rng.random() < 0.3:  # let go, as an idle writer does
                con.close()
                con = None
    except Exception as exc:  # reported in the table: the round's verdict
        error = str(exc).splitlines()[0][:160]
    finally:
        if con is not None:
            con.close()
    out.put((committed, error))


def one_round(writers: int, batches: int, seed: int, guarded: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="edgeloop-handover-") as tmp:
        path = str(Path(tmp) / "w.duckdb")
        with duckdb.connect(path) as con:
            con.execute("CREATE TABLE t (id VARCHAR PRIMARY KEY)")
        out: Any = mp.Queue()
        procs = [mp.Process(target=_writer, args=(path, batches, seed + n, guarded, out)) for n in range(writers)]
        for proc in procs:
            proc.start()
        results = [out.get(timeout=600) for _ in procs]
        for proc in procs:
            proc.join(60)
        try:
            with duckdb.connect(path, read_only=True) as con:
                rows: int | None = con.execute("SELECT count(*) FROM t").fetchone()[0]  # type: ignore[index]
        except duckdb.Error:
            rows = None
    committed = sum(c for c, _ in results)
    errors = [e for _, e in results if e]
    return {"committed": committed, "rows": rows, "lost": None if rows is None else committed - rows, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--writers", type=int, default=3)
    parser.add_argument("--batches", type=int, default=300, help="batches of 100 keys per writer and round")
    args = parser.parse_args()
    modes = {"duckdb's lock": False, "edgeloop's lock": True}
    rounds: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    for n in range(args.rounds):  # interleaved, so both modes see the same machine
        for mode, guarded in modes.items():
            rounds[mode].append(one_round(args.writers, args.batches, seed=n * 100, guarded=guarded))
    print(f"DuckDB {duckdb.__version__}, {args.writers} writer processes taking turns, {args.batches} x 100 keys each")
    print(f"{'writers behind':>16} {'round':>5} {'committed':>10} {'in file':>8} {'lost':>6}  writer errors")
    for mode in modes:
        for n, r in enumerate(rounds[mode], 1):
            rows = "-" if r["rows"] is None else r["rows"]
            lost = "-" if r["lost"] is None else r["lost"]
            print(f"{mode:>16} {n:5d} {r['committed']:10d} {rows:>8} {lost:>6}  {'; '.join(r['errors']) or '-'}")
    safe = {mode: all(r["lost"] == 0 and not r["errors"] for r in rs) for mode, rs in rounds.items()}
    for mode, ok in safe.items():
        bad = sum(1 for r in rounds[mode] if r["lost"] != 0 or r["errors"])
        print(f"{mode}: {bad} of {args.rounds} rounds lost rows or failed a writer -> {'safe' if ok else 'UNSAFE'}")
    print(json.dumps({"duckdb": duckdb.__version__, "rounds": rounds, "handover_safe": safe}))


if __name__ == "__main__":
    main()
