"""The updater end to end against the real registry (uvicorn on loopback), plus a misbehaving CDN.

Each test prints the figure it proves.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from edge_testkit import LABELS
from faults import FaultServer, Route
from registry_server import RegistryServer

import edge
from edge import DownloadOptions, HealthOptions, UpdateMode, Updater, UpdaterOptions, UpdateStatus
from edge._updater import backoff_delay

V2_LABELS = [*LABELS, "cedar-deodorant"]
IMAGE = np.full((16, 16, 3), 90, np.uint8)


def options(registry: RegistryServer, tmp_path: Path, **kw: Any) -> UpdaterOptions:
    base: dict[str, Any] = {
        "registry_url": registry.url,
        "model": RegistryServer.MODEL,
        "store_dir": tmp_path / "device",
        "public_keys": registry.public_keys(),
        "api_key": registry.tokens["device"],
        "runtime": "onnxruntime",
        "mode": UpdateMode.LOCAL,
        "device": edge.DeviceInfo(device_id="test-device", device_class="ci-x86", app_version="1.0"),
        "download": DownloadOptions(resume_backoff_s=0.01, deadline_s=30),
        "health": HealthOptions(latency_budget_ms=2000),
        "bundled_version": 1,  # the registry's v1 is the file these tests bundle
    }
    base.update(kw)
    return UpdaterOptions(**base)


class Callers:
    """Threads classifying in a loop while updates happen; records every version seen and every failure."""

    def __init__(self, model: edge.LiveModel, n: int = 3) -> None:
        self.model = model
        self.per_thread: list[list[int]] = [[] for _ in range(n)]
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(n)]

    @property
    def versions(self) -> list[int]:
        return [v for seen in self.per_thread for v in seen]

    @property
    def calls(self) -> int:
        return sum(len(seen) for seen in self.per_thread)

    def wait_until_serving(self, version: int, timeout_s: float = 120) -> None:
        """Block until every caller's latest answer came from `version` (a condition, not a pause)."""
        deadline = time.monotonic() + timeout_s
        while not all(seen and seen[-1] == version for seen in self.per_thread):
            assert not self.errors, self.errors
            assert time.monotonic() < deadline, f"callers not answered by v{version} within {timeout_s} s"
            time.sleep(0.002)

    def monotonic(self) -> bool:
        """Each caller, once it has seen the new model, never sees the old one again."""
        return all(seen == sorted(seen) for seen in self.per_thread)

    def _run(self, i: int) -> None:
        while not self._stop.is_set():
            try:
                self.per_thread[i].append(self.model.run(IMAGE, k=1).version)
            except BaseException as exc:
                self.errors.append(exc)

    def __enter__(self) -> Callers:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()


def test_update_end_to_end_with_etag_polling_and_telemetry(
    registry: RegistryServer, tmp_path: Path, onnx_v1: Path, onnx_v2: Path
) -> None:
    v1 = registry.publish({"onnx_fp32": onnx_v1}, "run-1", LABELS)
    registry.set_alias(v1)
    with Updater(options(registry, tmp_path, bundled_model=onnx_v1)) as updater:
        model = updater.model
        assert model.version == 1 and model.current.entry.source == "bundled"
        first = updater.check_now()
        assert first.status == UpdateStatus.UP_TO_DATE  # the registry's v1 is the bundled file
        assert updater.check_now().status == UpdateStatus.NOT_MODIFIED  # If-None-Match -> 304
        v2 = registry.publish({"onnx_fp32": onnx_v2}, "run-2", V2_LABELS)
        registry.set_alias(v2)
        with Callers(model) as callers:
            callers.wait_until_serving(1)  # every caller is busy on v1 before the swap ...
            result = updater.check_now()
            callers.wait_until_serving(2)  # ... and is answered by v2 after it
        assert result.status == UpdateStatus.UPDATED and result.version == 2, result
        assert model.version == 2 and model.labels == V2_LABELS
        assert not callers.errors and set(callers.versions) == {1, 2}
        assert callers.monotonic()  # no caller goes back to the old model after the swap
        state = updater.store.state()
        assert state.current and state.current.version == 2 and state.previous and state.previous.version == 1
        flushed = updater.flush_telemetry()
        assert flushed.error is None and flushed.remaining == 0
        assert flushed.accepted >= len(callers.versions)  # an inference event per call, plus the update
    print(
        f"\nv1 -> v2 hot swap under {len(callers.versions)} concurrent calls: 0 failures; "
        f"{flushed.accepted} telemetry events accepted"
    )


