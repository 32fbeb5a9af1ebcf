"""Aliases: point a name at a version with a rollout, roll it back, and read the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query
from fastapi.concurrency import run_in_threadpool

from registry_api import crud, db
from registry_api.api.deps import Publisher, Reader, RegistryDep
from registry_api.api.responses import AUTH, errors
from registry_api.models import (
    ALIAS_PATTERN,
    NAME_PATTERN,
    AliasPublic,
    AliasUpdate,
    AuditPublic,
    RollbackRequest,
    Targeting,
)

router = APIRouter(prefix="/v1/models/{name}", tags=["aliases"])

ModelName = Annotated[str, Path(pattern=NAME_PATTERN, description="Model name.", examples=["shelf-products"])]
AliasName = Annotated[str, Path(pattern=ALIAS_PATTERN, description="Alias name.", examples=["production"])]


def alias_public(row: db.Alias) -> AliasPublic:
    return AliasPublic(
        model=row.model,
        name=row.name,
        version=row.version,
        previous_version=row.previous_version,
        rollout_percent=row.rollout_percent,
        targeting=Targeting.model_validate(row.targeting or {}),
        latency_budget_ms=row.latency_budget_ms,
        rollback=row.rollback,
        updated_at=crud.utc(row.updated_at),
        updated_by=row.updated_by,
    )


@router.get("/aliases", response_model=list[AliasPublic], summary="List aliases", responses=errors(*AUTH, 404))
async def list_aliases(name: ModelName, registry: RegistryDep, _: Reader) -> list[AliasPublic]:
    def load() -> list[AliasPublic]:
        with registry.sessions() as session:
            crud.require_model(session, name)
            return [alias_public(a) for a in crud.list_aliases(session, name)]

    return await run_in_threadpool(load)


@router.get("/aliases/{alias}", response_model=AliasPublic, summary="One alias", responses=errors(*AUTH, 404))
async def get_alias(name: ModelName, alias: AliasName, registry: RegistryDep, _: Reader) -> AliasPublic:
    def load() -> AliasPublic:
        with registry.sessions() as session:
            return alias_public(crud.get_alias(session, name, alias))

    return await run_in_threadpool(load)


@router.put(
    "/aliases/{alias}",
    response_model=AliasPublic,
    summary="Point an alias at a version",
    description=(
        "Creates or moves the alias. The old target becomes `previous_version` (what devices outside the "
        "rollout get, and where rollback goes). Moving to an older version counts as a rollback "
        "(manifests say rollback=true). Audited with the key's name and `reason`."
    ),
    responses=errors(*AUTH, 400, 404, 413, 422),
)
async def set_alias(
    name: ModelName, alias: AliasName, update: AliasUpdate, registry: RegistryDep, actor: Publisher
) -> AliasPublic:
    def write() -> AliasPublic:
        with registry.sessions.begin() as session:
            out = alias_public(crud.set_alias(session, name, alias, update, actor.name))
        registry.manifests.invalidate(name)
        return out

    return await run_in_threadpool(write)


@router.post(
    "/aliases/{alias}/rollback",
    response_model=AliasPublic,
    summary="Roll an alias back to its previous version",
    description="One call: target and previous swap, rollout goes to 100 %, manifests carry rollback=true.",
    responses=errors(*AUTH, 400, 404, 409, 413, 422),
)
async def rollback_alias(
    name: ModelName,
    alias: AliasName,
    registry: RegistryDep,
    actor: Publisher,
    body: Annotated[RollbackRequest | None, Body()] = None,
) -> AliasPublic:
    def write() -> AliasPublic:
        with registry.sessions.begin() as session:
            out = alias_public(crud.rollback_alias(session, name, alias, actor.name, body.reason if body else None))
        registry.manifests.invalidate(name)
        return out

    return await run_in_threadpool(write)


@router.get(
    "/audit",
    response_model=list[AuditPublic],
    summary="Audit log of a model",
    description="Newest first: publishes, alias moves and rollbacks, with who (key name), when, from, to and why.",
    responses=errors(*AUTH, 404),
)
async def audit(
    name: ModelName,
    registry: RegistryDep,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[int | None, Query(ge=1, le=2**62, description="Page: entries older than this id.")] = None,
) -> list[AuditPublic]:
    def load() -> list[AuditPublic]:
        with registry.sessions() as session:
            crud.require_model(session, name)
            return [
                AuditPublic(
                    id=e.id,
                    model=e.model,
                    alias=e.alias,
                    action=e.action,
                    actor=e.actor,
                    at=crud.utc(e.at),
                    from_version=e.from_version,
                    to_version=e.to_version,
                    from_rollout=e.from_rollout,
                    to_rollout=e.to_rollout,
                    reason=e.reason,
                )
                for e in crud.audit_log(session, name, limit, before_id)
            ]

    return await run_in_threadpool(load)
