"""Auth: roles per route (enumerated from the app), missing/revoked keys, rate limits."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from registry_api import create_app
from registry_api.testing import Harness, create_keys, make_package

# What a device may do; every other route must answer a device key with 403. Not benchmarks:
# a device key must not set the latency a whole device class is served by.
DEVICE_ALLOWED = {
    ("GET", "/v1/models/{name}/manifest"),
    ("HEAD", "/v1/models/{name}/manifest"),
    ("GET", "/v1/artifacts/{sha256}"),
    ("HEAD", "/v1/artifacts/{sha256}"),
    ("POST", "/v1/telemetry"),
}
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/v1/keys")}
READ_ONLY_FOR_READER = {
    ("GET", "/v1/models"),
    ("GET", "/v1/models/{name}"),
    ("GET", "/v1/models/{name}/versions"),
    ("GET", "/v1/models/{name}/versions/{version}"),
    ("GET", "/v1/models/{name}/aliases"),
    ("GET", "/v1/models/{name}/aliases/{alias}"),
    ("GET", "/v1/models/{name}/audit"),
    ("GET", "/v1/models/{name}/manifest"),
    ("HEAD", "/v1/models/{name}/manifest"),
    ("GET", "/v1/artifacts/{sha256}"),
    ("HEAD", "/v1/artifacts/{sha256}"),
}
SAMPLE = {"name": "shelf-products", "version": "1", "alias": "production", "sha256": "a" * 64}


def _routes(harness: Harness) -> list[tuple[str, str]]:
    out = []
    for route in harness.client.app.routes:  # type: ignore[attr-defined]
        # The console authenticates by session cookie, not by key header: test_console.py covers it.
        if isinstance(route, APIRoute) and not route.path.startswith("/console"):
            out.extend((method, route.path) for method in sorted(route.methods))
    return out


def _call(harness: Harness, method: str, path: str, token: str | None) -> int:
    url = re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m.group(1)], path)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"version": 1} if method in ("PUT", "POST") else None
    return harness.client.request(method, url, json=body, headers=headers).status_code


@pytest.fixture()
def published(harness: Harness, tmp_path: Path) -> Harness:
    harness.publish(make_package(tmp_path / "pkg"))
    harness.set_alias("production", {"version": 1})
    return harness


def test_every_route_is_classified(published: Harness) -> None:
    routes = set(_routes(published))
    assert len(routes) >= 15
    assert routes >= DEVICE_ALLOWED | PUBLIC | READ_ONLY_FOR_READER


def test_device_key_gets_403_on_every_other_route(published: Harness) -> None:
    checked = 0
    for method, path in _routes(published):
        if (method, path) in DEVICE_ALLOWED | PUBLIC:
            continue
        assert _call(published, method, path, published.device) == 403, (method, path)
        checked += 1
    assert checked >= 10
    # …and the alias did not move, nothing was published.
    assert published.manifest(device_id="x").json()["version"] == 1


def test_reader_key_gets_403_on_writes(published: Harness) -> None:
    for method, path in _routes(published):
        if (method, path) in READ_ONLY_FOR_READER | PUBLIC:
            assert _call(published, method, path, published.reader) != 403, (method, path)
        else:
            assert _call(published, method, path, published.reader) == 403, (method, path)


def test_no_key_or_bad_key_gets_401(published: Harness) -> None:
    for method, path in _routes(published):
        if (method, path) in PUBLIC:
            continue
        assert _call(published, method, path, None) == 401, (method, path)
        assert _call(published, method, path, "elk_000000000000_wrong") == 401, (method, path)
    response = published.client.get("/v1/models", headers={"X-API-Key": published.reader})
    assert response.status_code == 200


def test_revoked_key_is_refused(registry_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry_api.cli import keys_revoke

    monkeypatch.setenv("EDGELOOP_REGISTRY_KEYS_CACHE_TTL_S", "0")
    tokens = create_keys()
    with TestClient(create_app()) as client:
        auth = {"Authorization": f"Bearer {tokens['reader']}"}
        assert client.get("/v1/models", headers=auth).status_code == 200
        keys_revoke("reader-key")
        assert client.get("/v1/models", headers=auth).status_code == 401


def test_rate_limit_gives_429_with_retry_after(registry_env: Path) -> None:
    from registry_api.core.ratelimit import RateLimiter

    tokens = create_keys(reader=1.0)
    now = [1000.0]
    with TestClient(create_app()) as client:
        # The limiter's own clock, held still: refills happen when the test moves it, never because
        # the requests happened to be slow (a loaded box could otherwise refill between them).
        client.app.state.registry.limiter = RateLimiter(clock=lambda: now[0])  # type: ignore[attr-defined]
        auth = {"Authorization": f"Bearer {tokens['reader']}"}
        statuses = [client.get("/v1/models", headers=auth).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]  # burst: 2 s of refill at 1/s
        limited = client.get("/v1/models", headers=auth)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        now[0] += 1.0  # one second later: one more token
        assert [client.get("/v1/models", headers=auth).status_code for _ in range(2)] == [200, 429]
