/** The registry's device routes over `fetch` (injectable, so an app can add its own transport). */

import { parseRetryAfter } from "./backoff.js";
import { ManifestError, RegistryError } from "./errors.js";

/** A manifest answer over this is an endless-data attack, not a manifest. */
export const MAX_MANIFEST_BYTES = 1 << 20;

export type Fetch = typeof fetch;

export interface PollParams {
  readonly alias?: string;
  readonly device_id?: string;
  readonly platform?: string;
  readonly runtime?: string;
  readonly app_version?: string;
  readonly device_class?: string;
}

/** One poll's answer: `raw` is null when the registry said 304 Not Modified. */
export interface ManifestResponse {
  readonly raw: Uint8Array | null;
  readonly etag: string | null;
}

export interface ClientOptions {
  readonly apiKey?: string;
  readonly fetch?: Fetch;
}

/** Reads at most `limit` bytes of a body; more throws `tooBig()`. */
export async function readCapped(response: Response, limit: number, tooBig: () => Error): Promise<Uint8Array> {
  const reader = response.body?.getReader();
  if (reader === undefined) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      await reader.cancel();
      throw tooBig();
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

export class RegistryClient {
  readonly baseUrl: string;
  private readonly headers: Record<string, string>;
  private readonly fetchImpl: Fetch;

  constructor(baseUrl: string, options: ClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.headers = options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {};
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** The absolute URL of an artifact named by a manifest (which may give it relative to the registry). */
  artifactUrl(url: string): string {
    return new URL(url, `${this.baseUrl}/`).toString();
  }

  async request(url: string, what: string, init: RequestInit = {}): Promise<Response> {
    let response: Response;
    try {
      response = await this.fetchImpl(url, { ...init, headers: { ...this.headers, ...(init.headers as Record<string, string>) } });
    } catch (err) {
      throw new RegistryError(`${what}: cannot reach the registry at ${this.baseUrl}: ${String(err)}`);
    }
    if (response.status >= 400) {
      const body = (await response.text().catch(() => "")).slice(0, 300);
      throw new RegistryError(`${what}: registry answered ${response.status} ${body}`.trim(), {
        status: response.status,
        retryAfterS: parseRetryAfter(response.headers.get("retry-after")),
      });
    }
    return response;
  }

  /** Poll the manifest; `etag` goes out as If-None-Match so an unchanged answer costs one 304. */
  async manifest(model: string, params: PollParams, etag: string | null = null): Promise<ManifestResponse> {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (typeof v === "string") query.set(k, v);
    const url = `${this.baseUrl}/v1/models/${encodeURIComponent(model)}/manifest?${query.toString()}`;
    const what = `manifest of ${model}`;
    const response = await this.request(url, what, { headers: etag ? { "if-none-match": etag } : {} });
    if (response.status === 304) {
      // Read the (empty) body: an unread one holds the connection until garbage collection, and
      // Chromium reports the request as aborted.
      await response.arrayBuffer();
      return { raw: null, etag };
    }
    const raw = await readCapped(
      response,
      MAX_MANIFEST_BYTES,
      () => new ManifestError(`${what}: the answer exceeds ${MAX_MANIFEST_BYTES} bytes; refusing it (not a manifest)`),
    );
    return { raw, etag: response.headers.get("etag") };
  }

  /** Upload one batch, gzipped where the platform can; safe to resend (the registry dedupes by event_id). */
  async postTelemetry(events: readonly object[]): Promise<{ accepted: number; duplicates: number }> {
    const json = JSON.stringify({ events });
    const headers: Record<string, string> = { "content-type": "application/json" };
    let body: string | ArrayBuffer = json;
    if (typeof CompressionStream !== "undefined") {
      // A batch of 500 events is ~150 kB of JSON and a tenth of it gzipped: it is the device's data plan.
      body = await new Response(new Blob([json]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer();
      headers["content-encoding"] = "gzip";
    }
    const response = await this.request(`${this.baseUrl}/v1/telemetry`, "telemetry upload", { method: "POST", headers, body });
    return (await response.json()) as { accepted: number; duplicates: number };
  }
}
