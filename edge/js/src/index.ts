/** edgeloop's device SDK for TypeScript: the public API (everything else is private). */

export * from "./errors.js";
export { canonicalBytes, canonicalText, parseJson, pythonFloat } from "./json.js";
export {
  base64Decode,
  base64Encode,
  instantUs,
  type InputSpec,
  type Manifest,
  MAX_INT,
  nobleSignatureCheck,
  publicKeysFromBase64,
  type PublicKeys,
  type Quantization,
  type Runtime,
  type SignatureCheck,
  signatureCheck,
  verifyManifest,
  verifyManifestWith,
  webCryptoSignatureCheck,
} from "./manifest.js";
export { checkBytes, checkManifest, checkManifestWith, type Expectations } from "./verify.js";
export { backoffDelay, parseRetryAfter, pollDelay, type Random } from "./backoff.js";
export { type ClientOptions, type Fetch, MAX_MANIFEST_BYTES, type ManifestResponse, type PollParams, RegistryClient } from "./client.js";
export { type DownloadOptions, type DownloadResult, downloadArtifact } from "./download.js";
export { EMPTY_STATE, type InstalledModel, MemoryStore, type ModelStore, type PartialDownload, type StoreState } from "./store.js";
export {
  type DeadLetter,
  type EventKind,
  type FlushResult,
  MemoryQueueStorage,
  type QueueContents,
  type QueueOptions,
  type QueueStorage,
  type TelemetryEvent,
  TelemetryQueue,
} from "./telemetry.js";
export { type DeviceInfo, type UpdateResult, type UpdateStatus, Updater, type UpdaterOptions } from "./updater.js";
export { type InputDtype, quantize, toPixels } from "./preprocess.js";
export { Classifier, healthCheck, type HealthOptions, type Image, type LoadedModel, type ModelInfo, type ModelRuntime, syntheticProbes } from "./runtime.js";
