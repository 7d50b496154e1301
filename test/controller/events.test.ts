// GET /v1/rollouts/{name}/events on a listening controller: Server-Sent Events read off a real socket.
import { request, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import Fastify from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { eventRoutes } from "../../controller/src/events/routes.ts";
import { sseFrame } from "../../controller/src/events/sse.ts";
import { installErrorHandling } from "../../controller/src/http/error-handler.ts";
import { CONTENT_SECURITY_POLICY } from "../../controller/src/http/browser-guard.ts";
import { SqliteRolloutState } from "../../controller/src/rollouts/sqlite-state.ts";
import { RolloutStore } from "../../controller/src/rollouts/store.ts";
import { harness, managedSpec } from "../release/harness.ts";
import { createRollout, spec, testApp } from "./helpers.ts";

interface SseEvent {
  event: string;
  id: string | null;
  data: string;
}

/** An open event stream: parsed events as they arrive, comments counted, and the response's end. */
class StreamReader {
  readonly events: SseEvent[] = [];
  comments = 0;
  retry: number | null = null;
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
      let isEvent = false;
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) this.comments++;
        else if (line.startsWith("retry: ")) this.retry = Number(line.slice(7));
        else if (line.startsWith("event: ")) {
          event.event = line.slice(7);
          isEvent = true;
        } else if (line.startsWith("id: ")) event.id = line.slice(4);
        else if (line.startsWith("data: ")) {
          data.push(line.slice(6));
          isEvent = true;
        }
      }
      if (isEvent) this.events.push({ ...event, data: data.join("\n") });
    }
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

