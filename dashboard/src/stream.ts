/**
 * Server-Sent Events over fetch (EventSource cannot send the Authorization header): follows a stream,
 * reconnects after a drop (the server's retry delay, growing to 10 s while it keeps failing) with
 * Last-Event-ID so only what changed is sent again, and closes the stream while the tab is hidden, opening
 * it again when the tab is shown.
 */
import { AUTH_EVENT, authHeaders } from "./api.ts";

export interface StreamEvent {
  event: string;
  id: string | null;
  data: string;
}

export type StreamState = "connecting" | "live" | "paused" | "retrying" | "refused";

export interface StreamOptions {
  onEvent(event: StreamEvent): void;
  onState?(state: StreamState, detail?: string): void;
}

/** Parses event-stream text as it arrives, in any chunking. */
export class SseParser {
  #buffer = "";
  #event = "message";
  #data: string[] = [];
  #id: string | null = null;
  lastId: string | null = null;
  retry: number | null = null;

  feed(chunk: string, emit: (event: StreamEvent) => void): void {
    this.#buffer += chunk;
    let at: number;
    while ((at = this.#buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.#buffer.slice(0, at);
      const width = this.#buffer.startsWith("\r\n", at) ? 2 : 1;
      this.#buffer = this.#buffer.slice(at + width);
      this.#line(line, emit);
    }
  }

  #line(line: string, emit: (event: StreamEvent) => void): void {
    if (line === "") {
      if (this.#data.length > 0) {
        if (this.#id !== null) this.lastId = this.#id;
        emit({ event: this.#event, id: this.#id, data: this.#data.join("\n") });
      }
      this.#event = "message";
      this.#data = [];
      this.#id = null;
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (name === "event") this.#event = value;
    else if (name === "data") this.#data.push(value);
    else if (name === "id") this.#id = value;
    else if (name === "retry" && /^\d+$/.test(value)) this.retry = Number(value);
  }
}

export function follow(path: string, options: StreamOptions): () => void {
  let controller: AbortController | null = null;
  let lastId: string | null = null;
  let failures = 0;
  let retryMs = 2000;
  let timer: number | null = null;
  let stopped = false;

  const state = (s: StreamState, detail?: string) => options.onState?.(s, detail);

  const connect = async () => {
    if (stopped || document.visibilityState === "hidden") return;
    controller?.abort();
    const mine = new AbortController();
    controller = mine;
    state("connecting");
    try {
      const headers: Record<string, string> = { accept: "text/event-stream", ...authHeaders() };
      if (lastId !== null) headers["last-event-id"] = lastId;
      const response = await fetch(path, { headers, signal: mine.signal, credentials: "omit", cache: "no-store" });
      if (response.status === 401 || response.status === 403 || response.status === 404) {
        const text = await response.text();
        let message = text;
        try {
          message = (JSON.parse(text) as { error?: string }).error ?? text;
        } catch {
          // plain text
        }
        if (response.status === 401) window.dispatchEvent(new CustomEvent(AUTH_EVENT, { detail: message }));
        state("refused", message);
        return;
      }
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      const parser = new SseParser();
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      failures = 0;
      state("live");
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.feed(value, (event) => {
          if (event.id !== null) lastId = event.id;
          options.onEvent(event);
        });
        if (parser.retry !== null) retryMs = parser.retry;
      }
      throw new Error("the stream ended");
    } catch (error) {
      if (mine.signal.aborted || stopped) return;
      failures++;
      const delay = Math.min(10_000, retryMs * Math.min(failures, 5));
      state("retrying", `${(error as Error).message}; again in ${Math.round(delay / 1000)} s`);
      timer = window.setTimeout(() => void connect(), delay);
    }
  };

  const onVisibility = () => {
    if (document.visibilityState === "hidden") {
      if (timer !== null) window.clearTimeout(timer);
      timer = null;
      controller?.abort();
      controller = null;
      state("paused");
    } else if (controller === null) {
      void connect();
    }
  };
  document.addEventListener("visibilitychange", onVisibility);
  void connect();
  return () => {
    stopped = true;
    document.removeEventListener("visibilitychange", onVisibility);
    if (timer !== null) window.clearTimeout(timer);
    controller?.abort();
  };
}