def test_modes_local_latest_and_background(
    registry: RegistryServer, tmp_path: Path, onnx_v1: Path, onnx_v2: Path
) -> None:
    registry.set_alias(registry.publish({"onnx_fp32": onnx_v1}, "run-1", LABELS))
    registry.set_alias(registry.publish({"onnx_fp32": onnx_v2}, "run-2", V2_LABELS))
    # local: what is installed, no network at all (the registry URL is unreachable on purpose).
    opts = options(registry, tmp_path / "a", bundled_model=onnx_v1, registry_url="http://127.0.0.1:9")
    with Updater(opts) as updater:
        assert updater.model.version == 1 and updater.last_result is None
    # latest: start() returns only after the check, with v2 serving.
    with Updater(options(registry, tmp_path / "b", bundled_model=onnx_v1, mode=UpdateMode.LATEST)) as updater:
        assert updater.model.version == 2
    # latest with the registry down: falls back to the installed model instead of failing.
    opts = options(
        registry, tmp_path / "c", bundled_model=onnx_v1, mode=UpdateMode.LATEST, registry_url="http://127.0.0.1:9"
    )
    with Updater(opts) as updater:
        assert updater.model.version == 1 and updater.last_result and updater.last_result.status == UpdateStatus.FAILED
    # local_then_background_update: v1 at once, v2 swapped in by the poller.
    opts = options(registry, tmp_path / "d", bundled_model=onnx_v1, mode=UpdateMode.LOCAL_THEN_BACKGROUND)
    t0 = time.perf_counter()
    with Updater(opts) as updater:
        assert updater.model.current.entry.source == "bundled"
        while updater.model.version != 2 and time.perf_counter() - t0 < 120:
            time.sleep(0.02)
        assert updater.model.version == 2
    # A bundled model of unknown registry number ranks as v0: whatever the registry offers replaces it.
    opts = options(registry, tmp_path / "f", bundled_model=onnx_v1, bundled_version=0, mode=UpdateMode.LATEST)
    with Updater(opts) as updater:
        assert updater.model.version == 2
    # No bundled model and nothing installed: local mode blocks for the registry's model.
    with Updater(options(registry, tmp_path / "e")) as updater:
        assert updater.model.version == 2
    print(f"\nbackground update picked up v2 {time.perf_counter() - t0:.2f} s after start")


def test_nan_model_is_reverted_within_one_health_check_and_never_retried(
    registry: RegistryServer, tmp_path: Path, onnx_v1: Path, onnx_v2: Path, onnx_nan: Path
) -> None:
    registry.set_alias(registry.publish({"onnx_fp32": onnx_v1}, "run-1", LABELS))
    with Updater(options(registry, tmp_path, mode=UpdateMode.LATEST)) as updater:
        registry.set_alias(registry.publish({"onnx_fp32": onnx_v2}, "run-2", V2_LABELS))
        assert updater.check_now().status == UpdateStatus.UPDATED
        bad = registry.publish({"onnx_fp32": onnx_nan}, "run-nan", V2_LABELS)
        registry.set_alias(bad)
        with Callers(updater.model) as callers:
            callers.wait_until_serving(2)
            result = updater.check_now()
        assert result.status == UpdateStatus.ROLLED_BACK and "non-finite" in result.detail
        assert updater.model.version == 2 and set(callers.versions) == {2} and not callers.errors
        state = updater.store.state()
        assert state.current and state.current.version == 2
        assert [b.version for b in state.blocked] == [bad]
        again = updater.check_now()
        assert again.status in (UpdateStatus.BLOCKED, UpdateStatus.NOT_MODIFIED)
        kinds = [e for e in _queued(updater) if e["kind"] == "rollback"]
        assert len(kinds) == 1 and kinds[0]["version"] == bad
    # A restart still refuses it: the block is in the store, not in memory.
    with Updater(options(registry, tmp_path, mode=UpdateMode.LATEST)) as updater:
        assert updater.model.version == 2 and updater.last_result
        assert updater.last_result.status in (UpdateStatus.BLOCKED, UpdateStatus.NOT_MODIFIED)
        # (the first session's events were uploaded on close) no new rollback: it was not tried again
        assert not [e for e in _queued(updater) if e["kind"] == "rollback"]
    print(f"\nNaN model v{bad}: reverted to v2 after 1 health check, blocked, not retried after restart")


