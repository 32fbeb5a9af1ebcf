// The post-install health check, as edge/_health.py: finite probabilities in [0, 1] and a median latency in budget.
// The model is a stub of our own two-method interface; time is a counter it advances, never the wall clock.
import { describe, expect, it } from "vitest";

import { HealthCheckFailed, healthCheck, type LoadedModel, type Manifest, type ModelRuntime } from "../src/index.js";

const manifest = {
  runtime: "onnxruntime",
  variant: "onnx_fp32",
  labels: ["a", "b"],
  input: { height: 2, width: 2, channels: 3, dtype: "float32", scale: null, zero_point: null, layout: "NHWC" },
} as unknown as Manifest;

/** Each run "takes" the next of `costsMs` (the first is the warm-up) and answers `outputs`. */
function stub(costsMs: number[], outputs: number[]): { runtime: ModelRuntime; clock: () => number } {
  let now = 0;
  let calls = 0;
  const model: LoadedModel = {
    async run() {
      now += costsMs[calls++] ?? 0;
      return Float32Array.from(outputs);
    },
    async close() {},
  };
  return { runtime: { name: "onnxruntime", load: async () => model }, clock: () => now };
}

async function verdict(costsMs: number[], outputs: number[] = [0.25, 0.75]): Promise<string> {
  const { runtime, clock } = stub(costsMs, outputs);
  try {
    await healthCheck(runtime, { clock })(new Uint8Array(), manifest);
  } catch (err) {
    if (err instanceof HealthCheckFailed) return err.message;
    throw err;
  }
  return "healthy";
}

describe("healthCheck", () => {
  it("passes a model whose probes are fast, however slow its warm-up", async () => {
    expect(await verdict([5000, 10, 12, 11])).toBe("healthy");
  });

  it("refuses a model whose median probe is over the 1000 ms budget", async () => {
    expect(await verdict([10, 1500, 1200, 1400])).toMatch(/probes took 1400\.0 ms \(median\); budget 1000 ms/);
  });

  it("judges the median: one slow probe does not block a good model", async () => {
    expect(await verdict([10, 10, 9000, 12])).toBe("healthy");
  });

  it("refuses scores outside [0, 1] even when they sum to 1", async () => {
    expect(await verdict([1, 1, 1, 1], [1.5, -0.5])).toMatch(/scores outside \[0, 1\]/);
  });

  it("refuses non-finite outputs", async () => {
    expect(await verdict([1, 1, 1, 1], [Number.NaN, 1])).toMatch(/non-finite/);
  });
});
