/** `ModelRuntime` over onnxruntime-node (an optional peer dependency: install it to use this module). */

import { loadSession, optionalImport } from "./onnx-session.js";
import type { LoadedModel, ModelRuntime } from "./runtime.js";

export class OnnxNodeRuntime implements ModelRuntime {
  readonly name = "onnxruntime" as const;

  constructor(private readonly threads: number | null = null) {}

  async load(data: Uint8Array): Promise<LoadedModel> {
    const ort = await optionalImport(() => import("onnxruntime-node"), "onnxruntime-node");
    return loadSession(ort, data, this.threads ? { intraOpNumThreads: this.threads, interOpNumThreads: 1 } : {});
  }
}
