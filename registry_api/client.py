"""The publisher's HTTP client for the registry: publish, aliases, rollback.

Used by `edgeloop publish` and by the Airflow DAGs. It speaks HTTP only (never the
registry's database), with an API key of role `publisher` sent as
`Authorization: Bearer <token>`. Every call is safe to retry: publishing is
content-addressed (the same package gives the same version) and alias moves are
absolute ("point canary at 7"), never relative.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import httpx

from edgeloop.errors import EdgeloopError

log = logging.getLogger(__name__)


class RegistryCallFailed(EdgeloopError):
    """The registry refused a call; the message carries its status and reason."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class AliasState:
    """Where an alias points."""

    alias: str
    version: int
    rollout_percent: int
    previous_version: int | None


@dataclasses.dataclass(frozen=True)
class Published:
    """A published version and whether this call created it."""

    version: int
    created: bool
    body: dict[str, Any]


class RegistryClient:
    """Synchronous client; use as a context manager so the connection pool is closed."""

    def __init__(
        self, base_url: str, api_key: str, *, timeout_s: float = 60.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout_s, transport=transport)
        self.base_url = base_url

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise RegistryCallFailed(
                f"registry at {self.base_url} unreachable for {method} {path}: {exc}; "
                "check the registry URL and that the registry is running (edgeloop serve)"
            ) from None
        return response

    @staticmethod
    def _fail(response: httpx.Response, what: str) -> RegistryCallFailed:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        hint = ""
        if response.status_code in (401, 403):
            hint = "; use an API key with the publisher role (edgeloop keys create --role publisher)"
        return RegistryCallFailed(f"{what}: HTTP {response.status_code}: {detail}{hint}", response.status_code)

    def publish(self, model: str, package_uri: str) -> Published:
        """Publish a package folder the registry can read (a shared path or gs:// URI)."""
        response = self._call("POST", f"/v1/models/{model}/versions", json={"package_uri": package_uri})
        if response.status_code not in (200, 201):
            raise self._fail(response, f"publishing {package_uri} as {model}")
        body = response.json()
        return Published(version=int(body["version"]), created=response.status_code == 201, body=body)

    def alias(self, model: str, alias: str) -> AliasState | None:
        """Where `alias` points, or None when it is not set."""
        response = self._call("GET", f"/v1/models/{model}/aliases/{alias}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._fail(response, f"reading alias {model}/{alias}")
        return _alias_state(alias, response.json())

    def set_alias(
        self, model: str, alias: str, version: int, *, rollout_percent: int = 100, reason: str | None = None
    ) -> AliasState:
        """Point `alias` at `version` for `rollout_percent` of devices; the reason goes to the audit log."""
        payload: dict[str, Any] = {"version": version, "rollout_percent": rollout_percent, "reason": reason}
        response = self._call("PUT", f"/v1/models/{model}/aliases/{alias}", json=payload)
        if response.status_code not in (200, 201):
            raise self._fail(response, f"pointing {model}/{alias} at version {version}")
        return _alias_state(alias, response.json())

    def rollback(self, model: str, alias: str, *, reason: str | None = None) -> AliasState:
        """Move `alias` back to its previous version (the registry swaps the two)."""
        response = self._call("POST", f"/v1/models/{model}/aliases/{alias}/rollback", json={"reason": reason})
        if response.status_code not in (200, 201):
            raise self._fail(response, f"rolling back {model}/{alias}")
        return _alias_state(alias, response.json())

    def versions(self, model: str) -> list[dict[str, Any]]:
        """Every published version of `model`, oldest first."""
        response = self._call("GET", f"/v1/models/{model}/versions")
        if response.status_code != 200:
            raise self._fail(response, f"listing versions of {model}")
        body: list[dict[str, Any]] = response.json()
        return body

    def models(self) -> list[dict[str, Any]]:
        """Every model with its latest version and aliases."""
        response = self._call("GET", "/v1/models")
        if response.status_code != 200:
            raise self._fail(response, "listing models")
        body: list[dict[str, Any]] = response.json()
        return body

    def audit(self, model: str, limit: int = 100) -> list[dict[str, Any]]:
        """The model's audit log, newest first."""
        response = self._call("GET", f"/v1/models/{model}/audit", params={"limit": limit})
        if response.status_code != 200:
            raise self._fail(response, f"reading the audit log of {model}")
        body: list[dict[str, Any]] = response.json()
        return body

    def version(self, model: str, version: int) -> dict[str, Any]:
        """A published version's metadata (its card included)."""
        response = self._call("GET", f"/v1/models/{model}/versions/{version}")
        if response.status_code != 200:
            raise self._fail(response, f"reading {model} version {version}")
        body: dict[str, Any] = response.json()
        return body


def _alias_state(alias: str, body: dict[str, Any]) -> AliasState:
    previous = body.get("previous_version")
    return AliasState(
        alias=alias,
        version=int(body["version"]),
        rollout_percent=int(body.get("rollout_percent", 100)),
        previous_version=None if previous is None else int(previous),
    )
