"""Settings and security primitives of the registry."""