def bundled_options(
    fault_server: FaultServer, tmp_path: Path, public_keys: Any, bundled: Path, **kw: Any
) -> UpdaterOptions:
    """Options for a device talking to the fault server, starting from `bundled` as its v1."""
    base: dict[str, Any] = {
        "registry_url": fault_server.url,
        "model": "shelf-products",
        "store_dir": tmp_path / "d",
        "public_keys": public_keys,
        "runtime": "onnxruntime",
        "bundled_model": bundled,
        "bundled_version": 1,
        "mode": UpdateMode.LOCAL,
    }
    return UpdaterOptions(**{**base, **kw})


def _queued(updater: Updater) -> list[dict[str, Any]]:
    import json

    rows = updater.telemetry._db.execute("SELECT body FROM events ORDER BY seq").fetchall()
    return [json.loads(body) for (body,) in rows]


def test_signed_rollback_from_the_registry_is_installed(
    registry: RegistryServer, tmp_path: Path, onnx_v1: Path, onnx_v2: Path
) -> None:
    registry.set_alias(registry.publish({"onnx_fp32": onnx_v1}, "run-1", LABELS))
    registry.set_alias(registry.publish({"onnx_fp32": onnx_v2}, "run-2", V2_LABELS))
    with Updater(options(registry, tmp_path, mode=UpdateMode.LATEST, allow_label_changes=True)) as updater:
        assert updater.model.version == 2
        registry.rollback()
        result = updater.check_now()
        assert result.status == UpdateStatus.UPDATED and updater.model.version == 1
        assert updater.store.state().current.rollback  # type: ignore[union-attr]


def test_conditions_defer_the_download_until_they_hold(
    registry: RegistryServer, tmp_path: Path, onnx_v1: Path, onnx_v2: Path
) -> None:
    registry.set_alias(registry.publish({"onnx_fp32": onnx_v1}, "run-1", LABELS))
    charging = threading.Event()
    opts = options(registry, tmp_path, bundled_model=onnx_v1, download_conditions=charging.is_set)
    with Updater(opts) as updater:
        registry.set_alias(registry.publish({"onnx_fp32": onnx_v2}, "run-2", V2_LABELS))
        assert updater.check_now().status == UpdateStatus.DEFERRED
        assert updater.check_now().status == UpdateStatus.DEFERRED  # not a 304: the ETag was not kept
        assert not list(updater.store.downloads_dir.iterdir())
        charging.set()
        assert updater.check_now().status == UpdateStatus.UPDATED and updater.model.version == 2


@pytest.fixture()
def cdn_registry(tmp_path: Path, fault_server: FaultServer) -> Iterator[RegistryServer]:
    """The real registry whose manifests send devices to a misbehaving CDN (the fault server)."""
    from registry_api.core.config import get_registry_settings

    get_registry_settings.cache_clear()
    server = RegistryServer(tmp_path / "workspace", public_url=fault_server.url).start()
    try:
        yield server
    finally:
        server.stop()
        get_registry_settings.cache_clear()


def test_drip_download_aborts_at_deadline_with_old_model_serving(
    cdn_registry: RegistryServer, fault_server: FaultServer, tmp_path: Path, onnx_v1: Path, onnx_v2: Path
) -> None:
    from edge_testkit import sha256

    cdn_registry.set_alias(cdn_registry.publish({"onnx_fp32": onnx_v1}, "run-1", LABELS))
    v2 = cdn_registry.publish({"onnx_fp32": onnx_v2}, "run-2", V2_LABELS)
    cdn_registry.set_alias(v2)
    fault_server.routes[f"/v1/artifacts/{sha256(onnx_v2)}"] = Route(onnx_v2.read_bytes(), drip_delay_s=1.0)
    opts = options(cdn_registry, tmp_path, bundled_model=onnx_v1, download=DownloadOptions(deadline_s=2.0))
    with Updater(opts) as updater, Callers(updater.model) as callers:
        callers.wait_until_serving(1)
        before = callers.calls
        t0 = time.perf_counter()
        result = updater.check_now()
        elapsed = time.perf_counter() - t0
        during = callers.calls - before
    assert result.status == UpdateStatus.FAILED and "deadline" in result.detail
    assert updater.model.version == 1
    # Not before the deadline; and not the hours a 1 byte/s drip of the whole file would take (the
    # upper bound is that, with room for a loaded CI box, not a speed requirement).
    assert 2.0 <= elapsed < 60, elapsed
    assert fault_server.bytes_sent.get(f"/v1/artifacts/{sha256(onnx_v2)}", 0) < onnx_v2.stat().st_size
    # The check held the update for at least the 2 s deadline: v1 answered callers all along.
    assert not callers.errors and set(callers.versions) == {1} and during > 0
    print(
        f"\n1 byte/s drip: update aborted after {elapsed:.2f} s (deadline 2 s); "
        f"{during} calls served by v1 meanwhile, 0 failures"
    )


