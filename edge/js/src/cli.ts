#!/usr/bin/env node
/**
 * `edgeloop-edge`: one updater step from a shell, printing one JSON line (for scripts and the
 * integration tests that drive this SDK against a real `edgeloop serve`).
 *
 *     edgeloop-edge check --registry URL --model M --store DIR --keys '{"id":"base64"}' [--api-key K]
 *     edgeloop-edge record --store DIR --count N         queue N inference events
 *     edgeloop-edge flush --registry URL --store DIR [--api-key K]
 *     edgeloop-edge classify --file model.onnx --size 96 --labels '["a","b"]' --image photo.rgb --image-width W
 *         (photo.rgb: raw RGB bytes, row-major; prints the probabilities and the top-1 label)
 */

import path from "node:path";
import { parseArgs } from "node:util";

import { readFile } from "node:fs/promises";

import { RegistryClient } from "./client.js";
import { publicKeysFromBase64 } from "./manifest.js";
import { FsQueueStorage, FsStore } from "./node.js";
import { TelemetryQueue } from "./telemetry.js";
import { Updater } from "./updater.js";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    registry: { type: "string" },
    model: { type: "string", default: "shelf-products" },
    alias: { type: "string", default: "production" },
    store: { type: "string" },
    keys: { type: "string" },
    "api-key": { type: "string" },
    "device-id": { type: "string", default: "edgeloop-edge-cli" },
    runtime: { type: "string", default: "onnxruntime" },
    count: { type: "string", default: "1" },
    file: { type: "string" },
    size: { type: "string", default: "96" },
    labels: { type: "string", default: "[]" },
    image: { type: "string", multiple: true, default: [] },
    "image-width": { type: "string" },
  },
});

function need(name: "registry" | "store" | "keys"): string {
  const value = values[name];
  if (value === undefined) {
    process.stderr.write(`--${name} is required\n`);
    process.exit(2);
  }
  return value;
}

const command = positionals[0];

if (command === "classify") {
  const { OnnxNodeRuntime } = await import("./onnx-node.js");
  const { Classifier } = await import("./runtime.js");
  const size = Number(values.size);
  const model = await new OnnxNodeRuntime(1).load(new Uint8Array(await readFile(values.file as string)));
  const input = { height: size, width: size, channels: 3, dtype: "float32", scale: null, zero_point: null, layout: "NHWC" } as const;
  const classifier = new Classifier(model, JSON.parse(values.labels as string) as string[], input);
  const width = Number(values["image-width"]);
  for (const file of values.image as string[]) {
    const data = new Uint8Array(await readFile(file));
    const image = { data, width, height: data.length / 3 / width, channels: 3 } as const;
    const [top1] = await classifier.classify(image, 1);
    process.stdout.write(`${JSON.stringify({ image: file, top1: top1?.[0] ?? null, probabilities: Array.from(await classifier.probabilities(image)) })}\n`);
  }
  await model.close();
  process.exit(0);
}

const store = need("store");
const deviceId = values["device-id"] as string;
const telemetry = new TelemetryQueue(new FsQueueStorage(path.join(store, "telemetry.json")), deviceId);
const apiKey = values["api-key"];

if (command === "check") {
  const { OnnxNodeRuntime } = await import("./onnx-node.js");
  const { healthCheck } = await import("./runtime.js");
  const updater = new Updater({
    // onnxruntime models are loaded and probed before they serve; others are installed unchecked.
    ...(values.runtime === "onnxruntime" ? { healthCheck: healthCheck(new OnnxNodeRuntime(1)) } : {}),
    registryUrl: need("registry"),
    model: values.model as string,
    alias: values.alias as string,
    publicKeys: publicKeysFromBase64(JSON.parse(need("keys")) as Record<string, string>),
    store: new FsStore(store),
    device: { deviceId, platform: "node" },
    runtimes: [values.runtime as string],
    allowLabelChanges: true,
    telemetry,
    download: { resumeBackoffS: 0.01, deadlineS: 60 },
    ...(apiKey ? { apiKey } : {}),
  });
  await updater.recover();
  const result = await updater.checkNow();
  const current = await updater.current();
  process.stdout.write(`${JSON.stringify({ ...result, current: current?.version ?? null })}\n`);
} else if (command === "record") {
  for (let i = 0; i < Number(values.count); i++) await telemetry.record("inference", { latency_ms: i });
  process.stdout.write(`${JSON.stringify({ pending: await telemetry.pending() })}\n`);
} else if (command === "flush") {
  const client = new RegistryClient(need("registry"), apiKey ? { apiKey } : {});
  process.stdout.write(`${JSON.stringify(await telemetry.flush(client))}\n`);
} else {
  process.stderr.write("usage: edgeloop-edge check|record|flush --store DIR [...]\n");
  process.exit(2);
}
