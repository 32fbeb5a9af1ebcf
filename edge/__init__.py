"""edgeloop's device SDK: run a classifier, keep it current from the registry, report back.

    import edge

    updater = edge.Updater(edge.UpdaterOptions(registry_url=..., model=..., store_dir=..., public_keys=...))
    with updater:
        print(updater.model.classify(image))   # [("lavender-soap", 0.97), ...]

Needs only `pip install edgeloop[edge]`: never TensorFlow, Beam, Airflow or the server side.
"""

from __future__ import annotations

from edge._client import ManifestResponse, RegistryClient
from edge._download import DownloadResult, download_artifact
from edge._exceptions import (
    DeadlineExceeded,
    DownloadError,
    EdgeError,
    HealthCheckFailed,
    IntegrityError,
    ManifestError,
    ManifestExpired,
    MetadataError,
    ModelLoadError,
    OversizeError,
    RegistryError,
    RollbackRefused,
    StoreError,
    VerificationError,
    WrongModel,
)
from edge._health import HealthReport
from edge._health import check as health_check
from edge._live import LiveModel, LoadedModel, Prediction
from edge._options import (
    DeviceInfo,
    DownloadOptions,
    HealthOptions,
    TelemetryOptions,
    UpdateMode,
    UpdaterOptions,
    persistent_device_id,
)
from edge._store import BlockedVersion, InstalledModel, ModelStore, StoreState
from edge._telemetry import FlushResult, TelemetryQueue
from edge._updater import Updater, UpdateResult, UpdateStatus
from edge._verify import Expectations, check_file, check_manifest
from edge.bench import LatencyStats, bench_file, measure
from edge.events import TelemetryBatch, TelemetryEvent, TelemetryReceipt
from edge.manifest import InputSpec, Manifest, load_public_key, verify
from edge.metadata import ModelMetadata
from edge.runtime import Classifier, LiteRTBackend, OnnxBackend, Runtime, available_runtimes, load
from edge.variants import VARIANTS, VariantSpec

__all__ = [
    "VARIANTS",
    "BlockedVersion",
    "Classifier",
    "DeadlineExceeded",
    "DeviceInfo",
    "DownloadError",
    "DownloadOptions",
    "DownloadResult",
    "EdgeError",
    "Expectations",
    "FlushResult",
    "HealthCheckFailed",
    "HealthOptions",
    "HealthReport",
    "InputSpec",
    "InstalledModel",
    "IntegrityError",
    "LatencyStats",
    "LiteRTBackend",
    "LiveModel",
    "LoadedModel",
    "Manifest",
    "ManifestError",
    "ManifestExpired",
    "ManifestResponse",
    "MetadataError",
    "ModelLoadError",
    "ModelMetadata",
    "ModelStore",
    "OnnxBackend",
    "OversizeError",
    "Prediction",
    "RegistryClient",
    "RegistryError",
    "RollbackRefused",
    "Runtime",
    "StoreError",
    "StoreState",
    "TelemetryBatch",
    "TelemetryEvent",
    "TelemetryOptions",
    "TelemetryQueue",
    "TelemetryReceipt",
    "UpdateMode",
    "UpdateResult",
    "UpdateStatus",
    "Updater",
    "UpdaterOptions",
    "VariantSpec",
    "VerificationError",
    "WrongModel",
    "available_runtimes",
    "bench_file",
    "check_file",
    "check_manifest",
    "download_artifact",
    "health_check",
    "load",
    "load_public_key",
    "measure",
    "persistent_device_id",
    "verify",
]
