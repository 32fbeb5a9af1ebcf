/**
 * The manifest a device receives when it polls (edge/manifest.py is the reference schema).
 *
 * Field names are the wire's (snake_case): this is the signed contract, not an API of ours.
 * `verifyManifest` checks the Ed25519 signature over the canonical JSON of what was received,
 * then reads the schema strictly from that same parse, so nothing is trusted before it verifies.
 */

import * as ed from "@noble/ed25519";
import { sha512 } from "@noble/hashes/sha512";

import { ManifestError } from "./errors.js";
import { canonicalBytes, isObject, JsonNumber, type JsonObject, type JsonValue, parseJson } from "./json.js";

ed.etc.sha512Sync = (...messages: Uint8Array[]): Uint8Array => sha512(ed.etc.concatBytes(...messages));

/** Integers every JSON client reads exactly; the reference bounds counters and sizes by it too. */
export const MAX_INT = Number.MAX_SAFE_INTEGER;
export const RUNTIMES = ["litert", "onnxruntime"] as const;
export const QUANTIZATIONS = ["fp32", "fp16", "dynamic", "int8"] as const;
export type Runtime = (typeof RUNTIMES)[number];
export type Quantization = (typeof QUANTIZATIONS)[number];

export interface InputSpec {
  readonly height: number;
  readonly width: number;
  readonly channels: 3;
  readonly dtype: "float32" | "uint8" | "int8";
  /** For a quantized input: real_value = scale * (q - zero_point); real values are pixels in 0..255. */
  readonly scale: number | null;
  readonly zero_point: number | null;
  readonly layout: "NHWC";
}

export interface Manifest {
  readonly schema_version: number;
  readonly model: string;
  readonly version: number;
  readonly alias: string;
  readonly variant: string;
  readonly runtime: Runtime;
  readonly quantization: Quantization;
  readonly artifact_url: string;
  readonly sha256: string;
  readonly size: number;
  readonly labels: readonly string[];
  readonly input: InputSpec;
  readonly issued_at: string;
  readonly expires_at: string;
  readonly rollback: boolean;
  readonly rollout_percent: number;
  readonly sequence: number;
  readonly served: "target" | "previous" | "production";
  readonly key_id: string;
  readonly signature: string;
}

/** Pinned keys: key id -> the 32 raw bytes of an Ed25519 public key (GET /v1/keys gives them in base64). */
export type PublicKeys = Readonly<Record<string, Uint8Array>>;

export function base64Decode(text: string): Uint8Array {
  const binary = atob(text);
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

export function base64Encode(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

/** Keys from `GET /v1/keys` style input: key id -> base64 of the raw public key. */
export function publicKeysFromBase64(keys: Readonly<Record<string, string>>): PublicKeys {
  const out: Record<string, Uint8Array> = {};
  for (const [kid, text] of Object.entries(keys)) {
    const raw = base64Decode(text);
    if (raw.length !== 32) throw new ManifestError(`public key ${kid}: ${raw.length} bytes, Ed25519 has 32`);
    out[kid] = raw;
  }
  return out;
}

/** Base64 exactly as the registry writes it: padded, no stray characters, unused bits zero. */
function strictBase64(text: string): Uint8Array | null {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) return null;
  const bytes = base64Decode(text);
  return base64Encode(bytes) === text ? bytes : null;
}

/**
 * One Ed25519 check (RFC 8032, S < L): `true` only for a valid signature. Malformed keys, points or
 * scalars give `false`, the verdict of a wrong signature.
 */
export type SignatureCheck = (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) => Promise<boolean>;

function nobleVerify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    // zip215 off: RFC 8032 / FIPS 186-5 rules, as OpenSSL (the reference) applies them.
    return ed.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false; // malformed point or scalar: the same verdict as a wrong signature
  }
}

/** @noble/ed25519: the same verdicts on every platform, synchronous underneath. */
export const nobleSignatureCheck: SignatureCheck = async (signature, message, publicKey) => nobleVerify(signature, message, publicKey);

/** The platform's WebCrypto Ed25519 (browsers since 2025, Node 20): use `signatureCheck()` to fall back. */
export const webCryptoSignatureCheck: SignatureCheck = async (signature, message, publicKey) => {
  let key: CryptoKey;
  try {
    // Copies typed for WebCrypto (an ArrayBuffer, never a SharedArrayBuffer).
    key = await crypto.subtle.importKey("raw", publicKey.slice(), { name: "Ed25519" }, false, ["verify"]);
  } catch (err) {
    if ((err as Error).name === "NotSupportedError") throw err; // no Ed25519 here: not a verdict
    return false;
  }
  return crypto.subtle.verify({ name: "Ed25519" }, key, signature.slice(), message.slice());
};

