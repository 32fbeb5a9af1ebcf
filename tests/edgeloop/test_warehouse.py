"""Warehouse contract: one suite for DuckDB always, and for BigQuery when EDGELOOP_BQ_PROJECT is set.

Without BigQuery, its DDL, MERGE and view SQL are checked by construction: parsed with
sqlglot's BigQuery dialect and compared column by column with the table definitions,
and the schema built as real google-cloud-bigquery `SchemaField`s.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeloop import tables as t
from edgeloop import views, warehouse
from edgeloop.errors import ConfigError, WarehouseError

NOW = dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC)


def _engines() -> list[object]:
    engines: list[object] = ["duckdb"]
    reason = "set EDGELOOP_BQ_PROJECT (and credentials) to run the contract suite against real BigQuery"
    engines.append(
        pytest.param(
            "bigquery",
            marks=[pytest.mark.bigquery, pytest.mark.skipif(not os.environ.get("EDGELOOP_BQ_PROJECT"), reason=reason)],
        )
    )
    return engines


@pytest.fixture(params=_engines())
def wh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[warehouse.Warehouse]:
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    else:
        url = f"bigquery://{os.environ['EDGELOOP_BQ_PROJECT']}/edgeloop_test_{uuid.uuid4().hex[:8]}"
    with warehouse.connect(url) as conn:
        yield conn


def run_row(run_id: str, **extra: object) -> dict[str, object]:
    return {"run_id": run_id, "dataset_version": "v0001", "status": "succeeded", "started_at": NOW, **extra}


def count(wh: warehouse.Warehouse, table: str) -> int:
    return int(wh.query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"])


def test_upsert_is_idempotent_by_natural_key(wh: warehouse.Warehouse) -> None:
    rows = [run_row("r1", macro_f1=0.9), run_row("r2", macro_f1=0.8)]
    assert wh.upsert(t.TRAINING_RUNS, rows) == 2
    assert wh.upsert(t.TRAINING_RUNS, rows) == 2
    assert count(wh, "training_runs") == 2
    wh.upsert(t.TRAINING_RUNS, [run_row("r1", macro_f1=0.95, status="failed")])
    got = wh.query("SELECT run_id, macro_f1, status FROM training_runs ORDER BY run_id")
    assert got == [
        {"run_id": "r1", "macro_f1": 0.95, "status": "failed"},
        {"run_id": "r2", "macro_f1": 0.8, "status": "succeeded"},
    ]


def test_duplicates_within_one_batch_keep_the_last(wh: warehouse.Warehouse) -> None:
    wh.upsert(t.TRAINING_RUNS, [run_row("r1", epochs=1), run_row("r1", epochs=2)])
    assert wh.query("SELECT epochs FROM training_runs") == [{"epochs": 2}]


def test_insert_new_keeps_first_write(wh: warehouse.Warehouse) -> None:
    event = {
        "event_id": str(uuid.uuid4()),
        "device_id": "d1",
        "event_time": NOW,
        "received_at": NOW,
        "kind": "inference",
        "latency_ms": 3.5,
    }
    assert wh.insert_new(t.TELEMETRY_EVENTS, [event]) == 1
    wh.insert_new(t.TELEMETRY_EVENTS, [{**event, "latency_ms": 99.0}])
    assert wh.query("SELECT latency_ms FROM telemetry_events") == [{"latency_ms": 3.5}]


def test_composite_keys_and_types_round_trip(wh: warehouse.Warehouse) -> None:
    rows = [
        {
            "run_id": "r1",
            "check_name": "min_macro_f1",
            "threshold": 0.9,
            "value": 0.95,
            "passed": True,
            "verdict": "pass",
            "evaluated_at": NOW,
        },
        {
            "run_id": "r1",
            "check_name": "min_accuracy",
            "threshold": 0.9,
            "value": 0.5,
            "passed": False,
            "verdict": "pass",
            "evaluated_at": NOW,
        },
    ]
    wh.upsert(t.GATE_RESULTS, rows)
    wh.upsert(t.GATE_RESULTS, rows)
    got = wh.query("SELECT check_name, passed, evaluated_at FROM gate_results ORDER BY check_name")
    assert [(r["check_name"], r["passed"]) for r in got] == [("min_accuracy", False), ("min_macro_f1", True)]
    stamp = got[0]["evaluated_at"]
    assert stamp.replace(tzinfo=dt.UTC) if stamp.tzinfo is None else stamp == NOW


def test_json_and_dates(wh: warehouse.Warehouse) -> None:
    wh.upsert(
        t.RELEASE_DECISIONS,
        [
            {
                "model": "m",
                "version": "3",
                "alias": "canary",
                "decided_on": "2026-11-23",
                "decision": "promote",
                "metrics": {"p95_ms": 12.5},
                "decided_at": NOW,
            }
        ],
    )
    row = wh.query("SELECT decided_on, metrics FROM release_decisions")[0]
    assert row["decided_on"] == dt.date(2026, 11, 23)
    assert "p95_ms" in str(row["metrics"])


def test_views_are_queryable(wh: warehouse.Warehouse) -> None:
    wh.upsert(t.TRAINING_RUNS, [run_row("r1", macro_f1=0.9), run_row("r2", macro_f1=0.97)])
    best = wh.query("SELECT run_id FROM v_best_run_per_dataset")
    assert best == [{"run_id": "r2"}]
    for name in views.VIEWS:
        wh.query(f"SELECT * FROM {name}")


def test_bad_rows_name_the_column_and_value(wh: warehouse.Warehouse) -> None:
    with pytest.raises(WarehouseError, match="unknown column"):
        wh.upsert(t.TRAINING_RUNS, [run_row("r1", colour="blue")])
    with pytest.raises(WarehouseError, match="epochs: value 'many' is not a valid INT64"):
        wh.upsert(t.TRAINING_RUNS, [run_row("r1", epochs="many")])
    with pytest.raises(WarehouseError, match="'run_id' needs a value"):
        wh.upsert(t.TRAINING_RUNS, [run_row(None)])  # type: ignore[arg-type]
    assert count(wh, "training_runs") == 0


def test_conflicting_schema_is_refused_with_the_fix(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE training_runs (run_id VARCHAR PRIMARY KEY, dataset_version VARCHAR, status VARCHAR, "
        "started_at TIMESTAMP, epochs VARCHAR)"
    )
    con.close()
    with pytest.raises(WarehouseError, match="epochs as VARCHAR, edgeloop expects BIGINT; migrate"):
        warehouse.connect(f"duckdb:///{path}")


def test_missing_nullable_column_is_added(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "older.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE training_runs (run_id VARCHAR PRIMARY KEY, dataset_version VARCHAR NOT NULL, "
        "status VARCHAR NOT NULL, started_at TIMESTAMP NOT NULL)"
    )
    con.execute("INSERT INTO training_runs VALUES ('old', 'v0001', 'succeeded', '2026-01-01')")
    con.close()
    with warehouse.connect(f"duckdb:///{path}") as wh:
        assert wh.query("SELECT run_id, macro_f1 FROM training_runs") == [{"run_id": "old", "macro_f1": None}]


def test_unknown_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="bigquery://PROJECT/DATASET"):
        warehouse.connect("postgres://x/y")


def test_default_url_is_a_file_in_the_workspace(tmp_path: Path) -> None:
    with warehouse.connect() as wh:
        assert isinstance(wh, warehouse.DuckDBWarehouse)
        assert wh.path == (tmp_path / "workspace" / "warehouse.duckdb").resolve()


# --------------------------------------------------------------------------- BigQuery by construction


@pytest.mark.parametrize("table", t.ALL, ids=lambda tb: tb.name)
def test_bigquery_ddl_parses_and_matches_the_definition(table: t.Table) -> None:
    import sqlglot
    from sqlglot import exp

    ddl = table.bigquery_ddl("proj.ds")
    tree = sqlglot.parse_one(ddl, read="bigquery")
    assert isinstance(tree, exp.Create)
    defs = {c.name: c for c in tree.find_all(exp.ColumnDef)}
    assert list(defs) == list(table.column_names)
    for col in table.columns:
        rendered = defs[col.name].args["kind"].sql(dialect="bigquery")
        assert rendered == col.type.value, (col.name, rendered)
    if table.partition_by:
        assert "PARTITION BY" in ddl and table.partition_by in ddl


@pytest.mark.parametrize("table", t.ALL, ids=lambda tb: tb.name)
def test_bigquery_schema_fields_are_real(table: t.Table) -> None:
    fields = warehouse.bigquery_schema(table)
    api = [f.to_api_repr() for f in fields]
    assert [f["name"] for f in api] == list(table.column_names)
    for field, col in zip(api, table.columns, strict=True):
        assert field["type"] == col.type.value
        assert field["mode"] == ("REQUIRED" if col.required or col.name in table.key else "NULLABLE")


@pytest.mark.parametrize("replace", [True, False])
def test_bigquery_merge_parses(replace: bool) -> None:
    import sqlglot
    from sqlglot import exp

    for table in t.ALL:
        sql = warehouse.merge_sql(table, f"p.d.{table.name}", f"p.d._staging_{table.name}", replace=replace)
        tree = sqlglot.parse_one(sql, read="bigquery")
        assert isinstance(tree, exp.Merge)
        on = tree.args["on"].sql(dialect="bigquery")
        for key in table.key:
            assert f"T.`{key}` = S.`{key}`" in on


def test_bigquery_views_parse_and_qualify_every_table() -> None:
    import sqlglot
    from sqlglot import exp

    for name, sql in views.render(prefix="`p.d`.").items():
        tree = sqlglot.parse_one(sql, read="bigquery")
        for tbl in tree.find_all(exp.Table):
            if tbl.name in t.BY_NAME:
                assert tbl.sql(dialect="bigquery").startswith("`p`.`d`.") or "p.d" in tbl.sql(dialect="bigquery"), name


def _arrow(table: t.Table, rows: list[dict[str, object]]) -> object:
    return warehouse.arrow_table(table, [[row.get(name) for row in rows] for name in table.column_names])


def _event(event_id: str, device_id: str = "d1", **extra: object) -> dict[str, object]:
    naive = NOW.replace(tzinfo=None)
    return {"event_id": event_id, "device_id": device_id, "event_time": naive, "received_at": naive} | {
        "kind": "inference",
        **extra,
    }


def test_duckdb_bulk_insert_reports_only_the_new_keys(tmp_path: Path) -> None:
    table = t.TELEMETRY_EVENTS
    with warehouse.connect(f"duckdb:///{tmp_path / 'wh.duckdb'}") as wh:
        assert isinstance(wh, warehouse.DuckDBWarehouse)
        old = [_event(f"e{i}", latency_ms=1.5, detail='{"a": 1}') for i in range(3)]
        assert wh.insert_new_arrow(table, _arrow(table, old)) is None  # all new
        resent = [_event("e1", device_id="changed"), _event("e9"), _event("e2")]
        assert wh.insert_new_arrow(table, _arrow(table, resent)) == {"e9"}
        rows = {r["event_id"]: r for r in wh.query("SELECT * FROM telemetry_events")}
        assert sorted(rows) == ["e0", "e1", "e2", "e9"]
        assert rows["e1"]["device_id"] == "d1" and rows["e1"]["latency_ms"] == 1.5  # first write wins
        assert rows["e0"]["event_time"] == NOW.replace(tzinfo=None) and rows["e0"]["detail"] == '{"a": 1}'


def test_duckdb_bulk_insert_refuses_bad_rows_whole(tmp_path: Path) -> None:
    table = t.TELEMETRY_EVENTS
    with warehouse.connect(f"duckdb:///{tmp_path / 'wh.duckdb'}") as wh:
        assert isinstance(wh, warehouse.DuckDBWarehouse)
        wh.insert_new_arrow(table, _arrow(table, [_event("e0")]))
        # A missing required value fails the plain INSERT and the retry alike: nothing lands.
        with pytest.raises(WarehouseError, match="telemetry_events"):
            wh.insert_new_arrow(table, _arrow(table, [_event("e1"), _event("e0"), _event("e2", kind=None)]))
        with pytest.raises(WarehouseError, match="telemetry_events: rows do not fit"):
            _arrow(table, [_event("e3", latency_ms="fast")])
        with pytest.raises(WarehouseError, match="one-column key"):
            wh.insert_new_arrow(t.BY_NAME["dataset_classes"], _arrow(table, [_event("e4")]))
        assert [r["event_id"] for r in wh.query("SELECT event_id FROM telemetry_events")] == ["e0"]


def _ndjson(*event_ids: str) -> bytes:
    """Rows as the registry's telemetry inbox keeps them: naive-UTC ISO times, JSON columns as text."""
    lines = [
        json.dumps(
            {"event_id": e, "device_id": "d1", "event_time": "2026-11-23T07:00:00.250000"}
            | {"received_at": "2026-11-23T07:00:01", "kind": "inference", "latency_ms": 4, "detail": '{"n": 1}'}
        )
        for e in event_ids
    ]
    return "\n".join(lines).encode()


