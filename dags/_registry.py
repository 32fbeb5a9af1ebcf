"""The registry client as the DAGs configure it (URL and publisher key from DagSettings)."""

from __future__ import annotations

from dags._settings import DagSettings
from registry_api.client import AliasState, Published, RegistryCallFailed, RegistryClient

__all__ = ["AliasState", "Published", "RegistryCallFailed", "RegistryClient", "connect"]


def connect(settings: DagSettings) -> RegistryClient:
    """A client for the registry the DAG settings name, with their API key."""
    return RegistryClient(
        settings.registry_url, settings.api_key.get_secret_value(), timeout_s=settings.registry_timeout_s
    )
