/**
 * `ModelRuntime` over onnxruntime-web's WebAssembly backend ("@edgeloop/edge/onnx-web"; onnxruntime-web is an
 * optional peer dependency). Single-threaded by default: no SharedArrayBuffer, so no COOP/COEP headers needed.
 */

import { ModelLoadError } from "./errors.js";
import { loadSession, optionalImport } from "./onnx-session.js";
import type { LoadedModel, ModelRuntime } from "./runtime.js";

export interface OnnxWebOptions {
  /**
   * Where the app serves onnxruntime-web's `.wasm` files (copied from node_modules/onnxruntime-web/dist at
   * build time), e.g. "/ort/". Required: onnxruntime-web would otherwise look next to its bundle or on a CDN.
   */
  readonly wasmPaths: string;
  /** Above 1 needs a cross-origin-isolated page (SharedArrayBuffer). */
  readonly threads?: number;
}

export class OnnxWebRuntime implements ModelRuntime {
  readonly name = "onnxruntime" as const;

  constructor(private readonly options: OnnxWebOptions) {
    if (!options.wasmPaths) throw new ModelLoadError("wasmPaths is empty: give the URL folder that serves onnxruntime-web's .wasm files");
  }

  async load(data: Uint8Array): Promise<LoadedModel> {
    const ort = await optionalImport(() => import("onnxruntime-web/wasm"), "onnxruntime-web");
    ort.env.wasm.wasmPaths = this.options.wasmPaths;
    ort.env.wasm.numThreads = this.options.threads ?? 1;
    return loadSession(ort, data, { executionProviders: ["wasm"] });
  }
}
