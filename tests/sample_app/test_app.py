"""The sample app against the real registry: classifies photos, shows the version, swaps while running, reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from edge_testkit import LABELS
from registry_server import RegistryServer

import edge
from sample_app.app import AppOptions, list_photos, photo_frames, run

REPO = Path(__file__).resolve().parents[2]


def test_lists_photos_in_class_folders(photos: Path) -> None:
    assert len(list_photos(photos)) == 6


def test_each_pass_shows_every_photo_once_in_a_shuffled_order(photos: Path) -> None:
    """Folder order would show only the first product for a while: the field's labels would drift for nothing."""
    frames = photo_frames(photos)
    first, second = [next(frames)[0] for _ in range(6)], [next(frames)[0] for _ in range(6)]
    assert sorted(first) == sorted(second) == [str(p.relative_to(photos)) for p in list_photos(photos)]
    assert len({name.split("/")[0] for name in first[:3]}) == 2  # both products early, not three of one
    assert [next(photo_frames(photos))[0] for _ in range(3)] == [first[0]] * 3  # seeded: repeatable


def test_run_swaps_to_a_new_version_while_running_and_sends_telemetry(
    registry: RegistryServer, tmp_path: Path, photos: Path, onnx_v1: Path, onnx_v2: Path
) -> None:
    registry.set_alias(registry.publish({"onnx_fp32": onnx_v1}, "run-1", LABELS))
    lines: list[str] = []
    published = threading.Event()

    def publish_v2_after_a_few_photos() -> bool:
        if len(lines) >= 6 and not published.is_set():
            registry.set_alias(registry.publish({"onnx_fp32": onnx_v2}, "run-2", [*LABELS, "cedar-deodorant"]))
            published.set()
        return False

    options = AppOptions(
        registry_url=registry.url,
        model=RegistryServer.MODEL,
        store_dir=tmp_path / "device",
        photos=photos,
        api_key=registry.tokens["device"],
        trust_registry_keys=True,
        runtime="onnxruntime",
        poll_interval_s=0.3,
        telemetry_interval_s=0.5,
        interval_s=0.05,
        duration_s=300,  # only a backstop: the run ends on `stop` once v2 answers, however slow the box
        device=edge.DeviceInfo(device_id="kiosk-1", device_class="ci-x86"),
    )
    t0 = time.perf_counter()
    summary = run(
        options,
        show=lines.append,
        stop=lambda: (
            publish_v2_after_a_few_photos()
            or (published.is_set() and any(line.startswith("v2 ") for line in lines[-3:]))
        ),
    )
    elapsed = time.perf_counter() - t0
    assert summary.versions_seen == [1, 2] and summary.swaps == 1
    assert any("swapped to shelf-products v2 while running" in line for line in lines)
    assert lines[0].startswith("model shelf-products v1")
    assert summary.telemetry_pending == 0
    registry.stop()
    import duckdb

    with duckdb.connect(str(registry.workspace / "warehouse.duckdb"), read_only=True) as con:
        kinds = dict(con.execute("SELECT kind, count(*) FROM telemetry_events GROUP BY kind").fetchall())
    assert kinds["inference"] == summary.iterations and kinds["update"] == 2  # first install (v1), then v2
    assert (tmp_path / "device" / "pinned_keys.json").exists()
    print(
        f"\nsample app: {summary.iterations} photos, v1 -> v2 swap while running, "
        f"{kinds['inference']} inference + {kinds['update']} update events delivered, {elapsed:.1f} s"
    )


@pytest.mark.slow
def test_cli_run_status_and_classify(registry: RegistryServer, tmp_path: Path, photos: Path, onnx_v1: Path) -> None:
    registry.set_alias(registry.publish({"onnx_fp32": onnx_v1}, "run-1", LABELS))
    store = tmp_path / "device"
    env = {**os.environ, "EDGELOOP_API_KEY": registry.tokens["device"], "PYTHONPATH": str(REPO)}
    base = [sys.executable, "-m", "sample_app"]
    out = subprocess.run(
        [
            *base,
            "run",
            "--registry",
            registry.url,
            "--photos",
            str(photos),
            "--trust-registry-keys",
            "--runtime",
            "onnxruntime",
            "--iterations",
            "4",
            "--interval",
            "0",
            "--store",
            str(store),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "model shelf-products v1" in out.stdout and out.stdout.count("v1  ") == 4
    assert "4 photos from photos" in out.stdout
    state = subprocess.run(
        [*base, "status", "--store", str(store)], capture_output=True, text=True, env=env, timeout=60
    )
    info = json.loads(state.stdout)
    assert info["current"]["version"] == 1 and info["telemetry_pending"] == 0
    device_id = (store / "device_id").read_text().strip()
    assert len(device_id) == 32
    one = subprocess.run(
        [*base, "classify", str(photos / "lavender-soap"), "--store", str(store), "--top", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert one.returncode == 0, one.stderr
    assert one.stdout.count("lavender-soap/") == 3
    # No key pinned and none given: refuses to run instead of trusting anything.
    refused = subprocess.run(
        [
            *base,
            "run",
            "--registry",
            registry.url,
            "--photos",
            str(photos),
            "--store",
            str(tmp_path / "other"),
            "--iterations",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert refused.returncode != 0 and "no registry public key" in refused.stderr + refused.stdout


def test_camera_is_optional(tmp_path: Path, photos: Path, onnx_v1: Path) -> None:
    """Without OpenCV or a camera the app falls back to the photos instead of failing."""
    options = AppOptions(
        registry_url="http://127.0.0.1:9",  # unreachable: the bundled model serves
        model="shelf-products",
        store_dir=tmp_path / "device",
        photos=photos,
        camera=True,
        public_keys={"k": "A" * 43 + "="},
        bundled_model=onnx_v1,
        bundled_version=1,
        mode=edge.UpdateMode.LOCAL,
        iterations=2,
        interval_s=0,
    )
    summary = run(options, show=lambda line: None)
    assert summary.source == "photos" and summary.iterations == 2 and summary.versions_seen == [1]
