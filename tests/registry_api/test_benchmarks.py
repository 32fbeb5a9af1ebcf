"""Benchmarks steer variant choice for a whole device class, so neither a device key nor one reporter may poison it."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from registry_api import create_app
from registry_api.testing import Harness, create_keys, make_package

CLASS = "pixel-7"


@pytest.fixture()
def measured(harness: Harness, tmp_path: Path) -> Harness:
    """Version 1 in production with a 20 ms budget; three QA devices agree: tflite_fp32 12 ms, tflite_int8 30 ms."""
    assert harness.publish(make_package(tmp_path / "v1")).status_code == 201
    assert harness.set_alias("production", {"version": 1, "latency_budget_ms": 20}).status_code == 200
    for device in ("qa-1", "qa-2", "qa-3"):
        assert _post(harness, harness.qa, "tflite_fp32", 12.0, device_id=device).status_code == 201
        assert _post(harness, harness.qa, "tflite_int8", 30.0, device_id=device).status_code == 201
    assert _served(harness) == "tflite_fp32"
    return harness


def _report(variant: str, p90: float, **fields: Any) -> dict[str, Any]:
    return {
        "benchmark_id": str(uuid.uuid4()),
        "device_class": CLASS,
        "model": "shelf-products",
        "version": 1,
        "variant": variant,
        "runs": 50,
        "p50_ms": p90,
        "p90_ms": p90,
        "p99_ms": p90,
        **fields,
    }


def _post(h: Harness, token: str, variant: str, p90: float, **fields: Any) -> Any:
    return h.client.post("/v1/benchmarks", json=_report(variant, p90, **fields), headers=h.auth(token))


def _served(h: Harness, device_id: str = "phone-1") -> str:
    response = h.manifest(device_id=device_id, runtime="litert", device_class=CLASS)
    assert response.status_code == 200, response.text
    variant: str = response.json()["variant"]
    return variant


def test_a_device_key_may_not_upload_benchmarks(measured: Harness) -> None:
    h = measured
    response = _post(h, h.device, "tflite_int8", 0.001)
    assert response.status_code == 403
    assert response.json()["detail"] == "a device key may not benchmark; use a publisher or qa key"
    assert _post(h, h.publisher, "tflite_int8", 30.0, device_id="qa-lab").status_code == 201
    assert _post(h, h.reader, "tflite_int8", 30.0).status_code == 403
    assert _served(h) == "tflite_fp32"


def test_a_report_from_the_far_future_is_refused(measured: Harness) -> None:
    h = measured
    for ahead in ("9999-01-01T00:00:00Z", (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat()):
        response = _post(h, h.qa, "tflite_int8", 0.001, device_id="qa-4", measured_at=ahead)
        assert response.status_code == 422
        detail = response.json()["detail"]
        assert "measured_at" in detail and ahead[:10] in detail, detail
    assert "ahead of the registry's clock" in detail
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=400)).isoformat()
    response = _post(h, h.qa, "tflite_int8", 0.001, device_id="qa-4", measured_at=old)
    assert response.status_code == 422 and "benchmark again" in response.json()["detail"]
    # Within the skew, a device clock a little fast is fine.
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)).isoformat()
    assert _post(h, h.qa, "tflite_fp32", 12.0, device_id="qa-1", measured_at=soon).status_code == 201
    assert _served(h) == "tflite_fp32"


def test_one_report_or_one_device_sending_many_cannot_flip_a_class(measured: Harness) -> None:
    h = measured
    assert _post(h, h.qa, "tflite_int8", 0.001, device_id="rogue").status_code == 201
    assert _served(h) == "tflite_fp32"  # median of 30, 30, 30, 0.001
    for _ in range(20):
        assert _post(h, h.qa, "tflite_int8", 0.001, device_id="rogue").status_code == 201
    assert _served(h) == "tflite_fp32"  # still one device
    # Without a device_id, the key is the device: the same.
    for _ in range(5):
        assert _post(h, h.publisher, "tflite_fp32", 500.0).status_code == 201
    assert _served(h) == "tflite_fp32"


def test_a_genuine_change_shows_once_most_devices_agree(measured: Harness) -> None:
    h = measured
    # A new runtime release makes int8 fast: as the QA devices re-run, their latest report replaces their old one.
    assert _post(h, h.qa, "tflite_int8", 8.0, device_id="qa-1").status_code == 201
    assert _served(h) == "tflite_fp32"
    assert _post(h, h.qa, "tflite_int8", 8.0, device_id="qa-2").status_code == 201
    assert _served(h) == "tflite_int8"  # the upper median of 8, 8, 30


def test_the_latest_report_is_the_one_received_last_not_the_one_dated_last(measured: Harness) -> None:
    h = measured
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    # qa-1..3 re-upload an older measurement showing int8 fast: received last, so it is their latest.
    for device in ("qa-1", "qa-2", "qa-3"):
        assert _post(h, h.qa, "tflite_int8", 8.0, device_id=device, measured_at=yesterday).status_code == 201
    assert _served(h) == "tflite_int8"


def test_reports_of_a_revoked_key_stop_counting(measured: Harness) -> None:
    from registry_api.cli import keys_revoke

    h = measured
    for device in ("x-1", "x-2", "x-3", "x-4"):
        assert _post(h, h.publisher, "tflite_int8", 1.0, device_id=device).status_code == 201
    assert _served(h) == "tflite_int8"  # four of the five most recent devices say 1 ms
    keys_revoke("publisher-key")  # a leaked key: revoked, its figures go with it
    h.client.app.state.registry.manifests.invalidate("shelf-products")  # what state_cache_ttl_s does in time
    assert _served(h) == "tflite_fp32"


def test_a_variant_needs_the_minimum_of_devices(
    registry_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGELOOP_REGISTRY_BENCHMARK_MIN_DEVICES", "2")
    tokens = create_keys()
    with TestClient(create_app()) as client:
        h = Harness(client, tokens["publisher"], tokens["device"], tokens["reader"], registry_env, tokens["qa"])
        assert h.publish(make_package(tmp_path / "v1")).status_code == 201
        assert h.set_alias("production", {"version": 1}).status_code == 200
        assert _post(h, h.qa, "tflite_fp32", 5.0, device_id="qa-1").status_code == 201
        assert _served(h) == "tflite_int8"  # one device is not enough: the runtime's default
        assert _post(h, h.qa, "tflite_fp32", 5.0, device_id="qa-2").status_code == 201
        assert _served(h) == "tflite_fp32"


def test_min_devices_above_the_window_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgeloop.errors import ConfigError
    from edgeloop.settings import load as load_settings
    from registry_api.core.config import RegistrySettings

    monkeypatch.setenv("EDGELOOP_REGISTRY_BENCHMARK_MIN_DEVICES", "9")
    with pytest.raises(ConfigError, match=r"EDGELOOP_REGISTRY_BENCHMARK_MIN_DEVICES='9'.*exceeds benchmark_devices"):
        load_settings(RegistrySettings)
