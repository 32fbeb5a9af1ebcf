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

/**
 * The updater's `healthCheck`: load the new model, run the probes, refuse non-finite outputs or
 * ones that are not probabilities (|sum - 1| over `sumTolerance`). Throws HealthCheckFailed.
 */
export function healthCheck(runtime: ModelRuntime, options: { probes?: Image[]; sumTolerance?: number } = {}) {
  return async (data: Uint8Array, manifest: Manifest): Promise<void> => {
    const classifier = await Classifier.load(runtime, data, manifest);
    try {
      const probes = options.probes ?? syntheticProbes(manifest.input.width, manifest.input.height);
      for (const [n, probe] of probes.entries()) {
        const probs = await classifier.probabilities(probe);
        if (probs.length !== manifest.labels.length) {
          throw new HealthCheckFailed(`probe ${n}: ${probs.length} outputs for ${manifest.labels.length} labels`);
        }
        if (!probs.every(Number.isFinite)) throw new HealthCheckFailed(`probe ${n}: non-finite outputs`);
        const sum = probs.reduce((a, b) => a + b, 0);
        if (Math.abs(sum - 1) > (options.sumTolerance ?? 0.05)) {
          throw new HealthCheckFailed(`probe ${n}: probabilities sum to ${sum.toFixed(4)}, not 1`);
        }
      }
    } finally {
      await classifier.model.close();
    }
  };
}
