// /stats per rollout incarnation: a rollout created again under the same name starts from zero (what Envoy
// had counted under the name is read at create and subtracted), an Envoy restart is said and counted from
// zero, the current stage's window is there for managed rollouts, and latencies are rounded for people.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { toSnapshot } from "../../controller/src/engine/counts.ts";
import { parsePrometheusText } from "../../controller/src/metrics/prometheus-text.ts";
import { emptyRolloutCounts, type MetricProvider, type MetricReading, type RolloutCounts } from "../../controller/src/metrics/provider.ts";
import { rolloutCountsFromSamples } from "../../controller/src/metrics/rollout-counts.ts";
import { summarizeShadow, summarizeVariant } from "../../controller/src/metrics/summary.ts";
import { roundMs } from "../../controller/src/stats/routes.ts";
import { countsFromSnapshot } from "../../controller/src/stats/snapshot-counts.ts";
import { harness, managedSpec } from "../release/harness.ts";
import { createRollout, spec, testApp } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "modelroll-stats-window-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Envoy's cumulative counts under the name, set by the test as traffic "happens". */
class Counter implements MetricProvider {
  value: RolloutCounts | null = emptyRolloutCounts();
  async readRollout(): Promise<MetricReading<RolloutCounts>> {
    if (this.value === null) return { status: "unmeasurable", error: "every Envoy admin endpoint failed (http://127.0.0.1:1: ECONNREFUSED)", sources: [] };
    return { status: "measured", value: structuredClone(this.value), sources: [{ url: "fake://envoy", ok: true }] };
  }
  /** `n` more canary answers of this class, each taking `ms`. */
  add(n: number, responseClass: "2xx" | "5xx", ms = 3): void {
    const c = (this.value ??= emptyRolloutCounts()).canary;
    c.requests += n;
    c.responses[responseClass] += n;
    const count = c.latency.count + n;
    c.latency = {
      bucketsUs: [
        { upperBound: 1000 * ms, cumulativeCount: count },
        { upperBound: Infinity, cumulativeCount: count },
      ],
      sumUs: c.latency.sumUs + n * 1000 * ms,
      count,
    };
  }
}

async function stats(app: Awaited<ReturnType<typeof testApp>>, query = "") {
  const response = await app.inject({ url: `/v1/rollouts/fraud-model/stats${query}` });
  return { status: response.statusCode, body: response.json() };
}

describe("stats since the rollout was created", () => {
  it("a rollout created again under the same name does not inherit the earlier one's counts", async () => {
    const envoy = new Counter();
    const app = await testApp({ metricProvider: envoy });
    await createRollout(app, spec({ canaryPercent: 50 }));
    envoy.add(40, "2xx");
    envoy.add(10, "5xx");
    const first = await stats(app);
    expect(first.body.variants.canary).toMatchObject({ requests: 50, errorRate: 0.2 });

    expect((await app.inject({ method: "DELETE", url: "/v1/rollouts/fraud-model" })).statusCode).toBe(204);
    const again = await createRollout(app, spec({ canaryPercent: 50 }));
    const fresh = await stats(app);
    expect(fresh.body.window).toEqual({ kind: "rollout", since: again.createdAt, envoyRestarted: false, note: null });
    expect(fresh.body.variants.canary).toMatchObject({ requests: 0, errorRate: null, latencyMs: { p50: null, p95: null, count: 0 } });

    envoy.add(30, "2xx");
    const later = await stats(app);
    expect(later.body.variants.canary).toMatchObject({ requests: 30, responses: { "2xx": 30, "5xx": 0 }, errorRate: 0, latencyMs: { count: 30 } });
  });

  it("a count that went down (Envoy restarted) is said, counted from zero, and stays so once counts climb back", async () => {
    const envoy = new Counter();
    envoy.add(100, "5xx");
    const app = await testApp({ metricProvider: envoy });
    await createRollout(app, spec({ canaryPercent: 50 }));
    envoy.add(20, "2xx");
    expect((await stats(app)).body.variants.canary).toMatchObject({ requests: 20, errorRate: 0 });

    envoy.value = emptyRolloutCounts(); // Envoy restarted: its counters start again
    envoy.add(5, "2xx");
    const restarted = await stats(app);
    expect(restarted.body.window).toMatchObject({ envoyRestarted: true, note: "an Envoy restarted since the rollout was created: counts since its restart" });
    expect(restarted.body.variants.canary).toMatchObject({ requests: 5, errorRate: 0 });

    // Past the old baseline (100 5xx): still counted from the restart, not as "current minus the old baseline".
    envoy.add(150, "2xx");
    const climbed = await stats(app);
    expect(climbed.body.window.envoyRestarted).toBe(false);
    expect(climbed.body.window.note).toMatch(/^an Envoy restart was seen at /);
    expect(climbed.body.variants.canary).toMatchObject({ requests: 155, responses: { "2xx": 155, "5xx": 0 } });
  });

  it("counts that could not be read at create: the rollout is created, and the stats say what they may include", async () => {
    const envoy = new Counter();
    envoy.value = null;
    const app = await testApp({ metricProvider: envoy });
    await createRollout(app, spec({ canaryPercent: 50 }));
    envoy.add(7, "2xx");
    const body = (await stats(app)).body;
    expect(body.variants.canary.requests).toBe(7);
    expect(body.window.note).toBe(
      "Envoy's counts could not be read when the rollout was created (every Envoy admin endpoint failed (http://127.0.0.1:1: ECONNREFUSED)): an earlier rollout of the same name may be included",
    );
  });

  it("the baseline is kept in the state file: after a restart the earlier rollout's counts are still left out", async () => {
    const file = join(dir, "state.db");
    const envoy = new Counter();
    envoy.add(100, "5xx");
    const first = await testApp({ metricProvider: envoy, stateFile: file });
    await createRollout(first, spec({ canaryPercent: 50 }));
    await first.close();
    envoy.add(8, "2xx");
    const second = await testApp({ metricProvider: envoy, stateFile: file });
    expect((await stats(second)).body.variants.canary).toMatchObject({ requests: 8, errorRate: 0 });
  });
});

