// A misbehaving HTTP server on loopback (like tests/edge/faults.py): fixed bytes per path, faults by count.
// It is not a registry: the real one is exercised by the Python suite and the integration tests.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";

export interface Route {
  body: Uint8Array;
  etag?: string;
  status?: number;
  headers?: Record<string, string>;
  /** Cut the connection after this many body bytes, for the next `cuts` requests. */
  cutAfter?: number;
  cuts?: number;
  /** Send this many extra bytes past the body (an endless-data server). */
  extra?: number;
}

export interface Seen {
  path: string;
  headers: IncomingMessage["headers"];
}

export class FaultServer {
  readonly routes = new Map<string, Route>();
  readonly seen: Seen[] = [];
  /** POST /v1/telemetry: event ids received (committed before answering). */
  readonly events = new Map<string, unknown>();
  /** Drop the connection after committing this many telemetry batches' events (a lost answer). */
  loseTelemetryAnswers = 0;
  /** Content-Encoding of each telemetry upload. */
  readonly encodings: string[] = [];
  private server: Server | null = null;
  url = "";

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "").split("?")[0] as string;
    this.seen.push({ path, headers: req.headers });
    if (req.method === "POST" && path === "/v1/telemetry") return this.telemetry(req, res);
    const route = this.routes.get(path);
    if (route === undefined) {
      res.writeHead(404, { "content-type": "application/json" }).end('{"detail":"no such route"}');
      return;
    }
    const etag = route.etag ?? '"v1"';
    if (route.status !== undefined && route.status !== 200) {
      res.writeHead(route.status, route.headers ?? {}).end('{"detail":"planned"}');
      return;
    }
    if (req.headers["if-none-match"] === etag) {
      res.writeHead(304, { etag }).end();
      return;
    }
    let body = route.body;
    let status = 200;
    const headers: Record<string, string> = { etag, "accept-ranges": "bytes", ...route.headers };
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    const ifRange = req.headers["if-range"];
    if (range && (ifRange === undefined || ifRange === etag)) {
      const start = Number(range[1]);
      headers["content-range"] = `bytes ${start}-${body.length - 1}/${body.length}`;
      body = body.slice(start);
      status = 206;
    }
    if (route.extra) body = new Uint8Array([...body, ...new Uint8Array(route.extra)]);
    if (route.cutAfter !== undefined && (route.cuts ?? 1) > 0) {
      route.cuts = (route.cuts ?? 1) - 1;
      res.writeHead(status, { ...headers, "content-length": String(body.length) });
      res.write(body.slice(0, route.cutAfter), () => res.destroy());
      return;
    }
    res.writeHead(status, { ...headers, "content-length": String(body.length) }).end(body);
  }

  private async telemetry(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const text = (req.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw).toString("utf-8");
    this.encodings.push(req.headers["content-encoding"] ?? "identity");
    const batch = JSON.parse(text) as { events: { event_id: string; detail?: Record<string, unknown> }[] };
    if (batch.events.some((e) => e.detail?.poison === true)) {
      res.writeHead(422, { "content-type": "application/json" }).end('{"detail":"events[0].detail.poison: refused"}');
      return;
    }
    let accepted = 0;
    for (const event of batch.events) {
      if (!this.events.has(event.event_id)) accepted++;
      this.events.set(event.event_id, event);
    }
    if (this.loseTelemetryAnswers > 0) {
      this.loseTelemetryAnswers--;
      res.destroy(); // committed, but the device never hears so
      return;
    }
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ accepted, duplicates: batch.events.length - accepted }));
  }
}
