// Following the controller's live stream (Server-Sent Events): a pure parser, and a reader that reconnects
// with Last-Event-ID after a dropped connection, so a watch or a CI gate survives a controller restart.
import { CliError, connectionReason, describeFailure, headersFor, isMissingRoute, type Http } from "./client.ts";
import { EXIT } from "./plan.ts";

interface SseMessage {
  event: string;
  id: string | null;
  data: string;
}

/** The event-stream format, fed in arbitrary chunks. */
export class SseParser {
  lastId: string | null = null;
  retryMs: number | null = null;
  #buffer = "";
  #event = "message";
  #data: string[] = [];

  push(chunk: string): SseMessage[] {
    this.#buffer += chunk;
    const out: SseMessage[] = [];
    let newline: number;
    while ((newline = this.#buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.#buffer.slice(0, newline);
      const width = this.#buffer.startsWith("\r\n", newline) ? 2 : 1;
      // A lone \r at the end of a chunk may be the first half of \r\n: wait for the next chunk.
      if (width === 1 && this.#buffer[newline] === "\r" && newline === this.#buffer.length - 1) break;
      this.#buffer = this.#buffer.slice(newline + width);
      if (line === "") {
        if (this.#data.length > 0) out.push({ event: this.#event, id: this.lastId, data: this.#data.join("\n") });
        this.#event = "message";
        this.#data = [];
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const name = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (name === "event") this.#event = value;
      else if (name === "data") this.#data.push(value);
      else if (name === "id" && !value.includes("\0")) this.lastId = value;
      else if (name === "retry" && /^\d+$/.test(value)) this.retryMs = Number(value);
    }
    return out;
  }
}

interface FollowOptions {
  http: Http;
  path: string;
  /** Return "stop" to end the follow. Awaited: events are handled one at a time, in order. */
  onEvent(message: SseMessage): Promise<"stop" | undefined> | "stop" | undefined;
  /** Told when the stream dropped and a reconnect is coming (for a note on stderr). */
  onReconnect?(reason: string): void;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Consecutive failed connects before giving up; default 10. */
  maxFailures?: number;
  /** No byte (not even a heartbeat) for this long: reconnect. Default 45 s (the controller beats every 15 s). */
  idleMs?: number;
}

/**
 * Reads the stream until onEvent says stop ("stopped"), the signal aborts ("aborted"), or the controller has
 * no such route ("unsupported", an older controller: the caller may poll instead).
 */
export async function followStream(options: FollowOptions): Promise<"stopped" | "aborted" | "unsupported"> {
  const { http } = options;
  const parser = new SseParser();
  let failures = 0;
  while (!http.signal?.aborted) {
    const connection = new AbortController();
    const abort = () => connection.abort();
    http.signal?.addEventListener("abort", abort, { once: true });
    let idle: NodeJS.Timeout | null = null;
    const arm = () => {
      if (idle) clearTimeout(idle);
      idle = setTimeout(() => connection.abort(), options.idleMs ?? 45_000);
    };
    let dropped = "the stream ended";
    try {
      arm();
      const response = await http.fetch(`${http.server}${options.path}`, {
        headers: headersFor(http, { accept: "text/event-stream", ...(parser.lastId ? { "last-event-id": parser.lastId } : {}) }),
        signal: connection.signal,
      });
      if (response.status !== 200) {
        const text = await response.text();
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        if (isMissingRoute({ status: response.status, headers: response.headers, text, json })) return "unsupported";
        throw describeFailure(response.status, json, text, { server: http.server, hadToken: http.token !== null });
      }
      failures = 0;
      // A 200 answer to GET has a body; one without is a dropped stream, retried like any other.
      if (response.body === null) throw new Error("the event stream answered without a body");
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        arm();
        for (const message of parser.push(decoder.decode(value, { stream: true }))) {
          if ((await options.onEvent(message)) === "stop") {
            await reader.cancel().catch(() => undefined);
            return "stopped";
          }
        }
      }
    } catch (error) {
      if (error instanceof CliError) throw error;
      if (http.signal?.aborted) return "aborted";
      failures++;
      dropped = connectionReason(error);
      if (failures >= (options.maxFailures ?? 10)) {
        throw new CliError(`cannot reach the controller at ${http.server}: ${dropped}`, EXIT.usage);
      }
    } finally {
      if (idle) clearTimeout(idle);
      http.signal?.removeEventListener("abort", abort);
    }
    if (http.signal?.aborted) return "aborted";
    options.onReconnect?.(dropped);
    await options.sleep(parser.retryMs ?? 2000, http.signal).catch(() => undefined);
  }
  return "aborted";
}
