"""The model registry: publish packages, move aliases, serve signed manifests and artifacts, ingest telemetry.

from registry_api import create_app, RegistrySettings
app = create_app(RegistrySettings())
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry_api.core.config import RegistrySettings, get_registry_settings
    from registry_api.main import create_app

__all__ = ["RegistrySettings", "create_app", "get_registry_settings"]


def __getattr__(name: str) -> Any:
    # Lazy, so `edgeloop --help` and the publisher client do not pay for FastAPI and SQLAlchemy.
    if name == "create_app":
        from registry_api.main import create_app

        return create_app
    if name in ("RegistrySettings", "get_registry_settings"):
        from registry_api.core import config

        return getattr(config, name)
    raise AttributeError(f"module 'registry_api' has no attribute {name!r}")