let detected: Promise<SignatureCheck> | null = null;

/** WebCrypto's Ed25519 where the platform has it (checked once, on a known signature), @noble/ed25519 otherwise. */
export function signatureCheck(): Promise<SignatureCheck> {
  detected ??= (async () => {
    const message = new Uint8Array([1, 2, 3]);
    const secret = new Uint8Array(32).fill(7);
    const [signature, publicKey] = [ed.sign(message, secret), ed.getPublicKey(secret)];
    try {
      if (globalThis.crypto?.subtle && (await webCryptoSignatureCheck(signature, message, publicKey))) return webCryptoSignatureCheck;
    } catch (err) {
      if ((err as Error).name !== "NotSupportedError") throw err;
    }
    return nobleSignatureCheck;
  })();
  return detected;
}

interface SignedParts {
  readonly data: JsonObject;
  readonly signature: Uint8Array | null;
  readonly signed: Uint8Array;
  readonly publicKey: Uint8Array;
}

function signedParts(raw: Uint8Array | string, publicKeys: PublicKeys): SignedParts {
  const data = parseJson(raw);
  if (!isObject(data)) throw new ManifestError("manifest is not a JSON object");
  const keyId = data.members.get("key_id");
  if (typeof keyId !== "string" || !Object.hasOwn(publicKeys, keyId)) {
    const shown = typeof keyId === "string" ? JSON.stringify(keyId) : String(keyId);
    throw new ManifestError(`manifest signed with unknown key ${shown}; pinned keys: ${Object.keys(publicKeys).sort().join(", ")}`);
  }
  const text = data.members.get("signature") ?? "";
  const signature = typeof text === "string" ? strictBase64(text) : null;
  return { data, signature: signature?.length === 64 ? signature : null, signed: canonicalBytes(data), publicKey: publicKeys[keyId] as Uint8Array };
}

function verified(parts: SignedParts, ok: boolean): Manifest {
  if (!ok) throw new ManifestError("manifest signature does not verify; refusing it");
  return readManifest(parts.data);
}

/** Check the signature with the pinned key named by `key_id` (@noble/ed25519), then read the schema. */
export function verifyManifest(raw: Uint8Array | string, publicKeys: PublicKeys): Manifest {
  const parts = signedParts(raw, publicKeys);
  return verified(parts, parts.signature !== null && nobleVerify(parts.signature, parts.signed, parts.publicKey));
}

/** `verifyManifest` with another signature check (the updater passes `await signatureCheck()`). */
export async function verifyManifestWith(raw: Uint8Array | string, publicKeys: PublicKeys, check: SignatureCheck): Promise<Manifest> {
  const parts = signedParts(raw, publicKeys);
  return verified(parts, parts.signature !== null && (await check(parts.signature, parts.signed, parts.publicKey)));
}

// --- the schema, strict: JSON types as written, no coercion (the reference validates in strict mode)

class Fields {
  private readonly seen = new Set<string>();

  constructor(
    private readonly where: string,
    private readonly obj: JsonObject,
    allowed: readonly string[],
  ) {
    for (const key of obj.members.keys()) {
      if (!allowed.includes(key)) this.bad(key, "is not a field of this schema (unknown fields are refused)");
    }
  }

  bad(key: string, what: string): never {
    throw new ManifestError(`signed manifest does not match the schema: ${this.where}${key} ${what}`);
  }

  private get(key: string, required: boolean): JsonValue | undefined {
    this.seen.add(key);
    const value = this.obj.members.get(key);
    if (value === undefined && required) this.bad(key, "is missing");
    return value;
  }

  str(key: string, fallback?: string): string {
    const value = this.get(key, fallback === undefined);
    if (value === undefined) return fallback as string;
    if (typeof value !== "string") this.bad(key, "must be a string");
    return value;
  }

  oneOf<T extends string>(key: string, options: readonly T[], fallback?: T): T {
    const value = this.str(key, fallback);
    if (!(options as readonly string[]).includes(value)) this.bad(key, `must be one of ${options.join(", ")}`);
    return value as T;
  }

