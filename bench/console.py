"""Server time of every console page on a big registry: 200 versions, 1,000,000 telemetry events.

    .venv/bin/python bench/console.py [--events 1000000] [--versions 200] [--runs 30] [--workspace DIR]

Builds a throwaway workspace (versions published through the API, events bulk-loaded into the
DuckDB warehouse, 50 training runs), logs a reader in, and requests each page `--runs` times
in-process (no sockets: server time only). `--workspace DIR` keeps the built workspace there and
reuses it on the next run (building takes minutes). Prints p50/p95 per page, the bytes sent, and the
page's time divided by its queries' time alone (run the same way, on the same data): a ratio
near 1 means the page costs what its SQL costs, whatever the number of events. Writes
bench/results/console.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

MODEL = "shelf-products"


def _timed(fn: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    times, out = [], None
    for _ in range(runs):
        start = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - start) * 1000)
    return times, out


def _p(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _load_warehouse(url: str, events: int, versions: int) -> None:
    from edgeloop import warehouse

    with warehouse.connect(url) as wh:
        con = wh._con  # type: ignore[attr-defined]  # bulk load: one INSERT … SELECT, not a million rows
        con.execute(
            f"""INSERT INTO telemetry_events
SELECT 'e' || i, 'device-' || (i % 5000), now()::TIMESTAMP - to_seconds(i % (14 * 86400)), now()::TIMESTAMP,
  CASE WHEN i % 500 = 0 THEN 'error' WHEN i % 2000 = 1 THEN 'rollback' ELSE 'inference' END,
  '{MODEL}', CAST({versions} - i % 3 AS VARCHAR), 'tflite_int8', 5 + (i % 97) / 7.0, 'label-' || (i % 20),
  (i % 100) / 100.0, '2.4.0', 'android', 'class-' || (i % 8), '14', NULL
