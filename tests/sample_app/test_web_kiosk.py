"""The web kiosk (sample_app/web) in Debian's Chromium: a fake camera fed with product photos, a real registry.

The kiosk is built from the lock file into tmp_path (`node sample_app/web/build.mjs`), served from its own
origin, and talks to `edgeloop serve`'s app across origins (CORS). Every frame the kiosk classifies is checked
against the Python SDK's prediction on the very pixels the kiosk saw; a console error fails the test.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from browserkit import StaticServer, launch
from edge_testkit import LABELS, SIZE, onnx_model, sha256
from registry_server import RegistryServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "edge" / "js"
NODE = shutil.which("node")
FPS = 10
HOLD = 5  # frames per photo: each product stays in view half a second
SIDE = 64


def y4m(photos: list[Any], path: Path) -> list[np.ndarray]:
    """A YUV4MPEG2 file (header + raw I420 frames, BT.601 studio range) showing each photo for HOLD frames."""
    rgb = [np.asarray(p.convert("RGB"), dtype=np.float64) for p in photos]
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{SIDE} H{SIDE} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for pixels in rgb:
            r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
            y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
            u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
            v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
            planes = [y, *(c.reshape(SIDE // 2, 2, SIDE // 2, 2).mean(axis=(1, 3)) for c in (u, v))]
            frame = b"".join(np.clip(np.rint(p), 0, 255).astype(np.uint8).tobytes() for p in planes)
            for _ in range(HOLD):
                out.write(b"FRAME\n" + frame)
    return [p.astype(np.uint8) for p in rgb]


@pytest.fixture()
def kiosk_dir(tmp_path: Path) -> Path:
    if NODE is None or not (SDK / "node_modules").is_dir() or not (SDK / "dist" / "index.js").exists():
        pytest.skip("needs node and a built edge/js (cd edge/js && npm ci && npm run build); tasks.py test does both")
    out = tmp_path / "kiosk"
    done = subprocess.run(
        [NODE, str(ROOT / "sample_app" / "web" / "build.mjs"), "--out", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture()
def site(kiosk_dir: Path) -> Iterator[StaticServer]:
    server = StaticServer(kiosk_dir)
    yield server
    server.close()


@pytest.fixture()
def cors_registry(tmp_path: Path, site: StaticServer) -> Iterator[RegistryServer]:
    from registry_api.core.config import get_registry_settings

    get_registry_settings.cache_clear()
    server = RegistryServer(tmp_path / "workspace", cors_origins=[site.origin]).start()
    yield server
    server.stop()
    get_registry_settings.cache_clear()


def template_model(path: Path, photos: list[Any], labels: list[str], version: int) -> Path:
    """An ONNX model that names photo k `labels[k]`: softmax of -0.1 x squared distance to each photo at 16 px."""
    import edge.runtime

    t = np.stack([edge.runtime.to_pixels(p, (SIZE, SIZE)).reshape(-1) / 255 for p in photos[: len(labels)]], axis=1)
    return onnx_model(path, version=version, labels=labels, dense=(0.2 * t, -0.1 * (t**2).sum(axis=0)))


def wait_for(page: Any, condition: str, errors: list[str]) -> dict[str, Any]:
    """Until `condition` (JS over `s`, the kiosk's state) holds or the kiosk reports an error; bounded."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            f"() => {{ const s = window.kioskState; return s && (s.error || ({condition})); }}", timeout=60_000
        )
    except PlaywrightTimeout:
        state = page.evaluate("window.kioskState && {...window.kioskState, frames: window.kioskState.frames.length}")
        pytest.fail(f"kiosk never reached {condition}: state {state}, console errors {errors}")
    state: dict[str, Any] = page.evaluate("window.kioskState")
    assert state["error"] is None, (state["error"], errors)
    return state


# What the kiosk's IndexedDB holds, read with the plain browser API (not the SDK's own reader).
IDB_CONTENTS = """() => new Promise((resolve, reject) => {
  const open = indexedDB.open("edgeloop-kiosk");
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const tx = open.result.transaction(["state", "models", "partial"]);
    const state = tx.objectStore("state").get("state");
    const models = tx.objectStore("models").getAllKeys();
    const partial = tx.objectStore("partial").count();
    tx.oncomplete = () => resolve({
      current: state.result.current?.version ?? null, previous: state.result.previous?.version ?? null,
      trial: state.result.trial?.version ?? null, models: models.result, partial: partial.result,
    });
  };
})"""


def frames_of(page: Any, version: int) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = page.evaluate("window.kioskState.frames")
    return [f for f in frames if f["version"] == version]


