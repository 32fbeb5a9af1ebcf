"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import text

from edgeloop import storage
from edgeloop.errors import EdgeloopError
from registry_api.api.deps import RegistryDep
from registry_api.models import Health
from registry_api.state import Registry

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> Health:
    return Health(status="ok")


def _checks(registry: Registry) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        with registry.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "not ready"; the text says which
        checks["database"] = f"error: {type(exc).__name__}"
    root = registry.settings.artifacts
    try:
        if storage.is_local(root):
            path = storage.local_path(root)
            path.mkdir(parents=True, exist_ok=True)
            checks["storage"] = "ok" if path.is_dir() else "error: not a folder"
        else:
            next(iter(storage.list_objects(root)), None)
            checks["storage"] = "ok"
    except (EdgeloopError, OSError) as exc:
        checks["storage"] = f"error: {exc}"
    return checks


@router.get(
    "/readyz",
    response_model=Health,
    summary="Readiness: database and artifact storage reachable",
    responses={503: {"model": Health, "description": "A dependency is unreachable."}},
)
async def readyz(registry: RegistryDep) -> JSONResponse:
    checks = await run_in_threadpool(_checks, registry)
    ok = all(v == "ok" for v in checks.values())
    body = Health(status="ok" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
