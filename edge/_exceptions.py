"""Every error `edge` raises, in one hierarchy, so an app can catch as narrowly as it needs.

EdgeError
├── VerificationError ........ an update that must not be installed
│   ├── ManifestError ........ bad signature, unknown key, malformed (edge.manifest)
│   ├── ManifestExpired ...... past `expires_at`: a frozen / replayed manifest
│   ├── RollbackRefused ...... lower version than installed and not a newer signed rollback
│   │   └── StaleManifest .... alias sequence below one seen here: an old manifest replayed
│   ├── WrongModel ........... other model name or alias, or labels that do not extend the installed ones
│   └── IntegrityError ....... downloaded file's sha256 or size differs from the manifest
├── DownloadError ............ the file could not be fetched (the old model keeps serving)
│   ├── DeadlineExceeded ..... overall download deadline hit (slow drip, stalled server)
│   └── OversizeError ........ server sent more bytes than the manifest declares
├── RegistryError ............ HTTP status or network failure talking to the registry
├── ModelLoadError ........... the runtime cannot load or run a file (edge.runtime)
│   └── MetadataError ........ no / unreadable edgeloop metadata in the file (edge.metadata)
├── HealthCheckFailed ........ a freshly installed model failed its probes; reverted
└── StoreError ............... the on-device model store is unusable (no model at all)
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base of every error raised by the `edge` package."""


class VerificationError(EdgeError):
    """An update that must not be installed; the installed model keeps serving."""


class ManifestError(VerificationError):
    """A manifest that must not be trusted: bad signature, unknown key, malformed."""


class ManifestExpired(VerificationError):
    """The manifest is past its `expires_at` (a replayed or frozen answer)."""


class RollbackRefused(VerificationError):
    """A lower version than installed, without a signed rollback issued after the installed model's manifest."""


class StaleManifest(RollbackRefused):
    """The manifest's alias sequence is below one this device has seen: a replayed old answer."""


class WrongModel(VerificationError):
    """The manifest names another model or alias, or its labels would renumber the installed ones."""


class IntegrityError(VerificationError):
    """The downloaded file does not match the manifest's sha256 or size."""


class DownloadError(EdgeError):
    """The model file could not be fetched; a later poll retries."""


class DeadlineExceeded(DownloadError):
    """The download did not finish within its overall deadline."""


class OversizeError(DownloadError):
    """The server kept sending past the size the signed manifest declares."""


class RegistryError(EdgeError):
    """The registry answered with an error status, or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class ModelLoadError(EdgeError):
    """The model file cannot be loaded or run here."""


class MetadataError(ModelLoadError):
    """The file has no edgeloop metadata, or it is unreadable."""


class HealthCheckFailed(EdgeError):
    """A model failed its post-install probes (non-finite or insane outputs, too slow)."""


class StoreError(EdgeError):
    """The model store has no loadable model and no bundled model to fall back on."""
