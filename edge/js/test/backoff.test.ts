import { describe, expect, it } from "vitest";

import { backoffDelay, parseRetryAfter, pollDelay } from "../src/index.js";

describe("back-off", () => {
  it("doubles up to the cap, with full jitter in [c/2, c]", () => {
    expect(backoffDelay(1, 30, 21600, null, () => 0)).toBe(15);
    expect(backoffDelay(3, 30, 21600, null, () => 1)).toBe(120);
    expect(backoffDelay(30, 30, 21600, null, () => 1)).toBe(21600);
  });

  it("waits at least Retry-After, but never past backoff_max_s", () => {
    expect(backoffDelay(1, 30, 21600, 600, () => 0)).toBe(600);
    expect(backoffDelay(1, 30, 21600, 99_999_999, () => 0)).toBe(21600);
  });

  it("jitters polls by ± jitter", () => {
    expect(pollDelay(3600, 0.2, () => 0)).toBeCloseTo(2880);
    expect(pollDelay(3600, 0.2, () => 1)).toBeCloseTo(4320);
  });

  it("reads Retry-After as ASCII seconds or an HTTP date", () => {
    const now = new Date("2026-11-23T07:00:00Z");
    expect(parseRetryAfter("120", now)).toBe(120);
    expect(parseRetryAfter("Mon, 23 Nov 2026 07:01:00 GMT", now)).toBe(60);
    expect(parseRetryAfter("²", now)).toBeNull();
    expect(parseRetryAfter("12.5", now)).toBeNull();
    expect(parseRetryAfter(null, now)).toBeNull();
  });
});
