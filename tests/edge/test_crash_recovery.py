"""A model that kills the process while loading does not brick the app: the next start blocks it.

Each device start is a fresh Python process (tests/edge/crash_child.py) whose loader
exits hard (os._exit) on the crashing model's file, as a native crash or OOM kill would.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from edge_testkit import LABELS, sha256
from registry_server import RegistryServer

from edge import InstalledModel, ModelStore, UpdateMode, Updater, UpdaterOptions

CHILD = Path(__file__).with_name("crash_child.py")
CRASH_EXIT = 70
V2_LABELS = [*LABELS, "cedar-deodorant"]


def start_device(config: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
    """One app start in a new process: (exit code, its report if it lived)."""
    proc = subprocess.run(
        [sys.executable, str(CHILD), json.dumps(config)], capture_output=True, text=True, timeout=300, check=False
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode not in (0, CRASH_EXIT):
        raise AssertionError(f"child exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc.returncode, json.loads(lines[-1]) if proc.returncode == 0 and lines else None


def raw_keys(registry: RegistryServer) -> dict[str, str]:
    import httpx

    return {k["key_id"]: k["public_key"] for k in httpx.get(f"{registry.url}/v1/keys").json()["keys"]}


def test_update_that_kills_the_process_is_blocked_by_the_next_start(
    registry: RegistryServer, tmp_path: Path, onnx_v1: Path, onnx_v2: Path
) -> None:
    store = tmp_path / "device"
    registry.set_alias(registry.publish({"onnx_fp32": onnx_v1}, "run-1", LABELS))
    opts = UpdaterOptions(
        registry_url=registry.url,
        model=registry.MODEL,
        store_dir=store,
        public_keys=registry.public_keys(),
        api_key=registry.tokens["device"],
        runtime="onnxruntime",
        mode=UpdateMode.LATEST,
    )
    with Updater(opts) as updater:
        assert updater.model.version == 1
    registry.set_alias(registry.publish({"onnx_fp32": onnx_v2}, "run-2", V2_LABELS))
    config = {
        "registry_url": registry.url,
        "store_dir": str(store),
        "public_keys": raw_keys(registry),
        "api_key": registry.tokens["device"],
        "mode": "latest",
        "crash_sha16": sha256(onnx_v2)[:16],  # loading v2 kills the process
    }
    code, _ = start_device(config)  # downloads v2, loads it: dies
    assert code == CRASH_EXIT
    code, report = start_device(config)  # the same app started again, v2 still on offer
    assert code == 0 and report is not None, "the second start died too: the app is bricked"
    assert report["version"] == 1 and report["status"] == "blocked"
    [(version, reason)] = report["blocked"]
    assert version == 2 and "died while loading" in reason
    assert [e["version"] for e in report["rollbacks"]] == [2]
    state = ModelStore(store).state()
    assert state.current and state.current.version == 1 and state.trial is None and state.loading is None
    print(f"\nv2 killed the process while loading; next start served v1 and blocked v2 ({reason!r})")


def test_unchecked_installed_model_that_kills_start_up_gives_way_to_the_previous_one(
    tmp_path: Path, onnx_v1: Path, onnx_v2: Path
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    store = ModelStore(tmp_path / "device")
    # What an older SDK left: v2 made current before any health check had passed.
    for version, path in ((1, onnx_v1), (2, onnx_v2)):
        sha = sha256(path)
        entry = InstalledModel(
            model="shelf-products",
            version=version,
            variant="onnx_fp32",
            sha256=sha,
            size=path.stat().st_size,
            file=store.file_name("shelf-products", version, sha, ".onnx"),
            labels=tuple(V2_LABELS if version == 2 else LABELS),
        )
        store.install(path, entry)
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    config = {
        "registry_url": "http://127.0.0.1:9",  # offline: only what is installed
        "store_dir": str(tmp_path / "device"),
        "public_keys": {"k": base64.b64encode(raw).decode()},
        "mode": "local",
        "crash_sha16": sha256(onnx_v2)[:16],
    }
    assert start_device(config)[0] == CRASH_EXIT
    code, report = start_device(config)
    assert code == 0 and report is not None, "every start dies on v2: the app is bricked"
    assert report["version"] == 1 and [b[0] for b in report["blocked"]] == [2]
    state = store.state()
    assert state.current and state.current.version == 1 and state.current.checked
    # A third start loads the now-checked v1 without a marker and without blocking anything else.
    code, report = start_device(config)
    assert code == 0 and report is not None and report["version"] == 1 and len(report["blocked"]) == 1
