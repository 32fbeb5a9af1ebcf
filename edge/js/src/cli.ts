#!/usr/bin/env node
/**
 * `edgeloop-edge`: one updater step from a shell, printing one JSON line (for scripts and the
 * integration tests that drive this SDK against a real `edgeloop serve`).
 *
 *     edgeloop-edge check --registry URL --model M --store DIR --keys '{"id":"base64"}' [--api-key K]
 *     edgeloop-edge record --store DIR --count N         queue N inference events
 *     edgeloop-edge flush --registry URL --store DIR [--api-key K]
 */

import path from "node:path";
import { parseArgs } from "node:util";

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
const store = need("store");
const deviceId = values["device-id"] as string;
const telemetry = new TelemetryQueue(new FsQueueStorage(path.join(store, "telemetry.json")), deviceId);
const apiKey = values["api-key"];

if (command === "check") {
  const updater = new Updater({
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
