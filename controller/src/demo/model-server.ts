// A small demo model server answering the seed's output shape:
//   {"prediction": "<label>", "confidence": 0.0-1.0, "model_version": "<version>"}
// Behaviour (error rate, added latency) can be set at start and changed at run time through
// PUT /__demo/behavior, so tests and demos can make a canary misbehave.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface ModelBehavior {
  /** Fraction of requests answered with HTTP 500. */
  errorRate: number;
  /** Added latency per request, in milliseconds. */
  latencyMs: number;
  /** Shifts every predicted label by this many places: a model that disagrees with the others. */
  labelShift: number;
  /** Answers 200 with a body that is not JSON. */
  garbage: boolean;
  /** Answers exactly these bytes (base64), with these headers, optionally written in small chunks. */
  fixedResponse: { status?: number; headers?: Record<string, string>; bodyBase64: string; chunkBytes?: number } | null;
}

export interface ModelServer {
  url: string;
  port: number;
  version: string;
  behavior: ModelBehavior;
  /** Requests answered so far (excluding /__demo calls). */
  served(): number;
  /** Requests that carried the x-modelroll-shadow header (mirrored by the filter). */
  mirrored(): number;
  /** The last mirrored request as received, for tests that check what the filter copied. */
  lastMirrored(): { method: string; url: string; headers: Record<string, string | string[] | undefined>; body: string } | null;
  close(): Promise<void>;
}

const LABELS = ["approve", "review", "decline"];

function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export function prediction(version: string, body: string, labelShift = 0): { prediction: string; confidence: number; model_version: string } {
  const h = hash32(body);
  return {
    prediction: LABELS[(h + labelShift) % LABELS.length],
    confidence: Math.round(((h >>> 8) % 1000) / 10) / 100,
    model_version: version,
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

export async function startModelServer(opts: { version: string; host?: string; port?: number; behavior?: Partial<ModelBehavior> }): Promise<ModelServer> {
  const behavior: ModelBehavior = { errorRate: 0, latencyMs: 0, labelShift: 0, garbage: false, fixedResponse: null, ...opts.behavior };
  let served = 0;
  let mirrored = 0;
  let lastMirrored: ReturnType<ModelServer["lastMirrored"]> = null;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const body = await readBody(req);
    if (req.url === "/__demo/behavior") {
      if (req.method === "PUT") {
        try {
          const next = JSON.parse(body) as Partial<ModelBehavior>;
          if (typeof next.errorRate === "number") behavior.errorRate = next.errorRate;
          if (typeof next.latencyMs === "number") behavior.latencyMs = next.latencyMs;
          if (typeof next.labelShift === "number") behavior.labelShift = next.labelShift;
          if (typeof next.garbage === "boolean") behavior.garbage = next.garbage;
          if (next.fixedResponse !== undefined) behavior.fixedResponse = next.fixedResponse;
        } catch {
          res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: "model server: behavior must be JSON" }));
          return;
        }
      }
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(behavior));
      return;
    }
    served++;
    if (req.headers["x-modelroll-shadow"] !== undefined) {
      mirrored++;
      lastMirrored = { method: req.method ?? "", url: req.url ?? "", headers: { ...req.headers }, body };
    }
    if (behavior.latencyMs > 0) await new Promise((r) => setTimeout(r, behavior.latencyMs));
    const headers = { "content-type": "application/json", "x-model-version": opts.version };
    if (behavior.errorRate > 0 && Math.random() < behavior.errorRate) {
      res.writeHead(500, headers).end(JSON.stringify({ error: "model failed", model_version: opts.version }));
      return;
    }
    const fixed = behavior.fixedResponse;
    if (fixed) {
      const bytes = Buffer.from(fixed.bodyBase64, "base64");
      res.writeHead(fixed.status ?? 200, { "x-model-version": opts.version, ...(fixed.headers ?? {}) });
      const step = fixed.chunkBytes && fixed.chunkBytes > 0 ? fixed.chunkBytes : bytes.length || 1;
      for (let i = 0; i < bytes.length; i += step) {
        res.write(bytes.subarray(i, i + step));
        // Let each piece leave as its own chunk rather than one coalesced write.
        if (fixed.chunkBytes) await new Promise((r) => setImmediate(r));
      }
      res.end();
      return;
    }
    if (behavior.garbage) {
      res.writeHead(200, headers).end("<html>not a model answer</html>");
      return;
    }
    res.writeHead(200, headers).end(JSON.stringify(prediction(opts.version, `${req.url} ${body}`, behavior.labelShift)));
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${opts.host ?? "127.0.0.1"}:${port}`,
    port,
    version: opts.version,
    behavior,
    served: () => served,
    mirrored: () => mirrored,
    lastMirrored: () => lastMirrored,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
