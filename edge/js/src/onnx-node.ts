/** `ModelRuntime` over onnxruntime-node (an optional peer dependency: install it to use this module). */

import { ModelLoadError } from "./errors.js";
import { loadSession } from "./onnx-session.js";
import type { LoadedModel, ModelRuntime } from "./runtime.js";

export class OnnxNodeRuntime implements ModelRuntime {
  readonly name = "onnxruntime" as const;

  constructor(private readonly threads: number | null = null) {}

  async load(data: Uint8Array): Promise<LoadedModel> {
    let ort: typeof import("onnxruntime-node");
    try {
      ort = await import("onnxruntime-node");
    } catch {
      throw new ModelLoadError("onnxruntime-node is not installed; npm install onnxruntime-node");
    }
    return loadSession(ort, data, this.threads ? { intraOpNumThreads: this.threads, interOpNumThreads: 1 } : {});
  }
}
