/**
 * Browser implementations of the storage interfaces, on IndexedDB ("@edgeloop/edge/browser").
 *
 *     models   <sha256> -> the file's bytes, written only after they hash to <sha256>
 *     partial  [<sha256>, n] -> { chunk, etag }: a resumable download, one record per chunk
 *     state    "state" -> StoreState; "queue" -> the telemetry queue
 *
 * The swap is atomic because it is one IndexedDB transaction: `saveState` checks, in the same
 * readwrite transaction that replaces the state, that every model the new state names is stored;
 * a crash or a closed tab leaves the old state or the new one, never a pointer to a missing file.
 */

import { sha256 as sha256Hash } from "@noble/hashes/sha256";
import { bytesToHex } from "@noble/hashes/utils";

import { StoreError } from "./errors.js";
import { EMPTY_STATE, type ModelStore, type PartialDownload, type StoreState } from "./store.js";
import type { QueueContents, QueueStorage } from "./telemetry.js";

const SHA256 = /^[0-9a-f]{64}$/;
const STORES = ["models", "partial", "state"] as const;
type StoreName = (typeof STORES)[number];

interface Chunk {
  readonly chunk: Uint8Array;
  readonly etag: string | null;
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(new StoreError(`IndexedDB request failed: ${String(req.error)}`));
  });
}

/** Opens (and on first use creates) one IndexedDB database shared by a model store and a queue. */
export function openDatabase(name: string, factory: IDBFactory = indexedDB): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = factory.open(name, 1);
    req.onupgradeneeded = () => {
      for (const store of STORES) if (!req.result.objectStoreNames.contains(store)) req.result.createObjectStore(store);
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(new StoreError(`cannot open IndexedDB ${JSON.stringify(name)}: ${String(req.error)}`));
    // Another tab holds an older schema open: say so instead of waiting forever.
    req.onblocked = () => reject(new StoreError(`IndexedDB ${JSON.stringify(name)} is held open by another tab; close it`));
  });
}

/** Runs `work` in one transaction and resolves with its result once the transaction committed. */
async function transact<T>(
  db: IDBDatabase,
  names: readonly StoreName[],
  mode: IDBTransactionMode,
  work: (tx: IDBTransaction) => Promise<T>,
): Promise<T> {
  // "strict": resolved only once the browser has flushed it, as fsync does for the FsStore.
  const tx = db.transaction(names as StoreName[], mode, { durability: mode === "readwrite" ? "strict" : "default" });
  const committed = new Promise<void>((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error ?? new StoreError("IndexedDB transaction aborted"));
    tx.onerror = () => reject(new StoreError(`IndexedDB transaction failed: ${String(tx.error)}`));
  });
  let value: T;
  try {
    value = await work(tx);
  } catch (err) {
    tx.abort();
    await committed.catch(() => undefined); // the abort's own rejection: `err` says why
    throw err;
  }
  await committed;
  return value;
}

function checkedKey(sha256: string): string {
  if (!SHA256.test(sha256)) throw new StoreError(`not a sha256: ${JSON.stringify(sha256)}`);
  return sha256;
}

function partialRange(sha256: string): IDBKeyRange {
  return IDBKeyRange.bound([checkedKey(sha256), 0], [sha256, Number.MAX_SAFE_INTEGER]);
}

export class IndexedDbStore implements ModelStore {
  constructor(private readonly db: IDBDatabase) {}

  static async open(name = "edgeloop"): Promise<IndexedDbStore> {
    return new IndexedDbStore(await openDatabase(name));
  }

  async loadState(): Promise<StoreState> {
    const saved = await transact(this.db, ["state"], "readonly", (tx) =>
      request(tx.objectStore("state").get("state") as IDBRequest<StoreState | undefined>),
    );
    return saved === undefined ? EMPTY_STATE : { ...EMPTY_STATE, ...saved };
  }

  async saveState(state: StoreState): Promise<void> {
    await transact(this.db, ["state", "models"], "readwrite", async (tx) => {
      for (const entry of [state.current, state.previous, state.trial]) {
        if (entry === null) continue;
        const found = await request(tx.objectStore("models").getKey(checkedKey(entry.sha256)));
        if (found === undefined) {
          throw new StoreError(`state names ${entry.model} v${entry.version} (${entry.sha256}), which is not stored; putModel it first`);
        }
      }
      await request(tx.objectStore("state").put(state, "state"));
    });
  }

  async putModel(sha256: string, data: Uint8Array): Promise<void> {
    const digest = bytesToHex(sha256Hash(data));
    if (digest !== checkedKey(sha256)) throw new StoreError(`bytes hash to ${digest}, not ${sha256}; not storing them`);
    await transact(this.db, ["models"], "readwrite", (tx) => request(tx.objectStore("models").put(data, sha256)));
  }

  async getModel(sha256: string): Promise<Uint8Array | null> {
    const data = await transact(this.db, ["models"], "readonly", (tx) =>
      request(tx.objectStore("models").get(checkedKey(sha256)) as IDBRequest<Uint8Array | undefined>),
    );
    return data ?? null;
  }

  async deleteModel(sha256: string): Promise<void> {
    await transact(this.db, ["models"], "readwrite", (tx) => request(tx.objectStore("models").delete(checkedKey(sha256))));
  }

  async loadPartial(sha256: string): Promise<PartialDownload | null> {
    const chunks = await transact(this.db, ["partial"], "readonly", (tx) =>
      request(tx.objectStore("partial").getAll(partialRange(sha256)) as IDBRequest<Chunk[]>),
    );
    if (chunks.length === 0) return null;
    const data = new Uint8Array(chunks.reduce((n, c) => n + c.chunk.length, 0));
    let at = 0;
    for (const { chunk } of chunks) {
      data.set(chunk, at);
      at += chunk.length;
    }
    return { data, etag: chunks[chunks.length - 1]?.etag ?? null };
  }

  async appendPartial(sha256: string, chunk: Uint8Array, etag: string | null): Promise<void> {
    // One record per chunk: appending never rewrites what is already kept.
    await transact(this.db, ["partial"], "readwrite", async (tx) => {
      const store = tx.objectStore("partial");
      const last = await request(store.openKeyCursor(partialRange(sha256), "prev"));
      const n = last === null ? 0 : ((last.key as [string, number])[1] as number) + 1;
      await request(store.add({ chunk: chunk.slice(), etag } satisfies Chunk, [sha256, n]));
    });
  }

  async clearPartial(sha256: string): Promise<void> {
    await transact(this.db, ["partial"], "readwrite", (tx) => request(tx.objectStore("partial").delete(partialRange(sha256))));
  }
}

/** The telemetry queue in the same database, replaced whole in one transaction. */
export class IndexedDbQueueStorage implements QueueStorage {
  constructor(
    private readonly db: IDBDatabase,
    private readonly key = "queue",
  ) {}

  async load(): Promise<QueueContents | null> {
    const saved = await transact(this.db, ["state"], "readonly", (tx) =>
      request(tx.objectStore("state").get(this.key) as IDBRequest<QueueContents | undefined>),
    );
    return saved ?? null;
  }

  async save(contents: QueueContents): Promise<void> {
    await transact(this.db, ["state"], "readwrite", (tx) => request(tx.objectStore("state").put(contents, this.key)));
  }
}
