/**
 * The updater: poll with ETag, verify, download with resume, install as a trial, health-check,
 * then swap (or revert and block), remembering every alias sequence it has verified.
 * The same steps and verdicts as the Python SDK's `edge.Updater` (edge/PROTOCOL.md).
 */

import { backoffDelay, pollDelay, type Random } from "./backoff.js";
import { type Fetch, type ManifestResponse, RegistryClient } from "./client.js";
import { type DownloadOptions, downloadArtifact } from "./download.js";
import { DownloadError, EdgeError, RegistryError, VerificationError } from "./errors.js";
import { type Manifest, type PublicKeys, type SignatureCheck, signatureCheck } from "./manifest.js";
import type { InstalledModel, ModelStore, StoreState } from "./store.js";
import type { TelemetryQueue } from "./telemetry.js";
import { checkBytes, checkManifestWith } from "./verify.js";

export interface DeviceInfo {
  /** Pseudonymous, stable per install (never a hardware id): decides the rollout bucket. */
  readonly deviceId: string;
  readonly platform?: string;
  readonly appVersion?: string;
  readonly deviceClass?: string;
}

export interface UpdaterOptions {
  readonly registryUrl: string;
  readonly model: string;
  /** The pinned trust root: key id -> 32 raw Ed25519 public-key bytes. */
  readonly publicKeys: PublicKeys;
  readonly store: ModelStore;
  readonly device: DeviceInfo;
  readonly apiKey?: string;
  readonly alias?: string;
  /** Runtimes this app can run, preferred first; a 404 for one asks for the next. */
  readonly runtimes?: readonly string[];
  readonly allowLabelChanges?: boolean;
  readonly maxClockSkewS?: number;
  readonly pollIntervalS?: number;
  readonly jitter?: number;
  readonly backoffInitialS?: number;
  /** Also caps a server's Retry-After. */
  readonly backoffMaxS?: number;
  /** Load and probe a new model; throw to refuse it (it is then reverted and blocked here). */
  readonly healthCheck?: (data: Uint8Array, manifest: Manifest) => Promise<void>;
  readonly telemetry?: TelemetryQueue;
  readonly download?: DownloadOptions;
  readonly fetch?: Fetch;
  readonly clock?: () => Date;
  readonly random?: Random;
  /** Step 1's Ed25519 check; default `signatureCheck()`: WebCrypto where the platform has it, else @noble/ed25519. */
  readonly signatureCheck?: SignatureCheck;
}

export type UpdateStatus = "installed" | "up_to_date" | "not_modified" | "blocked" | "reverted" | "rejected" | "failed";

export interface UpdateResult {
  readonly status: UpdateStatus;
  readonly version: number | null;
  readonly detail: string;
  readonly retryAfterS: number | null;
}

function result(status: UpdateStatus, version: number | null, detail = "", retryAfterS: number | null = null): UpdateResult {
  return { status, version, detail, retryAfterS };
}

const blockKey = (version: number, sha256: string): string => `${version}:${sha256}`;

export class Updater {
  readonly client: RegistryClient;
  private readonly alias: string;
  private readonly runtimes: readonly string[];
  private failures = 0;
  private busy: Promise<UpdateResult> | null = null;
  private signatures: Promise<SignatureCheck> | null = null;

  constructor(private readonly options: UpdaterOptions) {
    if (Object.keys(options.publicKeys).length === 0) {
      throw new EdgeError("publicKeys is empty: pin at least one registry signing key (GET /v1/keys)");
    }
    const jitter = options.jitter ?? 0.2;
    if (!(jitter >= 0 && jitter < 1)) throw new EdgeError(`jitter=${jitter}: use a fraction in [0, 1)`);
    this.alias = options.alias ?? "production";
    this.runtimes = options.runtimes ?? ["onnxruntime"];
    const clientOptions = { ...(options.apiKey ? { apiKey: options.apiKey } : {}), ...(options.fetch ? { fetch: options.fetch } : {}) };
    this.client = new RegistryClient(options.registryUrl, clientOptions);
  }

  /** The model serving now, if any. */
  async current(): Promise<InstalledModel | null> {
    return (await this.options.store.loadState()).current;
  }

  /** At start-up: a trial still marked means the app died loading it; block it and keep the last good model. */
  async recover(): Promise<InstalledModel | null> {
    const store = this.options.store;
    const state = await store.loadState();
    if (state.trial === null) return state.current;
    const trial = state.trial;
    await store.saveState({ ...state, trial: null, blocked: [...state.blocked, blockKey(trial.version, trial.sha256)] });
    if (trial.sha256 !== state.current?.sha256) await store.deleteModel(trial.sha256);
    await this.event("rollback", trial, { reason: "the app stopped while loading this model" });
    return state.current;
  }

  /** Poll once and install what the registry offers if it passes every check. Never throws an EdgeError. */
  checkNow(): Promise<UpdateResult> {
    // One check at a time: a second caller shares the one under way.
    this.busy ??= this.check().finally(() => {
      this.busy = null;
    });
    return this.busy;
  }

