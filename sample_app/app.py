"""The sample app's main loop: classify photos (or camera frames) with the live model, forever or bounded.

    summary = run(AppOptions(registry_url=..., model="shelf-products", photos=Path("photos"), iterations=50))

Built only on `edge/`: the updater keeps a working model, swaps in new versions while the
loop runs, and uploads telemetry; the loop just calls `updater.model.run(image)`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import edge
from edge import DeviceInfo, HealthOptions, TelemetryOptions, UpdateMode, Updater, UpdaterOptions

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
PINNED_KEYS = "pinned_keys.json"


@dataclasses.dataclass(frozen=True)
class AppOptions:
    """What the sample app needs; `duration_s` / `iterations` bound the loop (None: run until stopped)."""

    registry_url: str
    model: str
    store_dir: Path
    photos: Path | None = None
    camera: bool = False
    api_key: str | None = None
    public_keys: dict[str, str] = dataclasses.field(default_factory=dict)  # key id -> base64 or PEM
    trust_registry_keys: bool = False  # first run only: pin what GET /v1/keys says (trust on first use)
    alias: str = "production"
    mode: UpdateMode = UpdateMode.LOCAL_THEN_BACKGROUND
    bundled_model: Path | None = None
    bundled_version: int = 0  # the registry's number for the bundled file, if known
    runtime: str | None = None
    poll_interval_s: float = 30.0
    telemetry_interval_s: float = 10.0
    interval_s: float = 0.5  # between two photos
    duration_s: float | None = None
    iterations: int | None = None
    device: DeviceInfo = dataclasses.field(default_factory=DeviceInfo)
    top_k: int = 3


@dataclasses.dataclass
class RunSummary:
    iterations: int = 0
    versions_seen: list[int] = dataclasses.field(default_factory=list)  # in order of first use
    swaps: int = 0
    source: str = "photos"
    telemetry_pending: int = 0
    telemetry_dropped: int = 0
    last_update: str | None = None
    elapsed_s: float = 0.0


def list_photos(folder: Path) -> list[Path]:
    """Every image under `folder` (class sub-folders included), in a stable order."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def photo_frames(folder: Path, seed: int = 0) -> Iterator[tuple[str, Any]]:
    """Every photo once per pass, shuffled: shoppers do not show products in folder order.

    In folder order a short run would only ever see the first products, and the field's
    predicted labels would drift from the eval split for no reason but the app (seeded, so
    a run is repeatable).
    """
    from PIL import Image

    photos = list_photos(folder)
    if not photos:
        raise SystemExit(f"no photos (jpg, png, ...) under {folder}; point --photos at a folder of product photos")
    rng = random.Random(seed)
    while True:
        for path in rng.sample(photos, len(photos)):
            try:
                with Image.open(path) as img:
                    yield str(path.relative_to(folder)), img.convert("RGB")
            except OSError as exc:  # one unreadable photo must not stop a kiosk
                log.warning("skipping %s: %s", path, exc)


def camera_frames() -> Iterator[tuple[str, Any]] | None:
    """Frames from the first camera via OpenCV, or None when there is no OpenCV or no camera."""
    try:
        import cv2  # optional: pip install opencv-python-headless
    except ImportError:
        log.info("no camera support (OpenCV is not installed); using photos")
        return None
    capture = cv2.VideoCapture(0)
    if not capture.isOpened():
        log.info("no camera found; using photos")
        return None

    def frames() -> Iterator[tuple[str, Any]]:
        n = 0
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    log.warning("camera stopped delivering frames")
                    return
                n += 1
                yield f"camera#{n}", frame[:, :, ::-1]  # OpenCV is BGR; the model wants RGB
        finally:
            capture.release()

    return frames()


