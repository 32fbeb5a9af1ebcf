"""Settings of the Airflow DAGs, read from `EDGELOOP_DAGS_*` variables (or `.env`).

The DAG files read these at parse time only for what shapes the DAG (schedules, the
photos URI's scheme, timeouts); tasks read them again when they run, so a worker's
environment is what counts. Nothing is built at import: call `get_dag_settings()`.

Paths default to folders under the kernel's workspace (`EDGELOOP_WORKSPACE`); any of
them may be a `gs://` URI instead.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from edgeloop import storage
from edgeloop.settings import DEFAULT_MODEL, get_settings, load


class HealthThresholds(BaseSettings):
    """When a canary is healthy enough to promote; read from `EDGELOOP_DAGS_HEALTH_*`."""

    model_config = SettingsConfigDict(env_prefix="EDGELOOP_DAGS_HEALTH_", env_file=".env", extra="ignore")

    min_events: int = Field(default=200, ge=1, description="Inference events the canary needs before any verdict.")
    max_error_rate: float = Field(default=0.02, ge=0.0, le=1.0, description="Errors / (inferences + errors).")
    max_rollbacks: int = Field(default=0, ge=0, description="Device-side rollbacks away from the canary tolerated.")
    max_p95_latency_ms: float | None = Field(
        default=None, gt=0.0, description="Absolute p95 latency ceiling per device class (None = no ceiling)."
    )
    max_p95_regression: float = Field(
        default=1.25, ge=1.0, description="Canary p95 may be at most this multiple of production's, per device class."
    )
    low_confidence_score: float = Field(
        default=0.5, gt=0.0, le=1.0, description="A top-1 score below this counts as a low-confidence prediction."
    )
    max_low_confidence_rate: float = Field(default=0.3, ge=0.0, le=1.0)
    max_psi: float = Field(
        default=0.25, ge=0.0, description="Population stability index of predicted labels vs the eval split."
    )
    min_device_class_events: int = Field(
        default=30, ge=1, description="Device classes with fewer inference events are reported but not judged."
    )
    lookback_days: int = Field(default=7, ge=1, description="Telemetry window ending at the run's date.")


class DagSettings(BaseSettings):
    """Everything the `new_photos`, `retrain` and `release_health` DAGs need to know."""

    model_config = SettingsConfigDict(env_prefix="EDGELOOP_DAGS_", env_file=".env", extra="ignore")

    registry_url: str = Field(default="http://127.0.0.1:8000", description="Base URL of the registry API.")
    api_key: SecretStr = Field(default=SecretStr(""), description="Registry API key with the `publisher` role.")
    registry_timeout_s: float = Field(default=60.0, gt=0.0)
    model_name: str = Field(default=DEFAULT_MODEL, min_length=1, description="Registry model the DAGs publish.")
    canary_rollout_percent: int = Field(default=10, ge=1, le=100, description="Share of devices on the canary.")

    photos_uri: str = Field(default="", description="Folder (or gs:// prefix) of photos, one folder per product.")
    datasets_uri: str = Field(default="", description="Where ingest writes dataset versions.")
    runs_uri: str = Field(default="", description="Where training writes runs.")
    packages_uri: str = Field(default="", description="Where conversion writes model packages.")
    state_uri: str = Field(default="", description="Small state the DAGs keep (listing fingerprints, reports).")

    retrain_schedule: str = Field(default="@weekly", description="Cron or preset; new photos trigger runs too.")
    health_schedule: str = Field(default="@daily", description="Cron or preset; each canary triggers a run too.")
    watch_schedule: str = Field(default="*/30 * * * *", description="How often `new_photos` looks at the photos.")
    quiet_minutes: float = Field(default=30.0, ge=0.0, description="Uploads must have stopped this long.")
    poke_interval_s: float = Field(default=60.0, gt=0.0)
    watch_timeout_minutes: float = Field(default=25.0, gt=0.0, description="A watch run gives up (skipped) after this.")

    beam_runner: str = Field(default="DirectRunner", description="DirectRunner locally, DataflowRunner in the cloud.")
    beam_options: list[str] = Field(default_factory=list, description="Extra Beam flags, e.g. --project=… --region=….")
    gcp_conn_id: str = Field(default="google_cloud_default", description="Airflow connection for gs:// sensors.")

    owner: str = Field(default="ml-platform")
    retries: int = Field(default=2, ge=2, description="Every task retries at least twice.")
    retry_delay_s: float = Field(default=60.0, ge=0.0)
    task_timeout_minutes: float = Field(default=30.0, gt=0.0, description="Timeout of every short task.")
    train_timeout_minutes: float = Field(default=240.0, gt=0.0, description="Timeout of ingest, train and convert.")

    health: HealthThresholds = Field(default_factory=HealthThresholds)

    @field_validator("registry_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"registry URL {value!r} must start with http:// or https://")
        return value.rstrip("/")

    def _under_workspace(self, value: str, name: str) -> str:
        return value or str(get_settings().path(name).resolve())

    @property
    def photos(self) -> str:
        return self._under_workspace(self.photos_uri, "photos")

    @property
    def datasets(self) -> str:
        return self._under_workspace(self.datasets_uri, "datasets")

    @property
    def runs(self) -> str:
        return self._under_workspace(self.runs_uri, "runs")

    @property
    def packages(self) -> str:
        return self._under_workspace(self.packages_uri, "packages")

    @property
    def state(self) -> str:
        return self._under_workspace(self.state_uri, "dags")

    @property
    def photos_on_gcs(self) -> bool:
        return storage.scheme(self.photos) == "gs"


@functools.cache
def get_dag_settings() -> DagSettings:
    """The DAG settings from the environment, cached; tests call `get_dag_settings.cache_clear()`."""
    settings = load(DagSettings)
    assert isinstance(settings, DagSettings)  # narrowing for mypy; load returns what it is given
    return settings


def default_args(settings: DagSettings) -> dict[str, Any]:
    """Owner, retries and timeouts every edgeloop task starts from."""
    return {
        "owner": settings.owner,
        "retries": settings.retries,
        "retry_delay": dt.timedelta(seconds=settings.retry_delay_s),
        "execution_timeout": dt.timedelta(minutes=settings.task_timeout_minutes),
    }