  /** Poll until `signal` aborts: jittered interval after success, capped exponential back-off after failure. */
  async run(signal: AbortSignal): Promise<void> {
    const random = this.options.random ?? Math.random;
    while (!signal.aborted) {
      const outcome = await this.checkNow();
      let delay: number;
      if (outcome.status === "failed") {
        this.failures++;
        delay = backoffDelay(this.failures, this.options.backoffInitialS ?? 30, this.options.backoffMaxS ?? 6 * 3600, outcome.retryAfterS, random);
      } else {
        this.failures = 0;
        delay = pollDelay(this.options.pollIntervalS ?? 3600, this.options.jitter ?? 0.2, random);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay * 1000);
        signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
      });
    }
  }

  private async check(): Promise<UpdateResult> {
    try {
      return await this.checkOnce();
    } catch (err) {
      if (err instanceof RegistryError) return result("failed", null, err.message, err.retryAfterS);
      if (err instanceof VerificationError) {
        await this.event("error", null, { stage: "verify", error: err.name, message: err.message.slice(0, 500) });
        return result("rejected", null, `${err.name}: ${err.message}`);
      }
      if (err instanceof DownloadError) {
        await this.event("error", null, { stage: "download", error: err.message.slice(0, 500) });
        return result("failed", null, err.message);
      }
      throw err;
    }
  }

  private async poll(etag: string | null): Promise<ManifestResponse> {
    const dev = this.options.device;
    for (const [i, runtime] of this.runtimes.entries()) {
      const params = {
        alias: this.alias,
        device_id: dev.deviceId,
        runtime,
        ...(dev.platform ? { platform: dev.platform } : {}),
        ...(dev.appVersion ? { app_version: dev.appVersion } : {}),
        ...(dev.deviceClass ? { device_class: dev.deviceClass } : {}),
      };
      try {
        return await this.client.manifest(this.options.model, params, etag);
      } catch (err) {
        if (!(err instanceof RegistryError) || err.status !== 404 || i + 1 === this.runtimes.length) throw err;
      }
    }
    throw new EdgeError("no runtime to ask for: set runtimes");
  }

  private async checkOnce(): Promise<UpdateResult> {
    const { store, model } = this.options;
    let state = await store.loadState();
    const current = state.current;
    // An unchanged answer is only worth skipping if something is serving.
    const response = await this.poll(current ? state.manifestEtag : null);
    if (response.raw === null) return result("not_modified", current?.version ?? null);
    const seenKey = `${model}@${this.alias}`;
    this.signatures ??= this.options.signatureCheck ? Promise.resolve(this.options.signatureCheck) : signatureCheck();
    const manifest = await checkManifestWith(
      response.raw,
      this.options.publicKeys,
      {
        model,
        alias: this.alias,
        installedVersion: current?.version ?? null,
        installedSequence: current?.sequence ?? null,
        seenSequence: state.sequences[seenKey] ?? null,
        installedLabels: current?.labels ?? [],
        runtimes: this.runtimes,
        allowLabelChanges: this.options.allowLabelChanges ?? false,
        maxClockSkewS: this.options.maxClockSkewS ?? 300,
      },
      this.options.clock?.() ?? new Date(),
      await this.signatures,
    );
    // Remembered whatever happens next, so a rollback skipped here cannot be replayed once the alias moves on.
    state = { ...state, sequences: { ...state.sequences, [seenKey]: Math.max(manifest.sequence, state.sequences[seenKey] ?? 0) } };
    await store.saveState(state);
    if (current !== null && manifest.sha256 === current.sha256) {
      await store.saveState({ ...state, manifestEtag: response.etag });
      return result("up_to_date", manifest.version);
    }
    if (state.blocked.includes(blockKey(manifest.version, manifest.sha256))) {
      await store.saveState({ ...state, manifestEtag: response.etag });
      return result("blocked", manifest.version, "failed its health check here before");
    }
    const headers = this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {};
    const download = await downloadArtifact(this.client.artifactUrl(manifest.artifact_url), store, manifest, {
      ...this.options.download,
      headers,
      ...(this.options.fetch ? { fetch: this.options.fetch } : {}),
    });
    checkBytes(download.data, manifest);
    return this.install(state, manifest, download.data, response.etag);
  }

  private async install(state: StoreState, manifest: Manifest, data: Uint8Array, etag: string | null): Promise<UpdateResult> {
    const store = this.options.store;
    const entry: InstalledModel = {
      model: manifest.model,
      alias: manifest.alias,
      version: manifest.version,
      variant: manifest.variant,
      runtime: manifest.runtime,
      sha256: manifest.sha256,
      size: manifest.size,
      labels: manifest.labels,
      input: manifest.input,
      sequence: manifest.sequence,
    };
    await store.putModel(entry.sha256, data);
    // Durably a trial before anything loads it: a crash while loading is found by `recover`.
    await store.saveState({ ...state, trial: entry });
    try {
      await this.options.healthCheck?.(data, manifest);
    } catch (err) {
      await store.saveState({ ...state, trial: null, blocked: [...state.blocked, blockKey(entry.version, entry.sha256)], manifestEtag: etag });
      await store.deleteModel(entry.sha256);
      await this.event("rollback", entry, { reason: String(err).slice(0, 500) });
      return result("reverted", manifest.version, `health check failed: ${String(err)}`);
    }
    const old = state.previous;
    await store.saveState({ ...state, current: entry, previous: state.current, trial: null, manifestEtag: etag });
    if (old !== null && old.sha256 !== entry.sha256 && old.sha256 !== state.current?.sha256) await store.deleteModel(old.sha256);
    await this.event("update", entry, { from_version: state.current?.version ?? null });
    return result("installed", manifest.version);
  }

  private async event(kind: "update" | "rollback" | "error", entry: InstalledModel | null, detail: Record<string, string | number | null>): Promise<void> {
    await this.options.telemetry?.record(kind, {
      ...(entry ? { model: entry.model, version: entry.version, variant: entry.variant } : { model: this.options.model }),
      detail,
    });
  }
}
