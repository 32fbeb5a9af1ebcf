/**
 * The device's telemetry queue: persisted through a pluggable storage, bounded, uploaded in
 * batches, exactly once per event id (edge/PROTOCOL.md section 10).
 *
 * An event gets its `event_id` when recorded and keeps it through every retry, so a batch
 * re-sent after a lost answer is deduplicated by the registry. A batch refused for what it
 * holds (413, 422) is halved until the culprit is alone, which is set aside as a dead letter;
 * anything else leaves the events queued for the next flush.
 */

import type { RegistryClient } from "./client.js";
import { RegistryError } from "./errors.js";

export type EventKind = "inference" | "update" | "rollback" | "error" | "bench";

export interface TelemetryEvent {
  readonly event_id: string;
  readonly device_id: string;
  readonly kind: EventKind;
  readonly event_time: string;
  readonly model?: string;
  readonly version?: number;
  readonly variant?: string;
  readonly latency_ms?: number;
  readonly top1_label?: string;
  readonly top1_score?: number;
  readonly app_version?: string;
  readonly platform?: string;
  readonly device_class?: string;
  readonly os_version?: string;
  readonly detail?: Readonly<Record<string, string | number | boolean | null>>;
}

export interface DeadLetter {
  readonly event: TelemetryEvent;
  readonly status: number | null;
  readonly reason: string;
}

export interface QueueContents {
  readonly events: readonly TelemetryEvent[];
  readonly deadLetters: readonly DeadLetter[];
  readonly dropped: number;
}

/** Where the queue lives between runs; `save` replaces the contents atomically. */
export interface QueueStorage {
  load(): Promise<QueueContents | null>;
  save(contents: QueueContents): Promise<void>;
}

export class MemoryQueueStorage implements QueueStorage {
  private contents: QueueContents | null = null;
  async load(): Promise<QueueContents | null> {
    return this.contents;
  }
  async save(contents: QueueContents): Promise<void> {
    this.contents = structuredClone(contents);
  }
}

export interface FlushResult {
  readonly batches: number;
  readonly accepted: number;
  readonly duplicates: number;
  readonly remaining: number;
  readonly deadLettered: number;
  readonly error: string | null;
  readonly retryAfterS: number | null;
}

export interface QueueOptions {
  readonly maxEvents?: number;
  readonly batchSize?: number;
  readonly maxDeadLetters?: number;
}

const REFUSED = new Set([413, 422]);

export class TelemetryQueue {
  private contents: QueueContents = { events: [], deadLetters: [], dropped: 0 };
  private loaded = false;
  private readonly maxEvents: number;
  private readonly batchSize: number;
  private readonly maxDeadLetters: number;

  constructor(
    private readonly storage: QueueStorage,
    private readonly deviceId: string,
    options: QueueOptions = {},
  ) {
    this.maxEvents = options.maxEvents ?? 10_000;
    this.batchSize = options.batchSize ?? 500;
    this.maxDeadLetters = options.maxDeadLetters ?? 100;
  }

  private async ready(): Promise<void> {
    if (!this.loaded) {
      this.contents = (await this.storage.load()) ?? this.contents;
      this.loaded = true;
    }
  }

  /** Queue an event; its id is made here, once. The oldest go first when the queue is full. */
  async record(kind: EventKind, fields: Omit<Partial<TelemetryEvent>, "kind" | "event_id"> = {}): Promise<TelemetryEvent> {
    await this.ready();
    const event: TelemetryEvent = {
      device_id: this.deviceId,
      event_time: new Date().toISOString(),
      ...fields,
      event_id: crypto.randomUUID(),
      kind,
    };
    const events = [...this.contents.events, event];
    const over = Math.max(0, events.length - this.maxEvents);
    this.contents = { ...this.contents, events: events.slice(over), dropped: this.contents.dropped + over };
    await this.storage.save(this.contents);
    return event;
  }

  async pending(): Promise<number> {
    await this.ready();
    return this.contents.events.length;
  }

  async deadLetters(): Promise<readonly DeadLetter[]> {
    await this.ready();
    return this.contents.deadLetters;
  }

  /** Upload everything queued, batch by batch; stops at the first failure that is not about content. */
  async flush(client: RegistryClient): Promise<FlushResult> {
    await this.ready();
    let batches = 0;
    let accepted = 0;
    let duplicates = 0;
    let dead = 0;
    let error: string | null = null;
    let retryAfterS: number | null = null;
    // Depth-first over halves: a refused batch is split until the bad event is alone.
    const work: TelemetryEvent[][] = [];
    for (let i = 0; i < this.contents.events.length; i += this.batchSize) {
      work.push(this.contents.events.slice(i, i + this.batchSize));
    }
    while (work.length > 0) {
      const batch = work.shift() as TelemetryEvent[];
      try {
        const receipt = await client.postTelemetry(batch);
        batches++;
        accepted += receipt.accepted;
        duplicates += receipt.duplicates;
        await this.remove(batch, null);
      } catch (err) {
        if (!(err instanceof RegistryError)) throw err;
        if (err.status !== null && REFUSED.has(err.status)) {
          if (batch.length > 1) {
            const half = Math.ceil(batch.length / 2);
            work.unshift(batch.slice(0, half), batch.slice(half));
          } else {
            dead++;
            await this.remove(batch, { status: err.status, reason: err.message.slice(0, 500) });
          }
          continue;
        }
        error = err.message;
        retryAfterS = err.retryAfterS;
        break;
      }
    }
    if (dead > 0) {
      await this.record("error", { detail: { stage: "telemetry", dead_lettered: dead } });
    }
    return { batches, accepted, duplicates, remaining: this.contents.events.length, deadLettered: dead, error, retryAfterS };
  }

  private async remove(batch: readonly TelemetryEvent[], refused: { status: number; reason: string } | null): Promise<void> {
    const ids = new Set(batch.map((e) => e.event_id));
    const deadLetters = refused
      ? [...this.contents.deadLetters, ...batch.map((event) => ({ event, ...refused }))].slice(-this.maxDeadLetters)
      : this.contents.deadLetters;
    this.contents = { ...this.contents, events: this.contents.events.filter((e) => !ids.has(e.event_id)), deadLetters };
    await this.storage.save(this.contents);
  }
}
