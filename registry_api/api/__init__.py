"""The HTTP layer: routers per resource, dependencies, and the error → status mapping."""
