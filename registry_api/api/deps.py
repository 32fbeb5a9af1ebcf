"""Dependency aliases: the registry of this app, and the caller's key checked for a scope."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from registry_api.core.security import ROLE_SCOPES, Scope
from registry_api.errors import Forbidden, RateLimited, Unauthenticated
from registry_api.state import Principal, Registry

# Every request header that carries a key: a shared cache must keep one answer per value of each
# (a response fetched with X-API-Key must not be served to a request without it).
VARY_CREDENTIALS = "Authorization, X-API-Key"

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer elk_<id>_<secret>`.")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The same API key, for clients that prefer it.")


async def get_registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


RegistryDep = Annotated[Registry, Depends(get_registry)]


class Authorize:
    """Authenticate the key, check its role grants `scope`, and take a token from its bucket."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(
        self,
        request: Request,
        registry: RegistryDep,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header_key: Annotated[str | None, Depends(_header)],
    ) -> Principal:
        token = bearer.credentials if bearer is not None else header_key
        return authorize(request, registry, self.scope, token)


def bearer_token(request: Request) -> str | None:
    """The API key from `Authorization: Bearer …` or `X-API-Key` (for routes that parse headers themselves)."""
    return api_key(request.headers.get("authorization"), request.headers.get("x-api-key"))


def api_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key from the two headers' values: a Bearer credential first, else X-API-Key."""
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    return x_api_key


def authorize(request: Request, registry: Registry, scope: Scope, token: str | None) -> Principal:
    """Authenticate `token`, check its role grants `scope`, and take a token from its bucket."""
    return check_key(request.scope.setdefault("state", {}), registry, scope, token)


def check_key(state: dict[str, Any], registry: Registry, scope: Scope, token: str | None) -> Principal:
    """`authorize` on a raw ASGI scope's state (the access log reads `key_id` from it)."""
    if not token:
        raise Unauthenticated("no API key; send `Authorization: Bearer <key>`")
    principal = registry.keys.authenticate(token)
    state["key_id"] = principal.key_id
    if scope not in ROLE_SCOPES[principal.role]:
        granted = " or ".join(role.value for role, scopes in ROLE_SCOPES.items() if scope in scopes)
        raise Forbidden(f"a {principal.role.value} key may not {scope.value}; use a {granted} key")
    wait = registry.limiter.take(principal.key_id, principal.rate_per_s, registry.settings.burst_s)
    if wait > 0:
        raise RateLimited(f"rate limit of {principal.rate_per_s:g} requests/s exceeded", math.ceil(wait))
    return principal


# The security requirement of routes that read the key themselves (documented like the others).
SECURITY: list[dict[str, list[str]]] = [{"HTTPBearer": []}, {"APIKeyHeader": []}]


Reader = Annotated[Principal, Depends(Authorize(Scope.read))]
Publisher = Annotated[Principal, Depends(Authorize(Scope.publish))]
Poller = Annotated[Principal, Depends(Authorize(Scope.poll))]
Reporter = Annotated[Principal, Depends(Authorize(Scope.report))]
Benchmarker = Annotated[Principal, Depends(Authorize(Scope.benchmark))]
