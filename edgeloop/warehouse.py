"""The metrics warehouse: DuckDB (a file, the embedded default) or BigQuery, one interface.

    wh = connect()                      # from settings: duckdb:///… or bigquery://PROJECT/DATASET
    wh.upsert(tables.TRAINING_RUNS, rows)   # keyed by each row's natural key: re-runs replace
    wh.insert_new(tables.TELEMETRY_EVENTS, events)  # first write wins: resent events add nothing
    wh.query("SELECT … FROM training_runs")       # list of dicts

Tables come from `edgeloop.tables` and views from `edgeloop.views`, so both engines
hold the same schema. A table that exists with a conflicting schema is refused with
the difference spelled out; a missing column is added.

A writer checks the schema once per schema version, not on every connection: the
warehouse keeps a digest of each table and view definition it was brought up to
(`_edgeloop_schema`), and `ensure()` touches only what differs. Readers
(`connect(read_only=True)`: `edgeloop sql`, the console) never create or check anything,
so they need no write lock and no edit rights; a DuckDB reader opens the file read-only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import hashlib
import io
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol
from urllib.parse import urlparse

from edgeloop import tables as t
from edgeloop import views
from edgeloop.errors import ConfigError, MissingExtra, WarehouseError

log = logging.getLogger(__name__)

Row = Mapping[str, Any]


class Warehouse(Protocol):
    url: str

    def ensure(self, schema: Sequence[t.Table] = t.ALL) -> None: ...
    def upsert(self, table: t.Table, rows: Iterable[Row]) -> int: ...
    def insert_new(self, table: t.Table, rows: Iterable[Row]) -> int: ...
    def insert_new_ndjson(self, table: t.Table, data: bytes) -> int: ...
    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]: ...
    def close(self) -> None: ...
    def __enter__(self) -> Warehouse: ...
    def __exit__(self, *exc: object) -> None: ...


def connect(url: str | None = None, *, ensure: bool = True, read_only: bool = False) -> Warehouse:
    """Open the warehouse at `url` (default: from settings) and bring its schema up to date.

    `read_only=True` is for queries: nothing is created or checked (see `_duckdb_reader` for
    a DuckDB file that has never been written).
    """
    if url is None:
        from edgeloop.settings import get_settings

        url = get_settings().warehouse_url
    wh: Warehouse
    if url.startswith("duckdb://"):
        path = _duckdb_path(url)
        if read_only and path is not None:
            return _duckdb_reader(url, path)
        wh = DuckDBWarehouse(url)
    elif url.startswith("bigquery://"):
        wh = BigQueryWarehouse(url)
        if read_only:
            return wh  # a reader needs no dataset create, table get or view job: only its query
    else:
        raise ConfigError(
            f"unknown warehouse URL {url!r}; use duckdb:///path/file.duckdb or bigquery://PROJECT/DATASET"
        )
    if ensure:
        wh.ensure()
    return wh


# What `ensure()` last brought each table and view up to, kept in the warehouse itself.
SCHEMA_TABLE = t.Table(
    name="_edgeloop_schema",
    description="The definition digest of each edgeloop table and view this warehouse was brought up to.",
    columns=(
        t.Column("name", t.T.STRING, required=True),
        t.Column("digest", t.T.STRING, required=True),
        t.Column("ensured_at", t.T.TIMESTAMP, required=True),
    ),
    key=("name",),
)


def schema_digests(schema: Sequence[t.Table] = t.ALL) -> dict[str, str]:
    """A digest of each table's and view's definition: a changed one is what `ensure()` must touch."""
    definitions = {table.name: json.dumps(dataclasses.asdict(table), sort_keys=True) for table in schema}
    definitions |= {name: sql for name, (_, sql) in views.VIEWS.items()}
    return {name: hashlib.sha256(text.encode()).hexdigest()[:16] for name, text in definitions.items()}


def _stale(schema: Sequence[t.Table], stored: Mapping[str, str]) -> tuple[list[t.Table], list[str]]:
    """The tables and views whose definition differs from what the warehouse holds.

    Views read the tables: when a table changes, every view is made again.
    """
    want = schema_digests(schema)
    tables = [table for table in schema if stored.get(table.name) != want[table.name]]
    names = [name for name in views.VIEWS if tables or stored.get(name) != want[name]]
    return tables, names


def _schema_rows(tables: Sequence[t.Table], view_names: Sequence[str]) -> list[dict[str, Any]]:
    want = schema_digests(tables)
    at = dt.datetime.now(dt.UTC)
    names = [table.name for table in tables] + list(view_names)
    return [{"name": name, "digest": want[name], "ensured_at": at} for name in names]


def prepare_rows(table: t.Table, rows: Iterable[Row]) -> list[dict[str, Any]]:
    """Check rows against the table and normalise values; duplicates by key keep the last.

    Raises `WarehouseError` naming the table, the column and the offending value.
    """
    names = set(table.column_names)
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        unknown = set(row) - names
        if unknown:
            raise WarehouseError(f"{table.name}: unknown column(s) {sorted(unknown)}; known: {sorted(names)}")
        clean: dict[str, Any] = {}
        for col in table.columns:
            value = row.get(col.name)
            if value is None:
                if col.required or col.name in table.key:
                    raise WarehouseError(f"{table.name}: column {col.name!r} needs a value (row {dict(row)!r})")
                clean[col.name] = None
                continue
            clean[col.name] = _coerce(table, col, value)
        out[tuple(clean[k] for k in table.key)] = clean
    return list(out.values())


def _coerce(table: t.Table, col: t.Column, value: Any) -> Any:
    try:
        if col.type == t.T.JSON:
            return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        if col.type == t.T.TIMESTAMP:
            if isinstance(value, str):
                value = dt.datetime.fromisoformat(value)
            if not isinstance(value, dt.datetime):
                raise TypeError("expected a datetime")
            if value.tzinfo is not None:
                value = value.astimezone(dt.UTC).replace(tzinfo=None)
            return value
        if col.type == t.T.DATE:
            if isinstance(value, str):
                return dt.date.fromisoformat(value)
            if isinstance(value, dt.datetime):
                return value.date()
            if not isinstance(value, dt.date):
                raise TypeError("expected a date")
            return value
        if col.type == t.T.INT64:
            if isinstance(value, bool) or int(value) != value:
                raise TypeError("expected an integer")
            return int(value)
        if col.type == t.T.FLOAT64:
            return float(value)
        if col.type == t.T.BOOL:
            if not isinstance(value, bool):
                raise TypeError("expected true or false")
            return value
        return str(value)
    except (TypeError, ValueError) as exc:
        raise WarehouseError(
            f"{table.name}.{col.name}: value {value!r} is not a valid {col.type.value} ({exc})"
        ) from None


# --------------------------------------------------------------------------- duckdb


class _TurnLock:
    """Our own lock beside a DuckDB file, held from before DuckDB opens it until after it has closed.

    DuckDB's lock alone does not make writer processes that take turns safe: with serve's
    telemetry writer, training and `edgeloop sql` opening and closing one file, committed rows went
    missing and a writer read a file cut short by another's checkpoint (`bench/duckdb_handover.py`:
    6 of 10 rounds lost rows or failed a writer with DuckDB's lock alone, 0 of 10 behind this one). A POSIX record lock on
    `<file>.lock`: shared for readers, exclusive for a writer; it ends with the process, and it is
    not inherited by forked workers. Connections of one process share the process's lock, as they
    share DuckDB's instance of the file.
    """

    # One descriptor per file and process, opened and closed under the guard only: closing any
    # descriptor of a file ends every record lock the process has on it.
    _fds: ClassVar[dict[str, int]] = {}
    _held: ClassVar[dict[str, int]] = {}  # path -> connections of this process in their turn
    _guard = threading.Lock()

    @classmethod
    def _forget_after_fork(cls) -> None:
        """A forked child holds none of its parent's record locks: it must take its own."""
        cls._fds, cls._held, cls._guard = {}, {}, threading.Lock()

    @classmethod
    def acquire(cls, path: Path, exclusive: bool, deadline: float, url: str) -> str:
        key = str(path.resolve())
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        while True:
            with cls._guard:  # never held while waiting: another thread may be ending its turn
                if key in cls._held:
                    cls._held[key] += 1
                    return key
                if key not in cls._fds:
                    cls._fds[key] = os.open(f"{key}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                try:
                    fcntl.lockf(cls._fds[key], mode)
                    cls._held[key] = 1
                    return key
                except OSError:
                    if time.monotonic() > deadline:
                        os.close(cls._fds.pop(key))
                        raise WarehouseError(
                            f"cannot open warehouse {url!r}: another process has held {key}.lock for too long; "
                            "close it (a training, ingest or `edgeloop sql` still running) or point "
                            "EDGELOOP_WAREHOUSE at another file"
                        ) from None
            time.sleep(0.05)

    @classmethod
    def release(cls, key: str) -> None:
        with cls._guard:
            cls._held[key] -= 1
            if cls._held[key] == 0:
                del cls._held[key]
                os.close(cls._fds.pop(key))  # ends this process's turn


os.register_at_fork(after_in_child=_TurnLock._forget_after_fork)


def _duckdb_path(url: str) -> Path | None:
    """The file of a `duckdb://` URL, as in SQLAlchemy: duckdb:///relative.duckdb, duckdb:////absolute/path.duckdb;
    None for duckdb:///:memory:."""
    path = url.removeprefix("duckdb:///") if url.startswith("duckdb:///") else url.removeprefix("duckdb://")
    return Path(path) if path not in ("", ":memory:") else None


def _duckdb_reader(url: str, path: Path) -> DuckDBWarehouse:
    """A read-only connection to a DuckDB file, on a schema a writer has brought up to date.

    Only a file never written (or written by an older edgeloop) is brought up first, by a
    short writer's turn, so `edgeloop sql` on a fresh workspace answers from empty tables. A
    file this process may not write (a read-only copy) is read as it is.
    """
    if path.exists():
        reader = DuckDBWarehouse(url, read_only=True)
        tables, view_names = _stale(t.ALL, reader.stored_digests())
        if not (tables or view_names):
            return reader
        reader.close()
        if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
            log.warning("warehouse %s predates this edgeloop's tables or views and is read-only here: read as is", url)
            return DuckDBWarehouse(url, read_only=True)
    with DuckDBWarehouse(url) as writer:
        writer.ensure()
    return DuckDBWarehouse(url, read_only=True)


class DuckDBWarehouse:
    """An embedded DuckDB file. One writer process at a time, taking turns behind `_TurnLock`."""

    def __init__(self, url: str, *, read_only: bool = False, lock_timeout_s: float = 30.0) -> None:
        try:
            import duckdb
        except ImportError:
            raise MissingExtra("duckdb", "warehouse") from None
        self.url = url
        self.path = _duckdb_path(url)
        target = str(self.path) if self.path else ":memory:"
        if self.path and not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + lock_timeout_s
        self._turn = _TurnLock.acquire(self.path, not read_only, deadline, url) if self.path else None
        try:
            self._con = self._connect(duckdb, target, read_only, deadline)
        except BaseException:
            self._release_turn()
            raise
        self._duckdb = duckdb

    @staticmethod
    def _connect(duckdb: Any, target: str, read_only: bool, deadline: float) -> Any:
        while True:
            try:
                return duckdb.connect(target, read_only=read_only)
            except duckdb.IOException as exc:
                # A process outside edgeloop (the duckdb CLI) holds the file's write lock; it is usually brief.
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise WarehouseError(
                        f"cannot open warehouse {target!r}: {exc}; close the other process using it "
                        "or point EDGELOOP_WAREHOUSE at another file"
                    ) from None
                time.sleep(0.2)

    def _release_turn(self) -> None:
        if self._turn is not None:
            _TurnLock.release(self._turn)
            self._turn = None

    def __enter__(self) -> DuckDBWarehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._con.close()  # checkpoints the WAL into the file: the next process must not start before
        finally:
            self._release_turn()

    def stored_digests(self) -> dict[str, str]:
        """What `ensure()` last brought each table and view up to (empty for a warehouse before the marker)."""
        try:
            rows = self._con.execute(f"SELECT name, digest FROM {SCHEMA_TABLE.name}").fetchall()
        except self._duckdb.CatalogException:
            return {}
        return dict(rows)

    def ensure(self, schema: Sequence[t.Table] = t.ALL) -> None:
        """Create or extend the tables and views whose definition changed since the last ensure; else nothing."""
        tables, view_names = _stale(schema, self.stored_digests())
        if not (tables or view_names):
            return
        for table in tables:
            existing = self._con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
                [table.name],
            ).fetchall()
            if not existing:
                self._con.execute(table.duckdb_ddl())
                continue
            have = {name: dtype for name, dtype in existing}
            for col in table.columns:
                want = t.DUCKDB_TYPES[col.type]
                if col.name not in have:
                    if col.required or col.name in table.key:
                        raise WarehouseError(
                            f"table {table.name} in {self.url} lacks required column {col.name}; "
                            "migrate it or use a new warehouse file"
                        )
                    log.info("adding column %s.%s", table.name, col.name)
                    self._con.execute(f"ALTER TABLE {table.name} ADD COLUMN {col.name} {want}")
                elif have[col.name] != want:
                    raise WarehouseError(
                        f"table {table.name} in {self.url} has column {col.name} as {have[col.name]}, "
                        f"edgeloop expects {want}; migrate the table or point EDGELOOP_WAREHOUSE at a new file"
                    )
        rendered = views.render(prefix="")
        for name in view_names:
            self._con.execute(f"CREATE OR REPLACE VIEW {name} AS {rendered[name]}")
        self._con.execute(SCHEMA_TABLE.duckdb_ddl())
        self.upsert(SCHEMA_TABLE, _schema_rows(tables, view_names))

    def _write(self, table: t.Table, rows: Iterable[Row], verb: str) -> int:
        clean = prepare_rows(table, rows)
        if not clean:
            return 0
        cols = table.column_names
        sql = f"INSERT {verb} INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        try:
            self._con.execute("BEGIN")
            self._con.executemany(sql, [[r[c] for c in cols] for r in clean])
            self._con.execute("COMMIT")
        except self._duckdb.Error as exc:
            self._con.execute("ROLLBACK")
            raise WarehouseError(f"{table.name}: write refused: {exc}") from None
        return len(clean)

    def upsert(self, table: t.Table, rows: Iterable[Row]) -> int:
        """Insert rows, replacing any with the same natural key. Returns rows written."""
        return self._write(table, rows, "OR REPLACE")

    def insert_new(self, table: t.Table, rows: Iterable[Row]) -> int:
        """Insert rows whose key is not there yet; existing keys keep their first value."""
        return self._write(table, rows, "OR IGNORE")

    def insert_new_arrow(self, table: t.Table, data: Any) -> set[Any] | None:
        """Insert the rows of an Arrow table (from `arrow_table`) whose key is new.

        For bulk appends of checked rows with a one-column key, distinct within `data`. Returns
        None when every row was new, else the set of keys inserted. Arrow is scanned in C++,
        instead of DuckDB's binding converting value by value; a plain INSERT goes first: new
        keys are the common case, and on a large table INSERT OR IGNORE costs several times more
        per row. A key conflict rolls that statement back, and the rows go again with
        INSERT OR IGNORE … RETURNING, which says which keys were new.
        """
        if len(table.key) != 1:
            raise WarehouseError(f"{table.name}: inserting only new rows needs a one-column key, not {table.key}")
        names = ", ".join(table.column_names)
        relation = f"_new_{table.name}"
        self._con.register(relation, data)
        try:
            try:
                self._con.execute(f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {relation}")
                return None
            except self._duckdb.ConstraintException:
                pass  # some keys are there already: the slower statement below sorts them out
            rows = self._con.execute(
                f"INSERT OR IGNORE INTO {table.name} ({names}) SELECT {names} FROM {relation} RETURNING {table.key[0]}"
            ).fetchall()
            return {r[0] for r in rows}
        except self._duckdb.Error as exc:
            raise WarehouseError(f"{table.name}: write refused: {exc}") from None
        finally:
            self._con.unregister(relation)

    def insert_new_ndjson(self, table: t.Table, data: bytes) -> int:
        """Insert the rows of newline-delimited JSON (keys distinct) whose key is new; returns how many were."""
        arrow = ndjson_arrow(table, data)
        new = self.insert_new_arrow(table, arrow)
        return int(arrow.num_rows) if new is None else len(new)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        try:
            cur = self._con.execute(sql, list(params) if params else None)
        except self._duckdb.Error as exc:
            raise WarehouseError(f"query failed: {exc}") from None
        if cur.description is None:
            return []
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def arrow_schema(table: t.Table) -> Any:
    """The table as a `pyarrow.Schema` (`pyarrow` comes with the `registry` extra)."""
    try:
        import pyarrow as pa
    except ImportError:
        raise MissingExtra("pyarrow", "registry") from None
    types = {
        t.T.STRING: pa.string(),
        t.T.JSON: pa.string(),
        t.T.INT64: pa.int64(),
        t.T.FLOAT64: pa.float64(),
        t.T.BOOL: pa.bool_(),
        t.T.TIMESTAMP: pa.timestamp("us"),
        t.T.DATE: pa.date32(),
    }
    return pa.schema([pa.field(c.name, types[c.type]) for c in table.columns])


def arrow_table(table: t.Table, columns: Sequence[Sequence[Any]]) -> Any:
    """Columns of `table` (in its order, values as `prepare_rows` makes them; datetimes naive UTC or aware)
    as a `pyarrow.Table` of its types, for `DuckDBWarehouse.insert_new_arrow`.

    Built in C++ (aware datetimes are converted to UTC there).
    """
    schema = arrow_schema(table)
    import pyarrow as pa

    try:
        return pa.Table.from_arrays(
            [pa.array(values, type=f.type) for f, values in zip(schema, columns, strict=True)], schema=schema
        )
    except (pa.ArrowException, ValueError) as exc:
        raise WarehouseError(f"{table.name}: rows do not fit the table: {exc}") from None


def ndjson_arrow(table: t.Table, data: bytes) -> Any:
    """Newline-delimited JSON rows of `table` (timestamps as naive-UTC ISO text, JSON columns as text)
    as a `pyarrow.Table`, parsed in C++; unknown keys are refused."""
    schema = arrow_schema(table)
    import pyarrow as pa
    from pyarrow import json as pa_json

    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error")
    try:
        return pa_json.read_json(io.BytesIO(data), parse_options=options).select(schema.names)
    except (pa.ArrowException, ValueError) as exc:
        raise WarehouseError(f"{table.name}: rows do not fit the table: {exc}") from None


def concat_arrow(parts: Sequence[Any]) -> Any:
    """Arrow tables of one schema as one (no copy: the result points at the parts' buffers)."""
    import pyarrow as pa

    return parts[0] if len(parts) == 1 else pa.concat_tables(parts)


# --------------------------------------------------------------------------- bigquery


def bigquery_schema(table: t.Table) -> list[Any]:
    """The table as google-cloud-bigquery `SchemaField`s."""
    try:
        from google.cloud import bigquery
    except ImportError:
        raise MissingExtra("google-cloud-bigquery", "gcp") from None
    return [
        bigquery.SchemaField(
            c.name,
            c.type.value,
            mode="REQUIRED" if (c.required or c.name in table.key) else "NULLABLE",
            description=c.description,
        )
        for c in table.columns
    ]


def merge_sql(table: t.Table, target: str, staging: str, *, replace: bool) -> str:
    """The MERGE that makes a staged batch idempotent by natural key."""
    on = " AND ".join(f"T.`{k}` = S.`{k}`" for k in table.key)
    cols = ", ".join(f"`{c}`" for c in table.column_names)
    values = ", ".join(f"S.`{c}`" for c in table.column_names)
    sql = f"MERGE `{target}` T USING `{staging}` S ON {on}\n"
    if replace:
        sets = ", ".join(f"`{c}` = S.`{c}`" for c in table.column_names if c not in table.key)
        sql += f"WHEN MATCHED THEN UPDATE SET {sets}\n"
    return sql + f"WHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({values})"


def ndjson_load_config(table: t.Table) -> Any:
    """The load job that stages newline-delimited JSON rows of `table` (one job per load, not per request)."""
    from google.cloud import bigquery

    return bigquery.LoadJobConfig(
        schema=bigquery_schema(table),
        source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
        write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
        ignore_unknown_values=False,
        max_bad_records=0,
    )


class BigQueryWarehouse:
    """BigQuery via google-cloud-bigquery: batches are loaded into a staging table and MERGEd by key."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.url = url
        self.project = parsed.netloc
        self.dataset = parsed.path.strip("/")
        if not self.project or not self.dataset:
            raise ConfigError(f"BigQuery warehouse URL {url!r} needs bigquery://PROJECT/DATASET")
        try:
            from google.cloud import bigquery
        except ImportError:
            raise MissingExtra("google-cloud-bigquery", "gcp") from None
        from edgeloop.settings import get_settings

        self._bq = bigquery
        self.location = get_settings().bq_location
        self._client = bigquery.Client(project=self.project, location=self.location)

    def __enter__(self) -> BigQueryWarehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def _ref(self, name: str) -> str:
        return f"{self.project}.{self.dataset}.{name}"

    # (url, digests) a writer of this process has brought up to date: each check costs a query job.
    _ensured: ClassVar[set[tuple[str, str]]] = set()

    def stored_digests(self) -> dict[str, str]:
        """What `ensure()` last brought each table and view up to (empty before the marker, or the dataset)."""
        from google.api_core import exceptions as gexc

        try:
            rows = self._client.query(f"SELECT name, digest FROM `{self._ref(SCHEMA_TABLE.name)}`").result()
        except gexc.NotFound:
            return {}
        return {row["name"]: row["digest"] for row in rows}

    def ensure(self, schema: Sequence[t.Table] = t.ALL) -> None:
        """Create or extend the tables and views whose definition changed; checked once per process."""
        once = (self.url, json.dumps(schema_digests(schema), sort_keys=True))
        if once in self._ensured:
            return
        tables, view_names = _stale(schema, self.stored_digests())
        if tables or view_names:
            self._bring_up(tables, view_names)
        self._ensured.add(once)

    def _bring_up(self, schema: Sequence[t.Table], view_names: Sequence[str]) -> None:
        from google.api_core import exceptions as gexc

        ds = self._bq.Dataset(f"{self.project}.{self.dataset}")
        ds.location = self.location
        self._client.create_dataset(ds, exists_ok=True)
        for table in schema:
            try:
                current = self._client.get_table(self._ref(table.name))
            except gexc.NotFound:
                self._client.query(table.bigquery_ddl(f"{self.project}.{self.dataset}")).result()
                continue
            have = {f.name: f.field_type for f in current.schema}
            aliases = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL"}
            added = []
            for col in table.columns:
                if col.name not in have:
                    added.append(self._bq.SchemaField(col.name, col.type.value, mode="NULLABLE"))
                elif aliases.get(have[col.name], have[col.name]) != col.type.value:
                    raise WarehouseError(
                        f"BigQuery table {self._ref(table.name)} has {col.name} as {have[col.name]}, "
                        f"edgeloop expects {col.type.value}; migrate the table or use another dataset"
                    )
            if added:
                current.schema = [*current.schema, *added]
                self._client.update_table(current, ["schema"])
        rendered = views.render(prefix=f"`{self.project}.{self.dataset}`.")
        for name in view_names:
            self._client.query(f"CREATE OR REPLACE VIEW `{self._ref(name)}` AS {rendered[name]}").result()
        self._client.query(SCHEMA_TABLE.bigquery_ddl(f"{self.project}.{self.dataset}")).result()
        self.upsert(SCHEMA_TABLE, _schema_rows(schema, view_names))

    def _write(self, table: t.Table, rows: Iterable[Row], replace: bool) -> int:
        clean = prepare_rows(table, rows)
        if not clean:
            return 0
        staging = self._ref(f"_staging_{table.name}_{uuid.uuid4().hex[:12]}")
        job_config = self._bq.LoadJobConfig(schema=bigquery_schema(table), write_disposition="WRITE_TRUNCATE")
        payload = [{k: _bq_json(v) for k, v in r.items()} for r in clean]
        try:
            self._client.load_table_from_json(payload, staging, job_config=job_config).result()
            self._client.query(merge_sql(table, self._ref(table.name), staging, replace=replace)).result()
        except Exception as exc:  # google.api_core errors carry the server's reason
            raise WarehouseError(f"{table.name}: BigQuery write refused: {exc}") from None
        finally:
            self._client.delete_table(staging, not_found_ok=True)
        return len(clean)

    def upsert(self, table: t.Table, rows: Iterable[Row]) -> int:
        return self._write(table, rows, replace=True)

    def insert_new(self, table: t.Table, rows: Iterable[Row]) -> int:
        return self._write(table, rows, replace=False)

    def insert_new_ndjson(self, table: t.Table, data: bytes) -> int:
        """One load job into a staging table, then one MERGE: the DML count grows per load, not per event."""
        staging = self._ref(f"_staging_{table.name}_{uuid.uuid4().hex[:12]}")
        try:
            self._client.load_table_from_file(io.BytesIO(data), staging, job_config=ndjson_load_config(table)).result()
            job = self._client.query(merge_sql(table, self._ref(table.name), staging, replace=False))
            job.result()
        except Exception as exc:  # google.api_core errors carry the server's reason
            raise WarehouseError(f"{table.name}: BigQuery load refused: {exc}") from None
        finally:
            self._client.delete_table(staging, not_found_ok=True)
        return int(job.num_dml_affected_rows or 0)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        job_config = self._bq.QueryJobConfig(
            default_dataset=f"{self.project}.{self.dataset}",
            query_parameters=[_bq_param(p) for p in params or ()],
        )
        try:
            result = self._client.query(sql, job_config=job_config).result()
        except Exception as exc:
            raise WarehouseError(f"query failed: {exc}") from None
        return [dict(row.items()) for row in result]


def _bq_json(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _bq_param(value: Any) -> Any:
    from google.cloud import bigquery

    kinds = {bool: "BOOL", int: "INT64", float: "FLOAT64", str: "STRING"}
    if isinstance(value, dt.datetime):
        return bigquery.ScalarQueryParameter(None, "TIMESTAMP", value)
    if isinstance(value, dt.date):
        return bigquery.ScalarQueryParameter(None, "DATE", value)
    return bigquery.ScalarQueryParameter(None, kinds.get(type(value), "STRING"), value)


__all__ = [
    "BigQueryWarehouse",
    "DuckDBWarehouse",
    "Warehouse",
    "bigquery_schema",
    "connect",
    "merge_sql",
    "ndjson_arrow",
    "ndjson_load_config",
    "prepare_rows",
]
