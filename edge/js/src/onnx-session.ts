/** The part of a `ModelRuntime` that onnxruntime-node and onnxruntime-web share (one API, onnxruntime-common). */

import type { InferenceSession, Tensor } from "onnxruntime-common";

import { ModelLoadError } from "./errors.js";
import type { LoadedModel } from "./runtime.js";

/** What both packages export: the session factory and the tensor class. */
export interface Ort {
  readonly InferenceSession: { create(data: Uint8Array, options?: InferenceSession.SessionOptions): Promise<InferenceSession> };
  readonly Tensor: new (type: "float32" | "uint8" | "int8", data: Float32Array | Uint8Array | Int8Array, dims: readonly number[]) => Tensor;
}

/** An optional peer dependency, or a ModelLoadError saying how to install it. */
export async function optionalImport<T>(load: () => Promise<T>, pkg: string): Promise<T> {
  try {
    return await load();
  } catch {
    throw new ModelLoadError(`${pkg} is not installed; npm install ${pkg}`);
  }
}

export async function loadSession(ort: Ort, data: Uint8Array, options: InferenceSession.SessionOptions): Promise<LoadedModel> {
  let session: InferenceSession;
  try {
    session = await ort.InferenceSession.create(data, options);
  } catch (err) {
    throw new ModelLoadError(`onnxruntime cannot load this file: ${String(err)}`);
  }
  const input = session.inputNames[0] as string;
  const output = session.outputNames[0] as string;
  return {
    async run(values, shape) {
      const type = values instanceof Float32Array ? "float32" : values instanceof Uint8Array ? "uint8" : "int8";
      const result = await session.run({ [input]: new ort.Tensor(type, values, shape) });
      return Float32Array.from(result[output]?.data as ArrayLike<number>);
    },
    async close() {
      await session.release();
    },
  };
}
