/**
 * tests/conformance/vectors.json run through the SDK, without a test framework: vitest (conformance.test.ts,
 * preprocess.test.ts) asserts case by case, and the browser check page runs `runAll` in Chromium.
 */

import {
  base64Decode,
  canonicalBytes,
  canonicalText,
  checkBytes,
  checkManifest,
  checkManifestWith,
  EdgeError,
  type Expectations,
  type InputDtype,
  type Manifest,
  parseJson,
  publicKeysFromBase64,
  type PublicKeys,
  quantize,
  type SignatureCheck,
  toPixels,
  VerificationError,
} from "../src/index.js";

export interface ManifestCase {
  name: string;
  description: string;
  manifest?: string;
  manifest_b64?: string;
  expect: Record<string, unknown>;
  now: string;
  verdict: string;
  mode?: string;
  flips?: number[];
}
export interface FileCase { name: string; description: string; manifest_case: string; file_b64: string; verdict: string }
export interface CanonicalCase { name: string; description: string; json: string; canonical: string | null }
export interface PreprocessCase { name: string; width: number; height: number; rgb_b64: string; out_width: number; out_height: number; expected_b64: string }
export interface QuantizeCase { name: string; dtype: InputDtype; scale: number; zero_point: number; expected: number[] }

export interface Vectors {
  keys: Record<string, string>;
  manifest_cases: ManifestCase[];
  file_cases: FileCase[];
  canonical_cases: CanonicalCase[];
  preprocess_cases: PreprocessCase[];
  quantize_cases: QuantizeCase[];
}

function wire(c: ManifestCase): Uint8Array {
  return c.manifest_b64 !== undefined ? base64Decode(c.manifest_b64) : new TextEncoder().encode(c.manifest);
}

function expectations(e: Record<string, unknown>): Expectations {
  const camel = Object.fromEntries(
    Object.entries(e).map(([k, v]) => [k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()), v]),
  );
  return camel as unknown as Expectations;
}

/** "sync": `checkManifest` (@noble/ed25519); otherwise `checkManifestWith` that signature check. */
export type Engine = "sync" | SignatureCheck;

async function run(keys: PublicKeys, raw: Uint8Array, c: ManifestCase, engine: Engine): Promise<[string, Manifest | null]> {
  const expect = expectations(c.expect);
  try {
    const now = new Date(c.now);
    return ["accept", engine === "sync" ? checkManifest(raw, keys, expect, now) : await checkManifestWith(raw, keys, expect, now, engine)];
  } catch (err) {
    if (err instanceof VerificationError) return [err.name, null];
    throw err;
  }
}

/** The distinct verdicts on a case: one, or for `tamper_every_byte` one per flipped byte (all must agree). */
export async function manifestVerdicts(keys: PublicKeys, c: ManifestCase, engine: Engine = "sync"): Promise<string[]> {
  const raw = wire(c);
  if (c.mode !== "tamper_every_byte") return [(await run(keys, raw, c, engine))[0]];
  const verdicts = new Set<string>();
  for (let i = 0; i < raw.length; i++) {
    for (const flip of c.flips ?? []) {
      const tampered = raw.slice();
      tampered[i] = (tampered[i] as number) ^ flip;
      verdicts.add((await run(keys, tampered, c, engine))[0]);
    }
  }
  return [...verdicts];
}

/** The verdict on a file case's bytes, after its (valid) manifest case is accepted. */
export async function fileVerdict(keys: PublicKeys, vectors: Vectors, c: FileCase, engine: Engine = "sync"): Promise<string> {
  const source = vectors.manifest_cases.find((m) => m.name === c.manifest_case) as ManifestCase;
  const [verdict, manifest] = await run(keys, wire(source), source, engine);
  if (verdict !== "accept") return `manifest case ${source.name}: ${verdict}`;
  try {
    checkBytes(base64Decode(c.file_b64), manifest as Manifest);
  } catch (err) {
    return (err as EdgeError).name;
  }
  return "accept";
}

/** The canonical text of a case's JSON, or null when the strict parser refuses it. */
export function canonicalOf(c: CanonicalCase): string | null {
  try {
    const value = parseJson(c.json);
    return typeof value === "object" && value !== null && "members" in value
      ? new TextDecoder().decode(canonicalBytes(value))
      : canonicalText(value);
  } catch (err) {
    if (!(err instanceof EdgeError)) throw err;
    return null;
  }
}

export function preprocessMatches(c: PreprocessCase, channels: 3 | 4 = 3): boolean {
  let data = base64Decode(c.rgb_b64);
  if (channels === 4) {
    const rgba = new Uint8Array((data.length / 3) * 4);
    for (let i = 0, j = 0; i < data.length; i += 3, j += 4) rgba.set([data[i] as number, data[i + 1] as number, data[i + 2] as number, 7], j);
    data = rgba;
  }
  const got = toPixels(data, c.width, c.height, c.out_width, c.out_height, channels);
  const want = base64Decode(c.expected_b64);
  return got.length === want.length && got.every((v, i) => v === want[i]);
}

export function quantized(c: QuantizeCase): number[] {
  return Array.from(quantize(Uint8Array.from({ length: 256 }, (_, i) => i), c.dtype, c.scale, c.zero_point));
}

export interface Outcome {
  readonly category: string;
  readonly name: string;
  readonly ok: boolean;
  readonly got: string;
}

/** Every vector, each with whether this engine gives the expected result. */
export async function runAll(vectors: Vectors, engine: Engine = "sync"): Promise<Outcome[]> {
  const keys = publicKeysFromBase64(vectors.keys);
  const out: Outcome[] = [];
  const add = (category: string, name: string, got: unknown, want: unknown): void => {
    out.push({ category, name, ok: JSON.stringify(got) === JSON.stringify(want), got: JSON.stringify(got) });
  };
  for (const c of vectors.manifest_cases) add("manifest", c.name, await manifestVerdicts(keys, c, engine), [c.verdict]);
  for (const c of vectors.file_cases) add("file", c.name, await fileVerdict(keys, vectors, c, engine), c.verdict);
  for (const c of vectors.canonical_cases) add("canonical", c.name, canonicalOf(c), c.canonical);
  for (const c of vectors.preprocess_cases) add("preprocess", c.name, [preprocessMatches(c, 3), preprocessMatches(c, 4)], [true, true]);
  for (const c of vectors.quantize_cases) add("quantize", c.name, quantized(c), c.expected);
  return out;
}
