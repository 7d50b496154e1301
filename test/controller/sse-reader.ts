// An event stream read off a real socket, for the stream tests.
import { request, type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach } from "vitest";

export interface SseEvent {
  event: string;
  id: string | null;
  data: string;
}

export class StreamReader {
  readonly events: SseEvent[] = [];
  comments = 0;
  ended = false;
  #buffer = "";
  constructor(readonly response: IncomingMessage) {
    response.setEncoding("utf8");
    response.on("data", (chunk: string) => this.#feed(chunk));
    response.on("end", () => (this.ended = true));
    response.on("close", () => (this.ended = true));
  }
  #feed(chunk: string) {
    this.#buffer += chunk;
    let cut: number;
    while ((cut = this.#buffer.indexOf("\n\n")) >= 0) {
      const block = this.#buffer.slice(0, cut);
      this.#buffer = this.#buffer.slice(cut + 2);
      const event: SseEvent = { event: "message", id: null, data: "" };
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) this.comments++;
        else if (line.startsWith("event: ")) event.event = line.slice(7);
        else if (line.startsWith("id: ")) event.id = line.slice(4);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (data.length > 0) this.events.push({ ...event, data: data.join("\n") });
    }
  }
  json(i: number): any {
    return JSON.parse(this.events.at(i)!.data);
  }
  async waitFor(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}; events: ${JSON.stringify(this.events).slice(0, 2000)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  close() {
    this.response.destroy();
  }
}

const readers: StreamReader[] = [];
afterEach(() => {
  for (const r of readers.splice(0)) r.close();
});

export function openStream(
  base: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: IncomingHttpHeaders; reader: StreamReader | null; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { headers: { accept: "text/event-stream", ...headers } }, (res) => {
      if (res.statusCode !== 200) {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, reader: null, body }));
        return;
      }
      const reader = new StreamReader(res);
      readers.push(reader);
      resolve({ status: 200, headers: res.headers, reader, body: "" });
    });
    req.on("error", reject);
    req.end();
  });
}

export async function listen(app: { listen(o: { host: string; port: number }): Promise<string>; server: { address(): unknown } }): Promise<string> {
  await app.listen({ host: "127.0.0.1", port: 0 });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}
