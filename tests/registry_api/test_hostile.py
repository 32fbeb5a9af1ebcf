"""Hostile and odd input through the real app: every answer a clear, small 4xx, never a 500.

Bodies FastAPI would read whole are capped and must be strict JSON; validation errors are one
bounded sentence; HEAD answers like GET without a body; telemetry is strict about types and times.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from registry_api import create_app
from registry_api.ranges import parse_range
from registry_api.testing import Harness, create_keys, make_package

ALIAS = "/v1/models/shelf-products/aliases/canary"
JSON = {"content-type": "application/json"}


@pytest.fixture()
def published(harness: Harness, tmp_path: Path) -> Harness:
    harness.publish(make_package(tmp_path / "pkg"))
    assert harness.set_alias("production", {"version": 1}).status_code == 200
    return harness


def _bench(**fields: Any) -> dict[str, Any]:
    body = {
        "device_class": "pixel-6a",
        "model": "shelf-products",
        "version": 1,
        "variant": "tflite_int8",
        "runs": 5,
        "p50_ms": 1.0,
        "p90_ms": 2.0,
        "p99_ms": 3.0,
    }
    return {**body, **fields}


def _raw(h: Harness, method: str, url: str, body: bytes, token: str) -> Any:
    return h.client.request(method, url, content=body, headers={**h.auth(token), **JSON})


# ------------------------------------------------------------------ JSON no route should parse

BAD_JSON = [
    pytest.param(ALIAS, b'{"version": NaN}', "strict JSON", id="alias-nan"),
    pytest.param(ALIAS, b'{"version": 1, "latency_budget_ms": Infinity}', "strict JSON", id="alias-infinity"),
    pytest.param(ALIAS, b'{"version": 1, "latency_budget_ms": 1e400}', "body.latency_budget_ms", id="alias-1e400"),
    pytest.param(ALIAS, b'{"version": 1, "reason": "\\ud800"}', "surrogate", id="alias-lone-surrogate"),
    pytest.param(ALIAS, b'{"version": 1, "reason": "a\\u0000b"}', "body.reason contains a NUL", id="alias-nul"),
    pytest.param(ALIAS, b'{"version": 1, "targeting": {"platforms": ["\\u0000"]}}', "NUL", id="alias-nul-in-list"),
    pytest.param(ALIAS, b'{"version": 1, "reason": "\xff"}', "strict JSON", id="alias-not-utf8"),
    pytest.param(ALIAS, b'{"version": 1' + b"0" * 5000 + b"}", "strict JSON", id="alias-5000-digit-int"),
    pytest.param(ALIAS, b'{"version": 100000000000000000000}', "64-bit", id="alias-huge-int"),
    pytest.param(ALIAS, b'{"reason": ' + b"[" * 300 + b"]" * 300 + b"}", "recursion", id="alias-deep"),
    pytest.param(
        "/v1/models/shelf-products/aliases/production/rollback", b'{"reason": "\\udfff"}', "surrogate", id="rollback"
    ),
    pytest.param("/v1/benchmarks", json.dumps(_bench()).replace("1.0", "NaN", 1).encode(), "strict", id="bench-nan"),
    pytest.param("/v1/benchmarks", json.dumps(_bench(device_class="\ud800")).encode(), "surrogate", id="bench-surr"),
    pytest.param("/v1/benchmarks", json.dumps(_bench(device_id="a\x00")).encode(), "NUL", id="bench-nul"),
]


@pytest.mark.parametrize(("url", "body", "says"), BAD_JSON)
def test_json_that_would_crash_later_is_a_clear_400(published: Harness, url: str, body: bytes, says: str) -> None:
    method = "PUT" if url == ALIAS else "POST"
    token = published.device if url == "/v1/benchmarks" else published.publisher
    r = _raw(published, method, url, body, token)
    assert r.status_code == 400, r.text
    assert says in r.json()["detail"]
    assert len(r.content) < 1000


def test_a_body_over_the_cap_is_refused_by_its_length(published: Harness) -> None:
    body = json.dumps(_bench(device_class="x" * (70 * 1024))).encode()
    r = _raw(published, "POST", "/v1/benchmarks", body, published.device)
    assert r.status_code == 413
    assert "65536-byte cap" in r.json()["detail"]


def test_a_chunked_body_over_the_cap_is_refused_while_counting(published: Harness) -> None:
    chunks = (b"x" * 8192 for _ in range(100))  # no Content-Length: httpx sends it chunked
    r = published.client.put(ALIAS, content=chunks, headers={**published.auth(published.publisher), **JSON})
    assert r.status_code == 413
    assert "cap" in r.json()["detail"]


def test_the_cap_is_a_setting(registry_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGELOOP_REGISTRY_MAX_BODY_BYTES", "2048")
    tokens = create_keys()
    with TestClient(create_app()) as client:
        body = {"version": 1, "reason": "x" * 3000}
        r = client.put(ALIAS, json=body, headers={"Authorization": f"Bearer {tokens['publisher']}"})
    assert r.status_code == 413
    assert "2048-byte cap" in r.json()["detail"]


def test_validation_errors_are_one_bounded_sentence(published: Harness) -> None:
    # Under the cap, but every field wrong and one 60 KiB long: FastAPI's default echoed it all.
    body = {"version": "x" * 60_000, "rollout_percent": -1, "reason": 5, "latency_budget_ms": 0, "more": 1}
    r = published.client.put(ALIAS, json=body, headers=published.auth(published.publisher))
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert isinstance(detail, str)
    assert "body.version" in detail and "body.rollout_percent" in detail and "fix and resend" in detail
    assert len(r.content) < 2000


def test_an_unknown_field_with_a_huge_name_is_named_briefly(published: Harness) -> None:
    r = published.client.put(ALIAS, json={"version": 1, "k" * 50_000: 1}, headers=published.auth(published.publisher))
    assert r.status_code == 422
    assert len(r.content) < 1000


def test_query_and_path_errors_use_the_same_shape(published: Harness) -> None:
    r = published.client.get(
        "/v1/models/shelf-products/audit", params={"before_id": "9" * 30}, headers=published.auth(published.reader)
    )
    assert r.status_code == 422
    assert r.json()["detail"].startswith("query.before_id: Input should be less than or equal to")


def test_openapi_documents_the_422_it_sends(harness: Harness) -> None:
    schema = harness.client.get("/openapi.json").json()
    assert "HTTPValidationError" not in json.dumps(schema)
    put = schema["paths"]["/v1/models/{name}/aliases/{alias}"]["put"]["responses"]
    assert put["422"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/ErrorBody"
    assert schema["components"]["schemas"]["ErrorBody"]["properties"]["detail"]["type"] == "string"


# ------------------------------------------------------------------ headers, URIs, numbers


@pytest.mark.parametrize("header", ["bytes=\u00b2-", "bytes=0-\u00b2", "bytes=-\u00b2", "bytes=\u0663-"])
def test_non_ascii_digits_in_range_are_ignored(header: str) -> None:
    assert parse_range(header, 100) is None  # the whole object, as for any header we cannot parse


def test_long_ascii_range_ends_still_clamp() -> None:
    assert parse_range("bytes=0-" + "9" * 30, 100) == (0, 99)


@pytest.mark.parametrize(
    ("uri", "says"),
    [("/tmp/a\x00b", "NUL"), ("file://\x00/x", "NUL"), ("file://somehost/x", "file:///absolute/path")],
)
def test_odd_package_uris_are_refused_clearly(published: Harness, uri: str, says: str) -> None:
    r = published.client.post(
        "/v1/models/shelf-products/versions", json={"package_uri": uri}, headers=published.auth(published.publisher)
    )
    assert r.status_code == 422, r.text
    assert says in r.json()["detail"]


def test_benchmark_times_far_off_are_refused(published: Harness) -> None:
    for when in ("9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+14:00"):
        r = published.client.post("/v1/benchmarks", json=_bench(measured_at=when), headers=published.auth(published.qa))
        assert r.status_code == 422, (when, r.text)
        assert "measured_at" in r.json()["detail"]


@pytest.mark.parametrize(
    "fields", [{"runs": True}, {"runs": "5"}, {"p50_ms": "1.5"}, {"version": "1"}, {"threads": 2.5}]
)
def test_benchmark_numbers_are_strict(published: Harness, fields: dict[str, Any]) -> None:
    r = published.client.post("/v1/benchmarks", json=_bench(**fields), headers=published.auth(published.qa))
    assert r.status_code == 422, r.text


# ------------------------------------------------------------------ HEAD


@pytest.fixture()
def artifact(published: Harness) -> tuple[Harness, str]:
    version = published.client.get(
        "/v1/models/shelf-products/versions/1", headers=published.auth(published.reader)
    ).json()
    return published, version["variants"][0]["sha256"]


@pytest.mark.parametrize("extra", [{}, {"Range": "bytes=10-19"}, {"Range": "bytes=999999-"}])
def test_head_on_an_artifact_answers_like_get_without_a_body(
    artifact: tuple[Harness, str], extra: dict[str, str]
) -> None:
    h, sha = artifact
    headers = {**h.auth(h.device), **extra}
    got = h.client.get(f"/v1/artifacts/{sha}", headers=headers)
    head = h.client.head(f"/v1/artifacts/{sha}", headers=headers)
    assert head.status_code == got.status_code
    assert head.content == b""
    for name in ("content-length", "content-range", "etag", "accept-ranges", "cache-control", "content-type"):
        assert head.headers.get(name) == got.headers.get(name), name


def test_head_on_an_artifact_honours_if_none_match(artifact: tuple[Harness, str]) -> None:
    h, sha = artifact
    r = h.client.head(f"/v1/artifacts/{sha}", headers={**h.auth(h.device), "If-None-Match": f'"{sha}"'})
    assert r.status_code == 304
    assert h.client.head("/v1/artifacts/" + "0" * 64, headers=h.auth(h.device)).status_code == 404


def test_head_on_a_manifest_answers_like_get_without_a_body(published: Harness) -> None:
    url, params = "/v1/models/shelf-products/manifest", {"device_id": "d1", "runtime": "litert"}
    got = published.client.get(url, params=params, headers=published.auth(published.device))
    head = published.client.head(url, params=params, headers=published.auth(published.device))
    assert (head.status_code, head.content) == (200, b"")
    for name in ("content-length", "etag", "cache-control", "vary", "content-type"):
        assert head.headers.get(name) == got.headers.get(name), name
    again = published.client.head(
        url, params=params, headers={**published.auth(published.device), "If-None-Match": got.headers["etag"]}
    )
    assert again.status_code == 304
    assert published.client.head(url).status_code == 401


# ------------------------------------------------------------------ telemetry


def _event(**fields: Any) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "device_id": "d1", "kind": "inference", **fields}


def _send(h: Harness, *events: dict[str, Any]) -> Any:
    return h.client.post("/v1/telemetry", json={"events": list(events)}, headers=h.auth(h.device))


def _ago(**delta: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(**delta)).isoformat()


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"event_time": "9999-12-31T23:59:59Z"}, "event_time"),
        ({"event_time": "0001-01-01T00:00:00Z"}, "event_time"),
        ({"event_time": _ago(days=91)}, "telemetry_max_age_s"),
        ({"event_time": _ago(hours=-1)}, "telemetry_max_skew_s"),
        ({"event_time": 1_700_000_000}, "event_time"),
        ({"top1_score": False}, "top1_score"),
        ({"top1_score": "0.5"}, "top1_score"),
        ({"latency_ms": True}, "latency_ms"),
        ({"version": "7"}, "version"),
        ({"version": 10**20}, "version"),
        ({"detail": {"a": {"b": 1}}}, "detail.a"),
        ({"detail": {"a": [1, 2]}}, "detail.a"),
        ({"detail": {"a": "x" * 2000}}, "detail.a"),
    ],
)
def test_telemetry_refuses_what_the_warehouse_cannot_keep(
    published: Harness, fields: dict[str, Any], says: str
) -> None:
    r = _send(published, _event(), _event(**fields))
    assert r.status_code == 422, r.text
    assert "events[1]" in r.json()["detail"] and says in r.json()["detail"]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_telemetry_refuses_non_finite_numbers_in_detail(published: Harness, number: str) -> None:
    body = json.dumps({"events": [_event(detail={"x": 1.5})]}).replace("1.5", number).encode()
    r = _raw(published, "POST", "/v1/telemetry", body, published.device)
    assert r.status_code == 422, r.text
    assert "detail.x" in r.json()["detail"] or "Invalid JSON" in r.json()["detail"]


def test_telemetry_takes_what_devices_send(published: Harness) -> None:
    events = [
        _event(event_time=_ago(days=89), latency_ms=3, top1_score=1, version=2),  # queued offline for weeks
        _event(event_time=_ago(minutes=-5)),  # a device clock a little ahead
        _event(kind="update", detail={"from_version": None, "rollback": False, "download_s": 0.5, "resumes": 0}),
        _event(kind="error", detail={"stage": "verify", "error": "BadSignature", "message": "x" * 500}),
    ]
    events.append(_event(version=7.0))  # JSON Schema's integer: 7.0 is one
    r = _send(published, *events)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 5, "duplicates": 0}


def test_targeting_needs_a_dotted_version(published: Harness) -> None:
    for bad in ("x.y", "2.4.beta", "\u0663.1", "1.2.3.4.5", ""):
        r = published.set_alias("canary", {"version": 1, "targeting": {"min_app_version": bad}})
        assert r.status_code == 422, bad
        assert "min_app_version" in r.json()["detail"]
    ok = published.set_alias("canary", {"version": 1, "targeting": {"min_app_version": "2.4"}})
    assert ok.status_code == 200
