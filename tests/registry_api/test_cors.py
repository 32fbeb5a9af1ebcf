"""CORS for browser devices: answered only for listed origins, and nothing at all by default."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from registry_api.testing import create_keys

KIOSK = "https://kiosk.example"
PREFLIGHT = {
    "Origin": KIOSK,
    "Access-Control-Request-Method": "GET",
    "Access-Control-Request-Headers": "authorization, if-none-match",
}


@pytest.fixture()
def cors_client(registry_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, str]]:
    from registry_api import create_app
    from registry_api.core.config import get_registry_settings

    monkeypatch.setenv("EDGELOOP_REGISTRY_CORS_ORIGINS", f'["{KIOSK}", "http://localhost:5173"]')
    get_registry_settings.cache_clear()
    tokens = create_keys()
    with TestClient(create_app()) as client:
        yield client, tokens["device"]


def test_no_cors_by_default(harness: object) -> None:
    client = harness.client  # type: ignore[attr-defined]
    preflight = client.options("/v1/keys", headers=PREFLIGHT)
    assert not any(h.lower().startswith("access-control-") for h in preflight.headers)
    answer = client.get("/v1/keys", headers={"Origin": KIOSK})
    assert "access-control-allow-origin" not in answer.headers


def test_listed_origin_preflight_and_answers(cors_client: tuple[TestClient, str]) -> None:
    client, device = cors_client
    preflight = client.options("/v1/models/shelf-products/manifest", headers=PREFLIGHT)
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == KIOSK
    assert {"authorization", "if-none-match", "range"} <= set(
        preflight.headers["access-control-allow-headers"].split(", ")
    )
    assert "access-control-allow-credentials" not in preflight.headers  # keys are headers, never cookies
    keys = client.get("/v1/keys", headers={"Origin": KIOSK})
    assert keys.headers["access-control-allow-origin"] == KIOSK
    assert "ETag" in keys.headers["access-control-expose-headers"]
    assert "Origin" in keys.headers["vary"]
    # The poll's fast path answers before routing; its errors are readable by the page too.
    poll = client.get(
        "/v1/models/shelf-products/manifest", headers={"Origin": KIOSK, "Authorization": f"Bearer {device}"}
    )
    assert poll.status_code == 404 and poll.headers["access-control-allow-origin"] == KIOSK
    assert "Origin" in poll.headers["vary"]


def test_unlisted_origin_gets_nothing(cors_client: tuple[TestClient, str]) -> None:
    client, _ = cors_client
    preflight = client.options("/v1/keys", headers={**PREFLIGHT, "Origin": "https://evil.example"})
    assert preflight.status_code == 403 and "cors_origins" in preflight.json()["detail"]
    assert not any(h.lower().startswith("access-control-") for h in preflight.headers)
    answer = client.get("/v1/keys", headers={"Origin": "https://evil.example"})
    assert not any(h.lower().startswith("access-control-") for h in answer.headers)
    assert answer.headers["vary"] == "Origin"  # a shared cache must not hand the listed origin's answer over


def test_preflight_refuses_other_methods_and_headers(cors_client: tuple[TestClient, str]) -> None:
    client, _ = cors_client
    put = client.options("/v1/keys", headers={**PREFLIGHT, "Access-Control-Request-Method": "DELETE"})
    assert put.status_code == 403 and "DELETE" in put.json()["detail"]
    odd = client.options("/v1/keys", headers={**PREFLIGHT, "Access-Control-Request-Headers": "x-forwarded-for"})
    assert odd.status_code == 403 and "x-forwarded-for" in odd.json()["detail"]


@pytest.mark.parametrize("origin", ["*", "https://kiosk.example/", "kiosk.example", "https://kiosk.example/app"])
def test_cors_origins_must_be_exact(origin: str) -> None:
    from pydantic import ValidationError

    from registry_api.core.config import RegistrySettings

    with pytest.raises(ValidationError, match="is not an origin; write scheme://host"):
        RegistrySettings(cors_origins=[origin])
