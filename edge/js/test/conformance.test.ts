// Every vector of tests/conformance/vectors.json through the TypeScript SDK (the Python SDK runs the same file).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { describe, expect, it } from "vitest";

import { publicKeysFromBase64 } from "../src/index.js";
import { canonicalOf, fileVerdict, manifestVerdicts, type Vectors } from "./vectors.js";

const path = fileURLToPath(new URL("../../../tests/conformance/vectors.json", import.meta.url));
const vectors = JSON.parse(readFileSync(path, "utf-8")) as Vectors;
const keys = publicKeysFromBase64(vectors.keys);

describe("manifest vectors", () => {
  it.each(vectors.manifest_cases.map((c) => [c.name, c] as const))("%s", (_, c) => {
    expect(manifestVerdicts(keys, c), c.description).toEqual([c.verdict]);
  });
});

describe("file vectors", () => {
  it.each(vectors.file_cases.map((c) => [c.name, c] as const))("%s", (_, c) => {
    expect(fileVerdict(keys, vectors, c), c.description).toBe(c.verdict);
  });
});

describe("canonical JSON vectors", () => {
  it.each(vectors.canonical_cases.map((c) => [c.name, c] as const))("%s", (_, c) => {
    expect(canonicalOf(c), c.description).toBe(c.canonical);
  });
});
