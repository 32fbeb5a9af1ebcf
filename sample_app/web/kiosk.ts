/**
 * The web kiosk: point the camera at a product, it names it. Built only on the TypeScript SDK:
 * the updater keeps the model current (verified, stored in IndexedDB, health-checked, swapped while
 * running), onnxruntime-web runs it, and telemetry goes back to the registry.
 *
 * Configured by `config.json` beside the page (see sample_app/README.md). `window.kioskState`
 * mirrors what the screen shows, for tests and for a remote support session.
 */

import {
  backoffDelay,
  Classifier,
  healthCheck,
  type InstalledModel,
  pollDelay,
  publicKeysFromBase64,
  TelemetryQueue,
  type UpdateResult,
  Updater,
} from "@edgeloop/edge";
import { IndexedDbQueueStorage, IndexedDbStore, openDatabase } from "@edgeloop/edge/browser";
import { OnnxWebRuntime } from "@edgeloop/edge/onnx-web";

interface KioskConfig {
  readonly registryUrl: string;
  /** A device key (role device). */
  readonly apiKey: string;
  /** key id -> base64 Ed25519 public key, as `GET /v1/keys` lists them: the pinned trust root. */
  readonly publicKeys: Record<string, string>;
  readonly model?: string;
  readonly pollIntervalS?: number;
  /** Keep the last N classified frames' pixels in `kioskState.frames` (for tests; 0 = none). */
  readonly recordFrames?: number;
}

interface Frame {
  readonly version: number;
  readonly label: string;
  readonly score: number;
  readonly width: number;
  readonly height: number;
  /** The RGBA pixels the classifier saw, base64. */
  readonly rgba: string;
}

interface KioskState {
  status: "starting" | "waiting for a model" | "running" | "error";
  version: number | null;
  variant: string | null;
  previousVersion: number | null;
  /** Where the serving model came from at this start: the IndexedDB store or a download. */
  source: "store" | "registry" | null;
  lastCheck: UpdateResult | null;
  label: string | null;
  score: number | null;
  classified: number;
  /** Telemetry events the registry has acknowledged since this start. */
  telemetrySent: number;
  frames: Frame[];
  error: string | null;
}

declare global {
  interface Window {
    kioskState: KioskState;
  }
}

const state: KioskState = (window.kioskState = {
  status: "starting",
  version: null,
  variant: null,
  previousVersion: null,
  source: null,
  lastCheck: null,
  label: null,
  score: null,
  classified: 0,
  telemetrySent: 0,
  frames: [],
  error: null,
});

const $ = (id: string): HTMLElement => document.getElementById(id) as HTMLElement;

