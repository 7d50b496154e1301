// The filter's stream state machine, driven callback by callback through a fake host (fake-host.ts) that runs the
// same build/filter.wasm Envoy loads: orders and failures real Envoy rarely or never produces on demand (the
// shadow answering before the primary, a client leaving mid-exchange, host calls refused). The end-to-end tests
// on real Envoy (test/e2e) stay the reference for what Envoy does.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../controller/src/paths.ts";
import { compiledText, FAILURE_REASONS } from "./schema-harness.ts";
import { DATA_CONTINUE, DATA_STOP_AND_BUFFER, FakeHost, HEADERS_CONTINUE, HEADERS_STOP, type FakeStream } from "./fake-host.ts";

const schema = compiledText({
  type: "object",
  required: ["prediction", "confidence"],
  properties: { prediction: { enum: ["approve", "review", "decline"] }, confidence: { type: "number", minimum: 0, maximum: 1 } },
});
const json = { "content-type": "application/json" };
const valid = '{"prediction":"approve","confidence":0.9}';
const broken = '{"prediction":"APPROVE!!","confidence":7}';

const base = { name: "fraud", pathPrefix: "/v1/predict", stickyHeader: "x-user-id" };
const R = "modelroll.rollout.fraud.variant.";

async function start(rollout: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<FakeHost> {
  const { host, configured } = await FakeHost.start({ headersStopIteration: true, rollouts: [{ ...base, ...rollout }], ...extra });
  expect(configured, host.logs.map((l) => l.message).join("\n")).toBe(true);
  return host;
}

function request(host: FakeHost, user: string, body: string | null = '{"features":[1,2]}'): FakeStream {
  const stream = host.newStream();
  const headers = {
    ":method": "POST",
    ":path": "/v1/predict",
    ":authority": "models",
    "x-user-id": user,
    "x-rollout-variant": "canary",
    connection: "keep-alive",
    ...json,
  };
  expect(stream.sendRequestHeaders(headers, body === null)).toBe(HEADERS_CONTINUE);
  if (body !== null) {
    const half = Math.floor(body.length / 2);
    expect(stream.sendRequestBody(body.slice(0, half), false)).toBe(DATA_CONTINUE);
    expect(stream.sendRequestBody(body.slice(half), true)).toBe(DATA_CONTINUE);
  }
  return stream;
}

function answer(stream: FakeStream, body: string, status = "200"): void {
  stream.sendResponseHeaders({ ":status": status, ...json, "content-length": String(body.length) }, false);
  stream.sendResponseBody(body, true);
}

describe("routing and counting", () => {
  it("overwrites the client's variant header, counts the request and its answer, and tags the response", async () => {
    const host = await start({ canaryBasisPoints: 10000 });
    const s = request(host, "u1", null);
    expect(s.header("x-rollout-variant")).toBe("canary");
    host.advance(3);
    answer(s, valid);
    expect(host.counter(`${R}canary.requests`)).toBe(1);
    expect(host.counter(`${R}canary.class.2xx.responses`)).toBe(1);
    expect(host.samples(`${R}canary.latency_us`)).toEqual([3000]);
    expect(s.clientHeader("x-rollout-variant")).toBe("canary");
    expect(s.client).toMatchObject({ body: valid, ended: true });

    const zero = await start({ canaryBasisPoints: 0 });
    const t = request(zero, "u1", null);
    expect(t.header("x-rollout-variant")).toBe("stable");
  });

  it("removes a client-sent variant header from requests no rollout matches", async () => {
    const host = await start({ canaryBasisPoints: 10000 });
    const s = host.newStream();
    s.sendRequestHeaders({ ":method": "GET", ":path": "/health", ":authority": "a", "x-rollout-variant": "canary" });
    expect(s.header("x-rollout-variant")).toBeNull();
    expect(host.counter(`${R}stable.requests`)).toBe(0);
  });
});

describe("shadow exchange", () => {
  const shadowed = { canaryBasisPoints: 0, shadow: { basisPoints: 10000 }, output: { analyze: true, labels: ["approve", "review"] } };

  it("sends the complete request from the root context, then compares when the shadow answers second", async () => {
    const host = await start(shadowed);
    const s = request(host, "u1");
    const [call] = host.callsTo("shadow");
    expect(call.owner).toBe(host.rootId); // outlives the stream
    expect(call.body).toBe('{"features":[1,2]}');
    expect(call.headers).toContainEqual(["x-modelroll-shadow", "fraud"]);
    expect(call.headers.map(([k]) => k)).not.toContain("x-rollout-variant");
    expect(call.headers.map(([k]) => k)).not.toContain("connection");
    answer(s, valid);
    expect(host.counter(`${R}shadow.status_match`)).toBe(0);
    host.answer(call, { headers: { ":status": "200", ...json }, body: '{"prediction":"approve","confidence":0.7}' });
    expect(host.counter(`${R}shadow.status_match`)).toBe(1);
    expect(host.counter(`${R}shadow.prediction_agree`)).toBe(1);
    expect(host.samples(`${R}shadow.confidence_delta_milli`)).toEqual([200]);
    expect(host.counter(`${R}shadow.requests`)).toBe(1);
    expect(host.counter(`${R}shadow.class.2xx.responses`)).toBe(1);
  });

  it("compares once the primary's answer ends when the shadow answered first", async () => {
    const host = await start(shadowed);
    const s = request(host, "u1");
    host.answer(host.callsTo("shadow")[0], { headers: { ":status": "200", ...json }, body: '{"prediction":"review","confidence":0.9}' });
    expect(host.counter(`${R}shadow.prediction_disagree`)).toBe(0);
    s.sendResponseHeaders({ ":status": "200", ...json }, false);
    s.sendResponseBody(valid.slice(0, 10), false);
    expect(host.counter(`${R}shadow.prediction_disagree`)).toBe(0);
    host.advance(2);
    s.sendResponseBody(valid.slice(10), true);
    expect(host.counter(`${R}shadow.prediction_disagree`)).toBe(1);
    expect(host.counter(`${R}shadow.status_match`)).toBe(1);
    expect(host.samples(`${R}shadow.primary_latency_us`)).toEqual([2000]);
    s.end();
    expect(host.counter(`${R}shadow.incomplete`)).toBe(0);
  });

  it("counts the exchange incomplete when the client leaves first, and touches nothing of the gone stream", async () => {
    const host = await start(shadowed);
    const s = request(host, "u1");
    s.sendResponseHeaders({ ":status": "200", ...json }, false);
    s.end();
    const before = host.hostCalls.length;
    host.answer(host.callsTo("shadow")[0], { headers: { ":status": "200", ...json }, body: valid });
    expect(host.counter(`${R}shadow.incomplete`)).toBe(1);
    expect(host.counter(`${R}shadow.status_match`)).toBe(0);
    expect(host.hostCalls.slice(before).filter((c) => c.context === s.id)).toEqual([]);
  });

  it("does not mirror when the call cannot be made by the root context, and counts it (host_refused)", async () => {
    const host = await start(shadowed);
    host.refuse = (name, [id]) => name === "proxy_set_effective_context" && id === host.rootId;
    const s = request(host, "u1");
    expect(host.callsTo("shadow")).toEqual([]);
    expect(host.counter(`${R}shadow.host_refused`)).toBe(1);
    expect(host.counter(`${R}shadow.requests`)).toBe(0);
    answer(s, valid);
    expect(s.client).toMatchObject({ body: valid, ended: true });
  });

  it("does not mirror when the request's headers cannot be read, and counts it (host_refused)", async () => {
    const host = await start(shadowed);
    host.refuse = (name) => name === "proxy_get_header_map_pairs";
    request(host, "u1");
    expect(host.callsTo("shadow")).toEqual([]);
    expect(host.counter(`${R}shadow.host_refused`)).toBe(1);
  });
});

describe("output guard", () => {
  const guarded = { canaryBasisPoints: 10000, output: { analyze: true, schema, guard: true } };
  const O = `${R}canary.`;

  /** A canary request whose answer fails the schema: held, and a call to stable made. */
  function heldBroken(host: FakeHost): FakeStream {
    const s = request(host, "u1");
    expect(s.sendResponseHeaders({ ":status": "200", ...json }, false)).toBe(HEADERS_STOP);
    expect(s.sendResponseBody(broken.slice(0, 8), false)).toBe(DATA_STOP_AND_BUFFER);
    expect(s.sendResponseBody(broken.slice(8), true)).toBe(DATA_STOP_AND_BUFFER);
    expect(s.held).toBe(true);
    expect(s.client.headers).toBeNull();
    return s;
  }

  it("holds a failing canary answer and replaces it with stable's answer to the same request", async () => {
    const host = await start(guarded);
    const s = heldBroken(host);
    const [call] = host.callsTo("stable");
    expect(call.headers).toContainEqual(["x-modelroll-guard", "refetch"]);
    expect(call.body).toBe('{"features":[1,2]}');
    host.answer(call, { headers: { ":status": "200", "content-type": "application/json; charset=utf-8" }, body: valid });
    expect(s.client).toMatchObject({ body: valid, ended: true });
    expect(s.clientHeader("x-modelroll-guard")).toBe("replaced");
    expect(s.clientHeader("content-length")).toBe(String(valid.length));
    expect(s.clientHeader("content-type")).toBe("application/json; charset=utf-8");
    expect(host.counter(`${O}guard_replaced`)).toBe(1);
    expect(host.counter(`${O}schema.not_allowed.outputs`)).toBe(1); // the canary's own verdict still counts
  });

  it("releases the canary's answer when stable answers with an error or not at all", async () => {
    const host = await start(guarded);
    const a = heldBroken(host);
    host.answer(host.callsTo("stable")[0], { headers: { ":status": "503" }, body: "no healthy upstream" });
    expect(a.client).toMatchObject({ body: broken, ended: true });
    const b = heldBroken(host);
    host.answer(host.callsTo("stable")[1], null);
    expect(b.client).toMatchObject({ body: broken, ended: true });
    expect(host.counter(`${O}guard_failed`)).toBe(2);
    expect(host.counter(`${O}guard_replaced`)).toBe(0);
  });

  it("lets a valid answer go at its end without a call", async () => {
    const host = await start(guarded);
    const s = request(host, "u1");
    expect(s.sendResponseHeaders({ ":status": "200", ...json }, false)).toBe(HEADERS_STOP);
    expect(s.sendResponseBody(valid, true)).toBe(DATA_CONTINUE);
    expect(s.client).toMatchObject({ body: valid, ended: true });
    expect(host.calls.filter((c) => c.cluster === "stable")).toEqual([]);
  });

  it("releases an answer over the hold limit as it is, and lets the rest stream", async () => {
    const host = await start({ ...guarded, output: { ...guarded.output, maxBodyBytes: 16 } });
    const s = request(host, "u1", null); // a request body over 16 bytes could not be sent again: nothing to hold for
    expect(s.sendResponseHeaders({ ":status": "200", ...json }, false)).toBe(HEADERS_STOP);
    expect(s.sendResponseBody(broken.slice(0, 10), false)).toBe(DATA_STOP_AND_BUFFER);
    expect(s.sendResponseBody(broken.slice(10, 30), false)).toBe(DATA_CONTINUE);
    expect(s.sendResponseBody(broken.slice(30), true)).toBe(DATA_CONTINUE);
    expect(s.client).toMatchObject({ body: broken, ended: true });
    expect(host.counter(`${O}guard_skipped`)).toBe(1);
    expect(host.counter(`${O}unanalyzed.too_large.outputs`)).toBe(1);
  });

  it("does nothing to a stream the client left while stable was fetched", async () => {
    const host = await start(guarded);
    const s = heldBroken(host);
    s.end();
    const [call] = host.callsTo("stable");
    // Envoy cancels a stream's own calls; were the answer delivered anyway, the filter must not touch the stream.
    call.cancelled = false;
    const before = host.hostCalls.length;
    host.answer(call, { headers: { ":status": "200", ...json }, body: valid });
    expect(host.hostCalls.slice(before).map((c) => c.name)).not.toContain("proxy_set_effective_context");
    expect(host.counter(`${O}guard_replaced`)).toBe(0);
    expect(host.counter(`${O}guard_failed`)).toBe(0);
  });

  it("counts a release the host refuses to act for (guard_release_failed), and neither replaces nor traps", async () => {
    const host = await start(guarded);
    const s = heldBroken(host);
    host.refuse = (name, [id]) => name === "proxy_set_effective_context" && id === s.id;
    host.answer(host.callsTo("stable")[0], { headers: { ":status": "200", ...json }, body: valid });
    expect(host.counter(`${O}guard_release_failed`)).toBe(1);
    expect(host.counter(`${O}guard_replaced`)).toBe(0);
    expect(host.logs.map((l) => l.message)).toContain("modelroll: the output guard could not act for a held answer's stream to release it");
    // Later streams are guarded as before.
    host.refuse = () => false;
    const t = heldBroken(host);
    host.answer(host.callsTo("stable")[1], { headers: { ":status": "200", ...json }, body: valid });
    expect(t.client.body).toBe(valid);
  });

  it("releases an answer Envoy will not hand over, unjudged and counted (guard_unreadable)", async () => {
    const host = await start(guarded);
    const s = request(host, "u1");
    s.sendResponseHeaders({ ":status": "200", ...json }, false);
    expect(s.sendResponseBody(broken.slice(0, 8), false)).toBe(DATA_STOP_AND_BUFFER);
    host.refuse = (name, [type]) => name === "proxy_get_buffer_bytes" && type === 1;
    expect(s.sendResponseBody(broken.slice(8), true)).toBe(DATA_CONTINUE);
    expect(s.client).toMatchObject({ body: broken, ended: true });
    expect(host.counter(`${O}guard_unreadable`)).toBe(1);
    expect(host.callsTo("stable")).toEqual([]);
  });

  it("never holds where the host cannot (headersStopIteration off): counted as skipped", async () => {
    const host = await start(guarded, { headersStopIteration: false });
    const s = request(host, "u1");
    expect(s.sendResponseHeaders({ ":status": "200", ...json }, false)).toBe(HEADERS_CONTINUE);
    expect(s.sendResponseBody(broken, true)).toBe(DATA_CONTINUE);
    expect(host.counter(`${O}guard_skipped`)).toBe(1);
  });
});

describe("config long-poll", () => {
  const controller = { cluster: "controller", authority: "ctl:8080", pollWaitSeconds: 20 };
  const table = (version: number, bp: number) => JSON.stringify({ epoch: "e1", version, rollouts: [{ ...base, canaryBasisPoints: bp }] });
  const ok = (body: string) => ({ headers: { ":status": "200", ...json }, body });
  const pending = (host: FakeHost) => host.callsTo("controller").filter((c) => !c.answered);

  it("applies a new table, polls again past it, and keeps the last good table through failures and refusals", async () => {
    const { host, configured } = await FakeHost.start({ controller });
    expect(configured).toBe(true);
    expect(host.tickPeriodMs).toBe(100);
    expect(pending(host)[0].headers).toContainEqual([":path", "/v1/filter-config?wait=20"]);
    host.answer(pending(host)[0], ok(table(3, 10000)));
    expect(host.counter("modelroll.config.updates")).toBe(1);
    expect(pending(host)[0].headers).toContainEqual([":path", "/v1/filter-config?wait=20&version=3&epoch=e1"]);
    expect(request(host, "u", null).header("x-rollout-variant")).toBe("canary");

    host.answer(pending(host)[0], { headers: { ":status": "304" } });
    expect(pending(host)).toHaveLength(1); // asked again at once
    host.answer(pending(host)[0], ok('{"epoch":"e1","rollouts":[]}'));
    expect(host.counter("modelroll.config.rejected")).toBe(1);
    expect(pending(host)).toHaveLength(0); // retried after a backoff, from the tick
    host.tick(100);
    expect(pending(host)).toHaveLength(0);
    host.tick(200);
    expect(pending(host)).toHaveLength(1);
    host.answer(pending(host)[0], null);
    expect(host.counter("modelroll.config.fetch_failures")).toBe(2);
    expect(request(host, "u", null).header("x-rollout-variant")).toBe("canary"); // fail static
  });
});

describe("schema verdicts and their counters: one list", () => {
  const verdictSchema = compiledText({
    type: "object",
    required: ["p"],
    additionalProperties: false,
    properties: { p: { enum: ["a"] }, n: { type: "number", maximum: 1 }, s: { type: "string", maxLength: 2 }, t: { type: "string" } },
  });
  const documents: Record<string, string> = {
    valid: '{"p":"a"}',
    missing_field: "{}",
    wrong_type: '{"p":"a","t":1}',
    out_of_range: '{"p":"a","n":2}',
    not_allowed: '{"p":"b"}',
    bad_length: '{"p":"a","s":"abc"}',
    unexpected_field: '{"p":"a","x":1}',
    not_json: '{"p":',
    too_deep: "[".repeat(100) + "]".repeat(100),
  };
  const definedResults = (host: FakeHost) =>
    host.metrics
      .map((m) => /^modelroll\.rollout\.fraud\.variant\.stable\.schema\.(\w+)\.outputs$/.exec(m.name)?.[1])
      .filter((x): x is string => x !== undefined);

  it("every verdict the validator gives is counted under its own name, and the stats define exactly those", async () => {
    const host = await start({ canaryBasisPoints: 0, output: { analyze: true, schema: verdictSchema } });
    const names = definedResults(host);
    expect(names.sort()).toEqual(Object.keys(documents).sort());
    for (const [expected, body] of Object.entries(documents)) {
      const before = Object.fromEntries(names.map((n) => [n, host.counter(`${R}stable.schema.${n}.outputs`)]));
      answer(request(host, "u1", null), body);
      const changed = names.filter((n) => host.counter(`${R}stable.schema.${n}.outputs`) !== before[n]);
      expect(changed, body).toEqual([expected]);
    }
  });

  it("the stats contract (docs/reference/stats-contract.md) and the test harness list the same results", async () => {
    const host = await start({ canaryBasisPoints: 0, output: { analyze: true, schema: verdictSchema } });
    const contract = readFileSync(join(repoRoot, "docs", "reference", "stats-contract.md"), "utf8");
    const documented = /\.schema\.<([a-z_|]+)>\.outputs/.exec(contract)?.[1].split("|");
    expect(documented).toEqual(definedResults(host));
    expect(["valid", ...FAILURE_REASONS, "not_json", "too_deep"].sort()).toEqual([...definedResults(host)].sort());
  });
});
