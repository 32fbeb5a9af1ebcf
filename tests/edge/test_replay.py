"""Replayed and cross-alias manifests against the real registry: genuine signatures, wrong moment or alias.

The attacker here holds real registry answers (captured earlier, or meant for another alias)
and serves them from a host it controls; the device must refuse them before any download.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from edge_testkit import LABELS, sha256
from faults import FaultServer, Route
from registry_server import RegistryServer

import edge
from edge import DownloadOptions, HealthOptions, UpdateMode, Updater, UpdaterOptions, UpdateStatus

V2_LABELS = [*LABELS, "cedar-deodorant"]
DEVICE = edge.DeviceInfo(device_id="test-device", device_class="ci-x86", app_version="1.0")


def options(registry_url: str, keys: dict[str, Any], store: Path, token: str, **kw: Any) -> UpdaterOptions:
    base: dict[str, Any] = {
        "registry_url": registry_url,
        "model": RegistryServer.MODEL,
        "store_dir": store,
        "public_keys": keys,
        "api_key": token,
        "runtime": "onnxruntime",
        "mode": UpdateMode.LOCAL,
        "device": DEVICE,
        "download": DownloadOptions(resume_backoff_s=0.01, deadline_s=30),
        "health": HealthOptions(latency_budget_ms=2000),
        "allow_label_changes": True,
    }
    base.update(kw)
    return UpdaterOptions(**base)


def capture(registry: RegistryServer, alias: str = "production") -> bytes:
    """What the registry answers this device right now (an attacker on the path can keep a copy)."""
    response = httpx.get(
        f"{registry.url}/v1/models/{registry.MODEL}/manifest",
        params={"alias": alias, "device_id": DEVICE.device_id, "runtime": "onnxruntime"},
        headers=registry.auth("device"),
    )
    response.raise_for_status()
    return response.content


def serve_as_registry(fault_server: FaultServer, manifest: bytes, model_file: Path) -> None:
    """The attacker's host: the captured manifest at the poll path, the file it names at the artifact path."""
    fault_server.routes[f"/v1/models/{RegistryServer.MODEL}/manifest"] = Route(
        manifest, etag='"replayed"', content_type="application/json"
    )
    fault_server.routes[f"/v1/artifacts/{sha256(model_file)}"] = Route(model_file.read_bytes())


def test_replayed_rollback_manifest_is_refused(
    registry: RegistryServer, fault_server: FaultServer, tmp_path: Path, onnx_v1: Path, onnx_v2: Path
) -> None:
    store = tmp_path / "device"
    keys, token = registry.public_keys(), registry.tokens["device"]
    registry.set_alias(registry.publish({"onnx_fp32": onnx_v1}, "run-1", LABELS))
    with Updater(options(registry.url, keys, store, token)) as updater:
        assert updater.model.version == 1
        registry.set_alias(registry.publish({"onnx_fp32": onnx_v2}, "run-2", V2_LABELS))
        assert updater.check_now().status == UpdateStatus.UPDATED
        registry.rollback()  # v2 -> v1, signed rollback=true
        rollback = capture(registry)
        assert updater.check_now().status == UpdateStatus.UPDATED and updater.model.version == 1
        registry.set_alias(2)  # the fix is out: forward to v2 again
        assert updater.check_now().status == UpdateStatus.UPDATED and updater.model.version == 2
    # Days later the attacker replays the genuine rollback manifest (still unexpired) from its own host.
    serve_as_registry(fault_server, rollback, onnx_v1)
    with Updater(options(fault_server.url, keys, store, token)) as updater:
        result = updater.check_now()
        assert result.status == UpdateStatus.REJECTED and "StaleManifest" in result.detail, result
        assert updater.model.version == 2
        assert fault_server.routes[f"/v1/artifacts/{sha256(onnx_v1)}"].requests == 0
        installed = updater.store.state().current
    replayed = json.loads(rollback)
    assert installed is not None and installed.sequence is not None
    assert replayed["rollback"] and replayed["version"] == 1 and replayed["sequence"] < installed.sequence
    print(f"\nreplayed rollback (sequence {replayed['sequence']} < {installed.sequence}): refused, v2 keeps serving")


def test_manifest_for_another_alias_is_refused(
    registry: RegistryServer, fault_server: FaultServer, tmp_path: Path, onnx_v1: Path, onnx_v2: Path
) -> None:
    keys, token = registry.public_keys(), registry.tokens["device"]
    registry.set_alias(registry.publish({"onnx_fp32": onnx_v1}, "run-1", LABELS))
    registry.set_alias(registry.publish({"onnx_fp32": onnx_v2}, "run-2", V2_LABELS), alias="canary")
    canary = capture(registry, "canary")
    serve_as_registry(fault_server, canary, onnx_v2)
    opts = options(fault_server.url, keys, tmp_path / "device", token, bundled_model=onnx_v1, bundled_version=1)
    with Updater(opts) as updater:  # a production device
        result = updater.check_now()
        assert result.status == UpdateStatus.REJECTED and "alias 'canary'" in result.detail, result
        assert updater.model.version == 1
    # The canary device asking through the same host takes it.
    opts = options(fault_server.url, keys, tmp_path / "canary", token, bundled_model=onnx_v1, alias="canary")
    with Updater(opts) as updater:
        assert updater.check_now().status == UpdateStatus.UPDATED and updater.model.version == 2


def test_store_from_before_sequences_accepts_then_remembers(
    registry: RegistryServer, fault_server: FaultServer, tmp_path: Path, onnx_v1: Path, onnx_v2: Path
) -> None:
    store = tmp_path / "device"
    keys, token = registry.public_keys(), registry.tokens["device"]
    registry.set_alias(registry.publish({"onnx_fp32": onnx_v1}, "run-1", LABELS))
    old = capture(registry)  # sequence 1
    registry.set_alias(registry.publish({"onnx_fp32": onnx_v2}, "run-2", V2_LABELS))
    with Updater(options(registry.url, keys, store, token)) as updater:
        assert updater.model.version == 2
    # Make the pointer file what an SDK from before sequences wrote: no sequences, no alias/sequence per model.
    state_path = store / "state.json"
    state = json.loads(state_path.read_text())
    state.pop("sequences")
    for entry in (state["current"], state["previous"]):
        if entry:
            entry.pop("alias"), entry.pop("sequence")
    state["manifest_etag"] = None
    state_path.write_text(json.dumps(state))
    with Updater(options(registry.url, keys, store, token)) as updater:
        assert updater.store.state().seen_sequence(registry.MODEL, "production") is None
        assert updater.check_now().status == UpdateStatus.UP_TO_DATE  # accepted ...
        seen = updater.store.state().seen_sequence(registry.MODEL, "production")
        assert seen is not None and seen > json.loads(old)["sequence"]  # ... and remembered
    serve_as_registry(fault_server, old, onnx_v1)
    with Updater(options(fault_server.url, keys, store, token, allow_label_changes=False)) as updater:
        result = updater.check_now()
        assert result.status == UpdateStatus.REJECTED and "StaleManifest" in result.detail, result
