// Every vector of tests/conformance/vectors.json through the TypeScript SDK (the Python SDK runs the same file).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { describe, expect, it } from "vitest";

import {
  base64Decode,
  canonicalBytes,
  canonicalText,
  checkBytes,
  checkManifest,
  EdgeError,
  type Expectations,
  type Manifest,
  parseJson,
  publicKeysFromBase64,
  VerificationError,
} from "../src/index.js";

interface ManifestCase {
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

const path = fileURLToPath(new URL("../../../tests/conformance/vectors.json", import.meta.url));
const vectors = JSON.parse(readFileSync(path, "utf-8")) as {
  keys: Record<string, string>;
  manifest_cases: ManifestCase[];
  file_cases: { name: string; description: string; manifest_case: string; file_b64: string; verdict: string }[];
  canonical_cases: { name: string; description: string; json: string; canonical: string | null }[];
};
const keys = publicKeysFromBase64(vectors.keys);

function wire(c: ManifestCase): Uint8Array {
  return c.manifest_b64 !== undefined ? base64Decode(c.manifest_b64) : new TextEncoder().encode(c.manifest);
}

function expectations(e: Record<string, unknown>): Expectations {
  const camel = Object.fromEntries(
    Object.entries(e).map(([k, v]) => [k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()), v]),
  );
  return camel as unknown as Expectations;
}

function run(raw: Uint8Array, c: ManifestCase): [string, Manifest | null] {
  try {
    return ["accept", checkManifest(raw, keys, expectations(c.expect), new Date(c.now))];
  } catch (err) {
    if (err instanceof VerificationError) return [err.name, null];
    throw err;
  }
}

describe("manifest vectors", () => {
  it.each(vectors.manifest_cases.map((c) => [c.name, c] as const))("%s", (_, c) => {
    const raw = wire(c);
    if (c.mode === "tamper_every_byte") {
      const verdicts = new Set<string>();
      for (let i = 0; i < raw.length; i++) {
        for (const flip of c.flips ?? []) {
          const tampered = raw.slice();
          tampered[i] = (tampered[i] as number) ^ flip;
          verdicts.add(run(tampered, c)[0]);
        }
      }
      expect([...verdicts]).toEqual([c.verdict]);
      return;
    }
    expect(run(raw, c)[0], c.description).toBe(c.verdict);
  });
});

describe("file vectors", () => {
  const byName = new Map(vectors.manifest_cases.map((c) => [c.name, c]));
  it.each(vectors.file_cases.map((c) => [c.name, c] as const))("%s", (_, c) => {
    const source = byName.get(c.manifest_case) as ManifestCase;
    const [verdict, manifest] = run(wire(source), source);
    expect(verdict).toBe("accept");
    let got = "accept";
    try {
      checkBytes(base64Decode(c.file_b64), manifest as Manifest);
    } catch (err) {
      got = (err as EdgeError).name;
    }
    expect(got, c.description).toBe(c.verdict);
  });
});

describe("canonical JSON vectors", () => {
  it.each(vectors.canonical_cases.map((c) => [c.name, c] as const))("%s", (_, c) => {
    let got: string | null;
    try {
      const value = parseJson(c.json);
      got = typeof value === "object" && value !== null && "members" in value
        ? new TextDecoder().decode(canonicalBytes(value))
        : canonicalText(value);
    } catch (err) {
      if (!(err instanceof EdgeError)) throw err;
      got = null;
    }
    expect(got, c.description).toBe(c.canonical);
  });
});
