import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { EnvoyAdminMetricProvider } from "../../controller/src/metrics/envoy-admin.ts";
import { envoyStatsPath } from "../../controller/src/metrics/envoy-series.ts";
import { parsePrometheusText } from "../../controller/src/metrics/prometheus-text.ts";
import { emptyRolloutCounts, type MetricProvider, type MetricReading, type RolloutCounts } from "../../controller/src/metrics/provider.ts";
import { rolloutCountsFromSamples } from "../../controller/src/metrics/rollout-counts.ts";
import { createRollout, testApp } from "./helpers.ts";
import { within } from "../bounded.ts";

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8");
const ENVOY_A = fixture("envoy-a.prom");
const ENVOY_B = fixture("envoy-b.prom");

// ---- a fake Envoy admin endpoint on 127.0.0.1 ----

interface FakeAdmin {
  url: string;
  requests: string[];
}
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map((s) => {
      s.closeAllConnections(); // includes the "hang" endpoint's open request
      return new Promise<void>((resolve) => s.close(() => resolve()));
    }),
  );
});

async function fakeAdmin(respond: (path: string) => { status: number; body: string } | "hang"): Promise<FakeAdmin> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(req.url ?? "");
    const answer = respond(req.url ?? "");
    if (answer === "hang") return;
    res.writeHead(answer.status, { "content-type": "text/plain; version=0.0.4" });
    res.end(answer.body);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

const serving = (body: string) => fakeAdmin(() => ({ status: 200, body }));

/** An admin endpoint with no counts until `count()`: what Envoy shows before and after a rollout is created. */
async function countingAfterCreate(body: string): Promise<FakeAdmin & { count(): void }> {
  let current = "";
  const admin = await fakeAdmin(() => ({ status: 200, body: current }));
  return { ...admin, count: () => void (current = body) };
}

/** A URL on which nothing listens: a port we bound and released. */
async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

// ---- pure aggregation ----

describe("rolloutCountsFromSamples", () => {
  it("picks one rollout, sums across sources and keeps variants apart", () => {
    const samples = [...parsePrometheusText(ENVOY_A).samples, ...parsePrometheusText(ENVOY_B).samples];
    const counts = rolloutCountsFromSamples(samples, "fraud-model");
    expect(counts.stable.requests).toBe(100);
    expect(counts.canary.requests).toBe(20);
    expect(counts.canary.responses).toEqual({ "2xx": 16, "3xx": 0, "4xx": 0, "5xx": 3, local: 1 });
    expect(counts.stable.latency).toEqual({
      bucketsUs: [
        { upperBound: 1000, cumulativeCount: 10 },
        { upperBound: 5000, cumulativeCount: 50 },
        { upperBound: 10000, cumulativeCount: 99 },
        { upperBound: Infinity, cumulativeCount: 100 },
      ],
      sumUs: 550000,
      count: 100,
    });
  });

  it("answers zeros for a rollout without series", () => {
    const counts = rolloutCountsFromSamples(parsePrometheusText(ENVOY_A).samples, "no-such-rollout");
    expect(counts).toEqual(emptyRolloutCounts());
  });

  it("ignores unknown variants and classes, and completes a histogram that lacks +Inf from _count", () => {
    const text = [
      'modelroll_requests{modelroll_rollout="r",modelroll_variant="shadow"} 5',
      'modelroll_responses{modelroll_rollout="r",modelroll_variant="canary",modelroll_class="1xx"} 5',
      'modelroll_responses{modelroll_rollout="r",modelroll_variant="canary",modelroll_class="2xx"} 3',
      'modelroll_latency_us_bucket{modelroll_rollout="r",modelroll_variant="canary",le="100"} 2',
      'modelroll_latency_us_count{modelroll_rollout="r",modelroll_variant="canary"} 3',
    ].join("\n");
    const counts = rolloutCountsFromSamples(parsePrometheusText(text).samples, "r");
    expect(counts.stable.requests).toBe(0);
    expect(counts.canary.responses["2xx"]).toBe(3);
    expect(Object.values(counts.canary.responses).reduce((a, b) => a + b)).toBe(3);
    expect(counts.canary.latency.bucketsUs).toEqual([
      { upperBound: 100, cumulativeCount: 2 },
      { upperBound: Infinity, cumulativeCount: 3 },
    ]);
  });
});

// ---- the route with a fake provider ----

class FakeProvider implements MetricProvider {
  calls: string[] = [];
  constructor(public reading: MetricReading<RolloutCounts>) {}
  async readRollout(rollout: string) {
    this.calls.push(rollout);
    return this.reading;
  }
}

