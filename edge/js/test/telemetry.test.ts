import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { MemoryQueueStorage, RegistryClient, TelemetryQueue } from "../src/index.js";
import { FaultServer } from "./server.js";

let server: FaultServer;

beforeEach(async () => {
  server = await new FaultServer().start();
});
afterEach(async () => {
  await server.stop();
});

describe("TelemetryQueue", () => {
  it("delivers each event exactly once when an answer is lost", async () => {
    const queue = new TelemetryQueue(new MemoryQueueStorage(), "d-1", { batchSize: 3 });
    for (let i = 0; i < 7; i++) await queue.record("inference", { latency_ms: i });
    server.loseTelemetryAnswers = 1; // the first batch is committed, its answer never arrives
    const client = new RegistryClient(server.url);
    const first = await queue.flush(client);
    expect(first.error).toMatch(/cannot reach the registry/);
    expect(first.remaining).toBe(7);
    const second = await queue.flush(client);
    expect(second).toMatchObject({ batches: 3, accepted: 4, duplicates: 3, remaining: 0, error: null });
    expect(server.events.size).toBe(7);
    expect(new Set(server.encodings)).toEqual(new Set(["gzip"]));
  });

  it("sets a refused event aside and delivers the others", async () => {
    const queue = new TelemetryQueue(new MemoryQueueStorage(), "d-1", { batchSize: 8 });
    for (let i = 0; i < 8; i++) await queue.record("inference", { detail: { poison: i === 5 } });
    const result = await queue.flush(new RegistryClient(server.url));
    expect(result.deadLettered).toBe(1);
    expect(server.events.size).toBe(7);
    const dead = await queue.deadLetters();
    expect(dead.map((d) => [d.status, d.event.detail?.poison])).toEqual([[422, true]]);
    expect(await queue.pending()).toBe(1); // the one "error" event saying so, for the next flush
  });

  it("keeps the newest events when full, counting the dropped", async () => {
    const storage = new MemoryQueueStorage();
    const queue = new TelemetryQueue(storage, "d-1", { maxEvents: 3 });
    for (let i = 0; i < 5; i++) await queue.record("inference", { latency_ms: i });
    const saved = await storage.load();
    expect(saved?.events.map((e) => e.latency_ms)).toEqual([2, 3, 4]);
    expect(saved?.dropped).toBe(2);
  });
});
