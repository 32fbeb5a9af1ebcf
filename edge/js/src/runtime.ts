/**
 * Running a model: one small interface per engine (onnxruntime-node in Node: "@edgeloop/edge/onnx-node";
 * onnxruntime-web in browsers implements the same two methods), and the classifier and health check
 * built on it, with the Python SDK's preprocessing (`toPixels`, `quantize`).
 */

import { HealthCheckFailed, ModelLoadError } from "./errors.js";
import type { InputSpec, Manifest } from "./manifest.js";
import { quantize, toPixels } from "./preprocess.js";

/** One loaded model: raw input (N, H, W, 3) in the model's dtype -> raw output (N, classes) as floats. */
export interface LoadedModel {
  run(input: Float32Array | Uint8Array | Int8Array, shape: readonly number[]): Promise<Float32Array>;
  close(): Promise<void>;
}

export interface ModelRuntime {
  readonly name: "onnxruntime" | "litert";
  load(data: Uint8Array): Promise<LoadedModel>;
}

export interface Image {
  readonly data: Uint8Array | Uint8ClampedArray;
  readonly width: number;
  readonly height: number;
  /** 4 for canvas ImageData (RGBA; alpha ignored). */
  readonly channels: 3 | 4;
}

/** What a classifier needs to know of a model file: a `Manifest` or an `InstalledModel`. */
export interface ModelInfo {
  readonly runtime: string;
  readonly variant: string;
  readonly labels: readonly string[];
  readonly input?: InputSpec;
}

export class Classifier {
  constructor(
    readonly model: LoadedModel,
    readonly labels: readonly string[],
    readonly input: InputSpec,
  ) {}

  /** `model`: the manifest, or the store's `InstalledModel` (what is serving). */
  static async load(runtime: ModelRuntime, data: Uint8Array, model: ModelInfo): Promise<Classifier> {
    if (runtime.name !== model.runtime) {
      throw new ModelLoadError(`variant ${model.variant} needs ${model.runtime}; this runtime is ${runtime.name}`);
    }
    if (model.input === undefined) {
      throw new ModelLoadError(`the store holds no input spec for variant ${model.variant} (an older SDK installed it); install it again`);
    }
    return new Classifier(await runtime.load(data), model.labels, model.input);
  }

  /** Probabilities for one image, in label order. */
  async probabilities(image: Image): Promise<Float32Array> {
    const { width, height, dtype, scale, zero_point } = this.input;
    const pixels = toPixels(image.data, image.width, image.height, width, height, image.channels);
    return this.model.run(quantize(pixels, dtype, scale, zero_point), [1, height, width, 3]);
  }

  /** Top-k (label, score), best first. */
  async classify(image: Image, k = 3): Promise<[string, number][]> {
    const probs = await this.probabilities(image);
    const order = Array.from(probs.keys()).sort((a, b) => (probs[b] as number) - (probs[a] as number) || a - b);
    return order.slice(0, k).map((i) => [this.labels[i] ?? `class-${i}`, probs[i] as number]);
  }
}

/** Deterministic probe images (the same every run): mid-grey, a gradient, noise from a fixed seed. */
export function syntheticProbes(width: number, height: number, count = 3): Image[] {
  const probes: Image[] = [];
  let seed = 0x2545f491;
  for (let n = 0; n < count; n++) {
    const data = new Uint8Array(width * height * 3);
    for (let i = 0; i < data.length; i++) {
      if (n === 0) data[i] = 128;
      else if (n === 1) data[i] = Math.floor((255 * (i % (width * 3))) / (width * 3));
      else {
        seed ^= seed << 13;
        seed ^= seed >>> 17;
        seed ^= seed << 5;
        data[i] = seed & 0xff;
      }
    }
    probes.push({ data, width, height, channels: 3 });
  }
  return probes;
}

export interface HealthOptions {
  readonly probes?: Image[];
  readonly sumTolerance?: number;
  /** Median probe latency allowed, batch 1, after one warm-up run (the reference's default). */
  readonly latencyBudgetMs?: number;
  /** Milliseconds, monotonic. */
  readonly clock?: () => number;
}

/**
 * The updater's `healthCheck`, as edge/_health.py: load the new model, run one warm-up, then each probe;
 * refuse non-finite outputs, scores outside [0, 1], ones that are not probabilities (|sum - 1| over
 * `sumTolerance`), or a median probe latency over the budget. Throws HealthCheckFailed naming every problem.
 */
export function healthCheck(runtime: ModelRuntime, options: HealthOptions = {}) {
  const clock = options.clock ?? (() => performance.now());
  const tolerance = options.sumTolerance ?? 0.05;
  const budget = options.latencyBudgetMs ?? 1000;
  return async (data: Uint8Array, manifest: Manifest): Promise<void> => {
    const classifier = await Classifier.load(runtime, data, manifest);
    const problems: string[] = [];
    const latencies: number[] = [];
    try {
      const probes = options.probes ?? syntheticProbes(manifest.input.width, manifest.input.height);
      if (probes[0] !== undefined) await classifier.probabilities(probes[0]); // first-call allocation is not latency
      for (const [n, probe] of probes.entries()) {
        const started = clock();
        const probs = await classifier.probabilities(probe);
        latencies.push(clock() - started);
        if (probs.length !== manifest.labels.length) {
          problems.push(`probe ${n}: ${probs.length} outputs for ${manifest.labels.length} labels`);
        } else if (!probs.every(Number.isFinite)) {
          problems.push(`probe ${n}: non-finite outputs`);
        } else {
          if (probs.some((p) => p < -1e-6 || p > 1 + 1e-6)) problems.push(`probe ${n}: scores outside [0, 1]`);
          const sum = probs.reduce((a, b) => a + b, 0);
          if (Math.abs(sum - 1) > tolerance) problems.push(`probe ${n}: probabilities sum to ${sum.toFixed(4)}, not 1`);
        }
      }
    } finally {
      await classifier.model.close();
    }
    // The median, not the worst probe: one probe delayed by a busy device must not block a good model forever.
    const sorted = latencies.sort((a, b) => a - b);
    const median = sorted.length === 0 ? 0 : ((sorted[(sorted.length - 1) >> 1] as number) + (sorted[sorted.length >> 1] as number)) / 2;
    if (median > budget) problems.push(`probes took ${median.toFixed(1)} ms (median); budget ${budget.toFixed(0)} ms`);
    if (problems.length > 0) throw new HealthCheckFailed(problems.join("; "));
  };
}