describe("GET /v1/rollouts/:name/stats with a fake provider", () => {
  it("summarizes each variant", async () => {
    const value = emptyRolloutCounts();
    value.canary.requests = 4;
    value.canary.responses["2xx"] = 3;
    value.canary.responses["5xx"] = 1;
    value.canary.latency = {
      bucketsUs: [
        { upperBound: 2000, cumulativeCount: 2 },
        { upperBound: 4000, cumulativeCount: 4 },
        { upperBound: Infinity, cumulativeCount: 4 },
      ],
      sumUs: 9000,
      count: 4,
    };
    const provider = new FakeProvider({ status: "measured", value: emptyRolloutCounts(), sources: [{ url: "fake://1", ok: true }] });
    const app = await testApp({ metricProvider: provider });
    const created = await createRollout(app);
    provider.reading = { status: "measured", value, sources: [{ url: "fake://1", ok: true }] };

    const response = await app.inject({ url: "/v1/rollouts/fraud-model/stats" });
    expect(response.statusCode).toBe(200);
    // Once at create (the name's baseline), once for the stats.
    expect(provider.calls).toEqual(["fraud-model", "fraud-model"]);
    expect(response.json()).toEqual({
      rollout: "fraud-model",
      window: { kind: "rollout", since: created.createdAt, envoyRestarted: false, note: null },
      sources: [{ url: "fake://1", ok: true }],
      variants: {
        stable: {
          requests: 0,
          responses: { "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0, local: 0 },
          errorRate: null,
          latencyMs: { p50: null, p95: null, count: 0 },
        },
        canary: {
          requests: 4,
          responses: { "2xx": 3, "3xx": 0, "4xx": 0, "5xx": 1, local: 0 },
          errorRate: 0.25,
          // p50: rank 2 = end of (0,2000] -> 2 ms; p95: rank 3.8 in (2000,4000] -> 2000 + 2000*1.8/2 = 3800 us
          latencyMs: { p50: 2, p95: 3.8, count: 4 },
        },
      },
      segments: {},
    });
  });

  it("answers 503 naming the rollout when nothing could be measured", async () => {
    const provider = new FakeProvider({
      status: "unmeasurable",
      error: "every Envoy admin endpoint failed (http://x: boom)",
      sources: [{ url: "http://x", ok: false, error: "boom" }],
    });
    const app = await testApp({ metricProvider: provider });
    await createRollout(app);
    const response = await app.inject({ url: "/v1/rollouts/fraud-model/stats" });
    expect(response.statusCode).toBe(503);
    expect(response.json().error).toBe("rollout fraud-model: could not read stats: every Envoy admin endpoint failed (http://x: boom)");
  });

  it("does not ask the provider about an unknown rollout", async () => {
    const provider = new FakeProvider({ status: "measured", value: emptyRolloutCounts(), sources: [] });
    const app = await testApp({ metricProvider: provider });
    const response = await app.inject({ url: "/v1/rollouts/ghost/stats" });
    expect(response.statusCode).toBe(404);
    expect(provider.calls).toEqual([]);
  });
});

// ---- the route over real HTTP, Envoy admin provider ----

describe("GET /v1/rollouts/:name/stats from Envoy admin endpoints", () => {
  it("reads one endpoint with the filter's stats path", async () => {
    const admin = await countingAfterCreate(ENVOY_A);
    const app = await testApp({ envoyAdminUrls: [`${admin.url}/`] });
    await createRollout(app);
    admin.count();
    const response = await app.inject({ url: "/v1/rollouts/fraud-model/stats" });
    expect(response.statusCode).toBe(200);
    // At create (the baseline), then for the stats; the upstreams are read from /clusters (release/upstream-guard.ts).
    expect(admin.requests.filter((p) => !p.startsWith("/clusters"))).toEqual([envoyStatsPath("fraud-model"), envoyStatsPath("fraud-model")]);
    const { variants, sources } = response.json();
    expect(sources).toEqual([{ url: admin.url, ok: true }]);
    expect(variants.stable.requests).toBe(90);
    expect(variants.stable.errorRate).toBe(0);
    // p50: rank 45 in (1000,5000] holding 11..50 -> 1000 + 4000*35/40 = 4500 us
    expect(variants.stable.latencyMs.p50).toBe(4.5);
    // p95: rank 85.5 in (5000,10000] holding 51..89 -> 5000 + 5000*35.5/39 = 9551.28 us, shown rounded
    expect(variants.stable.latencyMs.p95).toBe(9.55);
    expect(variants.canary.errorRate).toBeCloseTo(0.2, 12);
    // rank 5 in (5000,10000] holding 5..8 -> 5000 + 5000*1/4 = 6250 us
    expect(variants.canary.latencyMs.p50).toBe(6.25);
    expect(variants.canary.latencyMs.p95).toBe(10);
  });

  it("sums two endpoints", async () => {
    const [a, b] = await Promise.all([countingAfterCreate(ENVOY_A), countingAfterCreate(ENVOY_B)]);
    const app = await testApp({ envoyAdminUrls: [a.url, b.url] });
    await createRollout(app);
    a.count();
    b.count();
    const response = await app.inject({ url: "/v1/rollouts/fraud-model/stats" });
    expect(response.statusCode).toBe(200);
    const { variants, sources } = response.json();
    expect(sources).toEqual([
      { url: a.url, ok: true },
      { url: b.url, ok: true },
    ]);
    expect(variants.stable.requests).toBe(100);
    expect(variants.stable.responses).toEqual({ "2xx": 98, "3xx": 0, "4xx": 2, "5xx": 0, local: 0 });
    expect(variants.stable.latencyMs.count).toBe(100);
    // p50: rank 50 = end of (1000,5000] -> 5 ms; p95: rank 95 in (5000,10000] holding 51..99 -> 9591.8 us
    expect(variants.stable.latencyMs.p50).toBe(5);
    expect(variants.stable.latencyMs.p95).toBe(9.59);
    expect(variants.canary.requests).toBe(20);
    // (3 5xx + 1 local) / 20 responses
    expect(variants.canary.errorRate).toBeCloseTo(0.2, 12);
    // canary: 1000:0, 5000:10, 10000:18, +Inf:20; p50 rank 10 = end of (1000,5000]
    expect(variants.canary.latencyMs.p50).toBeCloseTo(5, 9);
  });

  it("uses the endpoints that answer and reports the one that is down", async () => {
    const a = await countingAfterCreate(ENVOY_A);
    const down = await deadUrl();
    const app = await testApp({ envoyAdminUrls: [a.url, down] });
    await createRollout(app);
    a.count();
    const response = await app.inject({ url: "/v1/rollouts/fraud-model/stats" });
    expect(response.statusCode).toBe(200);
    const { variants, sources } = response.json();
    expect(variants.stable.requests).toBe(90);
    expect(sources[0]).toEqual({ url: a.url, ok: true });
    expect(sources[1]).toMatchObject({ url: down, ok: false });
    expect(sources[1].error).toMatch(/ECONNREFUSED/);
  });

  it("reports an HTTP error status and a hung endpoint", async () => {
    const failing = await fakeAdmin(() => ({ status: 500, body: "admin exploded" }));
    const hung = await fakeAdmin(() => "hang");
    // 2 s, not less: the failing endpoint must get its 500 in before the timeout even on a loaded machine.
    const provider = new EnvoyAdminMetricProvider([failing.url, hung.url], { timeoutMs: 2000 });
    // The hung endpoint never answers: the reading comes back only because the timeout gave up on it.
    const reading = await within(20_000, "a reading with one endpoint hung", provider.readRollout("fraud-model"));
    expect(reading.status).toBe("unmeasurable");
    expect(reading.sources).toEqual([
      { url: failing.url, ok: false, error: "HTTP 500: admin exploded" },
      { url: hung.url, ok: false, error: "no answer within 2000 ms" },
    ]);
  });

  it("answers 503 naming the rollout and every failure when all endpoints are down", async () => {
    const [down1, down2] = [await deadUrl(), await deadUrl()];
    const app = await testApp({ envoyAdminUrls: [down1, down2] });
    await createRollout(app);
    const response = await app.inject({ url: "/v1/rollouts/fraud-model/stats" });
    expect(response.statusCode).toBe(503);
    const { error } = response.json();
    expect(error).toMatch(/^rollout fraud-model: could not read stats: every Envoy admin endpoint failed/);
    expect(error).toContain(down1);
    expect(error).toContain(down2);
  });

  it("tells zero traffic (measured, nulls) from no measurement", async () => {
    const empty = await serving("# no modelroll stats used yet\n");
    const measured = await new EnvoyAdminMetricProvider([empty.url]).readRollout("fraud-model");
    expect(measured).toEqual({ status: "measured", value: emptyRolloutCounts(), sources: [{ url: empty.url, ok: true }] });
    const none = await new EnvoyAdminMetricProvider([]).readRollout("fraud-model");
    expect(none.status).toBe("unmeasurable");
  });
});
