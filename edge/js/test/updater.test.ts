// The updater end to end over real HTTP, with the conformance suite's signed manifest and artifact.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { base64Decode, MemoryQueueStorage, publicKeysFromBase64, TelemetryQueue, Updater, type UpdaterOptions } from "../src/index.js";
import { FsStore } from "../src/node.js";
import { FaultServer } from "./server.js";

const vectors = JSON.parse(
  readFileSync(fileURLToPath(new URL("../../../tests/conformance/vectors.json", import.meta.url)), "utf-8"),
) as {
  keys: Record<string, string>;
  manifest_cases: { name: string; manifest: string; now: string }[];
  file_cases: { name: string; file_b64: string }[];
};
const valid = vectors.manifest_cases.find((c) => c.name === "valid-first-install") as { manifest: string; now: string };
const artifact = base64Decode((vectors.file_cases.find((c) => c.name === "file-exact") as { file_b64: string }).file_b64);
const manifest = JSON.parse(valid.manifest) as { artifact_url: string; sha256: string; version: number };
const MANIFEST_PATH = "/v1/models/shelf-products/manifest";

let server: FaultServer;
let options: UpdaterOptions;

beforeEach(async () => {
  server = await new FaultServer().start();
  server.routes.set(MANIFEST_PATH, { body: new TextEncoder().encode(valid.manifest), etag: '"m1"' });
  server.routes.set(manifest.artifact_url, { body: artifact, etag: `"${manifest.sha256}"` });
  options = {
    registryUrl: server.url,
    model: "shelf-products",
    publicKeys: publicKeysFromBase64(vectors.keys),
    store: new FsStore(mkdtempSync(path.join(tmpdir(), "edgeloop-js-"))),
    device: { deviceId: "d-test", platform: "node" },
    apiKey: "elk_test_secret",
    clock: () => new Date(valid.now),
    telemetry: new TelemetryQueue(new MemoryQueueStorage(), "d-test"),
  };
});
afterEach(async () => {
  await server.stop();
});

describe("Updater", () => {
  it("installs, then costs one 304 per poll", async () => {
    const updater = new Updater(options);
    expect((await updater.checkNow()).status).toBe("installed");
    expect((await updater.current())?.version).toBe(manifest.version);
    expect(await options.store.getModel(manifest.sha256)).toEqual(artifact);
    expect((await updater.checkNow()).status).toBe("not_modified");
    const polls = server.seen.filter((s) => s.path === MANIFEST_PATH);
    expect(polls.map((p) => p.headers["if-none-match"])).toEqual([undefined, '"m1"']);
    expect(polls[0]?.headers.authorization).toBe("Bearer elk_test_secret");
    const state = await options.store.loadState();
    expect(state.sequences["shelf-products@production"]).toBe(5);
  });

  it("refuses a tampered manifest and keeps serving", async () => {
    const updater = new Updater(options);
    await updater.checkNow();
    const tampered = valid.manifest.replace('"version":2', '"version":3');
    server.routes.set(MANIFEST_PATH, { body: new TextEncoder().encode(tampered), etag: '"m2"' });
    const outcome = await updater.checkNow();
    expect(outcome.status).toBe("rejected");
    expect(outcome.detail).toMatch(/^ManifestError: manifest signature does not verify/);
    expect((await updater.current())?.version).toBe(2);
    expect(await options.telemetry?.pending()).toBe(2); // the update, then the refusal
  });

  it("reverts and blocks a model that fails its health check", async () => {
    const updater = new Updater({ ...options, healthCheck: async () => Promise.reject(new Error("outputs are NaN")) });
    expect((await updater.checkNow()).status).toBe("reverted");
    expect(await updater.current()).toBeNull();
    expect(await options.store.getModel(manifest.sha256)).toBeNull();
    expect((await updater.checkNow()).status).toBe("blocked");
  });

  it("blocks a trial the app died loading", async () => {
    // What install leaves if the process dies inside the health check: the file, and the durable trial mark.
    await options.store.putModel(manifest.sha256, artifact);
    await options.store.saveState({ ...(await options.store.loadState()), trial: stagedEntry() });
    const updater = new Updater(options);
    expect(await updater.recover()).toBeNull();
    expect((await options.store.loadState()).blocked).toEqual([`2:${manifest.sha256}`]);
    expect(await options.store.getModel(manifest.sha256)).toBeNull();
    expect((await updater.checkNow()).status).toBe("blocked");
  });

  it("waits out Retry-After from a busy registry", async () => {
    server.routes.set(MANIFEST_PATH, { body: new Uint8Array(), status: 429, headers: { "retry-after": "120" } });
    const outcome = await new Updater(options).checkNow();
    expect(outcome.status).toBe("failed");
    expect(outcome.retryAfterS).toBe(120);
  });
});

function stagedEntry() {
  return {
    model: "shelf-products",
    alias: "production",
    version: 2,
    variant: "onnx_fp32",
    runtime: "onnxruntime",
    sha256: manifest.sha256,
    size: artifact.length,
    labels: [],
    sequence: 5,
  };
}
