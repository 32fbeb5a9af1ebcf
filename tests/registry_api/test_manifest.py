"""Polling: signed manifests, ETag/304, staged rollout, targeting, rollback, variant choice."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edge.manifest import ManifestError, verify
from registry_api.testing import Harness, make_package


def _pins(harness: Harness) -> dict[str, bytes]:
    keys = harness.client.get("/v1/keys").json()["keys"]
    return {k["key_id"]: base64.b64decode(k["public_key"]) for k in keys}


@pytest.fixture()
def two_versions(harness: Harness, tmp_path: Path) -> Harness:
    assert harness.publish(make_package(tmp_path / "v1", run="run-1")).status_code == 201
    assert harness.publish(make_package(tmp_path / "v2", run="run-2")).status_code == 201
    assert harness.set_alias("production", {"version": 1, "reason": "first"}).status_code == 200
    return harness


def test_manifest_verifies_and_any_altered_byte_fails(two_versions: Harness) -> None:
    h = two_versions
    response = h.manifest(device_id="d1", runtime="litert")
    assert response.status_code == 200
    pins = _pins(h)
    manifest = verify(response.content, pins)
    assert (manifest.model, manifest.version, manifest.alias, manifest.runtime) == (
        "shelf-products",
        1,
        "production",
        "litert",
    )
    assert manifest.expires_at > manifest.issued_at
    assert manifest.artifact_url == f"/v1/artifacts/{manifest.sha256}"
    raw = response.content
    for i in range(len(raw)):
        for flip in (0x01, 0x20):
            altered = bytearray(raw)
            altered[i] ^= flip
            try:
                verify(bytes(altered), pins)
            except ManifestError:
                continue
            # Some flips leave the JSON meaning identical (e.g. none here); anything else must fail.
            assert json.loads(bytes(altered)) == json.loads(raw), f"byte {i} altered and still verified"


def test_etag_gives_304_without_body_and_changes_with_the_alias(two_versions: Harness) -> None:
    h = two_versions
    first = h.manifest(device_id="d1", runtime="litert")
    etag = first.headers["etag"]
    assert "public, max-age=" in first.headers["cache-control"]
    assert first.headers["vary"] == "Authorization, X-API-Key"  # both headers carry keys
    again = h.manifest(device_id="d1", runtime="litert", etag=etag)
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert h.manifest(device_id="d2", runtime="litert").headers["etag"] == etag  # same answer, same bytes
    h.set_alias("production", {"version": 2})
    moved = h.manifest(device_id="d1", runtime="litert", etag=etag)
    assert moved.status_code == 200
    assert moved.json()["version"] == 2


def test_staged_rollout_is_stable_and_grows(two_versions: Harness) -> None:
    h = two_versions
    devices = [f"device-{i}" for i in range(200)]
    inside: dict[int, set[str]] = {}
    for percent in (10, 50, 100):
        h.set_alias("production", {"version": 2, "rollout_percent": percent})
        got = {d: h.manifest(device_id=d, runtime="onnxruntime").json() for d in devices}
        inside[percent] = {d for d, m in got.items() if m["version"] == 2}
        outside = [m for m in got.values() if m["version"] != 2]
        assert all(m["version"] == 1 and m["served"] == "previous" for m in outside)
        assert all(m["rollout_percent"] == percent for m in got.values())
        assert abs(len(inside[percent]) - 2 * percent) <= 25, (percent, len(inside[percent]))
    assert inside[10] <= inside[50] <= inside[100]
    assert len(inside[100]) == 200


def test_outside_canary_gets_production(two_versions: Harness) -> None:
    h = two_versions
    h.set_alias("canary", {"version": 2, "rollout_percent": 0})
    got = h.manifest(alias="canary", device_id="d1").json()
    assert (got["version"], got["served"], got["alias"]) == (1, "production", "canary")


def test_targeting_limits_who_gets_the_target(two_versions: Harness) -> None:
    h = two_versions
    h.set_alias(
        "production",
        {
            "version": 2,
            "targeting": {"platforms": ["android"], "min_app_version": "2.4", "device_classes": ["pixel-6a"]},
        },
    )
    base = {"device_id": "d1", "platform": "android", "app_version": "2.10.0", "device_class": "pixel-6a"}
    assert h.manifest(**base).json()["version"] == 2
    assert h.manifest(**{**base, "platform": "ios"}).json()["version"] == 1
    assert h.manifest(**{**base, "app_version": "2.3.9"}).json()["version"] == 1
    assert h.manifest(**{**base, "device_class": "galaxy-a54"}).json()["version"] == 1


def test_rollback_is_one_call_and_flags_manifests(two_versions: Harness) -> None:
    h = two_versions
    h.set_alias("production", {"version": 2, "reason": "promote"})
    assert h.manifest(device_id="d1").json()["rollback"] is False
    response = h.client.post(
        "/v1/models/shelf-products/aliases/production/rollback",
        json={"reason": "crash rate up"},
        headers=h.auth(h.publisher),
    )
    assert response.status_code == 200, response.text
    assert (response.json()["version"], response.json()["previous_version"]) == (1, 2)
    manifest = h.manifest(device_id="d1").json()
    assert (manifest["version"], manifest["rollback"]) == (1, True)
    audit = h.client.get("/v1/models/shelf-products/audit", headers=h.auth(h.reader)).json()
    latest = audit[0]
    assert (latest["action"], latest["from_version"], latest["to_version"], latest["reason"], latest["actor"]) == (
        "rollback",
        2,
        1,
        "crash rate up",
        "publisher-key",
    )
    # Moving forward again clears the flag.
    h.set_alias("production", {"version": 2})
    assert h.manifest(device_id="d1").json()["rollback"] is False


def test_rollback_without_previous_is_refused(two_versions: Harness) -> None:
    h = two_versions
    response = h.client.post("/v1/models/shelf-products/aliases/production/rollback", headers=h.auth(h.publisher))
    assert response.status_code == 409


def test_variant_choice_follows_benchmarks_and_budget(two_versions: Harness) -> None:
    h = two_versions
    h.set_alias("production", {"version": 1, "latency_budget_ms": 20})
    # No benchmarks: the configured default per runtime.
    assert h.manifest(device_id="d", runtime="litert", device_class="pixel").json()["variant"] == "tflite_int8"
    assert h.manifest(device_id="d", runtime="onnxruntime", device_class="pixel").json()["variant"] == "onnx_int8"
    for variant, p90 in (("tflite_int8", 30.0), ("tflite_fp32", 12.0), ("onnx_fp32", 50.0), ("onnx_int8", 40.0)):
        report = {
            "device_class": "pixel",
            "model": "shelf-products",
            "version": 1,
            "variant": variant,
            "runs": 50,
            "p50_ms": p90 - 1,
            "p90_ms": p90,
            "p99_ms": p90 + 5,
        }
        response = h.client.post("/v1/benchmarks", json=report, headers=h.auth(h.qa))
        assert response.status_code == 201, response.text
    # Measured on this class: the fastest within budget; nothing within budget: the default.
    assert h.manifest(device_id="d", runtime="litert", device_class="pixel").json()["variant"] == "tflite_fp32"
    assert h.manifest(device_id="d", runtime="onnxruntime", device_class="pixel").json()["variant"] == "onnx_int8"
    # Another class has no measurements: default.
    assert h.manifest(device_id="d", runtime="litert", device_class="other").json()["variant"] == "tflite_int8"


def test_unknown_model_alias_and_runtime(two_versions: Harness) -> None:
    h = two_versions
    assert h.client.get("/v1/models/nope/manifest", headers=h.auth(h.device)).status_code == 404
    assert h.manifest(alias="staging").status_code == 404


def test_key_rotation_lists_old_and_new(registry_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from registry_api import create_app

    old = base64.b64encode(
        Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    ).decode()
    seed = base64.b64encode(b"\x07" * 32).decode()
    monkeypatch.setenv("EDGELOOP_REGISTRY_SIGNING_KEY", seed)
    monkeypatch.setenv("EDGELOOP_REGISTRY_SIGNING_KEY_ID", "2026-11")
    monkeypatch.setenv("EDGELOOP_REGISTRY_EXTRA_PUBLIC_KEYS", json.dumps({"2026-05": old}))
    with TestClient(create_app()) as client:
        keys = client.get("/v1/keys").json()["keys"]
    assert {(k["key_id"], k["current"]) for k in keys} == {("2026-11", True), ("2026-05", False)}
    assert next(k for k in keys if k["key_id"] == "2026-05")["public_key"] == old


def test_every_alias_write_grows_the_signed_sequence(two_versions: Harness) -> None:
    """Replay protection: each move, rollout change and rollback signs a higher sequence into manifests."""
    h = two_versions

    def sequence(alias: str = "production") -> int:
        response = h.manifest(device_id="d1", alias=alias)
        assert response.status_code == 200, response.text
        return int(verify(response.content, _pins(h)).sequence)

    seen = [sequence()]
    h.set_alias("production", {"version": 2})  # move
    seen.append(sequence())
    h.set_alias("production", {"version": 2, "rollout_percent": 50})  # rollout change only
    seen.append(sequence())
    h.client.post("/v1/models/shelf-products/aliases/production/rollback", headers=h.auth(h.publisher))
    seen.append(sequence())
    h.set_alias("production", {"version": 2})  # same target, still a write
    seen.append(sequence())
    assert seen == sorted(seen) and len(set(seen)) == len(seen), seen
    # A canary manifest can be production's answer (fallback), so a production write grows it too.
    h.set_alias("canary", {"version": 2, "rollout_percent": 0})
    canary = sequence("canary")
    assert canary > seen[-1]
    h.client.post("/v1/models/shelf-products/aliases/production/rollback", headers=h.auth(h.publisher))
    assert sequence("canary") > canary
    print(f"\nproduction sequences over 5 writes: {seen}; canary {canary} -> {sequence('canary')}")


def test_a_fallback_to_production_carries_productions_rollback(harness: Harness, tmp_path: Path) -> None:
    """A canary device outside the canary's rollout follows production, down as well as up."""
    for run in ("run-1", "run-2", "run-3"):
        assert harness.publish(make_package(tmp_path / run, run=run)).status_code == 201
    assert harness.set_alias("production", {"version": 1}).status_code == 200
    assert harness.set_alias("production", {"version": 2}).status_code == 200
    assert harness.set_alias("canary", {"version": 3, "rollout_percent": 0}).status_code == 200
    before = harness.manifest(alias="canary", device_id="d-1", runtime="litert").json()
    assert (before["served"], before["version"], before["rollback"]) == ("production", 2, False)

    rolled = harness.client.post(
        "/v1/models/shelf-products/aliases/production/rollback",
        json={"reason": "crash rate up"},
        headers=harness.auth(harness.publisher),
    )
    assert rolled.status_code == 200, rolled.text
    after = harness.manifest(alias="canary", device_id="d-1", runtime="litert").json()
    assert (after["served"], after["version"], after["rollback"]) == ("production", 1, True)
    assert after["sequence"] > before["sequence"]


def test_errors_are_never_kept_by_a_shared_cache(harness: Harness) -> None:
    no_key = harness.client.get("/v1/models/shelf-products/manifest")
    unknown = harness.client.get("/v1/models/no-such-model/manifest", headers=harness.auth(harness.device))
    invalid = harness.client.put(
        "/v1/models/shelf-products/aliases/production", json={"version": "x"}, headers=harness.auth(harness.publisher)
    )
    for response, status in ((no_key, 401), (unknown, 404), (invalid, 422)):
        assert response.status_code == status, response.text
        assert response.headers["cache-control"] == "no-store"
