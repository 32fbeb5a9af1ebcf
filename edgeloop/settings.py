"""Typed settings for the shared kernel, read from `EDGELOOP_*` variables and `.env`.

Nothing is built at import: call `get_settings()`; tests call `get_settings.cache_clear()`
after changing the environment.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from edgeloop.errors import ConfigError

# The model the demo publishes and the DAGs retrain (`EDGELOOP_DAGS_MODEL_NAME` names another): one name, so a
# retrain finds the demo's production to warm-start from and gate against instead of starting a second model.
DEFAULT_MODEL = "shelf-products"


class Settings(BaseSettings):
    """Where edgeloop keeps things on this machine and which warehouse it writes to."""

    model_config = SettingsConfigDict(
        env_prefix="EDGELOOP_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    workspace: Path = Field(
        default=Path("workspace"),
        description="Root folder for everything the embedded defaults keep locally.",
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR.")
    warehouse: str = Field(
        default="",
        description=(
            "Warehouse URL: `duckdb:///path/to/file.duckdb` (default: "
            "<workspace>/warehouse.duckdb) or `bigquery://PROJECT/DATASET`."
        ),
    )
    bq_project: str = Field(default="", description="Shortcut for `bigquery://PROJECT/<bq_dataset>` when set.")
    bq_dataset: str = Field(default="edgeloop", description="BigQuery dataset (one per environment).")
    bq_location: str = Field(default="US", description="BigQuery location for the dataset.")

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}; use DEBUG, INFO, WARNING or ERROR")
        return level

    @field_validator("warehouse")
    @classmethod
    def _known_warehouse(cls, value: str) -> str:
        if value and not value.startswith(("duckdb://", "bigquery://")):
            raise ValueError(
                f"unknown warehouse URL {value!r}; use duckdb:///path/file.duckdb or bigquery://PROJECT/DATASET"
            )
        return value

    @property
    def warehouse_url(self) -> str:
        """The warehouse URL in force, after defaults."""
        if self.warehouse:
            return self.warehouse
        if self.bq_project:
            return f"bigquery://{self.bq_project}/{self.bq_dataset}"
        return f"duckdb:///{(self.workspace / 'warehouse.duckdb').resolve()}"

    def path(self, *parts: str) -> Path:
        """A path under the workspace (not created)."""
        return self.workspace.joinpath(*parts)


def load(model: type[BaseSettings]) -> BaseSettings:
    """Build a settings class, turning a validation error into one readable `ConfigError`."""
    try:
        return model()
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, model)) from None


def describe_validation_error(exc: ValidationError, model: type[BaseSettings]) -> str:
    """One line per bad field, naming the environment variable, the value and the fix."""
    prefix = str(model.model_config.get("env_prefix", ""))
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
        env = (prefix + field).upper()
        lines.append(f"{env}={err.get('input')!r}: {err['msg']}")
    return "invalid settings: " + "; ".join(lines)


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings; cached so every caller sees the same values."""
    settings = load(Settings)
    assert isinstance(settings, Settings)  # narrowing for mypy; load returns what it is given
    return settings


_LOGGING_CONFIGURED = False


def setup_logging(level: str | None = None) -> None:
    """Configure logging once per process (Rich handler on a terminal)."""
    global _LOGGING_CONFIGURED
    if _LOGGING_CONFIGURED:
        if level:
            logging.getLogger().setLevel(level)
        return
    from rich.console import Console
    from rich.logging import RichHandler

    logging.basicConfig(
        level=level or "INFO",
        format="%(name)s: %(message)s",
        datefmt="[%X]",
        # Logs go to stderr so a command's stdout stays machine-readable.
        handlers=[RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=False, markup=False)],
    )
    # Chatty third parties drown our own messages at INFO.
    for noisy in ("urllib3", "google", "absl", "apache_beam", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    _LOGGING_CONFIGURED = True