describe("the current stage's window", () => {
  it("is current minus the engine's stage baseline, with the stage and its start", async () => {
    const h = await harness();
    await createRollout(h.app, managedSpec());
    let view = await h.view();
    for (let i = 0; i < 100 && !(view.phase === "Canary" && view.stage?.name === "50%"); i++) {
      await h.round();
      view = await h.view();
    }
    await h.round(5000);
    const state = h.app.modelroll.store.get("fraud-model").engine!.state;
    expect(state.baseline).not.toBeNull();
    const since = await stats(h.app);
    const stage = await stats(h.app, "?window=stage");
    expect(stage.status).toBe(200);
    expect(stage.body.window).toEqual({
      kind: "stage",
      since: new Date(state.baselineAt!).toISOString(),
      stage: view.stage,
      envoyRestarted: false,
      note: null,
    });
    for (const variant of ["stable", "canary"] as const) {
      const atStageStart = state.baseline!.slices.overall[variant]!.counters.requests;
      expect(stage.body.variants[variant].requests).toBe(since.body.variants[variant].requests - atStageStart);
      expect(stage.body.variants[variant].requests).toBeGreaterThan(0);
    }
    expect(stage.body.variants.canary.requests).toBeLessThan(since.body.variants.canary.requests);
  });

  it("is refused for a manual rollout, naming the parameter", async () => {
    const app = await testApp({ metricProvider: new Counter() });
    await createRollout(app, spec({ canaryPercent: 5 }));
    const response = await stats(app, "?window=stage");
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      error: "rollout fraud-model: no stage window: the rollout is not managed by the engine (use window=rollout)",
      details: [{ path: "/window", reason: "stage windows exist for engine-managed rollouts only" }],
    });
    expect((await stats(app, "?window=hour")).status).toBe(400);
  });

  it("before the first stage: zeros and why", async () => {
    const app = await testApp({ metricProvider: new Counter(), tickIntervalMs: 0 });
    await createRollout(app, managedSpec());
    const body = (await stats(app, "?window=stage")).body;
    expect(body.window).toEqual({ kind: "stage", since: null, stage: null, envoyRestarted: false, note: "no stage started yet" });
    expect(body.variants.canary.requests).toBe(0);
  });

  it("is in the OpenAPI document", async () => {
    const app = await testApp();
    const doc = (await app.inject({ url: "/openapi.json" })).json();
    const get = doc.paths["/v1/rollouts/{name}/stats"].get;
    const window = get.parameters.find((p: { name: string }) => p.name === "window");
    expect(window).toMatchObject({ in: "query", schema: { enum: ["rollout", "stage"], default: "rollout" } });
    expect(get.responses["200"].content["application/json"].schema.properties.window).toBeDefined();
  });
});

describe("summaries of windows", () => {
  it("a snapshot turned back into counts summarizes exactly like the counts it came from", () => {
    const fixture = readFileSync(new URL("./fixtures/envoy-segments.prom", import.meta.url), "utf8");
    const rollout = /modelroll_rollout="([^"]+)"/.exec(fixture)![1];
    const counts = rolloutCountsFromSamples(parsePrometheusText(fixture).samples, rollout);
    const back = countsFromSnapshot(toSnapshot(counts));
    expect(summarizeVariant(back.stable)).toEqual(summarizeVariant(counts.stable));
    expect(summarizeVariant(back.canary)).toEqual(summarizeVariant(counts.canary));
    if (counts.shadow) expect(summarizeShadow(back.shadow!)).toEqual(summarizeShadow(counts.shadow));
    expect(Object.keys(back.segments).sort()).toEqual(Object.keys(counts.segments).sort());
    for (const [dimension, values] of Object.entries(counts.segments)) {
      for (const [value, slice] of Object.entries(values)) {
        expect(summarizeVariant(back.segments[dimension][value].canary)).toEqual(summarizeVariant(slice.canary));
      }
    }
    expect(counts.canary.requests).toBeGreaterThan(0);
  });

  it("rounds latencies for people: two decimals below 10 ms, one below 100 ms, whole ms above", () => {
    expect([roundMs(0.7464), roundMs(1.1349), roundMs(9.551), roundMs(12.345), roundMs(99.94), roundMs(123.6), roundMs(null)]).toEqual([
      0.75,
      1.13,
      9.55,
      12.3,
      99.9,
      124,
      null,
    ]);
  });
});
