/** `ModelRuntime` over onnxruntime-node (an optional peer dependency: install it to use this module). */

import { ModelLoadError } from "./errors.js";
import type { LoadedModel, ModelRuntime } from "./runtime.js";

type Ort = typeof import("onnxruntime-node");

async function ort(): Promise<Ort> {
  try {
    return await import("onnxruntime-node");
  } catch {
    throw new ModelLoadError("onnxruntime-node is not installed; npm install onnxruntime-node");
  }
}

export class OnnxNodeRuntime implements ModelRuntime {
  readonly name = "onnxruntime" as const;

  constructor(private readonly threads: number | null = null) {}

  async load(data: Uint8Array): Promise<LoadedModel> {
    const { InferenceSession, Tensor } = await ort();
    let session: import("onnxruntime-node").InferenceSession;
    try {
      session = await InferenceSession.create(data, this.threads ? { intraOpNumThreads: this.threads, interOpNumThreads: 1 } : {});
    } catch (err) {
      throw new ModelLoadError(`onnxruntime cannot load this file: ${String(err)}`);
    }
    const input = session.inputNames[0] as string;
    const output = session.outputNames[0] as string;
    return {
      async run(values, shape) {
        const type = values instanceof Float32Array ? "float32" : values instanceof Uint8Array ? "uint8" : "int8";
        const result = await session.run({ [input]: new Tensor(type, values, shape) });
        return Float32Array.from(result[output]?.data as ArrayLike<number>);
      },
      async close() {
        await session.release();
      },
    };
  }
}
