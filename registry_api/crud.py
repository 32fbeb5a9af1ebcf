"""Persistence: every query and write of registry metadata, on a caller-owned Session."""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from edge.events import BenchmarkReport
from registry_api import db
from registry_api.core.security import NewKey, Role, new_key
from registry_api.errors import Conflict, InvalidRequest, NotFoundError
from registry_api.models import AliasUpdate

# --------------------------------------------------------------------------- api keys


def create_key(session: Session, name: str, role: Role, rate_per_s: float | None = None) -> tuple[db.ApiKey, NewKey]:
    if session.scalar(select(db.ApiKey).where(db.ApiKey.name == name)) is not None:
        raise InvalidRequest(f"an API key named {name!r} exists; pick another name or revoke it first")
    minted = new_key()
    row = db.ApiKey(key_id=minted.key_id, name=name, role=role.value, token_hash=minted.hash, rate_per_s=rate_per_s)
    session.add(row)
    session.flush()
    return row, minted


def list_keys(session: Session) -> Sequence[db.ApiKey]:
    return session.scalars(select(db.ApiKey).order_by(db.ApiKey.created_at)).all()


def revoke_key(session: Session, name_or_id: str) -> db.ApiKey:
    row = session.scalar(select(db.ApiKey).where((db.ApiKey.name == name_or_id) | (db.ApiKey.key_id == name_or_id)))
    if row is None:
        raise NotFoundError(f"no API key named {name_or_id!r}; see `edgeloop keys list`")
    if row.revoked_at is None:
        row.revoked_at = db.utcnow()
    return row


def active_keys(session: Session) -> Sequence[db.ApiKey]:
    return session.scalars(select(db.ApiKey).where(db.ApiKey.revoked_at.is_(None))).all()


# --------------------------------------------------------------------------- versions


