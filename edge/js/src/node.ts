/**
 * Node implementations of the storage interfaces, on the filesystem ("@edgeloop/edge/node").
 *
 *     <root>/models/<sha256>.bin     written once: temp + fsync + rename
 *     <root>/partial/<sha256>.part   resumable downloads (+ .etag)
 *     <root>/state.json              replaced only by an atomic rename
 *     <root>/telemetry.json          the telemetry queue, likewise
 */

import { promises as fs } from "node:fs";
import path from "node:path";

import { StoreError } from "./errors.js";
import { EMPTY_STATE, type ModelStore, type PartialDownload, type StoreState } from "./store.js";
import type { QueueContents, QueueStorage } from "./telemetry.js";

const SHA256 = /^[0-9a-f]{64}$/;

async function writeAtomic(file: string, data: Uint8Array | string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const handle = await fs.open(tmp, "w");
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, file);
}

async function readOrNull(file: string): Promise<Buffer | null> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}

export class FsStore implements ModelStore {
  constructor(readonly root: string) {}

  private file(kind: "models" | "partial", sha256: string, suffix: string): string {
    // The name comes from a verified manifest's sha256, but a path is never built from anything else.
    if (!SHA256.test(sha256)) throw new StoreError(`not a sha256: ${JSON.stringify(sha256)}`);
    return path.join(this.root, kind, `${sha256}${suffix}`);
  }

  async loadState(): Promise<StoreState> {
    const raw = await readOrNull(path.join(this.root, "state.json"));
    if (raw === null) return EMPTY_STATE;
    try {
      return { ...EMPTY_STATE, ...(JSON.parse(raw.toString("utf-8")) as Partial<StoreState>) };
    } catch (err) {
      throw new StoreError(`${path.join(this.root, "state.json")} is unreadable (${String(err)}); delete it to start over`);
    }
  }

  async saveState(state: StoreState): Promise<void> {
    await writeAtomic(path.join(this.root, "state.json"), JSON.stringify(state));
  }

  async putModel(sha256: string, data: Uint8Array): Promise<void> {
    await writeAtomic(this.file("models", sha256, ".bin"), data);
  }

  async getModel(sha256: string): Promise<Uint8Array | null> {
    const data = await readOrNull(this.file("models", sha256, ".bin"));
    return data === null ? null : new Uint8Array(data);
  }

  async deleteModel(sha256: string): Promise<void> {
    await fs.rm(this.file("models", sha256, ".bin"), { force: true });
  }

  async loadPartial(sha256: string): Promise<PartialDownload | null> {
    const data = await readOrNull(this.file("partial", sha256, ".part"));
    if (data === null) return null;
    const etag = await readOrNull(this.file("partial", sha256, ".etag"));
    return { data: new Uint8Array(data), etag: etag === null || etag.length === 0 ? null : etag.toString("utf-8") };
  }

  async appendPartial(sha256: string, chunk: Uint8Array, etag: string | null): Promise<void> {
    const part = this.file("partial", sha256, ".part");
    await fs.mkdir(path.dirname(part), { recursive: true });
    await fs.writeFile(this.file("partial", sha256, ".etag"), etag ?? "");
    await fs.appendFile(part, chunk);
  }

  async clearPartial(sha256: string): Promise<void> {
    await fs.rm(this.file("partial", sha256, ".part"), { force: true });
    await fs.rm(this.file("partial", sha256, ".etag"), { force: true });
  }
}

export class FsQueueStorage implements QueueStorage {
  constructor(readonly file: string) {}

  async load(): Promise<QueueContents | null> {
    const raw = await readOrNull(this.file);
    return raw === null ? null : (JSON.parse(raw.toString("utf-8")) as QueueContents);
  }

  async save(contents: QueueContents): Promise<void> {
    await writeAtomic(this.file, JSON.stringify(contents));
  }
}