def test_file_with_one_flipped_bit_is_never_installed(
    cdn_registry: RegistryServer, fault_server: FaultServer, tmp_path: Path, onnx_v1: Path, onnx_v2: Path
) -> None:
    from edge_testkit import sha256

    cdn_registry.set_alias(cdn_registry.publish({"onnx_fp32": onnx_v1}, "run-1", LABELS))
    cdn_registry.set_alias(cdn_registry.publish({"onnx_fp32": onnx_v2}, "run-2", V2_LABELS))
    data = bytearray(onnx_v2.read_bytes())
    rng = random.Random(1)
    trials = 20
    with Updater(options(cdn_registry, tmp_path, bundled_model=onnx_v1)) as updater:
        for _ in range(trials):
            flipped = bytearray(data)
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
            fault_server.routes[f"/v1/artifacts/{sha256(onnx_v2)}"] = Route(bytes(flipped))
            result = updater.check_now()  # a rejection keeps no ETag: every check downloads again
            assert result.status == UpdateStatus.REJECTED and "sha256" in result.detail
            assert updater.model.version == 1
            current = updater.store.state().current
            assert current and [p.name for p in updater.store.models_dir.iterdir()] == [current.file]
            assert not list(updater.store.downloads_dir.iterdir())
    print(f"\none flipped bit: {trials}/{trials} corrupted downloads rejected, never installed")


def test_poller_honours_retry_after_and_backs_off(
    fault_server: FaultServer, tmp_path: Path, onnx_v1: Path, public_keys: Any
) -> None:
    route = Route(b"", status=429, retry_after="1")
    fault_server.routes["/v1/models/shelf-products/manifest"] = route
    opts = bundled_options(
        fault_server,
        tmp_path,
        public_keys,
        onnx_v1,
        mode=UpdateMode.LOCAL_THEN_BACKGROUND,
        backoff_initial_s=0.01,  # without Retry-After the poller would come back within ~10 ms
        poll_interval_s=0.01,
    )
    with Updater(opts) as updater:
        deadline = time.monotonic() + 120
        while route.requests < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert updater.last_result and updater.last_result.status == UpdateStatus.FAILED
        assert updater.last_result.retry_after == 1
        assert updater.model.version == 1  # still serving the bundled model
    # Measured between the polls' arrivals, so a slow start cannot shorten or stretch what is judged:
    # each poll came at least Retry-After (1 s) after the one before (less 10 ms of timer rounding).
    assert len(route.arrived) >= 3, route.arrived
    gaps = [route.arrived[i + 1] - route.arrived[i] for i in range(2)]
    assert min(gaps) >= 0.99, gaps
    print(f"\n429 + Retry-After: 1 -> polls {gaps[0]:.2f} s and {gaps[1]:.2f} s apart (backoff alone: ~0.01 s)")


def test_huge_retry_after_is_capped_for_the_poller_and_telemetry(
    fault_server: FaultServer, tmp_path: Path, onnx_v1: Path, public_keys: Any
) -> None:
    # Retry-After: 99999999 (~3 years) used to stop both loops; backoff_max_s caps it.
    polls = Route(b"", status=503, retry_after="99999999")
    uploads = Route(b"", status=503, retry_after="99999999")
    fault_server.routes["/v1/models/shelf-products/manifest"] = polls
    fault_server.routes["/v1/telemetry"] = uploads
    opts = bundled_options(
        fault_server,
        tmp_path,
        public_keys,
        onnx_v1,
        mode=UpdateMode.LOCAL_THEN_BACKGROUND,
        backoff_initial_s=0.01,
        backoff_max_s=0.05,
        poll_interval_s=0.01,
        telemetry=edge.TelemetryOptions(flush_interval_s=0.01),
    )
    with Updater(opts) as updater:
        updater.telemetry.record("error", detail={"stage": "test"})  # something to upload
        deadline = time.monotonic() + 60  # only a safety net: the loops come back within ~0.05 s each
        while (polls.requests < 3 or uploads.requests < 3) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert updater.last_result and updater.last_result.retry_after == 99999999
    assert polls.requests >= 3 and uploads.requests >= 3
    print(f"\nRetry-After: 99999999 capped at backoff_max_s: {polls.requests} polls, {uploads.requests} uploads")