def lock_model(session: Session, model: str) -> None:
    """Make writers of `model`'s versions and aliases take turns until this transaction ends.

    Version numbers and alias sequences are max+1 of what the transaction reads. On SQLite,
    BEGIN IMMEDIATE already holds the one write lock. PostgreSQL's READ COMMITTED lets two
    transactions read the same max: a transaction-scoped advisory lock per model makes the
    second wait for the first's commit, and its next statement then sees the first's row.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"model:{model}"})


def list_models(session: Session) -> list[tuple[str, int, int]]:
    rows = session.execute(
        select(db.ModelVersion.model, func.max(db.ModelVersion.number), func.count())
        .group_by(db.ModelVersion.model)
        .order_by(db.ModelVersion.model)
    ).all()
    return [(str(m), int(mx), int(n)) for m, mx, n in rows]


def model_exists(session: Session, model: str) -> bool:
    return session.scalar(select(db.ModelVersion.id).where(db.ModelVersion.model == model).limit(1)) is not None


def require_model(session: Session, model: str) -> None:
    if not model_exists(session, model):
        raise NotFoundError(f"no model {model!r}; publish a version first")


def get_version(session: Session, model: str, number: int) -> db.ModelVersion:
    row = session.scalar(
        select(db.ModelVersion).where(db.ModelVersion.model == model, db.ModelVersion.number == number)
    )
    if row is None:
        raise NotFoundError(f"model {model!r} has no version {number}")
    return row


def list_versions(session: Session, model: str) -> Sequence[db.ModelVersion]:
    require_model(session, model)
    return session.scalars(
        select(db.ModelVersion).where(db.ModelVersion.model == model).order_by(db.ModelVersion.number)
    ).all()


def previous_version(session: Session, model: str, number: int) -> db.ModelVersion | None:
    """The newest version of `model` published before `number` (what it replaced), if any."""
    return session.scalar(
        select(db.ModelVersion)
        .where(db.ModelVersion.model == model, db.ModelVersion.number < number)
        .order_by(db.ModelVersion.number.desc())
        .limit(1)
    )


def newest_versions(session: Session, model: str, limit: int | None) -> tuple[Sequence[db.ModelVersion], int]:
    """Up to `limit` versions of `model`, newest first (None: all), and how many it has."""
    require_model(session, model)
    query = select(db.ModelVersion).where(db.ModelVersion.model == model).order_by(db.ModelVersion.number.desc())
    total = session.scalar(select(func.count()).where(db.ModelVersion.model == model))
    return session.scalars(query if limit is None else query.limit(limit)).all(), int(total or 0)


def dataset_versions(session: Session, model: str) -> dict[int, str]:
    """Version number → the dataset version its card names (lineage), read in SQL, not card by card."""
    dataset = db.ModelVersion.card["lineage"]["dataset_version"].as_string()
    rows = session.execute(select(db.ModelVersion.number, dataset).where(db.ModelVersion.model == model)).all()
    return {int(number): str(name) for number, name in rows if name}


def find_by_digest(session: Session, model: str, digest: str) -> db.ModelVersion | None:
    return session.scalar(
        select(db.ModelVersion).where(db.ModelVersion.model == model, db.ModelVersion.digest == digest)
    )


def next_number(session: Session, model: str) -> int:
    current = session.scalar(select(func.max(db.ModelVersion.number)).where(db.ModelVersion.model == model))
    return int(current or 0) + 1


def add_version(
    session: Session,
    *,
    model: str,
    number: int,
    digest: str,
    card: dict[str, Any],
    variants: Sequence[dict[str, Any]],
    actor: str,
    source_uri: str | None,
) -> db.ModelVersion:
    row = db.ModelVersion(model=model, number=number, digest=digest, card=card, source_uri=source_uri, created_by=actor)
    row.variants = [db.VersionVariant(**v) for v in variants]
    session.add(row)
    session.add(db.AuditEntry(model=model, alias=None, action="publish", actor=actor, to_version=number))
    session.flush()
    return row


def servable_artifact(session: Session, sha256: str) -> db.VersionVariant | None:
    """A publishable variant with these bytes, if any: non-publishable files are never served."""
    return session.scalar(
        select(db.VersionVariant).where(db.VersionVariant.sha256 == sha256, db.VersionVariant.publishable).limit(1)
    )


# --------------------------------------------------------------------------- aliases


def get_alias(session: Session, model: str, name: str) -> db.Alias:
    row = session.scalar(select(db.Alias).where(db.Alias.model == model, db.Alias.name == name))
    if row is None:
        raise NotFoundError(f"model {model!r} has no alias {name!r}")
    return row


def list_aliases(session: Session, model: str | None = None) -> Sequence[db.Alias]:
    query = select(db.Alias).order_by(db.Alias.model, db.Alias.name)
    if model is not None:
        query = query.where(db.Alias.model == model)
    return session.scalars(query).all()


def next_alias_sequence(session: Session, model: str) -> int:
    """One more than the highest sequence of any alias of `model`.

    Per model, not per alias, so that a manifest built from two aliases (a non-production alias
    falls back on production) can carry the larger of their sequences and still grow on a write to either.
    """
    current = session.scalar(select(func.max(db.Alias.sequence)).where(db.Alias.model == model))
    return int(current or 0) + 1


def set_alias(session: Session, model: str, name: str, update: AliasUpdate, actor: str) -> db.Alias:
    lock_model(session, model)
    get_version(session, model, update.version)  # 404 for a version that does not exist
    row = session.scalar(select(db.Alias).where(db.Alias.model == model, db.Alias.name == name))
    now = db.utcnow()
    if row is None:
        row = db.Alias(model=model, name=name, version=update.version, previous_version=None, updated_by=actor)
        session.add(row)
        from_version, from_rollout = None, None
        row.rollback = False
    else:
        from_version, from_rollout = row.version, row.rollout_percent
        if update.version != row.version:
            row.previous_version = row.version
            # Moving an alias back to an older version is a rollback, whichever route did it.
            row.rollback = update.version < row.version
            row.version = update.version
    row.rollout_percent = update.rollout_percent
    row.targeting = update.targeting.model_dump(mode="json")
    row.latency_budget_ms = update.latency_budget_ms
    row.sequence = next_alias_sequence(session, model)  # every write, even one that changes nothing
    row.updated_at = now
    row.updated_by = actor
    session.add(
        db.AuditEntry(
            model=model,
            alias=name,
            action="set_alias",
            actor=actor,
            at=now,
            from_version=from_version,
            to_version=update.version,
            from_rollout=from_rollout,
            to_rollout=update.rollout_percent,
            reason=update.reason,
        )
    )
    session.flush()
    return row


def rollback_alias(session: Session, model: str, name: str, actor: str, reason: str | None) -> db.Alias:
    lock_model(session, model)
    row = get_alias(session, model, name)
    if row.previous_version is None:
        raise Conflict(f"alias {name!r} of {model!r} has no previous version to roll back to")
    now = db.utcnow()
    entry = db.AuditEntry(
        model=model,
        alias=name,
        action="rollback",
        actor=actor,
        at=now,
        from_version=row.version,
        to_version=row.previous_version,
        from_rollout=row.rollout_percent,
        to_rollout=100,
        reason=reason,
    )
    # The bad version becomes "previous", so a second rollback call undoes the first.
    row.version, row.previous_version = row.previous_version, row.version
    row.rollout_percent = 100
    row.rollback = True
    row.sequence = next_alias_sequence(session, model)
    row.updated_at = now
    row.updated_by = actor
    session.add(entry)
    session.flush()
    return row


def audit_log(session: Session, model: str, limit: int, before_id: int | None) -> Sequence[db.AuditEntry]:
    query = select(db.AuditEntry).where(db.AuditEntry.model == model)
    if before_id is not None:
        query = query.where(db.AuditEntry.id < before_id)
    return session.scalars(query.order_by(db.AuditEntry.id.desc()).limit(limit)).all()


def last_publishes(session: Session) -> dict[str, db.AuditEntry]:
    """Per model, the audit entry of its latest publish (who and when)."""
    latest = (
        select(func.max(db.AuditEntry.id)).where(db.AuditEntry.action == "publish").group_by(db.AuditEntry.model)
    ).scalar_subquery()
    rows = session.scalars(select(db.AuditEntry).where(db.AuditEntry.id.in_(latest))).all()
    return {row.model: row for row in rows}


# --------------------------------------------------------------------------- benchmarks


def add_benchmark(session: Session, report: BenchmarkReport, key_id: str, received_at: dt.datetime) -> bool:
    """Store a benchmark uploaded by `key_id`; False when that benchmark_id was already stored."""
    key = str(report.benchmark_id)
    if session.get(db.Benchmark, key) is not None:
        return False
    session.add(
        db.Benchmark(
            benchmark_id=key,
            model=report.model,
            version=report.version,
            variant=report.variant,
            device_class=report.device_class,
            device_id=report.device_id,
            runtime=report.runtime,
            runs=report.runs,
            p50_ms=report.p50_ms,
            p90_ms=report.p90_ms,
            p99_ms=report.p99_ms,
            measured_at=report.measured_at,
            received_at=received_at,
            key_id=key_id,
        )
    )
    session.flush()
    return True


def latest_latencies(
    session: Session, model: str, metric: str, *, devices: int, min_devices: int
) -> dict[tuple[int, str], dict[str, float]]:
    """(version, device_class) → variant → the upper median of `metric` over the devices that reported last.

    A device is (uploading key, device_id): only its latest report counts, and only the `devices`
    devices that reported most recently (by the registry's receive time, never the sender's clock).
    A variant needs `min_devices` of them. The upper median, because a latency guessed too slow costs
    less than a budget overrun, and from three devices on no single one can move it. Reports of revoked
    keys no longer count.
    """
    active = select(db.ApiKey.key_id).where(db.ApiKey.revoked_at.is_(None))
    rows = session.execute(
        select(
            db.Benchmark.version,
            db.Benchmark.device_class,
            db.Benchmark.variant,
            db.Benchmark.key_id,
            db.Benchmark.device_id,
            getattr(db.Benchmark, metric),
        )
        .where(db.Benchmark.model == model, db.Benchmark.key_id.is_(None) | db.Benchmark.key_id.in_(active))
        .order_by(db.Benchmark.received_at.desc(), db.Benchmark.benchmark_id)
    ).all()
    latest: dict[tuple[int, str, str], dict[tuple[str | None, str | None], float]] = {}
    for version, device_class, variant, key_id, device_id, value in rows:
        per_device = latest.setdefault((version, device_class, variant), {})
        if (key_id, device_id) not in per_device and len(per_device) < devices:
            per_device[(key_id, device_id)] = float(value)
    out: dict[tuple[int, str], dict[str, float]] = {}
    for (version, device_class, variant), per_device in latest.items():
        if len(per_device) >= min_devices:
            out.setdefault((version, device_class), {})[variant] = statistics.median_high(per_device.values())
    return out


def utc(value: dt.datetime) -> dt.datetime:
    """SQLite returns naive datetimes even for timezone=True columns; they were stored as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
