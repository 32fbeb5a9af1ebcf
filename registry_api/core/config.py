"""Registry settings: `EDGELOOP_REGISTRY_*` variables (and `.env`), built only when asked for."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from edgeloop.settings import get_settings, load


def _workspace() -> Path:
    return get_settings().workspace


class RegistrySettings(BaseSettings):
    """Everything one registry deployment needs; defaults keep it all under `<workspace>/registry/`."""

    model_config = SettingsConfigDict(
        env_prefix="EDGELOOP_REGISTRY_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        default="",
        description=(
            "SQLAlchemy URL; default sqlite:///<workspace>/registry/registry.db. PostgreSQL (the postgres extra): "
            "postgresql+psycopg://user:password@host:5432/db; create or upgrade its schema with `edgeloop registry migrate`."
        ),
    )
    artifacts_uri: str = Field(
        default="",
        description="Where artifacts live (a folder or gs://bucket/prefix); default <workspace>/registry/artifacts.",
    )
    warehouse_url: str = Field(default="", description="Telemetry warehouse; default: EDGELOOP_WAREHOUSE.")
    package_roots: list[str] = Field(
        default_factory=list,
        description=(
            "Folders or gs:// prefixes a package may be registered from by URI; default: <workspace>/packages "
            "(where `edgeloop convert` writes). The signing key may not lie inside one."
        ),
    )
    public_url: str = Field(default="", description="Base URL devices use (for artifact_url); default: relative URLs.")

    signing_key: str = Field(
        default="",
        description=(
            "Ed25519 private key: a PEM file path or base64 of the 32-byte seed (e.g. from a secret manager). "
            "Empty: <workspace>/registry/signing_key.pem, generated on first start. Never inside a package root "
            "or the artifacts store (refused at start-up)."
        ),
    )
    signing_key_id: str = Field(
        default="", description="Key id put in manifests; default: first 16 hex of sha256(public key)."
    )
    extra_public_keys: dict[str, str] = Field(
        default_factory=dict,
        description="Older (or next) public keys to list at /v1/keys during rotation: key id -> PEM or base64.",
    )

    manifest_ttl_s: int = Field(default=7 * 24 * 3600, ge=60, description="Manifest lifetime (expires_at - issued_at).")
    manifest_issue_interval_s: int = Field(
        default=3600, ge=1, description="issued_at is rounded down to this, so ETags stay stable within it."
    )
    manifest_max_age_s: int = Field(
        default=60, ge=0, description="Cache-Control max-age on manifests (CDN and device)."
    )
    state_cache_ttl_s: float = Field(
        default=2.0,
        ge=0,
        description=(
            "How long a worker trusts its cached aliases/versions; then polls go on answering from them while "
            "one background reload runs, so other workers' changes show within about this."
        ),
    )
    latency_budget_ms: float | None = Field(
        default=None, gt=0, description="Default latency budget for variant choice."
    )
    latency_metric: Literal["p50_ms", "p90_ms", "p99_ms"] = "p90_ms"
    benchmark_devices: int = Field(
        default=5,
        ge=1,
        description=(
            "Variant choice takes the upper median of the latest report from each of this many devices that "
            "reported last (per version, variant and device class)."
        ),
    )
    benchmark_min_devices: int = Field(
        default=1, ge=1, description="Distinct devices that must have reported a variant before its latency counts."
    )
    benchmark_clock_skew_s: float = Field(
        default=300.0, ge=0, description="How far a benchmark's measured_at may be ahead of the registry's clock."
    )
    benchmark_max_age_s: float = Field(
        default=30 * 24 * 3600.0, gt=0, description="How old a benchmark's measured_at may be when it is uploaded."
    )
    default_variants: dict[str, str] = Field(
        default_factory=lambda: {"litert": "tflite_int8", "onnxruntime": "onnx_int8"},
        description="Variant served per runtime when no benchmark decides.",
    )

    max_package_bytes: int = Field(default=512 * 1024 * 1024, ge=1, description="Upload cap for one package.")
    max_body_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="Cap on every other JSON body (aliases, rollbacks, benchmarks, publish by URI).",
    )
    max_telemetry_bytes: int = Field(
        default=1024 * 1024, ge=1, description="Cap on a telemetry body (compressed and not)."
    )
    max_telemetry_events: int = Field(default=1000, ge=1, description="Cap on events per telemetry batch.")
    telemetry_max_age_s: int = Field(
        default=90 * 24 * 3600,
        ge=60,
        description="Oldest event_time accepted, before receipt (devices queue events offline for days).",
    )
    telemetry_max_skew_s: int = Field(
        default=600, ge=0, description="How far past the registry's clock an event_time may be (device clock skew)."
    )
    telemetry_group_rows: int = Field(
        default=5000, ge=1, description="Rows the warehouse writer commits at once at most."
    )
    telemetry_sink: Literal["warehouse", "inbox"] = Field(
        default="warehouse",
        description=(
            "Where an accepted batch is committed before it is acknowledged: warehouse (straight into it: one "
            "registry process, the embedded default) or inbox (the registry database's telemetry_inbox, which any "
            "number of replicas append to; one loader moves it into the warehouse exactly once)."
        ),
    )
    telemetry_loader: Literal["embedded", "off"] = Field(
        default="embedded",
        description=(
            "With telemetry_sink=inbox: embedded (every replica runs a loader; one at a time holds the lease, "
            "another takes over when it dies) or off (run `edgeloop telemetry load` yourself, e.g. from cron)."
        ),
    )
    telemetry_load_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="How often the embedded loader looks at the inbox (BigQuery: each look with rows is one load job and one MERGE).",
    )
    telemetry_load_rows: int = Field(
        default=50_000, ge=1, le=1_000_000, description="Rows one load moves at most (one warehouse transaction)."
    )

    rate_per_s: dict[str, float] = Field(
        default_factory=lambda: {"publisher": 20.0, "device": 2000.0, "reader": 50.0, "qa": 20.0},
        description="Default token-bucket refill per role (requests/s); a key may override it.",
    )
    burst_s: float = Field(default=2.0, gt=0, description="Bucket size as seconds of refill.")
    keys_cache_ttl_s: float = Field(default=5.0, ge=0, description="Revocations take effect within this.")

    console_secret: str = Field(
        default="",
        description=(
            "Secret that signs console session cookies (any long random string, shared by all replicas). "
            "Empty: <workspace>/registry/console_secret, generated on first start. Not the manifest signing key."
        ),
    )
    console_session_ttl_s: int = Field(
        default=8 * 3600, ge=60, description="A console login lasts this long (and ends sooner if its key is revoked)."
    )

    artifact_cache: Literal["private", "public"] = Field(
        default="private",
        description=(
            "Cache-Control of downloads: private (only the device's own cache keeps them) or public (a shared "
            "cache or CDN may store them, one copy per key header value; it goes on serving a revoked key for "
            "up to a year, so only behind a CDN that checks access itself, e.g. with signed URLs)."
        ),
    )
    signed_url_redirect: bool = Field(
        default=False,
        description="On gs:// storage, answer downloads with a 307 to a signed URL (needs real credentials).",
    )
    signed_url_ttl_s: int = Field(default=900, ge=60)

    cors_origins: list[str] = Field(
        default_factory=list,
        description=(
            "Browser origins allowed to call the API cross-origin (the web kiosk, web apps), e.g. "
            '["https://kiosk.example"]; none by default. Exact scheme://host[:port], no wildcard.'
        ),
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    access_log: bool = True

    @field_validator("default_variants")
    @classmethod
    def _known_variants(cls, value: dict[str, str]) -> dict[str, str]:
        from edge.variants import VARIANTS

        for runtime, name in value.items():
            if name not in VARIANTS or VARIANTS[name].runtime != runtime:
                raise ValueError(f"{runtime}={name!r} is not a {runtime} variant; known: {', '.join(VARIANTS)}")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _exact_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            # An origin is compared byte for byte with the browser's: a path, a slash or a "*" never matches.
            if not re.fullmatch(
                r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?", origin
            ):
                raise ValueError(
                    f"{origin!r} is not an origin; write scheme://host[:port] exactly as browsers send it,"
                    " e.g. https://kiosk.example (no path, no trailing slash, no wildcard)"
                )
        return value

    @field_validator("benchmark_min_devices")
    @classmethod
    def _enough_devices(cls, value: int, info: ValidationInfo) -> int:
        window = info.data.get("benchmark_devices")
        if window is not None and value > window:
            raise ValueError(
                f"exceeds benchmark_devices ({window}); lower it or raise EDGELOOP_REGISTRY_BENCHMARK_DEVICES"
            )
        return value

    @property
    def root(self) -> Path:
        return _workspace() / "registry"

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{(self.root / 'registry.db').resolve()}"

    @property
    def roots(self) -> list[str]:
        """Where packages may be registered from by URI."""
        return self.package_roots or [str((_workspace() / "packages").resolve())]

    @property
    def default_key_path(self) -> Path:
        """Where the signing key is kept (and generated on first start) when `signing_key` is empty."""
        return self.root / "signing_key.pem"

    @property
    def default_console_secret_path(self) -> Path:
        """Where the console's cookie secret is kept (and generated) when `console_secret` is empty."""
        return self.root / "console_secret"

    @property
    def artifacts(self) -> str:
        return self.artifacts_uri or str((self.root / "artifacts").resolve())

    @property
    def warehouse(self) -> str:
        return self.warehouse_url or get_settings().warehouse_url


@functools.cache
def get_registry_settings() -> RegistrySettings:
    """The process-wide registry settings (cached; tests call `get_registry_settings.cache_clear()`)."""
    settings = load(RegistrySettings)
    if not isinstance(settings, RegistrySettings):  # load returns what it is given; narrowing for mypy
        raise TypeError("unexpected settings type")
    return settings
