"""The steps of the `release_health` DAG: find the canary, judge it, promote or roll back.

Each step is idempotent: the decision row is keyed by (model, version, alias, day) and
replaced on a re-run, and an action is taken only while `canary` still points at the
version that was judged, so a retried or re-run promotion never moves an alias twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

from dags import _health
from dags._registry import RegistryClient, connect
from dags._settings import DagSettings
from edgeloop import tables, warehouse
from edgeloop.card import read_card
from edgeloop.errors import EdgeloopError

log = logging.getLogger(__name__)

CANARY = "canary"
PRODUCTION = "production"


@dataclasses.dataclass(frozen=True)
class Candidate:
    """The canary under judgement; small enough for an XCom."""

    model: str
    canary: int
    production: int | None

    def to_xcom(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_xcom(cls, data: dict[str, Any]) -> Candidate:
        return cls(**data)


def find_canary(settings: DagSettings) -> Candidate | None:
    """The canary to judge, or None when there is none (or it already is production)."""
    with connect(settings) as registry:
        canary = registry.alias(settings.model_name, CANARY)
        production = registry.alias(settings.model_name, PRODUCTION)
    if canary is None:
        log.info("model %s has no canary; nothing to judge", settings.model_name)
        return None
    if canary.rollout_percent == 0:
        log.info("canary %s of %s is halted (rollout 0%%); nothing to judge", canary.version, settings.model_name)
        return None
    if production is not None and production.version == canary.version:
        log.info("canary %s of %s is already production; nothing to judge", canary.version, settings.model_name)
        return None
    return Candidate(settings.model_name, canary.version, production.version if production else None)


def dataset_version(wh: warehouse.Warehouse, version_body: dict[str, Any]) -> str | None:
    """The dataset a published version was trained on: its card's lineage, else its training run's row."""
    source = version_body.get("source_uri")
    if source:
        try:
            return read_card(source).lineage.dataset_version
        except EdgeloopError as exc:  # moved, unreadable or not a card: fall back to the warehouse
            log.info("cannot read the card at %s (%s); asking the warehouse", source, exc)
    run = version_body.get("run_version")
    if not run:
        return None
    rows = wh.query(f"SELECT dataset_version FROM {tables.TRAINING_RUNS.name} WHERE run_id = ?", [str(run)])
    return str(rows[0]["dataset_version"]) if rows else None


def evaluate(
    settings: DagSettings, candidate: Candidate, end: dt.datetime, decided_at: dt.datetime
) -> _health.Decision:
    """Judge the canary on the telemetry window ending at `end` and record the decision row."""
    thresholds = settings.health
    start, stop = _health.window(end, thresholds.lookback_days)
    with connect(settings) as registry:
        published = registry.version(candidate.model, candidate.canary)
    with warehouse.connect() as wh:
        dataset = dataset_version(wh, published)
        canary = _health.collect_stats(
            wh,
            candidate.model,
            str(candidate.canary),
            start,
            stop,
            low_confidence_score=thresholds.low_confidence_score,
        )
        production = None
        if candidate.production is not None:
            production = _health.collect_stats(
                wh,
                candidate.model,
                str(candidate.production),
                start,
                stop,
                low_confidence_score=thresholds.low_confidence_score,
            )
        eval_labels = _health.eval_distribution(wh, dataset)
        decision = _health.decide(canary, thresholds, production=production, eval_labels=eval_labels)
        decision.metrics.update(
            {"window_start": start.isoformat(), "window_end": stop.isoformat(), "dataset_version": dataset}
        )
        _health.record_decision(
            wh,
            model=candidate.model,
            version=str(candidate.canary),
            alias=CANARY,
            decided_on=end.date(),
            decision=decision,
            decided_at=decided_at,
        )
    log.info("canary %s of %s: %s — %s", candidate.canary, candidate.model, decision.verdict, decision.reason)
    return decision


def _still_canary(registry: RegistryClient, candidate: Candidate) -> bool:
    current = registry.alias(candidate.model, CANARY)
    return current is not None and current.version == candidate.canary and current.rollout_percent > 0


def promote(settings: DagSettings, candidate: Candidate, reason: str) -> str:
    """Point `production` at the canary's version, for every device."""
    with connect(settings) as registry:
        production = registry.alias(candidate.model, PRODUCTION)
        if production is not None and production.version == candidate.canary:
            return f"production already serves version {candidate.canary}"
        if not _still_canary(registry, candidate):
            return f"canary no longer points at version {candidate.canary}; nothing promoted"
        registry.set_alias(
            candidate.model, PRODUCTION, candidate.canary, rollout_percent=100, reason=f"release_health: {reason}"
        )
    log.info("promoted %s version %s to production", candidate.model, candidate.canary)
    return f"promoted version {candidate.canary} to production"


def roll_back(settings: DagSettings, candidate: Candidate, reason: str) -> str:
    """Take the canary off devices: back to the alias's previous version, else to production, else 0 %."""
    audit = f"release_health: {reason}"
    with connect(settings) as registry:
        current = registry.alias(candidate.model, CANARY)
        if current is None or current.version != candidate.canary or current.rollout_percent == 0:
            return f"canary no longer serves version {candidate.canary}; nothing rolled back"
        if current.previous_version is not None:
            after = registry.rollback(candidate.model, CANARY, reason=audit)
            outcome = f"canary rolled back from version {candidate.canary} to {after.version}"
        elif candidate.production is not None:
            # A first canary has no previous target; its cohort goes back to production's model.
            registry.set_alias(candidate.model, CANARY, candidate.production, rollout_percent=100, reason=audit)
            outcome = f"canary moved from version {candidate.canary} back to production's {candidate.production}"
        else:
            # Nothing older exists to serve: stop serving the canary to anyone.
            registry.set_alias(candidate.model, CANARY, candidate.canary, rollout_percent=0, reason=audit)
            outcome = f"canary version {candidate.canary} has nothing to roll back to; rollout set to 0%"
    log.warning("%s: %s", outcome, reason)
    return outcome
