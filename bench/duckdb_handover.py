"""Does one DuckDB file survive writer processes that take turns? (a probe, not a speed benchmark)

Several processes each open the file when the lock is free, append batches of unique keys, and
close it now and then, as `edgeloop serve`, training and `edgeloop sql` do on one machine. Each
round compares the rows every process was told were committed with the rows the file holds.
Measured with DuckDB 2.0.0 here: some rounds end with a writer failing "Could not read enough
bytes from file" after it opened the file another process had just checkpointed, and
bench/registry.py --replicas 3 --sinks warehouse lost acknowledged events. Replicas therefore use
the inbox sink (README: telemetry with several replicas).

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


def _writer(path: str, batches: int, seed: int, out: Any) -> None:
    rng = random.Random(seed)
    committed, error = 0, None
    con = None
    try:
        for _ in range(batches):
            while con is None:
                try:
                    con = duckdb.connect(path)
                except duckdb.IOException:
                    time.sleep(0.005)  # another process holds the write lock: take turns
            ids = [str(uuid.uuid4()) for _ in range(100)]
            con.execute("INSERT INTO t SELECT unnest(?::VARCHAR[])", [ids])
            committed += len(ids)
            if rng.random() < 0.3:  # let go, as an idle writer does
                con.close()
                con = None
    except duckdb.Error as exc:
        error = str(exc).splitlines()[0][:160]
    finally:
        if con is not None:
            con.close()
    out.put((committed, error))


def one_round(writers: int, batches: int, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="edgeloop-handover-") as tmp:
        path = str(Path(tmp) / "w.duckdb")
        with duckdb.connect(path) as con:
            con.execute("CREATE TABLE t (id VARCHAR PRIMARY KEY)")
        out: Any = mp.Queue()
        procs = [mp.Process(target=_writer, args=(path, batches, seed + n, out)) for n in range(writers)]
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
    rounds = [one_round(args.writers, args.batches, seed=n * 100) for n in range(args.rounds)]
    print(f"DuckDB {duckdb.__version__}, {args.writers} writer processes taking turns, {args.batches} x 100 keys each")
    print(f"{'round':>5} {'committed':>10} {'in file':>8} {'lost':>6}  writer errors")
    for n, r in enumerate(rounds, 1):
        print(
            f"{n:5d} {r['committed']:10d} {r['rows'] if r['rows'] is not None else '-':>8} "
            f"{r['lost'] if r['lost'] is not None else '-':>6}  {'; '.join(r['errors']) or '-'}"
        )
    safe = all(r["lost"] == 0 and not r["errors"] for r in rounds)
    print(json.dumps({"duckdb": duckdb.__version__, "rounds": rounds, "handover_safe": safe}))


if __name__ == "__main__":
    main()