def test_retry_after_parsing_never_raises() -> None:
    from edge._client import parse_retry_after

    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("\u00b2") is None  # str.isdigit() is true for a superscript two; float() is not
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 -0000") == 0.0  # a naive date: UTC, in the past
    assert parse_retry_after("soon") is None
    assert backoff_delay(1, 30, 600, parse_retry_after("9" * 400), random.Random(0)) == 600


def test_backoff_and_jitter() -> None:
    rng = random.Random(0)
    assert backoff_delay(1, 1.0, 3600, 7.0, rng) >= 7
    delays = [backoff_delay(n, 30, 6 * 3600, None, rng) for n in range(1, 14)]
    assert delays[0] <= 30 and delays[5] >= 15 * 32 and max(delays) <= 6 * 3600
    assert delays[-1] >= 3 * 3600  # capped at the maximum, with jitter in its upper half
    assert backoff_delay(1, 30, 6 * 3600, 99999999.0, rng) == 6 * 3600  # Retry-After capped too


def test_poll_interval_is_jittered(tmp_path: Path, public_keys: Any) -> None:
    opts = UpdaterOptions(
        registry_url="http://127.0.0.1:9", model="m", store_dir=tmp_path, public_keys=public_keys, poll_interval_s=100
    )
    updater = Updater(opts)
    waits = [updater._interval() for _ in range(200)]
    updater.close()
    assert 80 <= min(waits) < 85 and 115 < max(waits) <= 120  # interval x (1 ± 0.2), spread over the range


def test_tampered_manifest_in_transit_is_rejected_before_any_download(
    fault_server: FaultServer, tmp_path: Path, onnx_v1: Path, onnx_v2: Path, signing_key: Any, public_keys: Any
) -> None:
    import json

    from edge_testkit import sha256, signed_manifest

    artifact = f"/v1/artifacts/{sha256(onnx_v2)}"
    fault_server.routes[artifact] = Route(onnx_v2.read_bytes())
    good = signed_manifest(signing_key, onnx_v2, version=2, url=artifact, labels=V2_LABELS)
    tampered = {**good, "artifact_url": "http://evil.example/x.onnx"}
    route = Route(json.dumps(tampered).encode(), content_type="application/json")
    fault_server.routes["/v1/models/shelf-products/manifest"] = route
    opts = bundled_options(fault_server, tmp_path, public_keys, onnx_v1)
    with Updater(opts) as updater:
        result = updater.check_now()
        assert result.status == UpdateStatus.REJECTED and "ManifestError" in result.detail
        assert fault_server.routes[artifact].requests == 0 and updater.model.version == 1
        errors = [e for e in _queued(updater) if e["kind"] == "error"]
        assert errors and errors[-1]["detail"]["error"] == "ManifestError"
        route.body = json.dumps(good).encode()  # the genuine answer: accepted, downloaded, installed
        route.etag = '"genuine"'
        assert updater.check_now().status == UpdateStatus.UPDATED and updater.model.version == 2


def test_file_whose_labels_differ_from_the_signed_manifest_is_reverted(
    registry: RegistryServer, tmp_path: Path, onnx_v1: Path, onnx_v2: Path
) -> None:
    registry.set_alias(registry.publish({"onnx_fp32": onnx_v1}, "run-1", LABELS))
    with Updater(options(registry, tmp_path, bundled_model=onnx_v1)) as updater:
        # A package whose card promises four products but whose file only knows v1's three.
        liar = registry.publish({"onnx_fp32": onnx_v2}, "run-2", [*V2_LABELS, "extra-product"])
        registry.set_alias(liar)
        result = updater.check_now()
        assert result.status == UpdateStatus.ROLLED_BACK and "labels inside the file" in result.detail
        assert updater.model.version == 1 and updater.store.is_blocked(liar, updater.store.state().blocked[0].sha256)


def test_endless_manifest_answer_is_cut_off(
    fault_server: FaultServer, tmp_path: Path, onnx_v1: Path, public_keys: Any
) -> None:
    route = Route(b'{"model": "', content_type="application/json", endless=True)
    fault_server.routes["/v1/models/shelf-products/manifest"] = route
    opts = bundled_options(fault_server, tmp_path, public_keys, onnx_v1)
    with Updater(opts) as updater:
        result = updater.check_now()
        assert result.status == UpdateStatus.REJECTED and "exceeds" in result.detail, result
        assert updater.model.version == 1
    sent = fault_server.bytes_sent["/v1/models/shelf-products/manifest"]
    print(f"\nendless manifest answer: refused after 1 MiB (server had pushed {sent} B)")