  int(key: string, min: number, max: number, fallback?: number): number {
    const value = this.get(key, fallback === undefined);
    if (value === undefined) return fallback as number;
    if (!(value instanceof JsonNumber) || !value.isInteger) this.bad(key, "must be an integer");
    if (value.integer < BigInt(min) || value.integer > BigInt(max)) this.bad(key, `must be in ${min}..${max}`);
    return Number(value.integer);
  }

  nullableInt(key: string, min: number, max: number): number | null {
    const value = this.obj.members.get(key);
    return value === undefined || value === null ? null : this.int(key, min, max);
  }

  nullableFloat(key: string): number | null {
    const value = this.get(key, false);
    if (value === undefined || value === null) return null;
    if (!(value instanceof JsonNumber)) this.bad(key, "must be a number or null");
    return value.isInteger ? Number(value.integer) : value.float;
  }

  bool(key: string, fallback: boolean): boolean {
    const value = this.get(key, false);
    if (value === undefined) return fallback;
    if (typeof value !== "boolean") this.bad(key, "must be true or false");
    return value;
  }

  strings(key: string): string[] {
    const value = this.get(key, true);
    if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) this.bad(key, "must be a list of strings");
    return value as string[];
  }

  object(key: string): JsonObject {
    const value = this.get(key, true);
    if (!isObject(value)) this.bad(key, "must be an object");
    return value;
  }

  time(key: string): string {
    const value = this.str(key);
    if (Number.isNaN(instantUs(value))) this.bad(key, `must be an RFC 3339 time with a zone, not ${JSON.stringify(value)}`);
    return value;
  }
}

const TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** Microseconds since the epoch of an RFC 3339 time with a zone; NaN when it is not one. */
export function instantUs(text: string): number {
  const m = TIME.exec(text);
  if (m === null) return Number.NaN;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const check = new Date(ms);
  // Date.UTC rolls 2026-02-30 over to March; the reference refuses it.
  if (check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) return Number.NaN;
  const fraction = Number((m[7] ?? "").padEnd(6, "0"));
  const offsetMin = m[8] !== undefined ? 0 : (m[9] === "-" ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11]));
  return ms * 1000 + fraction - offsetMin * 60_000_000;
}

const MANIFEST_FIELDS = [
  "schema_version", "model", "version", "alias", "variant", "runtime", "quantization", "artifact_url", "sha256",
  "size", "labels", "input", "issued_at", "expires_at", "rollback", "rollout_percent", "sequence", "served",
  "key_id", "signature",
] as const;
const INPUT_FIELDS = ["height", "width", "channels", "dtype", "scale", "zero_point", "layout"] as const;

function readInput(obj: JsonObject): InputSpec {
  const f = new Fields("input.", obj, INPUT_FIELDS);
  return {
    height: f.int("height", 1, MAX_INT),
    width: f.int("width", 1, MAX_INT),
    channels: f.int("channels", 3, 3, 3) as 3,
    dtype: f.oneOf("dtype", ["float32", "uint8", "int8"] as const),
    scale: f.nullableFloat("scale"),
    zero_point: f.nullableInt("zero_point", -MAX_INT, MAX_INT),
    layout: f.oneOf("layout", ["NHWC"] as const, "NHWC"),
  };
}

function readManifest(obj: JsonObject): Manifest {
  const f = new Fields("", obj, MANIFEST_FIELDS);
  const sha256 = f.str("sha256");
  if (!/^[0-9a-f]{64}$/.test(sha256)) f.bad("sha256", "must be 64 lower-case hex digits");
  return {
    schema_version: f.int("schema_version", Number.MIN_SAFE_INTEGER, MAX_INT, 1),
    model: f.str("model"),
    version: f.int("version", 1, MAX_INT),
    alias: f.str("alias"),
    variant: f.str("variant"),
    runtime: f.oneOf("runtime", RUNTIMES),
    quantization: f.oneOf("quantization", QUANTIZATIONS),
    artifact_url: f.str("artifact_url"),
    sha256,
    size: f.int("size", 1, MAX_INT),
    labels: f.strings("labels"),
    input: readInput(f.object("input")),
    issued_at: f.time("issued_at"),
    expires_at: f.time("expires_at"),
    rollback: f.bool("rollback", false),
    rollout_percent: f.int("rollout_percent", 0, 100, 100),
    sequence: f.int("sequence", 0, MAX_INT, 0),
    served: f.oneOf("served", ["target", "previous", "production"] as const, "target"),
    key_id: f.str("key_id"),
    signature: f.str("signature", ""),
  };
}
