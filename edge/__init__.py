"""edgeloop's device SDK: run a classifier, keep it current from the registry, report back.

    import edge

    updater = edge.Updater(edge.UpdaterOptions(registry_url=..., model=..., store_dir=..., public_keys=...))
    with updater:
        print(updater.model.classify(image))   # [("lavender-soap", 0.97), ...]

Needs only `pip install edgeloop[edge]`: never TensorFlow, Beam, Airflow or the server side.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Names load on first use (PEP 562): `import edge.events` (the registry, the DAGs) or the CLI
# should not pay ~1 s for httpx, numpy and the runtimes they never touch.
_EXPORTS: dict[str, tuple[str, str]] = {
    "ManifestResponse": ("edge._client", "ManifestResponse"),
    "RegistryClient": ("edge._client", "RegistryClient"),
    "DownloadResult": ("edge._download", "DownloadResult"),
    "download_artifact": ("edge._download", "download_artifact"),
    "DeadlineExceeded": ("edge._exceptions", "DeadlineExceeded"),
    "DownloadError": ("edge._exceptions", "DownloadError"),
    "EdgeError": ("edge._exceptions", "EdgeError"),
    "HealthCheckFailed": ("edge._exceptions", "HealthCheckFailed"),
    "IntegrityError": ("edge._exceptions", "IntegrityError"),
    "ManifestError": ("edge._exceptions", "ManifestError"),
    "ManifestExpired": ("edge._exceptions", "ManifestExpired"),
    "MetadataError": ("edge._exceptions", "MetadataError"),
    "ModelLoadError": ("edge._exceptions", "ModelLoadError"),
    "OversizeError": ("edge._exceptions", "OversizeError"),
    "RegistryError": ("edge._exceptions", "RegistryError"),
    "RollbackRefused": ("edge._exceptions", "RollbackRefused"),
    "StaleManifest": ("edge._exceptions", "StaleManifest"),
    "StoreError": ("edge._exceptions", "StoreError"),
    "VerificationError": ("edge._exceptions", "VerificationError"),
    "WrongModel": ("edge._exceptions", "WrongModel"),
    "HealthReport": ("edge._health", "HealthReport"),
    "health_check": ("edge._health", "check"),
    "LiveModel": ("edge._live", "LiveModel"),
    "LoadedModel": ("edge._live", "LoadedModel"),
    "Prediction": ("edge._live", "Prediction"),
    "DeviceInfo": ("edge._options", "DeviceInfo"),
    "DownloadOptions": ("edge._options", "DownloadOptions"),
    "HealthOptions": ("edge._options", "HealthOptions"),
    "TelemetryOptions": ("edge._options", "TelemetryOptions"),
    "UpdateMode": ("edge._options", "UpdateMode"),
    "UpdaterOptions": ("edge._options", "UpdaterOptions"),
    "persistent_device_id": ("edge._options", "persistent_device_id"),
    "BlockedVersion": ("edge._store", "BlockedVersion"),
    "InstalledModel": ("edge._store", "InstalledModel"),
    "ModelStore": ("edge._store", "ModelStore"),
    "StoreState": ("edge._store", "StoreState"),
    "FlushResult": ("edge._telemetry", "FlushResult"),
    "TelemetryQueue": ("edge._telemetry", "TelemetryQueue"),
    "Updater": ("edge._updater", "Updater"),
    "UpdateResult": ("edge._updater", "UpdateResult"),
    "UpdateStatus": ("edge._updater", "UpdateStatus"),
    "Expectations": ("edge._verify", "Expectations"),
    "check_file": ("edge._verify", "check_file"),
    "check_manifest": ("edge._verify", "check_manifest"),
    "LatencyStats": ("edge.bench", "LatencyStats"),
    "bench_file": ("edge.bench", "bench_file"),
    "measure": ("edge.bench", "measure"),
    "TelemetryBatch": ("edge.events", "TelemetryBatch"),
    "TelemetryEvent": ("edge.events", "TelemetryEvent"),
    "TelemetryReceipt": ("edge.events", "TelemetryReceipt"),
    "InputSpec": ("edge.manifest", "InputSpec"),
    "Manifest": ("edge.manifest", "Manifest"),
    "load_public_key": ("edge.manifest", "load_public_key"),
    "verify": ("edge.manifest", "verify"),
    "ModelMetadata": ("edge.metadata", "ModelMetadata"),
    "Classifier": ("edge.runtime", "Classifier"),
    "LiteRTBackend": ("edge.runtime", "LiteRTBackend"),
    "OnnxBackend": ("edge.runtime", "OnnxBackend"),
    "Runtime": ("edge.runtime", "Runtime"),
    "available_runtimes": ("edge.runtime", "available_runtimes"),
    "load": ("edge.runtime", "load"),
    "VARIANTS": ("edge.variants", "VARIANTS"),
    "VariantSpec": ("edge.variants", "VariantSpec"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'edge' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
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
        StaleManifest,
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
    "StaleManifest",
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
