"""Domain errors of the registry; the API layer alone turns them into HTTP statuses.

RegistryApiError           every registry error (an EdgeloopError: the CLI prints it); the SDK's
                           edge.RegistryError is the device's view of an error answer
├── NotFoundError          no such model, version, alias, artifact or key          → 404
├── PackageRejected        card, hashes or verdicts of a package do not check out   → 422
├── MalformedBody          body not strict JSON (NaN, NUL, bad UTF-8, too deep)     → 400
├── InvalidRequest         a well-formed request that cannot be honoured            → 422
├── PayloadTooLarge        body over a configured cap                               → 413
├── Unauthenticated        missing, unknown or revoked API key                      → 401
├── Forbidden              the key's role may not do this                           → 403
├── RateLimited            the key's token bucket is empty (has `retry_after`)      → 429
├── Conflict               a concurrent change won; retry                           → 409
├── RangeNotSatisfiable    a Range outside the object (has `size`)                  → 416
└── SchemaOutOfDate        the database is older than this release: migrate it      (refused at start-up)
"""

from __future__ import annotations

from edgeloop.errors import EdgeloopError


class RegistryApiError(EdgeloopError):
    """Base class of the registry's domain errors."""


class NotFoundError(RegistryApiError):
    """No such model, version, alias, artifact or key."""


class PackageRejected(RegistryApiError):
    """A model package whose card, file hashes or verdicts do not check out."""


class MalformedBody(RegistryApiError):
    """A body that cannot be parsed as strict JSON: not UTF-8, NaN/Infinity, NUL, lone surrogates, too deep."""


class InvalidRequest(RegistryApiError):
    """A request that parses but cannot be honoured."""


class PayloadTooLarge(RegistryApiError):
    """A body over a configured cap."""


class Unauthenticated(RegistryApiError):
    """Missing, unknown or revoked API key."""


class Forbidden(RegistryApiError):
    """The key's role may not do this."""


class RateLimited(RegistryApiError):
    """The key's token bucket is empty."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Conflict(RegistryApiError):
    """A concurrent change won; the caller may retry."""


class RangeNotSatisfiable(RegistryApiError):
    """A Range header that selects nothing of the object."""

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


class SchemaOutOfDate(RegistryApiError):
    """The registry database's schema is older than this release; `edgeloop registry migrate` upgrades it."""
