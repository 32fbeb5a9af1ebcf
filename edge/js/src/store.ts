/**
 * The on-device model store, as an interface an app implements for its platform
 * (the filesystem in Node: `FsStore` from "@edgeloop/edge/node"; IndexedDB in browsers:
 * `IndexedDbStore` from "@edgeloop/edge/browser"; AsyncStorage or files in React Native), plus an in-memory one for tests and kiosks.
 *
 * Contract: `saveState` replaces the state atomically (a crash leaves the old or the new
 * one, never a mix); `putModel` is durable before it resolves; a model is deleted only once
 * no state names it.
 */

import type { InputSpec } from "./manifest.js";

export interface InstalledModel {
  readonly model: string;
  readonly alias: string;
  readonly version: number;
  readonly variant: string;
  readonly runtime: string;
  readonly sha256: string;
  readonly size: number;
  readonly labels: readonly string[];
  /** The input spec its manifest signed (absent in states older SDKs wrote): what `Classifier` feeds it. */
  readonly input?: InputSpec;
  /** The alias sequence of the manifest that installed it (null: bundled with the app). */
  readonly sequence: number | null;
}

export interface StoreState {
  readonly current: InstalledModel | null;
  readonly previous: InstalledModel | null;
  /** Being health-checked; found here at start-up it means the app died loading it: block it. */
  readonly trial: InstalledModel | null;
  /** "<version>:<sha256>" that failed a health check on this device. */
  readonly blocked: readonly string[];
  readonly manifestEtag: string | null;
  /** Highest verified sequence per "<model>@<alias>". */
  readonly sequences: Readonly<Record<string, number>>;
}

export const EMPTY_STATE: StoreState = {
  current: null,
  previous: null,
  trial: null,
  blocked: [],
  manifestEtag: null,
  sequences: {},
};

/** A resumable partial download, keyed by the sha256 it should end up with. */
export interface PartialDownload {
  readonly data: Uint8Array;
  readonly etag: string | null;
}

export interface ModelStore {
  loadState(): Promise<StoreState>;
  saveState(state: StoreState): Promise<void>;
  putModel(sha256: string, data: Uint8Array): Promise<void>;
  getModel(sha256: string): Promise<Uint8Array | null>;
  deleteModel(sha256: string): Promise<void>;
  loadPartial(sha256: string): Promise<PartialDownload | null>;
  appendPartial(sha256: string, chunk: Uint8Array, etag: string | null): Promise<void>;
  clearPartial(sha256: string): Promise<void>;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Everything in memory: for tests, kiosks and apps that download at every start. */
export class MemoryStore implements ModelStore {
  private state: StoreState = EMPTY_STATE;
  private readonly models = new Map<string, Uint8Array>();
  private readonly partials = new Map<string, PartialDownload>();

  async loadState(): Promise<StoreState> {
    return structuredClone(this.state);
  }
  async saveState(state: StoreState): Promise<void> {
    this.state = structuredClone(state);
  }
  async putModel(sha256: string, data: Uint8Array): Promise<void> {
    this.models.set(sha256, data.slice());
  }
  async getModel(sha256: string): Promise<Uint8Array | null> {
    return this.models.get(sha256) ?? null;
  }
  async deleteModel(sha256: string): Promise<void> {
    this.models.delete(sha256);
  }
  async loadPartial(sha256: string): Promise<PartialDownload | null> {
    return this.partials.get(sha256) ?? null;
  }
  async appendPartial(sha256: string, chunk: Uint8Array, etag: string | null): Promise<void> {
    const have = this.partials.get(sha256)?.data ?? new Uint8Array();
    this.partials.set(sha256, { data: concat(have, chunk), etag });
  }
  async clearPartial(sha256: string): Promise<void> {
    this.partials.delete(sha256);
  }
}