def test_insert_new_ndjson_adds_only_event_ids_not_there(wh: warehouse.Warehouse) -> None:
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    assert wh.insert_new_ndjson(t.TELEMETRY_EVENTS, _ndjson(a, b)) == 2
    assert wh.insert_new_ndjson(t.TELEMETRY_EVENTS, _ndjson(b, c)) == 1  # a reloaded row adds nothing
    rows = wh.query("SELECT event_id, event_time, latency_ms, detail FROM telemetry_events ORDER BY event_id")
    assert sorted(r["event_id"] for r in rows) == sorted([a, b, c])
    assert rows[0]["latency_ms"] == 4.0 and json.loads(str(rows[0]["detail"])) == {"n": 1}
    assert rows[0]["event_time"].replace(tzinfo=None) == dt.datetime(2026, 11, 23, 7, 0, 0, 250000)


def test_ndjson_rows_that_do_not_fit_are_refused_whole(tmp_path: Path) -> None:
    with warehouse.connect(f"duckdb:///{tmp_path / 'wh.duckdb'}") as wh:
        bad = _ndjson(str(uuid.uuid4())).replace(b'"kind"', b'"colour": "red", "kind"')
        with pytest.raises(WarehouseError, match="telemetry_events: rows do not fit"):
            wh.insert_new_ndjson(t.TELEMETRY_EVENTS, _ndjson(str(uuid.uuid4())) + b"\n" + bad)
        assert count(wh, "telemetry_events") == 0


def test_bigquery_telemetry_loads_are_ndjson_load_jobs_into_staging_with_the_table_schema() -> None:
    config = warehouse.ndjson_load_config(t.TELEMETRY_EVENTS).to_api_repr()["load"]
    assert config["sourceFormat"] == "NEWLINE_DELIMITED_JSON"
    assert config["writeDisposition"] == "WRITE_TRUNCATE"  # a staging table of this load only
    assert int(config["maxBadRecords"]) == 0 and config["ignoreUnknownValues"] is False  # refused whole, never dropped
    fields = [f.to_api_repr() for f in warehouse.bigquery_schema(t.TELEMETRY_EVENTS)]
    assert config["schema"]["fields"] == fields
