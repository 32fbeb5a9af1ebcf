"""Manifests: resolve (model, alias, device) to a version and variant, sign once, serve many.

Polls are the hot path, so nothing here touches the database per request: each worker
keeps a snapshot of a model's versions, aliases and benchmark latencies for
`state_cache_ttl_s` (dropped at once on its own writes), and signs each distinct manifest
once per issue interval. `issued_at` is rounded down to that interval, so a manifest's
bytes — and its ETag — stay the same for every poll within it.

When a snapshot ages out, polls go on answering from it while one reload runs in a thread
(stale-while-revalidate): letting every poll that arrived in the meantime reload it too
stalled the event loop for hundreds of milliseconds each time.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeGuard

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from edge.manifest import InputSpec, Manifest, canonical_bytes
from registry_api import crud, db
from registry_api.core.config import RegistrySettings
from registry_api.core.security import KeyRing
from registry_api.errors import NotFoundError
from registry_api.models import Targeting
from registry_api.rollout import Device, VariantInfo, choose_variant, in_rollout, targeting_matches

log = logging.getLogger(__name__)

PRODUCTION = "production"
_MAX_SIGNED = 20_000


@dataclasses.dataclass(frozen=True)
class VersionInfo:
    number: int
    labels: tuple[str, ...]
    input: InputSpec
    variants: tuple[VariantInfo, ...]  # publishable only


@dataclasses.dataclass(frozen=True)
class AliasInfo:
    name: str
    version: int
    previous_version: int | None
    rollout_percent: int
    targeting: Targeting
    latency_budget_ms: float | None
    rollback: bool
    sequence: int


@dataclasses.dataclass(frozen=True)
class ModelSnapshot:
    versions: dict[int, VersionInfo]
    aliases: dict[str, AliasInfo]
    latencies: dict[tuple[int, str], dict[str, float]]
    loaded_at: float


@dataclasses.dataclass(frozen=True)
class Resolution:
    version: int
    variant: VariantInfo
    served: str
    rollback: bool
    rollout_percent: int
    sequence: int


@dataclasses.dataclass(frozen=True)
class SignedManifest:
    body: bytes
    etag: str
    expires_at: dt.datetime
    next_issue: float  # epoch seconds when a new issue starts (cache freshness ends)


def load_snapshot(session: Session, model: str, settings: RegistrySettings, now: float) -> ModelSnapshot:
    versions: dict[int, VersionInfo] = {}
    for row in session.scalars(select(db.ModelVersion).where(db.ModelVersion.model == model)):
        variants = tuple(
            VariantInfo(v.variant, v.sha256, v.size, v.runtime, v.quantization) for v in row.variants if v.publishable
        )
        versions[row.number] = VersionInfo(
            row.number, tuple(row.card["labels"]), InputSpec.model_validate(row.card["input"]), variants
        )
    aliases = {
        a.name: AliasInfo(
            a.name,
            a.version,
            a.previous_version,
            a.rollout_percent,
            Targeting.model_validate(a.targeting or {}),
            a.latency_budget_ms,
            a.rollback,
            a.sequence,
        )
        for a in crud.list_aliases(session, model)
    }
    latencies = crud.latest_latencies(
        session,
        model,
        settings.latency_metric,
        devices=settings.benchmark_devices,
        min_devices=settings.benchmark_min_devices,
    )
    return ModelSnapshot(versions, aliases, latencies, now)


class ManifestService:
    """Resolves and signs manifests for one worker process."""

    def __init__(
        self,
        settings: RegistrySettings,
        sessions: sessionmaker[Session],
        keyring: KeyRing,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.keyring = keyring
        self.clock = clock
        self._snapshots: dict[str, ModelSnapshot] = {}
        self._generations: dict[str, int] = {}
        # model -> (event loop, generation, reload under way); one reload at a time per model
        self._loading: dict[str, tuple[asyncio.AbstractEventLoop, int, asyncio.Future[ModelSnapshot]]] = {}
        self._signed: dict[tuple[Any, ...], SignedManifest] = {}
        self._lock = threading.Lock()

    def invalidate(self, model: str) -> None:
        """Forget `model`'s snapshot after a write; a reload already under way will not bring the old one back."""
        with self._lock:
            self._generations[model] = self._generations.get(model, 0) + 1
            self._snapshots.pop(model, None)

    def _fresh(self, snap: ModelSnapshot | None) -> TypeGuard[ModelSnapshot]:
        return snap is not None and time.monotonic() - snap.loaded_at < self.settings.state_cache_ttl_s

    def _load(self, model: str, generation: int | None = None) -> ModelSnapshot:
        """Read the model's state; keep it unless `invalidate` came since `generation` (default: now)."""
        if generation is None:
            generation = self._generations.get(model, 0)
        with self.sessions() as session:
            snap = load_snapshot(session, model, self.settings, time.monotonic())
        if not snap.versions:
            raise NotFoundError(f"no model {model!r}; publish a version first")
        with self._lock:
            if self._generations.get(model, 0) == generation:
                self._snapshots[model] = snap
        return snap

    def snapshot(self, model: str) -> ModelSnapshot:
        """The model's snapshot, reloaded here and now when it is missing or old (blocking: not for the event loop)."""
        snap = self._snapshots.get(model)
        return snap if self._fresh(snap) else self._load(model)

    async def current(self, model: str) -> ModelSnapshot:
        """The snapshot to answer a poll from, never blocking the event loop on the database.

        Fresh: as is. Old: as is, while one reload runs in a thread. Missing (first poll, or
        just invalidated): every poll waits for one reload begun after the invalidation.
        """
        snap = self._snapshots.get(model)
        if self._fresh(snap):
            return snap
        loop = asyncio.get_running_loop()
        generation = self._generations.get(model, 0)
        pending = self._loading.get(model)
        if pending is not None and pending[0] is loop and pending[1] == generation and not pending[2].done():
            future = pending[2]
        else:
            future = loop.run_in_executor(None, self._load, model, generation)
            self._loading[model] = (loop, generation, future)
            future.add_done_callback(lambda done: self._loaded(model, done))
        if snap is not None:
            return snap
        return await asyncio.shield(future)

    def _loaded(self, model: str, future: asyncio.Future[ModelSnapshot]) -> None:
        pending = self._loading.get(model)
        if pending is not None and pending[2] is future:
            del self._loading[model]
        if not future.cancelled() and (exc := future.exception()) is not None and model in self._snapshots:
            # Someone was served the old snapshot and nobody awaits this reload: say why it failed.
            log.warning("reloading the state of model %r failed (serving the last one): %s", model, exc)

    def resolve(self, model: str, alias: str, device: Device, snap: ModelSnapshot | None = None) -> Resolution:
        """Which version and variant this device gets from `alias` (in `snap`, default the current state), and why."""
        snap = snap or self.snapshot(model)
        info = snap.aliases.get(alias)
        if info is None:
            raise NotFoundError(f"model {model!r} has no alias {alias!r}")
        eligible = targeting_matches(info.targeting, device) and in_rollout(
            device.device_id, alias, info.version, info.rollout_percent
        )
        if eligible:
            number, served = info.version, "target"
        elif info.previous_version is not None:
            number, served = info.previous_version, "previous"
        elif alias != PRODUCTION and PRODUCTION in snap.aliases:
            number, served = snap.aliases[PRODUCTION].version, "production"
        else:
            raise NotFoundError(
                f"device is outside alias {alias!r} of {model!r} (rollout {info.rollout_percent} % or targeting) "
                "and there is no previous or production version to offer"
            )
        version = snap.versions[number]
        latencies = snap.latencies.get((number, device.device_class), {}) if device.device_class else {}
        budget = info.latency_budget_ms or self.settings.latency_budget_ms
        variant = choose_variant(
            version.variants,
            runtime=device.runtime,
            latencies=latencies,
            budget_ms=budget,
            defaults=self.settings.default_variants,
        )
        if variant is None:
            raise NotFoundError(
                f"version {number} of {model!r} has no publishable variant for runtime {device.runtime!r}"
            )
        # The answer depends on this alias and, for another alias, on production (its fallback): the larger
        # sequence of the two grows on a write to either (sequences are drawn per model).
        sequence = info.sequence
        if alias != PRODUCTION and PRODUCTION in snap.aliases:
            sequence = max(sequence, snap.aliases[PRODUCTION].sequence)
        # A fallback to production carries production's own rollback: its devices follow it back down too.
        if served == "target":
            rollback = info.rollback
        elif served == "production":
            rollback = snap.aliases[PRODUCTION].rollback
        else:
            rollback = False
        return Resolution(number, variant, served, rollback, info.rollout_percent, sequence)

    def signed(self, model: str, alias: str, res: Resolution, snap: ModelSnapshot | None = None) -> SignedManifest:
        """The signed manifest for a resolution, signing only on the first ask in each issue interval."""
        interval = self.settings.manifest_issue_interval_s
        now = self.clock()
        issue = int(now // interval) * interval
        # Plain fields, not the Resolution itself: hashing nested dataclasses was a visible share of a 304.
        key: tuple[Any, ...] = (model, alias, res.version, res.variant.variant, res.variant.sha256, res.served)
        key += (res.rollback, res.rollout_percent, res.sequence, issue, self.keyring.key_id)
        cached = self._signed.get(key)
        if cached is not None:
            return cached
        version = (snap or self.snapshot(model)).versions[res.version]
        issued_at = dt.datetime.fromtimestamp(issue, dt.UTC)
        expires_at = issued_at + dt.timedelta(seconds=self.settings.manifest_ttl_s)
        manifest = Manifest(
            model=model,
            version=res.version,
            alias=alias,
            variant=res.variant.variant,
            runtime=res.variant.runtime,  # type: ignore[arg-type]  # checked against the variant table on publish
            quantization=res.variant.quantization,  # type: ignore[arg-type]
            artifact_url=f"{self.settings.public_url.rstrip('/')}/v1/artifacts/{res.variant.sha256}",
            sha256=res.variant.sha256,
            size=res.variant.size,
            labels=list(version.labels),
            input=version.input,
            issued_at=issued_at,
            expires_at=expires_at,
            rollback=res.rollback,
            rollout_percent=res.rollout_percent,
            sequence=res.sequence,
            served=res.served,  # type: ignore[arg-type]
            key_id=self.keyring.key_id,
        )
        payload = manifest.signed_payload()
        signature = base64.b64encode(self.keyring.sign(canonical_bytes(payload))).decode("ascii")
        body = json.dumps({**payload, "signature": signature}, sort_keys=True, separators=(",", ":")).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        signed = SignedManifest(body, etag, expires_at, issue + interval)
        with self._lock:
            if len(self._signed) >= _MAX_SIGNED:
                self._signed.clear()  # crude but bounded; entries are cheap to re-sign
            self._signed[key] = signed
        return signed
