"""The model registry: publish packages, move aliases, serve signed manifests and artifacts, ingest telemetry.

from registry_api import create_app, RegistrySettings
app = create_app(RegistrySettings())
"""

from registry_api.core.config import RegistrySettings, get_registry_settings
from registry_api.main import create_app

__all__ = ["RegistrySettings", "create_app", "get_registry_settings"]
