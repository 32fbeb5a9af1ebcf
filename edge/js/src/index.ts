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
  publicKeysFromBase64,
  type PublicKeys,
  type Quantization,
  type Runtime,
  verifyManifest,
} from "./manifest.js";
export { checkBytes, checkManifest, type Expectations } from "./verify.js";
