/**
 * The SDK in a real browser (tests/edge/test_js_browser.py bundles this file, opens it in Chromium and reads
 * `window.browserChecks`): one named check per clause of the IndexedDB store's contract, onnxruntime-web, and
 * every conformance vector (vectors.json served beside the page) through the browser's own JS engine.
 */

import { sha256 } from "@noble/hashes/sha256";
import { bytesToHex } from "@noble/hashes/utils";

import { IndexedDbQueueStorage, IndexedDbStore, openDatabase } from "../../src/browser.js";
import { OnnxWebRuntime } from "../../src/onnx-web.js";
import { signatureCheck, webCryptoSignatureCheck } from "../../src/manifest.js";
import { EMPTY_STATE, type InstalledModel } from "../../src/store.js";
import { runAll, type Vectors } from "../vectors.js";

type Check = { name: string; ok: boolean; detail: string };

declare global {
  interface Window {
    browserChecks: Promise<Check[]>;
  }
}

const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);
const entry = (data: Uint8Array, version: number): InstalledModel => ({
  model: "shelf-products",
  alias: "production",
  version,
  variant: "onnx_fp32",
  runtime: "onnxruntime",
  sha256: bytesToHex(sha256(data)),
  size: data.length,
  labels: ["a", "b"],
  sequence: version,
});

async function refusal(work: () => Promise<unknown>): Promise<string> {
  try {
    await work();
  } catch (err) {
    return `${(err as Error).name}: ${(err as Error).message}`;
  }
  return "no error";
}

async function run(): Promise<Check[]> {
  const checks: Check[] = [];
  const check = (name: string, ok: boolean, detail: unknown): void => {
    checks.push({ name, ok, detail: JSON.stringify(detail) });
  };
  const name = `checks-${crypto.randomUUID()}`;
  const store = await IndexedDbStore.open(name);
  check("a new store is empty", JSON.stringify(await store.loadState()) === JSON.stringify(EMPTY_STATE), await store.loadState());

  const v1 = bytes(1000, 1);
  const v2 = bytes(2000, 2);
  const wrong = await refusal(() => store.putModel(entry(v2, 2).sha256, v1));
  check("bytes that do not hash to their key are refused", wrong.startsWith("StoreError"), wrong);
  check("... and not stored", (await store.getModel(entry(v2, 2).sha256)) === null, null);
  check("a key that is not a sha256 is refused", (await refusal(() => store.getModel("../x"))).startsWith("StoreError"), null);

  await store.putModel(entry(v1, 1).sha256, v1);
  await store.saveState({ ...EMPTY_STATE, current: entry(v1, 1) });
  const dangling = await refusal(() => store.saveState({ ...EMPTY_STATE, current: entry(v2, 2), previous: entry(v1, 1) }));
  check("a state naming a model not stored is refused", dangling.startsWith("StoreError"), dangling);
  check("... and the old state stays whole", (await store.loadState()).current?.version === 1 && (await store.loadState()).previous === null, await store.loadState());

  await store.putModel(entry(v2, 2).sha256, v2);
  await store.saveState({ ...EMPTY_STATE, current: entry(v2, 2), previous: entry(v1, 1) });
  const reopened = new IndexedDbStore(await openDatabase(name));
  const state = await reopened.loadState();
  check("the swap persists, previous kept", state.current?.version === 2 && state.previous?.version === 1, state);
  const kept = await reopened.getModel(entry(v1, 1).sha256);
  check("the previous model's bytes are kept", kept !== null && bytesToHex(sha256(kept)) === entry(v1, 1).sha256, kept?.length);

  const sha = entry(v2, 2).sha256;
  const other = entry(v1, 1).sha256;
  await store.appendPartial(other, bytes(5, 9), null);
  for (let i = 0; i < 3; i++) await store.appendPartial(sha, v2.subarray(i * 500, (i + 1) * 500), `"e${i}"`);
  const partial = await reopened.loadPartial(sha);
  check(
    "a partial download is its chunks in order, with the last ETag",
    partial !== null && partial.data.length === 1500 && partial.data.every((b) => b === 2) && partial.etag === '"e2"',
    [partial?.data.length, partial?.etag],
  );
  await store.clearPartial(sha);
  check("clearing one partial leaves the others", (await store.loadPartial(sha)) === null && (await store.loadPartial(other))?.data.length === 5, null);

  await store.deleteModel(entry(v1, 1).sha256);
  check("a deleted model is gone", (await store.getModel(entry(v1, 1).sha256)) === null, null);

  const queue = new IndexedDbQueueStorage(await openDatabase(name));
  const contents = { events: [], deadLetters: [], dropped: 3 };
  await queue.save(contents);
  check("the telemetry queue round-trips", JSON.stringify(await queue.load()) === JSON.stringify(contents), await queue.load());
  check("... beside the model state", (await store.loadState()).current?.version === 2, null);

  const runtime = new OnnxWebRuntime({ wasmPaths: new URL("ort/", location.href).href });
  const notAModel = await refusal(() => runtime.load(bytes(64, 7)));
  check("onnxruntime-web refuses a file that is not a model", notAModel.startsWith("ModelLoadError"), notAModel);
  const vectors = (await (await fetch("vectors.json")).json()) as Vectors;
  for (const [name, engine] of [["noble", "sync"], ["webcrypto", webCryptoSignatureCheck]] as const) {
    for (const outcome of await runAll(vectors, engine)) check(`${name} vector ${outcome.category}/${outcome.name}`, outcome.ok, outcome.got);
  }
  check("signatureCheck() picks this browser's WebCrypto Ed25519", (await signatureCheck()) === webCryptoSignatureCheck, null);
  return checks;
}

window.browserChecks = run();
