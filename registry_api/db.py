"""Registry metadata in SQLAlchemy 2.x: the tables, and an engine tuned for SQLite or PostgreSQL.

The schema changes only through the Alembic revisions in `registry_api/migrations`.
Versions are immutable rows, unique per (model, number) and per (model, digest): the
constraints, not application locks, are what keep concurrent publishes apart.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    make_url,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: DateTime(timezone=True), dict[str, Any]: JSON}


class ApiKey(Base):
    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64))
    rate_per_s: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column()


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model", "number", name="uq_version_number"),
        UniqueConstraint("model", "digest", name="uq_version_digest"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(128), index=True)
    number: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    card: Mapped[dict[str, Any]] = mapped_column()
    source_uri: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128))
    variants: Mapped[list[VersionVariant]] = relationship(
        back_populates="version", cascade="all, delete-orphan", lazy="selectin", order_by="VersionVariant.id"
    )


class VersionVariant(Base):
    __tablename__ = "version_variants"
    __table_args__ = (UniqueConstraint("version_id", "variant", name="uq_variant"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    variant: Mapped[str] = mapped_column(String(64))
    file: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    runtime: Mapped[str] = mapped_column(String(32))
    quantization: Mapped[str] = mapped_column(String(32))
    publishable: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[ModelVersion] = relationship(back_populates="variants")


class Alias(Base):
    __tablename__ = "aliases"
    __table_args__ = (UniqueConstraint("model", "name", name="uq_alias"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(128), index=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    previous_version: Mapped[int | None] = mapped_column(Integer)
    rollout_percent: Mapped[int] = mapped_column(Integer, default=100)
    targeting: Mapped[dict[str, Any]] = mapped_column(default=dict)
    latency_budget_ms: Mapped[float | None] = mapped_column(Float)
    rollback: Mapped[bool] = mapped_column(Boolean, default=False)
    # Grows on every write to the alias; signed into manifests so devices refuse replayed old ones.
    # Taken from the model's highest alias sequence + 1 (see crud.next_alias_sequence).
    sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(128))


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(128), index=True)
    alias: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    from_version: Mapped[int | None] = mapped_column(Integer)
    to_version: Mapped[int | None] = mapped_column(Integer)
    from_rollout: Mapped[int | None] = mapped_column(Integer)
    to_rollout: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)


class Benchmark(Base):
    __tablename__ = "benchmarks"

    benchmark_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    model: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    variant: Mapped[str] = mapped_column(String(64))
    device_class: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[str | None] = mapped_column(String(128))
    runtime: Mapped[str | None] = mapped_column(String(32))
    runs: Mapped[int] = mapped_column(Integer)
    p50_ms: Mapped[float] = mapped_column(Float)
    p90_ms: Mapped[float] = mapped_column(Float)
    p99_ms: Mapped[float] = mapped_column(Float)
    measured_at: Mapped[dt.datetime] = mapped_column()  # the device's clock: shown, never used to order
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    key_id: Mapped[str | None] = mapped_column(String(32))  # who uploaded it (None: before keys were kept)


class TelemetryInboxRow(Base):
    """An accepted telemetry event not yet in the warehouse (telemetry_sink=inbox); deleted once loaded.

    `row` is the event as a warehouse row, one line of newline-delimited JSON, so a load hands the
    rows to the warehouse as they are (DuckDB via Arrow, BigQuery as a load job's file).
    """

    __tablename__ = "telemetry_inbox"
    __table_args__ = (UniqueConstraint("event_id", name="uq_inbox_event"),)

    # The load order; BIGINT on PostgreSQL (a fleet goes past 2^31 events), INTEGER (the rowid) on SQLite.
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[str] = mapped_column(String(36))
    received_at: Mapped[dt.datetime] = mapped_column()
    row: Mapped[str] = mapped_column(Text)


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and IMMEDIATE write transactions."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # The process id in pg_stat_activity says which replica holds a lock (the telemetry loader's lease).
        args = (
            {"application_name": f"edgeloop-registry-{os.getpid()}"}
            if parsed.get_backend_name() == "postgresql"
            else {}
        )
        return create_engine(url, pool_pre_ping=True, connect_args=args)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit BEGIN is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front: a deferred transaction that read and then
        # writes fails with SQLITE_BUSY under WAL instead of waiting for the busy timeout.
        # Sessions that only read (`read_session_factory`) stay deferred: under WAL they need
        # no lock, and must not make a publish wait for a poll's state reload.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READ_ONLY) else "BEGIN IMMEDIATE")

    return engine


_READ_ONLY = "edgeloop_read_only"


def init_db(engine: Engine) -> None:
    """Create the schema in an empty database, or check that it is at this release's revision.

    Raises SchemaOutOfDate for an older one (`edgeloop registry migrate` upgrades it).
    """
    from registry_api import schema  # the migrations import these models

    schema.ensure_current(engine)


def session_factory(engine: Engine) -> sessionmaker[Any]:
    return sessionmaker(engine, expire_on_commit=False)


def read_session_factory(engine: Engine) -> sessionmaker[Any]:
    """Sessions for reading only (SQLite: a deferred transaction, no write lock)."""
    return sessionmaker(engine.execution_options(**{_READ_ONLY: True}), expire_on_commit=False)
