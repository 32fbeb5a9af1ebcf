"""Keep a working model at all times and pick up new ones from the registry.

    options = UpdaterOptions(registry_url=..., model="shelf-products", store_dir=..., public_keys=...)
    with Updater(options) as updater:            # loads the installed (or bundled) model, starts polling
        updater.model.classify(image)            # hot-swapped under the caller when an update lands

One check: poll with If-None-Match -> verify the manifest -> (download conditions)
-> download -> verify the file -> stage as a trial -> mark "loading" durably ->
load + health check -> commit as current and publish, or drop it and never retry
that version. Nothing on that path can take away the model that is serving, and a
model that kills the process while loading is blocked by the next start, which
serves the last good model (see `ModelStore.recover`).
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import random
import threading
from pathlib import Path
from typing import Any

from edge import metadata as md
from edge._client import ManifestResponse, RegistryClient
from edge._download import download_artifact
from edge._exceptions import (
    DownloadError,
    EdgeError,
    HealthCheckFailed,
    ModelLoadError,
    RegistryError,
    StoreError,
    VerificationError,
)
from edge._health import check as health_check
from edge._live import LiveModel, LoadedModel, Prediction
from edge._options import UpdateMode, UpdaterOptions
from edge._store import InstalledModel, ModelStore, sha256_file
from edge._telemetry import FlushResult, TelemetryQueue
from edge._verify import Expectations, check_file, check_manifest
from edge.manifest import Manifest
from edge.runtime import Classifier, available_runtimes
from edge.variants import RUNTIME_OF_SUFFIX, VARIANTS

log = logging.getLogger(__name__)


class UpdateStatus(enum.StrEnum):
    UPDATED = "updated"  # a new version passed every check and now serves
    NOT_MODIFIED = "not_modified"  # 304: nothing new since the last poll
    UP_TO_DATE = "up_to_date"  # the manifest names the file already serving
    BLOCKED = "blocked"  # the manifest names a version that failed here before
    DEFERRED = "deferred"  # an update exists but the download conditions say not now
    REJECTED = "rejected"  # verification refused the manifest or the file
    FAILED = "failed"  # registry or network trouble; retried with backoff
    ROLLED_BACK = "rolled_back"  # installed, failed its health check, reverted


@dataclasses.dataclass(frozen=True)
class UpdateResult:
    status: UpdateStatus
    version: int | None = None
    detail: str = ""
    retry_after: float | None = None


def backoff_delay(
    failures: int, initial: float, maximum: float, retry_after: float | None, rng: random.Random
) -> float:
    """Exponential backoff with full jitter, never shorter than the server's Retry-After, never above `maximum`.

    Retry-After is capped at `maximum` too: a hostile or broken server (or cache) sending
    `Retry-After: 99999999` must not silence a device for years.
    """
    ceiling = min(maximum, initial * 2 ** max(failures - 1, 0))
    delay = rng.uniform(ceiling / 2, ceiling)
    return max(delay, min(retry_after or 0.0, maximum))


class Updater:
    """Owns the model store, the live model, the poller and the telemetry uploader."""

    def __init__(self, options: UpdaterOptions, *, rng: random.Random | None = None) -> None:
        self.options = options
        self.store = ModelStore(options.store_dir)
        self.telemetry = TelemetryQueue(Path(options.store_dir) / "telemetry.sqlite", options.telemetry, options.device)
        self.client = RegistryClient(options.registry_url, options.api_key, transport=options.transport)
        self._rng = rng or random.Random()
        self._live: LiveModel | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._check_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.runtimes = [options.runtime] if options.runtime else available_runtimes()
        self.last_result: UpdateResult | None = None

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def model(self) -> LiveModel:
        if self._live is None:
            raise StoreError("the updater is not started; call start() or use it as a context manager")
        return self._live

    def __enter__(self) -> Updater:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> LiveModel:
        """Load a model per the update mode and start the background threads; returns the live model."""
        try:
            return self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> LiveModel:
        died = self.store.recover()
        if died is not None:
            reason = "the process died while loading or checking it (native crash or kill)"
            log.error("%s v%d: %s; blocked, serving the last good model", died.model, died.version, reason)
            self._event(
                "rollback",
                None,
                model=died.model,
                version=died.version,
                variant=died.variant,
                detail={"reason": reason, "stage": "load"},
            )
        loaded = self._load_local()
        if loaded is not None:
            self._live = LiveModel(loaded, self._on_prediction)
        mode = self.options.mode
        if loaded is None or mode == UpdateMode.LATEST:
            result = self.check_now()
            log.info("start-up check: %s %s", result.status, result.detail)
            if self._live is None:
                raise StoreError(
                    f"no model in {self.options.store_dir}, none bundled, and the registry check failed: "
                    f"{result.detail}; ship a bundled_model or start with network"
                )
        if mode != UpdateMode.LOCAL:
            self._spawn("edge-poller", self._poll_loop)
        self._spawn("edge-telemetry", self._telemetry_loop)
        return self.model

    def close(self) -> None:
        """Stop the threads (a check in progress finishes first) and release the HTTP client and queue."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=60)
        self._threads.clear()
        self.client.close()
        self.telemetry.close()

    def _spawn(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # -- local models -------------------------------------------------------------------

    def _load_local(self) -> LoadedModel | None:
        """Current, else previous, else the bundled model; each must load and pass its health check."""
        state = self.store.state()
        for entry in (state.current, state.previous):
            if entry is None:
                continue
            try:
                loaded = self._load_guarded(entry)
            except (ModelLoadError, HealthCheckFailed, OSError) as exc:
                log.error(
                    "installed %s v%d does not work here (%s); trying the next one", entry.model, entry.version, exc
                )
                continue
            now = self.store.state().current
            if now is None or now.file != entry.file:
                self.store.install(self.store.path_of(entry), loaded.entry)
            return loaded
        bundled = self.options.bundled_model
        if bundled is None:
            return None
        meta = md.read(bundled)
        sha = sha256_file(bundled)
        version = self.options.bundled_version
        if self.store.is_blocked(version, sha):
            log.error("the bundled model %s v%d is blocked here (it failed before); not loading it", meta.name, version)
            return None
        entry = InstalledModel(
            model=meta.name,
            version=version,
            variant=meta.variant,
            sha256=sha,
            size=bundled.stat().st_size,
            file=self.store.file_name(meta.name, version, sha, bundled.suffix),
            labels=tuple(meta.labels),
            source="bundled",
        )
        self.store.install(bundled, entry)
        log.info("installed the bundled model %s v%d", entry.model, entry.version)
        return self._load_guarded(entry)

    def _load_guarded(self, entry: InstalledModel) -> LoadedModel:
        """Load and check `entry`; one that never passed a check here is loaded under the store's marker."""
        if entry.checked:
            return self._load_checked(entry)
        self.store.begin_load(entry)
        try:
            loaded = self._load_checked(entry)
        except (ModelLoadError, HealthCheckFailed) as exc:
            self.store.fail_load(entry, str(exc))
            raise
        except BaseException:
            self.store.fail_load(entry, "interrupted", block=False)  # not the model's fault (disk, interrupt)
            raise
        self.store.commit_load(entry)
        return loaded

    def _load_checked(self, entry: InstalledModel) -> LoadedModel:
        clf = Classifier(self.store.path_of(entry), threads=self.options.threads)
        report = health_check(clf, self.options.health)
        if not report.ok:
            raise HealthCheckFailed(f"{entry.model} v{entry.version}: {'; '.join(report.problems)}")
        return LoadedModel(clf, entry)

    # -- one check ----------------------------------------------------------------------

    def _event(self, kind: Any, manifest: Manifest | None = None, **fields: Any) -> None:
        ident: dict[str, Any] = {}
        if manifest is not None:
            ident = {"model": manifest.model, "version": manifest.version, "variant": manifest.variant}
        elif self._live is not None:
            entry = self._live.current.entry
            ident = {"model": entry.model, "version": entry.version, "variant": entry.variant}
        try:
            self.telemetry.record(kind, **{**ident, **fields})
        except Exception as exc:  # telemetry must never break an update; say so loudly instead
            log.error("could not queue a %s event: %r", kind, exc)

    def _on_prediction(self, pred: Prediction) -> None:
        if self.options.telemetry.record_inferences:
            top1 = pred.top[0] if pred.top else (None, None)
            self._event(
                "inference",
                model=pred.model,
                version=pred.version,
                variant=pred.variant,
                latency_ms=pred.latency_ms,
                top1_label=top1[0],
                top1_score=None if top1[1] is None else min(max(top1[1], 0.0), 1.0),
            )

    def _poll_params(self, runtime: str | None) -> dict[str, str | None]:
        """The manifest request's query parameters: the alias and what the registry targets on."""
        dev = self.options.device
        return {
            "alias": self.options.alias,
            "device_id": dev.device_id,
            "platform": dev.platform,
            "runtime": runtime,
            "app_version": dev.app_version,
            "device_class": dev.device_class,
        }

    def _poll(self, etag: str | None) -> ManifestResponse:
        """Ask for the preferred runtime first; a 404 (no variant for it) moves on to the next one installed."""
        runtimes: list[str | None] = list(self.runtimes) or [None]
        for i, runtime in enumerate(runtimes):
            try:
                return self.client.manifest(self.options.model, self._poll_params(runtime), etag)
            except RegistryError as exc:
                if exc.status != 404 or i + 1 == len(runtimes):
                    raise
                log.info("no %s variant offered (%s); asking for %s", runtime, exc, runtimes[i + 1])
        raise AssertionError("unreachable: the loop returns or raises")

    def check_now(self) -> UpdateResult:
        """Poll once and install what the registry offers if it passes every check. Never raises EdgeError."""
        with self._check_lock:
            try:
                result = self._check()
            except RegistryError as exc:
                result = UpdateResult(UpdateStatus.FAILED, detail=str(exc), retry_after=exc.retry_after)
            except DownloadError as exc:
                result = UpdateResult(UpdateStatus.FAILED, detail=str(exc))
                self._event("error", detail={"stage": "download", "error": str(exc)[:500]})
            except VerificationError as exc:
                result = UpdateResult(UpdateStatus.REJECTED, detail=f"{type(exc).__name__}: {exc}")
                self._event("error", detail={"stage": "verify", "error": type(exc).__name__, "message": str(exc)[:500]})
            except (EdgeError, OSError) as exc:  # OSError: disk full or similar while downloading or installing
                result = UpdateResult(UpdateStatus.FAILED, detail=f"{type(exc).__name__}: {exc}")
                self._event("error", detail={"stage": "install", "error": f"{type(exc).__name__}: {exc}"[:500]})
            self.last_result = result
            log.info("update check: %s %s", result.status.value, result.detail)
            return result

    def _check(self) -> UpdateResult:
        state = self.store.state()
        current = self._live.current.entry if self._live else None
        # An unchanged answer is only worth skipping if something is serving.
        etag = state.manifest_etag if current is not None else None
        response = self._poll(etag)
        if response.raw is None:
            return UpdateResult(UpdateStatus.NOT_MODIFIED, current.version if current else None)
        expect = Expectations(
            model=self.options.model,
            alias=self.options.alias,
            installed_version=current.version if current else None,
            installed_sequence=current.sequence if current else None,
            seen_sequence=state.seen_sequence(self.options.model, self.options.alias),
            installed_labels=current.labels if current else (),
            runtimes=tuple(self.runtimes),
            allow_label_changes=self.options.allow_label_changes,
            max_clock_skew_s=self.options.max_clock_skew_s,
        )
        manifest = check_manifest(response.raw, self.options.public_keys, expect)
        # Remembered whatever happens next (up to date, blocked, deferred, failed download): a device that
        # skipped a rollback must still refuse that rollback's manifest once the alias has moved on.
        self.store.remember_sequence(manifest.model, manifest.alias, manifest.sequence)
        if current is not None and manifest.sha256 == current.sha256:
            self.store.set_etag(response.etag)
            return UpdateResult(UpdateStatus.UP_TO_DATE, manifest.version)
        if self.store.is_blocked(manifest.version, manifest.sha256):
            self.store.set_etag(response.etag)
            return UpdateResult(UpdateStatus.BLOCKED, manifest.version, "failed its health check here before")
        if not self.options.download_conditions():
            # The ETag is not stored, so the next poll sees this manifest again instead of a 304.
            return UpdateResult(UpdateStatus.DEFERRED, manifest.version, "download conditions not met")
        self._clean_downloads(keep=manifest.sha256)
        result = download_artifact(
            self.client.http,
            self.client.artifact_url(manifest.artifact_url),
            self.store.downloads_dir,
            sha256=manifest.sha256,
            size=manifest.size,
            options=self.options.download,
        )
        check_file(result.path, manifest)
        return self._install(manifest, result.path, response.etag, download_s=result.elapsed_s, resumes=result.resumes)

    def _clean_downloads(self, keep: str) -> None:
        for path in self.store.downloads_dir.iterdir():
            if not path.name.startswith(keep):
                path.unlink(missing_ok=True)

    def _install(self, manifest: Manifest, path: Path, etag: str | None, **detail: Any) -> UpdateResult:
        suffix = VARIANTS[manifest.variant].suffix if manifest.variant in VARIANTS else ""
        if RUNTIME_OF_SUFFIX.get(suffix) != manifest.runtime:
            suffix = next(s for s, r in RUNTIME_OF_SUFFIX.items() if r == manifest.runtime)
        entry = InstalledModel(
            model=manifest.model,
            version=manifest.version,
            variant=manifest.variant,
            sha256=manifest.sha256,
            size=manifest.size,
            file=self.store.file_name(manifest.model, manifest.version, manifest.sha256, suffix),
            labels=tuple(manifest.labels),
            rollback=manifest.rollback,
            alias=manifest.alias,
            sequence=manifest.sequence,
        )
        previous = self._live.current.entry if self._live else None
        self.store.stage(path, entry, move=True)  # a trial: "current" still names the serving model
        self.store.begin_load(entry)  # durable before the runtime touches the file: a crash here blocks it
        try:
            loaded = self._load_checked(entry)
            if loaded.classifier.labels != list(manifest.labels):
                raise HealthCheckFailed(
                    f"labels inside the file differ from the signed manifest's for v{entry.version}"
                )
        except (ModelLoadError, HealthCheckFailed) as exc:
            reason = str(exc)
            self.store.fail_load(entry, reason)
            self.store.set_etag(etag)
            log.error(
                "v%d failed its check, v%s keeps serving: %s", entry.version, previous and previous.version, reason
            )
            self._event(
                "rollback",
                manifest,
                detail={"reason": reason[:500], "restored_version": previous.version if previous else None},
            )
            return UpdateResult(UpdateStatus.ROLLED_BACK, manifest.version, reason)
        except BaseException:
            self.store.fail_load(entry, "interrupted", block=False)  # e.g. disk full: not the model's fault
            raise
        self.store.commit_load(entry)  # only now does "current" name it
        if self._live is None:
            self._live = LiveModel(loaded, self._on_prediction)
        else:
            self._live.swap(loaded)
        self.store.set_etag(etag)
        self._event(
            "update",
            manifest,
            detail={"from_version": previous.version if previous else None, "rollback": manifest.rollback, **detail},
        )
        log.info("now serving %s v%d (%s)", manifest.model, manifest.version, manifest.variant)
        return UpdateResult(UpdateStatus.UPDATED, manifest.version)

    # -- background ---------------------------------------------------------------------

    def _poll_loop(self) -> None:
        failures = 0
        # local_then_background checks at once; latest already did its check in start().
        delay = 0.0 if self.options.mode == UpdateMode.LOCAL_THEN_BACKGROUND else self._interval()
        while not self._stop.is_set():
            self._wake.wait(delay)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                result = self.check_now()
            except Exception as exc:  # a bug must not silently end polling: log it and back off like a failure
                log.exception("update check crashed")
                result = UpdateResult(UpdateStatus.FAILED, detail=repr(exc))
            if result.status == UpdateStatus.FAILED:
                failures += 1
                delay = backoff_delay(
                    failures, self.options.backoff_initial_s, self.options.backoff_max_s, result.retry_after, self._rng
                )
            else:
                failures = 0
                delay = max(self._interval(), min(result.retry_after or 0.0, self.options.backoff_max_s))

    def _interval(self) -> float:
        jitter = self.options.jitter
        return self.options.poll_interval_s * self._rng.uniform(1 - jitter, 1 + jitter)

    def wake(self) -> None:
        """Check now in the background instead of waiting for the next poll (e.g. on app foreground)."""
        self._wake.set()

    def flush_telemetry(self) -> FlushResult:
        return self.telemetry.flush(self.client)

    def _telemetry_loop(self) -> None:
        failures = 0
        interval = self.options.telemetry.flush_interval_s
        delay = interval
        while not self._stop.wait(delay):
            try:
                result = self.flush_telemetry()
            except Exception as exc:  # e.g. a locked database: keep the uploader alive, say why
                log.exception("telemetry flush crashed")
                result = FlushResult(0, 0, 0, -1, repr(exc))
            if result.error:
                failures += 1
                delay = backoff_delay(
                    failures, interval, self.options.backoff_max_s, self.telemetry.last_retry_after, self._rng
                )
            else:
                failures = 0
                delay = interval * self._rng.uniform(1 - self.options.jitter, 1 + self.options.jitter)
        try:
            # One last attempt on the way out so a short-lived app still reports.
            self.flush_telemetry()
        except Exception as exc:  # closing must not fail because the network is down
            log.info("final telemetry flush failed: %r", exc)