FROM range({events}) t(i)"""
        )
        runs = [
            {"run_id": f"run-{n:03d}", "dataset_version": f"v{n // 5}", "status": "succeeded", "epochs": 12,
             "started_at": dt.datetime(2026, 6, 1, tzinfo=dt.UTC) + dt.timedelta(days=n), "macro_f1": 0.8,
             "accuracy": 0.85}
            for n in range(50)
        ]  # fmt: skip
        from edgeloop import tables

        wh.upsert(tables.TRAINING_RUNS, runs)
        wh.upsert(
            tables.EPOCH_METRICS,
            [{"run_id": "run-049", "phase": "head", "epoch": e, "loss": 1 / (e + 1)} for e in range(12)],
        )
        # The eval split of the dataset every version's card names (registry_api.testing: "v1"), so the field page computes PSI.
        wh.upsert(
            tables.DATASET_CLASSES,
            [{"dataset_version": "v1", "split": "eval", "label": f"label-{c}", "label_index": c, "examples": 12 + c}
             for c in range(20)],
        )  # fmt: skip
        wh.upsert(
            tables.CLASS_METRICS,
            [
                {"run_id": r["run_id"], "label": f"label-{c}", "label_index": c, "recall": 0.8}
                for r in runs
                for c in range(20)
            ],
        )


def _build(workspace: Path, events: int, versions: int) -> dict[str, str]:
    """Publish `versions` versions through the API, then bulk-load the warehouse; the keys made."""
    from fastapi.testclient import TestClient

    from edgeloop.settings import get_settings
    from registry_api import create_app
    from registry_api.testing import create_keys, make_package, multipart

    tokens = create_keys(publisher=1e6, reader=1e6)
    labels = tuple(f"label-{c}" for c in range(20))
    started = time.perf_counter()
    with TestClient(create_app()) as client:
        auth = {"Authorization": f"Bearer {tokens['publisher']}"}
        for n in range(1, versions + 1):
            folder = make_package(workspace / "pkgs" / f"v{n}", run=f"run-{n}", labels=labels,
                                  metrics={"macro_f1": 0.8, "class_recall": dict.fromkeys(labels, 0.8)})  # fmt: skip
            client.post(f"/v1/models/{MODEL}/versions", files=multipart(folder), headers=auth).raise_for_status()
        for alias, version in (("production", versions - 1), ("canary", versions)):
            body = {"version": version, "rollout_percent": 10, "reason": "bench"}
            client.put(f"/v1/models/{MODEL}/aliases/{alias}", json=body, headers=auth).raise_for_status()
        registry = client.app.state.registry  # type: ignore[attr-defined]
        registry.writer.close()  # the bulk load below writes the file itself
    _load_warehouse(get_settings().warehouse_url, events, versions)
    print(f"built in {time.perf_counter() - started:.0f} s: {versions} versions, {events:,} events")
    return dict(tokens)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--versions", type=int, default=200)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument(
        "--workspace", type=Path, help="Build here once, reuse afterwards (default: a new temp folder)."
    )
    args = parser.parse_args(argv)

    workspace = args.workspace or Path(tempfile.mkdtemp(prefix="edgeloop-bench-console-"))
    workspace.mkdir(parents=True, exist_ok=True)
    built = workspace / "bench-built.json"
    os.environ["EDGELOOP_WORKSPACE"] = str(workspace)
    os.environ["EDGELOOP_REGISTRY_ACCESS_LOG"] = "false"
    shape = {"events": args.events, "versions": args.versions}
    if built.exists() and json.loads(built.read_text())["shape"] == shape:
        tokens = json.loads(built.read_text())["tokens"]
        print(f"reusing {workspace}: {args.versions} versions, {args.events:,} events")
    else:
        tokens = _build(workspace, args.events, args.versions)
        built.write_text(json.dumps({"shape": shape, "tokens": tokens}))
    from fastapi.testclient import TestClient

    from registry_api import create_app
    from registry_api.console import data, field

    with TestClient(create_app()) as client:
        page = client.get("/console/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        client.post("/console/login", data={"key": tokens["reader"], "csrf": csrf.group(1), "next": "/console/"})
        registry = client.app.state.registry  # type: ignore[attr-defined]
        today = dt.datetime.now(dt.UTC).date()

        def db(fn: Callable[..., Any], *a: Any, **k: Any) -> Callable[[], Any]:
            def run() -> Any:
                with registry.manifests.sessions() as session:
                    return fn(session, *a, **k)

            return run

        def wh(fn: Callable[..., Any], *a: Any) -> Callable[[], Any]:
            return lambda: registry.writer.read(lambda w: fn(w, *a)).result()

        devices = registry.settings.benchmark_devices
        datasets = db(data.field_context, MODEL)().datasets
        pages: list[tuple[str, str, list[Callable[[], Any]]]] = [
            ("what runs where", "/console/", [db(data.overview), wh(field.latest_decisions)]),
            ("a model", f"/console/models/{MODEL}", [db(data.model_page, MODEL)]),
            ("a version", f"/console/models/{MODEL}/versions/{args.versions}",
             [db(data.version_page, MODEL, args.versions, devices=devices)]),
            ("field health", f"/console/models/{MODEL}/field",
             [db(data.field_context, MODEL), wh(field.field_page, MODEL, today, datasets)]),
            ("training", "/console/training", [wh(field.training_page, None)]),
        ]  # fmt: skip
        results = []
        for name, path, queries in pages:
            client.get(path)  # warm
            times, answer = _timed(lambda path=path: client.get(path), args.runs)  # type: ignore[misc]
            assert answer.status_code == 200 and "cannot be read" not in answer.text, (path, answer.status_code)
            query_times, _ = _timed(lambda queries=queries: [q() for q in queries], args.runs)  # type: ignore[misc]
            results.append(
                {
                    "page": name,
                    "path": path,
                    "p50_ms": round(_p(times, 0.5), 1),
                    "p95_ms": round(_p(times, 0.95), 1),
                    "bytes": len(answer.content),
                    "queries_p50_ms": round(statistics.median(query_times), 1),
                    "page_over_queries": round(statistics.median(times) / statistics.median(query_times), 2),
                }
            )
    print(f"{'page':<16} {'p50 ms':>8} {'p95 ms':>8} {'bytes':>8} {'SQL ms':>8} {'page/SQL':>9}")
    for r in results:
        print(f"{r['page']:<16} {r['p50_ms']:>8} {r['p95_ms']:>8} {r['bytes']:>8} {r['queries_p50_ms']:>8} "
              f"{r['page_over_queries']:>9}")  # fmt: skip
    out = ROOT / "bench" / "results" / "console.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"events": args.events, "versions": args.versions, "pages": results}, indent=2))


if __name__ == "__main__":
    main()
