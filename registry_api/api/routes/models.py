"""Models: what has been published, with its aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool

from registry_api import crud
from registry_api.api.deps import Reader, RegistryDep
from registry_api.api.responses import AUTH, errors
from registry_api.errors import NotFoundError
from registry_api.models import NAME_PATTERN, ModelPublic
from registry_api.state import Registry

router = APIRouter(prefix="/v1/models", tags=["models"])

ModelName = Annotated[str, Path(pattern=NAME_PATTERN, description="Model name.", examples=["shelf-products"])]


def _models(registry: Registry) -> list[ModelPublic]:
    with registry.sessions() as session:
        aliases: dict[str, dict[str, int]] = {}
        for alias in crud.list_aliases(session):
            aliases.setdefault(alias.model, {})[alias.name] = alias.version
        return [
            ModelPublic(name=name, latest_version=latest, versions=count, aliases=aliases.get(name, {}))
            for name, latest, count in crud.list_models(session)
        ]


@router.get("", response_model=list[ModelPublic], summary="List models", responses=errors(*AUTH))
async def list_models(registry: RegistryDep, _: Reader) -> list[ModelPublic]:
    return await run_in_threadpool(_models, registry)


@router.get("/{name}", response_model=ModelPublic, summary="One model", responses=errors(*AUTH, 404))
async def get_model(name: ModelName, registry: RegistryDep, _: Reader) -> ModelPublic:
    def load() -> ModelPublic:
        for model in _models(registry):
            if model.name == name:
                return model
        raise NotFoundError(f"no model {name!r}; publish a version first")

    return await run_in_threadpool(load)