def check_frames(frames: list[dict[str, Any]], model: Path, written: list[np.ndarray]) -> set[int]:
    """Each frame's top-1 and score equal edge/'s on the same pixels; returns which photos were in view."""
    from PIL import Image

    import edge.runtime

    classifier = edge.runtime.load(model)
    seen = set()
    for frame in frames:
        rgba = np.frombuffer(base64.b64decode(frame["rgba"]), np.uint8).reshape(frame["height"], frame["width"], 4)
        rgb = np.ascontiguousarray(rgba[..., :3])
        expected = classifier.predict([Image.fromarray(rgb)])[0]
        assert frame["label"] == classifier.labels[int(np.argmax(expected))], frame["label"]
        assert abs(frame["score"] - float(expected.max())) < 1e-4
        # The camera really showed our photos (I420 round trip: a few levels off, far from the other photos).
        distance = [float(np.abs(rgb.astype(np.int16) - w).mean()) for w in written]
        assert min(distance) < 12, distance
        seen.add(int(np.argmin(distance)))
    return seen


def test_kiosk_names_products_like_the_python_sdk_and_swaps_while_running(
    kiosk_dir: Path, site: StaticServer, cors_registry: RegistryServer, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    from edgeloop.synth import catalogue, render

    photos = [render(spec, k, size=SIDE) for k, spec in enumerate(catalogue(4, seed=5))]
    written = y4m(photos, tmp_path / "camera.y4m")
    # v1 knows three of the four products; v2 adds the fourth (its labels extend v1's).
    onnx_v1 = template_model(tmp_path / "v1.onnx", photos, LABELS, 1)
    onnx_v2 = template_model(tmp_path / "v2.onnx", photos, [*LABELS, "cedar-deodorant"], 2)
    registry = cors_registry
    (kiosk_dir / "config.json").write_text(
        json.dumps({
            "registryUrl": registry.url,
            "apiKey": registry.tokens["device"],
            "publicKeys": registry.public_keys_base64(),
            "pollIntervalS": 1,
            "recordFrames": 40,
        })
    )  # fmt: skip
    registry.set_alias(registry.publish({"onnx_fp32": onnx_v1}, "run-1", LABELS))
    camera = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={tmp_path / 'camera.y4m'}",
    ]
    errors: list[str] = []
    artifact_requests: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright, *camera)
        page = browser.new_context().new_page()
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        reloading = [False]  # a reload cancels the poll or telemetry post in flight: that is no fault

        def failed(req: Any) -> None:
            if not (reloading[0] and req.failure == "net::ERR_ABORTED"):
                errors.append(f"{req.url}: {req.failure}")

        page.on("requestfailed", failed)
        page.on("request", lambda req: artifact_requests.append(req.url) if "/v1/artifacts/" in req.url else None)
        page.goto(site.origin + "/index.html")

        # Installs v1 from the registry, then names what the camera shows: HOLD x 4 frames is one loop of the file.
        state = wait_for(page, "s.frames.length >= 20 && s.telemetrySent > 0", errors)  # the update event
        assert (state["version"], state["variant"], state["source"]) == (1, "onnx_fp32", "registry")
        assert len(check_frames(frames_of(page, 1), onnx_v1, written)) >= 3
        assert len({f["label"] for f in frames_of(page, 1)}) >= 2  # the products are told apart
        assert "v1 · onnx_fp32" in page.inner_text("#model")

        # production moves to v2 while the kiosk runs: it swaps within a poll or two.
        registry.set_alias(registry.publish({"onnx_fp32": onnx_v2}, "run-2", [*LABELS, "cedar-deodorant"]))
        state = wait_for(page, "s.frames.filter(f => f.version === 2).length >= 20", errors)
        assert (state["version"], state["previousVersion"]) == (2, 1)
        assert len(check_frames(frames_of(page, 2), onnx_v2, written)) >= 3
        assert len({f["label"] for f in frames_of(page, 2)}) >= 3
        assert "v2 · onnx_fp32 · previous v1" in page.inner_text("#model")
        page.screenshot(path=str(tmp_path / "kiosk-v2.png"))
        stored = page.evaluate(IDB_CONTENTS)
        assert (stored["current"], stored["previous"], stored["trial"]) == (2, 1, None)
        assert sorted(stored["models"]) == sorted([sha256(onnx_v1), sha256(onnx_v2)]) and stored["partial"] == 0
        assert len(artifact_requests) == 2

        # Reloaded, it serves v2 from IndexedDB at once, and the registry answers its poll with a 304.
        reloading[0] = True
        page.reload()
        reloading[0] = False
        state = wait_for(page, "s.lastCheck && s.frames.length > 0", errors)
        assert (state["version"], state["source"], state["lastCheck"]["status"]) == (2, "store", "not_modified")
        assert len(artifact_requests) == 2
        browser.close()
    assert errors == [], errors
