// Preprocessing against edge/runtime.py's own output (tests/conformance/vectors.json): equal bytes.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { describe, expect, it } from "vitest";

import { base64Decode, type InputDtype, quantize, toPixels } from "../src/index.js";

const vectors = JSON.parse(
  readFileSync(fileURLToPath(new URL("../../../tests/conformance/vectors.json", import.meta.url)), "utf-8"),
) as {
  preprocess_cases: { name: string; width: number; height: number; rgb_b64: string; out_width: number; out_height: number; expected_b64: string }[];
  quantize_cases: { name: string; dtype: InputDtype; scale: number; zero_point: number; expected: number[] }[];
};

describe("toPixels is Pillow's bilinear", () => {
  it.each(vectors.preprocess_cases.map((c) => [c.name, c] as const))("%s", (_, c) => {
    const got = toPixels(base64Decode(c.rgb_b64), c.width, c.height, c.out_width, c.out_height);
    expect(Buffer.from(got).equals(Buffer.from(base64Decode(c.expected_b64)))).toBe(true);
  });

  it("reads RGBA from a canvas, ignoring alpha", () => {
    const c = vectors.preprocess_cases[0] as (typeof vectors.preprocess_cases)[number];
    const rgb = base64Decode(c.rgb_b64);
    const rgba = new Uint8Array((rgb.length / 3) * 4);
    for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) rgba.set([rgb[i] as number, rgb[i + 1] as number, rgb[i + 2] as number, 7], j);
    const got = toPixels(rgba, c.width, c.height, c.out_width, c.out_height, 4);
    expect(Buffer.from(got).equals(Buffer.from(base64Decode(c.expected_b64)))).toBe(true);
  });
});

describe("quantize is edge.runtime.quantize", () => {
  const pixels = Uint8Array.from({ length: 256 }, (_, i) => i);
  it.each(vectors.quantize_cases.map((c) => [c.name, c] as const))("%s", (_, c) => {
    expect(Array.from(quantize(pixels, c.dtype, c.scale, c.zero_point))).toEqual(c.expected);
  });
});
