"""Typed options for the updater and its parts: every knob an app can turn, with device-friendly defaults."""

from __future__ import annotations

import dataclasses
import enum
import sys
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from edge.variants import Runtime as RuntimeName


class UpdateMode(enum.StrEnum):
    """When the app gets its model (Firebase's download types, plus a background poll for all but `local`)."""

    LOCAL = "local"
    """Use what is installed (or bundled); never poll. Blocks for a download only when there is no model at all."""
    LOCAL_THEN_BACKGROUND = "local_then_background_update"
    """Serve the installed model at once; poll and swap in the background."""
    LATEST = "latest"
    """Block start-up until one check has finished (falling back to the installed model if it fails)."""


def always() -> bool:
    """Default download condition: any network, any battery state."""
    return True


def persistent_device_id(folder: Path) -> str:
    """A random id made once per install and kept in `folder`: stable for rollout buckets, never a hardware id."""
    path = Path(folder) / "device_id"
    try:
        value = path.read_text().strip()
        if value:
            return value
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = uuid.uuid4().hex
    path.write_text(value + "\n")
    return value


@dataclasses.dataclass(frozen=True)
class DeviceInfo:
    """Who is asking; sent with manifest polls and telemetry. `device_id` must be pseudonymous."""

    device_id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)
    platform: str = sys.platform
    device_class: str | None = None
    app_version: str | None = None
    os_version: str | None = None


@dataclasses.dataclass(frozen=True)
class DownloadOptions:
    """How one model file is fetched."""

    deadline_s: float = 600.0  # whole download, across resumes: a slow drip cannot hold the updater forever
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0  # silence between two chunks
    max_resumes: int = 20  # connection cuts tolerated per download
    resume_backoff_s: float = 0.5


@dataclasses.dataclass(frozen=True)
class HealthOptions:
    """The post-swap check a new model must pass before it serves."""

    latency_budget_ms: float = 1000.0  # median probe, batch 1, after one warm-up
    sum_tolerance: float = 0.05  # |sum(probabilities) - 1| allowed (plus quantization step for integer outputs)
    probe_images: tuple[Path, ...] = ()  # bundled with the app; synthetic probes are added when empty
    synthetic_probes: int = 3


@dataclasses.dataclass(frozen=True)
class TelemetryOptions:
    """The on-device event queue and its uploader."""

    max_events: int = 10_000  # queue bound; the oldest are dropped (and counted) beyond it
    batch_size: int = 500
    flush_interval_s: float = 60.0
    allow_attachments: bool = False  # images never leave the device unless the app opts in here
    record_inferences: bool = True


@dataclasses.dataclass(frozen=True)
class UpdaterOptions:
    """Everything `Updater` needs: where the registry is, what to trust, where to keep models."""

    registry_url: str
    model: str
    store_dir: Path
    public_keys: Mapping[str, Any]  # key id -> Ed25519PublicKey or 32 raw bytes; the pinned trust root
    api_key: str | None = None  # a registry API key with role `device`
    alias: str = "production"
    mode: UpdateMode = UpdateMode.LOCAL_THEN_BACKGROUND
    device: DeviceInfo = dataclasses.field(default_factory=DeviceInfo)
    runtime: RuntimeName | None = None  # None: the first runtime installed here
    bundled_model: Path | None = None  # shipped with the app: the model of last resort
    # The registry's version number of the bundled file, if known. The file's own metadata carries the
    # training run's id, not the registry's number; 0 ranks it below anything the registry offers.
    bundled_version: int = 0
    threads: int | None = None
    poll_interval_s: float = 3600.0
    jitter: float = 0.2  # each wait is interval x (1 ± jitter) so a fleet does not poll in lockstep
    backoff_initial_s: float = 30.0
    backoff_max_s: float = 6 * 3600.0  # also caps a server's Retry-After, for the poller and telemetry
    download_conditions: Callable[[], bool] = always  # e.g. unmetered network and charging and idle
    allow_label_changes: bool = False  # accept a label list that does not extend the installed one
    max_clock_skew_s: float = 300.0
    download: DownloadOptions = dataclasses.field(default_factory=DownloadOptions)
    health: HealthOptions = dataclasses.field(default_factory=HealthOptions)
    telemetry: TelemetryOptions = dataclasses.field(default_factory=TelemetryOptions)
    transport: httpx.BaseTransport | None = None  # e.g. an in-process registry; None: the real network

    def __post_init__(self) -> None:
        if not self.public_keys:
            raise ValueError("public_keys is empty: pin at least one registry signing key (GET /v1/keys)")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter={self.jitter}: use a fraction in [0, 1)")
        if self.poll_interval_s <= 0:
            raise ValueError(f"poll_interval_s={self.poll_interval_s}: must be positive")