async function loadConfig(): Promise<KioskConfig> {
  const response = await fetch("config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`config.json: ${response.status}; write one beside index.html (sample_app/README.md)`);
  const config = (await response.json()) as KioskConfig;
  for (const field of ["registryUrl", "apiKey", "publicKeys"] as const) {
    if (!config[field]) throw new Error(`config.json has no ${field}; see sample_app/README.md`);
  }
  return config;
}

/** A stable pseudonymous id for this browser (never a hardware id). */
function deviceId(): string {
  const saved = localStorage.getItem("edgeloop-device-id");
  if (saved) return saved;
  const made = `web-${crypto.randomUUID()}`;
  localStorage.setItem("edgeloop-device-id", made);
  return made;
}

function base64(bytes: Uint8ClampedArray): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

async function main(): Promise<void> {
  const config = await loadConfig();
  const model = config.model ?? "shelf-products";
  const db = await openDatabase("edgeloop-kiosk");
  const store = new IndexedDbStore(db);
  // Served from this page's origin (copied from node_modules by the build), never from a CDN.
  const runtime = new OnnxWebRuntime({ wasmPaths: new URL("ort/", location.href).href });
  const id = deviceId();
  const telemetry = new TelemetryQueue(new IndexedDbQueueStorage(db), id);
  const updater = new Updater({
    registryUrl: config.registryUrl,
    model,
    apiKey: config.apiKey,
    publicKeys: publicKeysFromBase64(config.publicKeys),
    store,
    device: { deviceId: id, platform: "web" },
    runtimes: ["onnxruntime"],
    healthCheck: healthCheck(runtime),
    telemetry,
  });

  let serving: { entry: InstalledModel; classifier: Classifier } | null = null;
  let inFlight: Promise<void> = Promise.resolve();

  const show = (): void => {
    $("model").textContent = serving
      ? `${model} v${serving.entry.version} · ${serving.entry.variant}` + (state.previousVersion ? ` · previous v${state.previousVersion}` : "")
      : "no model yet";
  };

  const swapTo = async (entry: InstalledModel, source: "store" | "registry"): Promise<void> => {
    const data = await store.getModel(entry.sha256);
    if (data === null) throw new Error(`the store lost ${entry.sha256} (v${entry.version}); clear the site's data`);
    const classifier = await Classifier.load(runtime, data, entry);
    const old = serving;
    serving = { entry, classifier };
    state.version = entry.version;
    state.variant = entry.variant;
    state.source = source;
    state.previousVersion = (await store.loadState()).previous?.version ?? null;
    state.status = "running";
    show();
    // The frame being classified finishes on the old model; only then is it closed.
    await inFlight;
    await old?.classifier.model.close();
  };

  const current = await updater.recover();
  if (current !== null) await swapTo(current, "store");
  else state.status = "waiting for a model";

  const video = $("camera") as HTMLVideoElement;
  video.srcObject = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  await video.play();
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true }) as CanvasRenderingContext2D;
  let lastEvent = 0;

  const classify = async (): Promise<void> => {
    const now = serving;
    if (now === null || video.videoWidth === 0) return;
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    ctx.drawImage(video, 0, 0);
    const image = ctx.getImageData(0, 0, canvas.width, canvas.height);
    const started = performance.now();
    const [top] = await now.classifier.classify({ data: image.data, width: image.width, height: image.height, channels: 4 }, 1);
    if (top === undefined) return;
    const [label, score] = top;
    const latencyMs = performance.now() - started;
    state.label = label;
    state.score = score;
    state.classified++;
    $("label").textContent = label.replaceAll("-", " ");
    $("confidence").style.width = `${(score * 100).toFixed(0)}%`;
    $("score").textContent = `${(score * 100).toFixed(1)} % · ${latencyMs.toFixed(1)} ms`;
    const keep = config.recordFrames ?? 0;
    if (keep > 0) {
      state.frames.push({ version: now.entry.version, label, score, width: image.width, height: image.height, rgba: base64(image.data) });
      state.frames.splice(0, Math.max(0, state.frames.length - keep));
    }
    if (started - lastEvent > 10_000) {
      lastEvent = started;
      const { model: name, version, variant } = now.entry;
      await telemetry.record("inference", { model: name, version, variant, latency_ms: latencyMs, top1_label: label, top1_score: score });
    }
  };

  const onFrame = (): void => {
    inFlight = classify().catch(fail);
    void inFlight.then(() => video.requestVideoFrameCallback(onFrame));
  };
  video.requestVideoFrameCallback(onFrame);

  for (let failures = 0; ; ) {
    const result = await updater.checkNow();
    state.lastCheck = result;
    $("status").textContent = `${result.status} at ${new Date().toLocaleTimeString()}`;
    if (result.status === "installed") {
      const entry = await updater.current();
      if (entry !== null) await swapTo(entry, "registry");
    }
    const sent = await telemetry.flush(updater.client);
    state.telemetrySent += sent.accepted + sent.duplicates;
    failures = result.status === "failed" ? failures + 1 : 0;
    const delayS = failures > 0 ? backoffDelay(failures, 5, 600, result.retryAfterS, Math.random) : pollDelay(config.pollIntervalS ?? 60, 0.2, Math.random);
    await new Promise((resolve) => setTimeout(resolve, delayS * 1000));
  }
}

function fail(err: unknown): void {
  state.status = "error";
  state.error = String(err);
  $("status").textContent = `error: ${String(err)}`;
  console.error(err);
}

main().catch(fail);