function open(
  base: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: IncomingMessage["headers"]; reader: StreamReader | null; body: string }> {
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

async function listen(app: { listen(o: { host: string; port: number }): Promise<string>; server: { address(): unknown } }): Promise<string> {
  await app.listen({ host: "127.0.0.1", port: 0 });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

describe("SSE framing", () => {
  it("puts each line of data on a data: line and keeps names and ids on one line", () => {
    expect(sseFrame({ event: "rollout", id: "1.2.3", data: '{"a":1}' })).toBe('event: rollout\nid: 1.2.3\ndata: {"a":1}\n\n');
    expect(sseFrame({ event: "x\ny", data: "one\ntwo" })).toBe("event: x y\ndata: one\ndata: two\n\n");
  });
});

describe("GET /v1/rollouts/{name}/events", () => {
  it("sends the view at once, then each change, and a deleted event that ends the stream", async () => {
    const app = await testApp({ tickIntervalMs: 0 });
    await createRollout(app, spec({ canaryPercent: 5 }));
    const base = await listen(app);
    const { status, headers, reader } = await open(base, "/v1/rollouts/fraud-model/events");
    expect(status).toBe(200);
    expect(headers["content-type"]).toContain("text/event-stream");
    // The stream writes its own head (hijacked): the browser headers every other answer carries are on it too.
    expect(headers["content-security-policy"]).toBe(CONTENT_SECURITY_POLICY);
    expect(headers["x-content-type-options"]).toBe("nosniff");
    await reader!.waitFor("the first event", () => reader!.events.length >= 1);
    const first = reader!.events[0];
    expect(first.event).toBe("rollout");
    expect(JSON.parse(first.data)).toEqual((await app.inject({ url: "/v1/rollouts/fraud-model" })).json());
    expect(reader!.retry).toBe(2000);

    await app.inject({ method: "PUT", url: "/v1/rollouts/fraud-model/weight", payload: { canaryPercent: 25 } });
    await reader!.waitFor("the weight change", () => reader!.events.length >= 2);
    const second = JSON.parse(reader!.events[1].data);
    expect(second.canaryPercent).toBe(25);
    expect(second.revision).toBe(2);
    expect(reader!.events[1].id).not.toBe(first.id);

    await app.inject({ method: "DELETE", url: "/v1/rollouts/fraud-model" });
    await reader!.waitFor("the deleted event and the end", () => reader!.ended);
    expect(reader!.events.map((e) => e.event)).toEqual(["rollout", "rollout", "deleted"]);
    expect(JSON.parse(reader!.events[2].data)).toEqual({ name: "fraud-model" });
  });

  it("reports engine moves the store does not announce: a pause (no weight change) and each new evaluation", async () => {
    const h = await harness({ tickSeconds: 10 });
    await h.app.inject({ method: "POST", url: "/v1/rollouts", payload: managedSpec() });
    const base = await listen(h.app);
    const { reader } = await open(base, "/v1/rollouts/fraud-model/events");
    await reader!.waitFor("the first event", () => reader!.events.length >= 1);
    expect(JSON.parse(reader!.events[0].data).phase).toBe("Pending");

    await h.round();
    await reader!.waitFor("the first stage", () => JSON.parse(reader!.events.at(-1)!.data).phase === "Shadowing");
    const afterStart = reader!.events.length;
    await h.round();
    await h.round();
    // Holding in the shadow stage: same view, new evaluations.
    await reader!.waitFor("a new evaluation", () => reader!.events.length > afterStart);
    expect(JSON.parse(reader!.events.at(-1)!.data).phase).toBe("Shadowing");

    const before = reader!.events.length;
    const paused = await h.app.inject({ method: "POST", url: "/v1/rollouts/fraud-model/pause" });
    expect(paused.statusCode).toBe(200);
    await reader!.waitFor("the pause", () => reader!.events.length > before && JSON.parse(reader!.events.at(-1)!.data).phase === "Paused");
  });

  it("does not resend the state a reconnecting client names in Last-Event-ID", async () => {
    const app = await testApp({ tickIntervalMs: 0 });
    await createRollout(app, spec({ canaryPercent: 5 }));
    const base = await listen(app);
    const first = await open(base, "/v1/rollouts/fraud-model/events");
    await first.reader!.waitFor("the first event", () => first.reader!.events.length === 1);
    const id = first.reader!.events[0].id!;
    first.reader!.close();

    const again = await open(base, "/v1/rollouts/fraud-model/events", { "last-event-id": id });
    const stale = await open(base, "/v1/rollouts/fraud-model/events", { "last-event-id": "0.1.0" });
    await stale.reader!.waitFor("the stale client's snapshot", () => stale.reader!.events.length === 1);
    await app.inject({ method: "PUT", url: "/v1/rollouts/fraud-model/weight", payload: { canaryPercent: 7 } });
    await again.reader!.waitFor("the next change", () => again.reader!.events.length >= 1);
    expect(again.reader!.events.map((e) => JSON.parse(e.data).canaryPercent)).toEqual([7]);
  });

  it("answers 404 for an unknown rollout and 401 without the token, as JSON", async () => {
    const app = await testApp({ tickIntervalMs: 0, apiToken: "a-token-of-16-chars-or-more" });
    const base = await listen(app);
    const anonymous = await open(base, "/v1/rollouts/nope/events");
    expect(anonymous.status).toBe(401);
    const missing = await open(base, "/v1/rollouts/nope/events", { authorization: "Bearer a-token-of-16-chars-or-more" });
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body).error).toBe("rollout nope: not found");
  });

  it("sends heartbeats on a quiet stream and ends open streams when the server closes", async () => {
    const app = Fastify();
    installErrorHandling(app);
    const store = new RolloutStore({ state: new SqliteRolloutState(":memory:") });
    store.create({ name: "quiet", match: { pathPrefix: "/q" }, stickyKey: { header: "x-user-id" } });
    await app.register(eventRoutes, { store, heartbeatMs: 20, sampleMs: 10 });
    const base = await listen(app);
    const { reader } = await open(base, "/v1/rollouts/quiet/events");
    await reader!.waitFor("three heartbeats", () => reader!.comments >= 3);
    expect(reader!.events).toHaveLength(1);
    await app.close();
    await reader!.waitFor("the end of the stream", () => reader!.ended);
  });

  it("is in the OpenAPI document as text/event-stream", async () => {
    const app = await testApp();
    const doc = (await app.inject({ url: "/openapi.json" })).json();
    const op = doc.paths["/v1/rollouts/{name}/events"].get;
    expect(Object.keys(op.responses["200"].content)).toEqual(["text/event-stream"]);
    expect(op.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(["name", "last-event-id"]));
  });
});
