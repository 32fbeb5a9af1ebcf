/**
 * Every error the SDK throws, in one tree (the same names as the Python SDK's `edge._exceptions`):
 *
 * EdgeError
 * ├── VerificationError ........ an update that must not be installed
 * │   ├── ManifestError ........ bad signature, unknown key, malformed
 * │   ├── ManifestExpired ...... past expires_at, or issued in the future
 * │   ├── RollbackRefused ...... lower version than installed and not a newer signed rollback
 * │   │   └── StaleManifest .... alias sequence below one seen here: an old answer replayed
 * │   ├── WrongModel ........... other model or alias, runtime not installed, labels that do not extend
 * │   └── IntegrityError ....... downloaded bytes' sha256 or size differs from the manifest
 * ├── DownloadError ............ the file could not be fetched (the old model keeps serving)
 * │   ├── DeadlineExceeded ..... overall download deadline hit
 * │   └── OversizeError ........ server sent more bytes than the manifest declares
 * ├── RegistryError ............ HTTP status or network failure talking to the registry
 * ├── ModelLoadError ........... the runtime cannot load or run a file
 * ├── HealthCheckFailed ........ a freshly installed model failed its probes; reverted
 * └── StoreError ............... the model store is unusable
 */

export class EdgeError extends Error {
  constructor(message: string) {
    super(message);
    // The class name is the error kind the conformance vectors name.
    this.name = new.target.name;
  }
}

export class VerificationError extends EdgeError {}
export class ManifestError extends VerificationError {}
export class ManifestExpired extends VerificationError {}
export class RollbackRefused extends VerificationError {}
export class StaleManifest extends RollbackRefused {}
export class WrongModel extends VerificationError {}
export class IntegrityError extends VerificationError {}
export class DownloadError extends EdgeError {}
export class DeadlineExceeded extends DownloadError {}
export class OversizeError extends DownloadError {}
export class StoreError extends EdgeError {}
export class ModelLoadError extends EdgeError {}
export class HealthCheckFailed extends EdgeError {}

export class RegistryError extends EdgeError {
  readonly status: number | null;
  readonly retryAfterS: number | null;

  constructor(message: string, options: { status?: number | null; retryAfterS?: number | null } = {}) {
    super(message);
    this.status = options.status ?? null;
    this.retryAfterS = options.retryAfterS ?? null;
  }
}
