"""What each console page shows, read through `crud` on a read-only session: one function per page."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from edgeloop.card import GateCheck, ModelCard
from registry_api import crud, db


class AliasRow(BaseModel):
    name: str
    version: int
    previous_version: int | None
    rollout_percent: int
    targeting: str
    rollback: bool
    updated_at: dt.datetime
    updated_by: str


class ModelSummary(BaseModel):
    name: str
    versions: int
    latest_version: int
    aliases: dict[str, AliasRow]
    last_publish_at: dt.datetime | None
    last_publish_by: str | None


class VersionRow(BaseModel):
    number: int
    created_at: dt.datetime
    created_by: str
    dataset_version: str
    run_id: str
    macro_f1: float | None
    gate_verdict: str
    publishable: int
    variants: int
    size: int  # bytes of the smallest publishable variant: what a device downloads at best


class AuditRow(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    action: str
    alias: str | None
    from_version: int | None
    to_version: int | None
    from_rollout: int | None
    to_rollout: int | None
    reason: str | None


class ModelPage(BaseModel):
    name: str
    versions: list[VersionRow]
    total_versions: int
    aliases: list[AliasRow]
    audit: list[AuditRow]


class VariantRow(BaseModel):
    variant: str
    file: str
    sha256: str
    size: int
    runtime: str
    quantization: str
    publishable: bool
    reason: str
    agreement: float | None
    accuracy: float | None
    macro_f1: float | None
    max_abs_diff: float | None
    failed_checks: list[GateCheck]


class LatencyRow(BaseModel):
    device_class: str
    variant: str
    p50_ms: float
    p90_ms: float


class RecallRow(BaseModel):
    label: str
    recall: float | None
    baseline: float | None


class VersionPage(BaseModel):
    model: str
    number: int
    created_at: dt.datetime
    created_by: str
    digest: str
    source_uri: str | None
    card: ModelCard | None
    card_error: str | None
    gate_checks: list[GateCheck]  # failures first, then the whole-model checks that passed
    gate_passed_per_class: list[GateCheck]  # "check:label" that passed: folded on the page, they can be dozens
    variants: list[VariantRow]
    latency: list[LatencyRow]
    recall: list[RecallRow]
    baseline_version: int | None
    aliases: list[str]


def _targeting(raw: dict[str, Any] | None) -> str:
    parts = [
        f"{key}: {', '.join(map(str, value)) if isinstance(value, list) else value}"
        for key, value in (raw or {}).items()
        if value
    ]
    return "; ".join(parts) or "every device"


def _alias_row(row: db.Alias) -> AliasRow:
    return AliasRow(
        name=row.name,
        version=row.version,
        previous_version=row.previous_version,
        rollout_percent=row.rollout_percent,
        targeting=_targeting(row.targeting),
        rollback=row.rollback,
        updated_at=crud.utc(row.updated_at),
        updated_by=row.updated_by,
    )


def overview(session: Session) -> list[ModelSummary]:
    """Page 1: every model with its aliases and last publish."""
    aliases: dict[str, dict[str, AliasRow]] = {}
    for alias in crud.list_aliases(session):
        aliases.setdefault(alias.model, {})[alias.name] = _alias_row(alias)
    publishes = crud.last_publishes(session)
    out = []
    for name, latest, count in crud.list_models(session):
        entry = publishes.get(name)
        out.append(
            ModelSummary(
                name=name,
                versions=count,
                latest_version=latest,
                aliases=aliases.get(name, {}),
                last_publish_at=crud.utc(entry.at) if entry else None,
                last_publish_by=entry.actor if entry else None,
            )
        )
    return out


def _card(row: db.ModelVersion) -> tuple[ModelCard | None, str | None]:
    try:
        return ModelCard.model_validate(row.card), None
    except ValidationError as exc:  # stored by an older registry: show what is there, say what is not
        return None, f"the stored model card does not match today's schema ({exc.error_count()} problems)"


def _version_row(row: db.ModelVersion) -> VersionRow:
    card = row.card
    lineage = card.get("lineage") or {}
    macro_f1 = (card.get("metrics") or {}).get("macro_f1")
    sizes = [v.size for v in row.variants if v.publishable]
    return VersionRow(
        number=row.number,
        created_at=crud.utc(row.created_at),
        created_by=row.created_by,
        dataset_version=str(lineage.get("dataset_version", "")),
        run_id=str(lineage.get("run_id", "")),
        macro_f1=macro_f1 if isinstance(macro_f1, int | float) else None,
        gate_verdict=str((card.get("gate") or {}).get("verdict", "")),
        publishable=len(sizes),
        variants=len(row.variants),
        size=min(sizes, default=0),
    )


def model_page(session: Session, name: str, versions: int | None = 50, audit_limit: int = 100) -> ModelPage:
    """Page 2: a model's newest `versions` versions (None: all), aliases and audit log."""
    rows, total = crud.newest_versions(session, name, versions)
    return ModelPage(
        name=name,
        versions=[_version_row(v) for v in rows],
        total_versions=total,
        aliases=[_alias_row(a) for a in crud.list_aliases(session, name)],
        audit=[
            AuditRow(
                id=e.id,
                at=crud.utc(e.at),
                actor=e.actor,
                action=e.action,
                alias=e.alias,
                from_version=e.from_version,
                to_version=e.to_version,
                from_rollout=e.from_rollout,
                to_rollout=e.to_rollout,
                reason=e.reason,
            )
            for e in crud.audit_log(session, name, audit_limit, None)
        ],
    )


