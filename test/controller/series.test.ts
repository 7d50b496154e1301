// Telemetry history: snapshots between readings, GET /v1/rollouts/{name}/series, retention, restart.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { buildApp } from "../../controller/src/app.ts";
import { emptyRolloutCounts, type MetricProvider, type MetricReading, type RolloutCounts } from "../../controller/src/metrics/provider.ts";
import { createRollout, spec, testApp } from "./helpers.ts";
import { harness, managedSpec } from "../release/harness.ts";

const T0 = Date.UTC(2026, 0, 1, 12);
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Cumulative counts set by the test: requests and responses per variant, latency in one bucket. */
class Counter implements MetricProvider {
  counts: RolloutCounts = emptyRolloutCounts();
  async readRollout(): Promise<MetricReading<RolloutCounts>> {
    return { status: "measured", value: structuredClone(this.counts), sources: [{ url: "test", ok: true }] };
  }
  add(variant: "stable" | "canary", ok: number, errors: number, latencyUs = 2000) {
    const v = this.counts[variant];
    v.requests += ok + errors;
    v.responses["2xx"] += ok;
    v.responses["5xx"] += errors;
    v.latency.count += ok + errors;
    v.latency.sumUs += (ok + errors) * latencyUs;
    v.latency.bucketsUs = [
      { upperBound: latencyUs, cumulativeCount: v.latency.count },
      { upperBound: Infinity, cumulativeCount: v.latency.count },
    ];
  }
}

function appWith(counter: Counter, clock: { now: number }, extra: Record<string, unknown> = {}) {
  return testApp({ metricProvider: counter, clock: () => new Date(clock.now), tickIntervalMs: 0, ...extra });
}

