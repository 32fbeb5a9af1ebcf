"""The release console at /console: server-rendered pages on the registry's own data (see `routes`)."""

from registry_api.console.routes import build_router

__all__ = ["build_router"]