def _recall(card: ModelCard | None) -> dict[str, float]:
    if card is None:
        return {}
    raw = card.metrics.get("class_recall")
    if isinstance(raw, dict) and raw:
        return {str(k): float(v) for k, v in raw.items() if isinstance(v, int | float)}
    return dict(card.conversion.keras_class_recall) if card.conversion else {}


def version_page(session: Session, name: str, number: int, *, devices: int) -> VersionPage:
    """Page 3: a version's card, its latency per device class and variant, and recall against the one before."""
    row = crud.get_version(session, name, number)
    card, card_error = _card(row)
    entries = {v.variant: v for v in card.variants} if card else {}
    variants = []
    for v in row.variants:
        entry = entries.get(v.variant)
        variants.append(
            VariantRow(
                variant=v.variant,
                file=v.file,
                sha256=v.sha256,
                size=v.size,
                runtime=v.runtime,
                quantization=v.quantization,
                publishable=v.publishable,
                reason=v.reason,
                agreement=entry.agreement if entry else None,
                accuracy=entry.accuracy if entry else None,
                macro_f1=entry.macro_f1 if entry else None,
                max_abs_diff=entry.max_abs_diff if entry else None,
                failed_checks=[c for c in entry.checks if not c.passed] if entry else [],
            )
        )
    checks = sorted(card.gate.checks, key=lambda c: c.passed) if card and card.gate else []
    per_class = [c for c in checks if c.passed and ":" in c.name]
    p50 = crud.latest_latencies(session, name, "p50_ms", devices=devices, min_devices=1)
    p90 = crud.latest_latencies(session, name, "p90_ms", devices=devices, min_devices=1)
    latency = [
        LatencyRow(
            device_class=device_class,
            variant=variant,
            p50_ms=ms,
            p90_ms=p90.get((v, device_class), {}).get(variant, ms),
        )
        for (v, device_class), per_variant in sorted(p50.items())
        if v == number
        for variant, ms in sorted(per_variant.items())
    ]
    # "The version it replaced": the newest earlier version of the same model.
    baseline = crud.previous_version(session, name, number)
    base_recall = _recall(_card(baseline)[0]) if baseline else {}
    own = _recall(card)
    labels = card.labels if card else sorted(own)
    recall = [RecallRow(label=label, recall=own.get(label), baseline=base_recall.get(label)) for label in labels]
    return VersionPage(
        model=name,
        number=number,
        created_at=crud.utc(row.created_at),
        created_by=row.created_by,
        digest=row.digest,
        source_uri=row.source_uri,
        card=card,
        card_error=card_error,
        gate_checks=[c for c in checks if c not in per_class],
        gate_passed_per_class=per_class,
        variants=variants,
        latency=latency,
        recall=recall if any(r.recall is not None or r.baseline is not None for r in recall) else [],
        baseline_version=baseline.number if baseline else None,
        aliases=[a.name for a in crud.list_aliases(session, name) if a.version == number],
    )


class FieldContext(BaseModel):
    """What the field page needs from the registry, keyed by version as telemetry spells it."""

    aliases: dict[str, list[str]]  # version → the aliases pointing at it
    datasets: dict[str, str]  # version → the dataset version it was trained on (its eval split is the PSI's reference)


def field_context(session: Session, name: str) -> FieldContext:
    """Aliases and dataset versions per version, for a model that must exist."""
    crud.require_model(session, name)
    aliases: dict[str, list[str]] = {}
    for alias in crud.list_aliases(session, name):
        aliases.setdefault(str(alias.version), []).append(alias.name)
    datasets = {str(number): dataset for number, dataset in crud.dataset_versions(session, name).items()}
    return FieldContext(aliases=aliases, datasets=datasets)
