"""The TypeScript SDK (edge/js) against the real registry: a Node process is the device, this test the world.

Each step runs `node edge/js/dist/cli.js …` (one updater step, one JSON line out) against
`edgeloop serve`'s app under uvicorn, or against an attacker's host replaying genuine answers.
Needs Node and a built edge/js (`python3 tasks.py test` builds it first); skipped without.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from edge_testkit import LABELS, sha256
from faults import FaultServer, Route
from registry_server import RegistryServer
from test_replay import capture

CLI = Path(__file__).resolve().parents[2] / "edge" / "js" / "dist" / "cli.js"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(
    NODE is None or not CLI.exists(),
    reason="needs node and a built edge/js (cd edge/js && npm ci && npm run build); tasks.py test does both",
)


_KEYS: dict[str, str] = {}


def node(command: str, url: str, store: Path, registry: RegistryServer, *extra: str) -> dict[str, Any]:
    # Pinned once per registry, as an app does at build time (the registry may be down later).
    if registry.url not in _KEYS:
        _KEYS[registry.url] = json.dumps(registry.public_keys_base64())
    keys = _KEYS[registry.url]
    args = [str(NODE), str(CLI), command, "--registry", url, "--store", str(store)]
    args += ["--keys", keys, "--api-key", registry.tokens["device"], "--device-id", "js-device", *extra]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_install_304_update_and_refusals(
    registry: RegistryServer, fault_server: FaultServer, tmp_path: Path, onnx_v1: Path, onnx_v2: Path
) -> None:
    store = tmp_path / "device"
    registry.set_alias(registry.publish({"onnx_fp32": onnx_v1}, "run-1", LABELS))
    assert node("check", registry.url, store, registry)["status"] == "installed"
    assert node("check", registry.url, store, registry) == {
        "status": "not_modified", "version": 1, "detail": "", "retryAfterS": None, "current": 1
    }  # fmt: skip
    assert (store / "models" / f"{sha256(onnx_v1)}.bin").read_bytes() == onnx_v1.read_bytes()

    registry.set_alias(registry.publish({"onnx_fp32": onnx_v2}, "run-2", [*LABELS, "cedar-deodorant"]))
    assert node("check", registry.url, store, registry)["current"] == 2

    # A genuine answer with one byte changed, from a host the attacker controls.
    genuine = capture(registry)
    tampered = genuine.replace(b'"version":2', b'"version":9')
    fault_server.routes[f"/v1/models/{registry.MODEL}/manifest"] = Route(tampered, etag='"evil"')
    result = node("check", fault_server.url, store, registry)
    assert result["status"] == "rejected" and result["detail"].startswith("ManifestError:"), result
    assert result["current"] == 2


def test_a_model_failing_its_health_check_is_reverted_and_blocked(
    registry: RegistryServer, tmp_path: Path, onnx_v1: Path, onnx_nan: Path
) -> None:
    store = tmp_path / "device"
    registry.set_alias(registry.publish({"onnx_fp32": onnx_v1}, "run-1", LABELS))
    assert node("check", registry.url, store, registry)["current"] == 1
    registry.set_alias(registry.publish({"onnx_fp32": onnx_nan}, "run-2", [*LABELS, "cedar-deodorant"]))
    result = node("check", registry.url, store, registry)
    assert result["status"] == "reverted" and "non-finite" in result["detail"] and result["current"] == 1, result
    # As the Python SDK: the refused answer's ETag is kept (a 304 next), and the file is blocked here.
    assert node("check", registry.url, store, registry)["status"] == "not_modified"
    assert json.loads((store / "state.json").read_text())["blocked"] == [f"2:{sha256(onnx_nan)}"]


def test_replayed_rollback_is_refused(
    registry: RegistryServer, fault_server: FaultServer, tmp_path: Path, onnx_v1: Path, onnx_v2: Path
) -> None:
    store = tmp_path / "device"
    registry.set_alias(registry.publish({"onnx_fp32": onnx_v1}, "run-1", LABELS))
    registry.set_alias(registry.publish({"onnx_fp32": onnx_v2}, "run-2", [*LABELS, "cedar-deodorant"]))
    assert node("check", registry.url, store, registry)["current"] == 2
    registry.rollback()
    rollback = capture(registry)
    assert node("check", registry.url, store, registry)["current"] == 1
    registry.set_alias(2)
    assert node("check", registry.url, store, registry)["current"] == 2
    fault_server.routes[f"/v1/models/{registry.MODEL}/manifest"] = Route(rollback, etag='"replayed"')
    fault_server.routes[f"/v1/artifacts/{sha256(onnx_v1)}"] = Route(onnx_v1.read_bytes())
    result = node("check", fault_server.url, store, registry)
    assert result["status"] == "rejected" and result["detail"].startswith("StaleManifest:"), result
    assert result["current"] == 2


def test_cut_download_resumes(
    registry: RegistryServer, fault_server: FaultServer, tmp_path: Path, onnx_v1: Path
) -> None:
    registry.set_alias(registry.publish({"onnx_fp32": onnx_v1}, "run-1", LABELS))
    data = onnx_v1.read_bytes()
    fault_server.routes[f"/v1/models/{registry.MODEL}/manifest"] = Route(capture(registry), etag='"m"')
    fault_server.routes[f"/v1/artifacts/{sha256(onnx_v1)}"] = Route(data, cuts=[len(data) // 3, 2 * len(data) // 3])
    assert node("check", fault_server.url, tmp_path / "device", registry)["status"] == "installed"
    ranges = [s.headers.get("range") for s in fault_server.seen if s.path.startswith("/v1/artifacts/")]
    assert ranges == [None, f"bytes={len(data) // 3}-", f"bytes={2 * len(data) // 3}-"]


def test_telemetry_delivered_once_across_a_registry_outage(
    registry: RegistryServer, tmp_path: Path, onnx_v1: Path
) -> None:
    store = tmp_path / "device"
    registry.set_alias(registry.publish({"onnx_fp32": onnx_v1}, "run-1", LABELS))
    assert node("check", registry.url, store, registry)["status"] == "installed"  # queues an "update" event
    assert node("record", registry.url, store, registry, "--count", "5")["pending"] == 6
    registry.stop()
    down = node("flush", registry.url, store, registry)
    assert down["remaining"] == 6 and "cannot reach the registry" in down["error"]
    registry.start()
    assert node("flush", registry.url, store, registry)["accepted"] == 6
    assert node("flush", registry.url, store, registry)["batches"] == 0


def test_same_top1_as_the_python_sdk_on_product_photos(tmp_path: Path, onnx_v2: Path) -> None:
    """Preprocessing and inference in Node give the Python SDK's probabilities, photo by photo."""
    import numpy as np

    import edge.runtime
    from edgeloop.synth import catalogue, render

    classifier = edge.runtime.load(onnx_v2)
    photos = []
    for k, spec in enumerate(catalogue(4, seed=3)):
        image = render(spec, k, size=48 + 17 * k)  # sizes that are not the model's: the resize is exercised
        path = tmp_path / f"photo{k}.rgb"
        path.write_bytes(np.asarray(image.convert("RGB"), dtype=np.uint8).tobytes())
        photos.append((path, image))
    args = [str(NODE), str(CLI), "classify", "--file", str(onnx_v2), "--size", str(classifier.size[0])]
    args += ["--labels", json.dumps(classifier.labels)]
    outputs = []
    for path, image in photos:
        run = subprocess.run(
            [*args, "--image", str(path), "--image-width", str(image.width)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        outputs.append(json.loads(run.stdout))
    for (_, image), out in zip(photos, outputs, strict=True):
        expected = classifier.predict([image])[0]
        assert out["top1"] == classifier.labels[int(np.argmax(expected))]
        # Same pixels in, same float32 model: only the engines' summation order may differ.
        np.testing.assert_allclose(out["probabilities"], expected, rtol=1e-4, atol=1e-6)