def resolve_keys(options: AppOptions) -> dict[str, Any]:
    """The pinned registry keys: given ones, else those pinned in the store, else (TOFU, if allowed) fetched once."""
    given = {k: edge.load_public_key(v) for k, v in options.public_keys.items()}
    if given:
        return given
    pinned = options.store_dir / PINNED_KEYS
    if pinned.exists():
        return {k: edge.load_public_key(v) for k, v in json.loads(pinned.read_text()).items()}
    if not options.trust_registry_keys:
        raise SystemExit("no registry public key: pass --public-key KEY_ID=BASE64 or --trust-registry-keys")
    import httpx

    keys = httpx.get(f"{options.registry_url.rstrip('/')}/v1/keys", timeout=10).raise_for_status().json()["keys"]
    table = {k["key_id"]: k["public_key"] for k in keys}
    options.store_dir.mkdir(parents=True, exist_ok=True)
    pinned.write_text(json.dumps(table, indent=1))
    log.warning("pinned %d registry key(s) on first use: %s", len(table), ", ".join(table))
    return {k: edge.load_public_key(v) for k, v in table.items()}


def updater_options(options: AppOptions) -> UpdaterOptions:
    return UpdaterOptions(
        registry_url=options.registry_url,
        model=options.model,
        store_dir=options.store_dir,
        public_keys=resolve_keys(options),
        api_key=options.api_key,
        alias=options.alias,
        mode=options.mode,
        device=options.device,
        runtime=options.runtime,  # type: ignore[arg-type]
        bundled_model=options.bundled_model,
        bundled_version=options.bundled_version,
        poll_interval_s=options.poll_interval_s,
        health=HealthOptions(),
        telemetry=TelemetryOptions(flush_interval_s=options.telemetry_interval_s),
    )


def run(
    options: AppOptions,
    *,
    show: Callable[[str], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> RunSummary:
    """Classify frames until `duration_s`, `iterations` or `stop()`; returns what happened."""
    say = show or (lambda line: log.info("%s", line))
    summary = RunSummary()
    frames = camera_frames() if options.camera else None
    if frames is None:
        if options.photos is None:
            raise SystemExit("nothing to classify: pass --photos DIR (or --camera with a camera attached)")
        frames = photo_frames(options.photos)
    else:
        summary.source = "camera"
    start = time.monotonic()
    with Updater(updater_options(options)) as updater:
        live = updater.model
        entry = live.current.entry
        say(f"model {entry.model} v{entry.version} ({entry.variant}, {entry.source}) ready")
        for name, image in frames:
            pred = live.run(image, options.top_k)
            if not summary.versions_seen or summary.versions_seen[-1] != pred.version:
                if summary.versions_seen:
                    say(f"swapped to {pred.model} v{pred.version} while running")
                summary.versions_seen.append(pred.version)
            label, score = pred.top[0]
            say(f"v{pred.version}  {name:<40} {label:<24} {score:.2f}  {pred.latency_ms:6.1f} ms")
            summary.iterations += 1
            elapsed = time.monotonic() - start
            if options.iterations is not None and summary.iterations >= options.iterations:
                break
            if options.duration_s is not None and elapsed >= options.duration_s:
                break
            if stop is not None and stop():
                break
            time.sleep(options.interval_s)
        summary.swaps = live.swaps
        summary.last_update = updater.last_result.status.value if updater.last_result else None
    # The updater flushed telemetry on close; what is left waits for the next run.
    queue = edge.TelemetryQueue(options.store_dir / "telemetry.sqlite", TelemetryOptions(), options.device)
    summary.telemetry_pending, summary.telemetry_dropped = queue.pending(), queue.dropped()
    queue.close()
    summary.elapsed_s = time.monotonic() - start
    return summary


def status(store_dir: Path) -> dict[str, Any]:
    """What is installed on this device: current, previous, blocked versions and queued telemetry."""
    state = edge.ModelStore(store_dir).state()
    queue = edge.TelemetryQueue(store_dir / "telemetry.sqlite")
    try:
        return {
            "current": state.current.as_json() if state.current else None,
            "previous": state.previous.as_json() if state.previous else None,
            "blocked": [dataclasses.asdict(b) for b in state.blocked],
            "telemetry_pending": queue.pending(),
            "telemetry_dropped": queue.dropped(),
        }
    finally:
        queue.close()
