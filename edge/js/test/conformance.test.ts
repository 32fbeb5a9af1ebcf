// Every vector of tests/conformance/vectors.json through the TypeScript SDK (the Python SDK runs the same file).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { describe, expect, it } from "vitest";

import { nobleSignatureCheck, publicKeysFromBase64, signatureCheck, webCryptoSignatureCheck } from "../src/index.js";
import { canonicalOf, fileVerdict, manifestVerdicts, type Vectors } from "./vectors.js";

const path = fileURLToPath(new URL("../../../tests/conformance/vectors.json", import.meta.url));
const vectors = JSON.parse(readFileSync(path, "utf-8")) as Vectors;
const keys = publicKeysFromBase64(vectors.keys);

// Both signature engines: @noble/ed25519 (everywhere) and WebCrypto's (Node 20 has it; browsers since 2025).
describe.each([
  ["noble", "sync"],
  ["webcrypto", webCryptoSignatureCheck],
] as const)("with %s signatures", (_, engine) => {
  describe("manifest vectors", () => {
    it.each(vectors.manifest_cases.map((c) => [c.name, c] as const))("%s", async (_, c) => {
      expect(await manifestVerdicts(keys, c, engine), c.description).toEqual([c.verdict]);
    });
  });

  describe("file vectors", () => {
    it.each(vectors.file_cases.map((c) => [c.name, c] as const))("%s", async (_, c) => {
      expect(await fileVerdict(keys, vectors, c, engine), c.description).toBe(c.verdict);
    });
  });
});

it("the fallback (noble behind the async interface) gives every verdict but the byte-by-byte one (run above)", async () => {
  for (const c of vectors.manifest_cases.filter((m) => m.mode !== "tamper_every_byte")) {
    expect(await manifestVerdicts(keys, c, nobleSignatureCheck), c.name).toEqual([c.verdict]);
  }
});

it("signatureCheck() picks WebCrypto where the platform has Ed25519", async () => {
  expect(await signatureCheck()).toBe(webCryptoSignatureCheck);
});

describe("canonical JSON vectors", () => {
  it.each(vectors.canonical_cases.map((c) => [c.name, c] as const))("%s", (_, c) => {
    expect(canonicalOf(c), c.description).toBe(c.canonical);
  });
});