describe("telemetry snapshots and GET /v1/rollouts/{name}/series", () => {
  it("records the window between readings per variant and serves it with rates computed from the counts", async () => {
    const counter = new Counter();
    const clock = { now: T0 };
    const app = await appWith(counter, clock);
    await createRollout(app, spec({ canaryPercent: 20 }));
    const { recorder } = app.modelroll;
    counter.add("stable", 50, 0);
    await recorder.sampleIdle((clock.now += 5000));
    // The first reading only starts a window: nothing stored yet.
    expect(app.modelroll.series.size("fraud-model").rows).toBe(0);
    counter.add("stable", 80, 0);
    counter.add("canary", 18, 2, 4000);
    await recorder.sampleIdle((clock.now += 5000));
    // No traffic in this window: not stored.
    await recorder.sampleIdle((clock.now += 5000));
    expect(app.modelroll.series.size("fraud-model").rows).toBe(1);

    const res = await app.inject({ url: `/v1/rollouts/fraud-model/series?step=5` });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body.stepSeconds).toBe(5);
    expect(body.points).toHaveLength(1);
    const [point] = body.points;
    expect(point.snapshots).toBe(1);
    expect(point.seconds).toBe(5);
    expect(point.canaryPercent).toBe(20);
    expect(point.slices.overall.stable).toMatchObject({ requests: 80, requestsPerSecond: 16, errorRate: 0, responses: { "2xx": 80, "5xx": 0 } });
    expect(point.slices.overall.canary).toMatchObject({ requests: 20, errorRate: 0.1, timeoutRate: 0 });
    expect(point.slices.overall.canary.latencyMs.p95).toBeGreaterThan(point.slices.overall.stable.latencyMs.p95);
    // The observed share is the latest window with traffic's: the quiet window after it keeps it.
    expect(app.modelroll.recorder.observedCanaryPercent("fraud-model")).toBe(20);
  });

  it("merges snapshots into steps by adding their counts", async () => {
    const counter = new Counter();
    const clock = { now: T0 };
    const app = await appWith(counter, clock);
    await createRollout(app, spec({ canaryPercent: 10 }));
    await app.modelroll.recorder.sampleIdle((clock.now += 1000));
    for (let i = 0; i < 6; i++) {
      counter.add("stable", 9, 0);
      counter.add("canary", 1, i === 0 ? 1 : 0);
      await app.modelroll.recorder.sampleIdle((clock.now += 1000));
    }
    expect(app.modelroll.recorder.observedCanaryPercent("fraud-model")).toBe(10);
    const from = T0;
    const fine = (await app.inject({ url: `/v1/rollouts/fraud-model/series?from=${from}&step=1` })).json();
    expect(fine.points).toHaveLength(6);
    const coarse = (await app.inject({ url: `/v1/rollouts/fraud-model/series?from=${new Date(from).toISOString()}&step=60` })).json();
    expect(coarse.points).toHaveLength(1);
    expect(coarse.points[0].snapshots).toBe(6);
    expect(coarse.points[0].slices.overall.canary.requests).toBe(7);
    expect(coarse.points[0].slices.overall.canary.errorRate).toBeCloseTo(1 / 7, 10);
    expect(coarse.points[0].slices.overall.stable.requests).toBe(54);
  });

  it("refuses a range that ends before it starts, naming the field", async () => {
    const app = await appWith(new Counter(), { now: T0 });
    await createRollout(app, spec());
    const res = await app.inject({ url: `/v1/rollouts/fraud-model/series?from=${T0 + 10_000}&to=${T0 + 5000}` });
    expect(res.statusCode).toBe(400);
    expect(res.json().details[0].path).toBe("/to");
    const bad = await app.inject({ url: `/v1/rollouts/fraud-model/series?from=yesterday` });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toContain("/from");
    expect((await app.inject({ url: "/v1/rollouts/nope/series" })).statusCode).toBe(404);
  });

  it("is documented in the OpenAPI document with its query and response schema", async () => {
    const app = await appWith(new Counter(), { now: T0 });
    const doc = (await app.inject({ url: "/openapi.json" })).json();
    const op = doc.paths["/v1/rollouts/{name}/series"].get;
    expect(op.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(["from", "to", "step", "slices"]));
    const schema = op.responses["200"].content["application/json"].schema;
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(["points", "retentionHours", "stepSeconds"]));
  });

  it("records every engine tick of a managed rollout with its gates' values", async () => {
    const h = await harness({ tickSeconds: 10 });
    await h.app.inject({ method: "POST", url: "/v1/rollouts", payload: managedSpec() });
    for (let i = 0; i < 4; i++) await h.round(400);
    const { rows } = h.app.modelroll.series.size("fraud-model");
    expect(rows).toBeGreaterThanOrEqual(2);
    const body = (await h.app.inject({ url: "/v1/rollouts/fraud-model/series?step=10" })).json();
    const last = body.points.at(-1);
    expect(last.phase).toBe("Shadowing");
    expect(last.stage).toBe("shadow");
    expect(Object.keys(last.gates)).toEqual(expect.arrayContaining(["error_rate"]));
    expect(last.slices.overall.shadow.requests).toBeGreaterThan(0);
  });

  it("removes snapshots past the retention", async () => {
    const counter = new Counter();
    const clock = { now: T0 };
    const app = await appWith(counter, clock, { seriesRetentionHours: 1 });
    await createRollout(app, spec({ canaryPercent: 10 }));
    await app.modelroll.recorder.sampleIdle((clock.now += 1000));
    counter.add("stable", 10, 0);
    await app.modelroll.recorder.sampleIdle((clock.now += 1000));
    expect(app.modelroll.series.size("fraud-model").rows).toBe(1);
    clock.now += 3_601_000;
    counter.add("stable", 10, 0);
    await app.modelroll.recorder.sampleIdle(clock.now);
    // The write after the hour removed the old row (pruned at most once a minute, on write).
    expect(app.modelroll.series.size("fraud-model").rows).toBe(1);
    const body = (await app.inject({ url: `/v1/rollouts/fraud-model/series?step=60` })).json();
    expect(body.retentionHours).toBe(1);
    expect(body.points).toHaveLength(1);
    expect(body.points[0].t).toBeGreaterThan(T0 + 3_600_000 - 60_000);
  });

  it("keeps the history across a restart, and a rollout created again reads only its own", async () => {
    const dir = mkdtempSync(join(tmpdir(), "modelroll-series-"));
    dirs.push(dir);
    const stateFile = join(dir, "state.db");
    const counter = new Counter();
    const clock = { now: T0 };
    const first = await buildApp({ metricProvider: counter, clock: () => new Date(clock.now), tickIntervalMs: 0, stateFile });
    await createRollout(first, spec({ canaryPercent: 10 }));
    await first.modelroll.recorder.sampleIdle((clock.now += 1000));
    counter.add("canary", 5, 0);
    await first.modelroll.recorder.sampleIdle((clock.now += 1000));
    const before = (await first.inject({ url: "/v1/rollouts/fraud-model/series?step=1" })).json();
    expect(before.points).toHaveLength(1);
    await first.close();

    const second = await buildApp({ metricProvider: counter, clock: () => new Date(clock.now), tickIntervalMs: 0, stateFile });
    try {
      const after = (await second.inject({ url: "/v1/rollouts/fraud-model/series?step=1" })).json();
      expect(after.points).toEqual(before.points);
      // Deleted and created again under the same name: the earlier one's rows stay (postmortem), unseen.
      clock.now += 1000;
      expect((await second.inject({ method: "DELETE", url: "/v1/rollouts/fraud-model" })).statusCode).toBe(204);
      await createRollout(second, spec({ canaryPercent: 10 }));
      expect((await second.inject({ url: "/v1/rollouts/fraud-model/series?step=1" })).json().points).toEqual([]);
      expect(second.modelroll.series.size("fraud-model").rows).toBe(1);
    } finally {
      await second.close();
    }
  });
});
