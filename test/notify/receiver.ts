/**
 * A local HTTP receiver for notification and judge tests: records every request (path, headers, JSON body,
 * the status it answered) and answers as `answer` says at that moment: a status, a JSON body, a delay, or
 * "hang" (never answers). Can be closed and opened again on the same port (a receiver that is down, then back).
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: any;
  status: number;
  at: number;
}

export type Answer = { status: number; body?: unknown; delayMs?: number; headers?: Record<string, string> } | "hang";

export class Receiver {
  readonly received: Received[] = [];
  answer: (path: string, body: any) => Answer = () => ({ status: 200 });
  port = 0;
  #server: Server | null = null;
  readonly #hanging = new Map<ServerResponse, Received>();

  static async start(): Promise<Receiver> {
    const r = new Receiver();
    await r.open();
    return r;
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Requests answered 2xx: what the receiver accepted. */
  get accepted(): Received[] {
    return this.received.filter((r) => r.status >= 200 && r.status < 300);
  }

  async open(): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let body: any = text;
        try {
          body = JSON.parse(text);
        } catch {
          // kept as text
        }
        const path = req.url ?? "/";
        const answer = this.answer(path, body);
        if (answer === "hang") {
          const entry = { path, headers: req.headers, body, status: 0, at: Date.now() };
          this.received.push(entry);
          this.#hanging.set(res, entry);
          res.on("close", () => this.#hanging.delete(res));
          return;
        }
        const send = () => {
          this.received.push({ path, headers: req.headers, body, status: answer.status, at: Date.now() });
          res.writeHead(answer.status, { "content-type": "application/json", ...answer.headers });
          res.end(answer.body === undefined ? "" : JSON.stringify(answer.body));
        };
        if (answer.delayMs) setTimeout(send, answer.delayMs);
        else send();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  /** Requests held unanswered ("hang") right now. */
  get held(): number {
    return this.#hanging.size;
  }

  /** Answers the requests held so far with `status` (recorded as if answered so). */
  releaseHeld(status = 200): void {
    for (const [res, entry] of this.#hanging) {
      entry.status = status;
      res.writeHead(status).end();
    }
    this.#hanging.clear();
  }

  /** Stops listening (connections refused until open() again). */
  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = null;
    for (const res of this.#hanging.keys()) res.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

/** Polls `check` every 20 ms until it holds or `timeoutMs` passes (then throws, naming `what`). */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}
