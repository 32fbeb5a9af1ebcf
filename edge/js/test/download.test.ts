import { createHash } from "node:crypto";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { DownloadError, downloadArtifact, IntegrityError, MemoryStore, OversizeError } from "../src/index.js";
import { FaultServer } from "./server.js";

const body = new Uint8Array(Array.from({ length: 5000 }, (_, i) => (i * 7) % 251));
const sha256 = createHash("sha256").update(body).digest("hex");
const noSleep = async (): Promise<void> => {};
let server: FaultServer;

beforeEach(async () => {
  server = await new FaultServer().start();
});
afterEach(async () => {
  await server.stop();
});

describe("downloadArtifact", () => {
  it("resumes a cut download with Range and If-Range", async () => {
    server.routes.set("/a", { body, cutAfter: 1200, cuts: 2 });
    const result = await downloadArtifact(`${server.url}/a`, new MemoryStore(), { sha256, size: body.length }, { sleep: noSleep });
    expect(result.data).toEqual(body);
    expect(result.resumes).toBe(2);
    expect(server.seen.map((s) => s.headers.range)).toEqual([undefined, "bytes=1200-", "bytes=2400-"]);
    expect(server.seen[1]?.headers["if-range"]).toBe('"v1"');
  });

  it("starts over when the file changed between two requests", async () => {
    server.routes.set("/a", { body: new Uint8Array(body.length).fill(1), etag: '"old"', cutAfter: 1000, cuts: 1 });
    const store = new MemoryStore();
    const first = downloadArtifact(`${server.url}/a`, store, { sha256, size: body.length }, {
      sleep: async () => {
        server.routes.set("/a", { body, etag: '"new"' }); // If-Range no longer matches: a 200 with the whole file
      },
    });
    const result = await first;
    expect(result.data).toEqual(body);
    expect(result.restarts).toBe(1);
  });

  it("stops at the declared size", async () => {
    server.routes.set("/a", { body, extra: 10 });
    await expect(downloadArtifact(`${server.url}/a`, new MemoryStore(), { sha256, size: body.length })).rejects.toThrow(OversizeError);
  });

  it("refuses bytes whose sha256 differs", async () => {
    const other = body.slice();
    other[10] = (other[10] as number) ^ 1;
    server.routes.set("/a", { body: other });
    const store = new MemoryStore();
    await expect(downloadArtifact(`${server.url}/a`, store, { sha256, size: body.length })).rejects.toThrow(IntegrityError);
    expect(await store.loadPartial(sha256)).toBeNull(); // nothing kept to resume from
  });

  it("gives up on a 4xx, retries a 5xx", async () => {
    await expect(downloadArtifact(`${server.url}/missing`, new MemoryStore(), { sha256, size: body.length })).rejects.toThrow(DownloadError);
    server.routes.set("/busy", { body, status: 503 });
    const failing = downloadArtifact(`${server.url}/busy`, new MemoryStore(), { sha256, size: body.length }, { sleep: noSleep, maxResumes: 2 });
    await expect(failing).rejects.toThrow(/gave up after 2 resumes/);
  });
});
