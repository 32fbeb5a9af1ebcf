// Preprocessing against edge/runtime.py's own output (tests/conformance/vectors.json): equal bytes.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { describe, expect, it } from "vitest";

import { preprocessMatches, quantized, type Vectors } from "./vectors.js";

const vectors = JSON.parse(
  readFileSync(fileURLToPath(new URL("../../../tests/conformance/vectors.json", import.meta.url)), "utf-8"),
) as Vectors;

describe("toPixels is Pillow's bilinear", () => {
  it.each(vectors.preprocess_cases.map((c) => [c.name, c] as const))("%s", (_, c) => {
    expect(preprocessMatches(c)).toBe(true);
  });

  it("reads RGBA from a canvas, ignoring alpha", () => {
    expect(preprocessMatches(vectors.preprocess_cases[0] as Vectors["preprocess_cases"][number], 4)).toBe(true);
  });
});

describe("quantize is edge.runtime.quantize", () => {
  it.each(vectors.quantize_cases.map((c) => [c.name, c] as const))("%s", (_, c) => {
    expect(quantized(c)).toEqual(c.expected);
  });
});
