// The built-in gates' counts from Prometheus (--metrics prometheus) against the same counts read from Envoy's
// admin endpoint, on real Envoys with the filter and a real Prometheus (Debian's) scraping them every 250 ms:
//   a. the same traffic (segments, output analysis, shadow, then a canary and a shadow turned bad) gives the
//      same counts from both sources and, judged by the engine, the same verdicts (every built-in gate,
//      overall and per segment value, and the traffic mix) with values within the histogram bucket width;
//   b. two sidecars, one restarted (its counters start again from 0): summed admin counts go down, which the
//      engine must read as a data-path restart; Prometheus' counts since the rollout began keep growing by
//      exactly the requests sent, so the engine's window is not cut.
// Each test prints what it measured.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderBootstrap } from "../../controller/src/envoy/bootstrap.ts";
import { startEnvoy, type EnvoyProcess } from "../../controller/src/envoy/process.ts";
import { toSnapshot, windowBetween, type CountsSnapshot } from "../../controller/src/engine/counts.ts";
import type { Measurement } from "../../controller/src/engine/measurement.ts";
import type { EngineSpec } from "../../controller/src/engine/spec.ts";
import { initialState } from "../../controller/src/engine/state.ts";
import { step } from "../../controller/src/engine/step.ts";
import type { TrafficMixResult } from "../../controller/src/engine/traffic-mix.ts";
import { EnvoyAdminMetricProvider } from "../../controller/src/metrics/envoy-admin.ts";
import { PrometheusClient } from "../../controller/src/metrics/prometheus-http.ts";
import { PrometheusMetricProvider } from "../../controller/src/metrics/prometheus-provider.ts";
import { emptyRolloutCounts, type MetricProvider, type MetricReading, type RolloutCounts } from "../../controller/src/metrics/provider.ts";
import { startPrometheus, type PrometheusProcess } from "../../controller/src/prometheus/process.ts";
import { specFrom } from "../engine/drive.ts";
import { api, freePort, sendMany, startStack, waitFor, type Reply, type Stack } from "./harness.ts";

const SCRAPE_MS = 250;
let stack: Stack;
let second: EnvoyProcess;
let secondUrl: string;
let secondYaml: string;
let prometheus: PrometheusProcess;
let client: PrometheusClient;

beforeAll(async () => {
  stack = await startStack({ controller: { tickIntervalMs: 0 } });
  // A second proxy (another sidecar) in front of the same models, following the same controller.
  const [listen, admin] = [await freePort(), await freePort()];
  secondYaml = renderBootstrap({
    listen: { host: "127.0.0.1", port: listen },
    admin: { host: "127.0.0.1", port: admin },
    stable: { host: "127.0.0.1", port: stack.stable.port },
    canary: { host: "127.0.0.1", port: stack.canary.port },
    shadow: { host: "127.0.0.1", port: stack.shadow.port },
    controller: { host: "127.0.0.1", port: stack.controllerPort },
  });
  second = await startEnvoy({ bootstrapYaml: secondYaml, adminPort: admin, concurrency: 2 });
  secondUrl = `http://127.0.0.1:${listen}`;
  prometheus = await startPrometheus({
    scrapeTargets: [new URL(stack.adminUrl).host, new URL(second.adminUrl).host],
    scrapeIntervalMs: SCRAPE_MS,
    waitForTargets: true,
    readyTimeoutMs: 30_000,
  });
  client = new PrometheusClient({ baseUrl: prometheus.url, timeoutMs: 10_000 });
});

afterAll(async () => {
  await prometheus?.stop();
  await second?.stop();
  await stack?.stop();
});

const ctl = () => stack.controller!.url;
const SCHEMA = {
  type: "object",
  required: ["prediction", "confidence"],
  properties: { prediction: { enum: ["approve", "review", "decline"] }, confidence: { type: "number", minimum: 0, maximum: 1 } },
};
const TIERS = ["free", "pro", "enterprise", "trial"]; // trial is not a declared value: it counts as "other"
const SEGMENTS = [{ dimension: "tier", values: ["free", "pro", "enterprise"] }];

async function behave(server: { url: string }, behavior: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${server.url}/__demo/behavior`, { method: "PUT", body: JSON.stringify(behavior) });
  expect(res.status, await res.text()).toBe(200);
}

/** Requests sent to find out whether a proxy has a rollout (they count too), by rollout. */
const probes: Record<string, number> = {};

/** Waits until every worker of the proxy has the rollout. */
async function untilActive(proxy: string, rollout: string): Promise<void> {
  await waitFor(
    `${rollout} on ${proxy}`,
    async () => {
      probes[rollout] = (probes[rollout] ?? 0) + 8;
      return (await sendMany(`${proxy}/${rollout}/probe`, 8, () => ({}), 4)).every((r) => r.variant !== null);
    },
    15_000,
    20,
  );
}

/** Creates a manual rollout and returns when it began (createdAt, ms) once every worker of `proxies` has it. */
async function createRollout(spec: Record<string, unknown> & { name: string }, proxies: string[]): Promise<number> {
  const created = await api(ctl(), "POST", "/v1/rollouts", spec);
  expect(created.status, JSON.stringify(created.json)).toBe(201);
  for (const proxy of proxies) await untilActive(proxy, spec.name);
  return Date.parse(created.json.createdAt);
}

/** Waits until Prometheus holds a sample of the rollout taken after `afterMs` (so after the last stats flush). */
async function prometheusCaughtUp(rollout: string, afterMs: number): Promise<void> {
  await waitFor(
    `Prometheus samples of ${rollout} after ${new Date(afterMs).toISOString()}`,
    async () => {
      const v = await client.vector(`max(timestamp(modelroll_requests{modelroll_rollout="${rollout}"}))`, Date.now());
      return v.ok && v.samples.length === 1 && v.samples[0].value * 1000 >= afterMs;
    },
    20_000,
    50,
  );
}

async function read(provider: MetricProvider, rollout: string, since: number, at: number): Promise<{ counts: RolloutCounts }> {
  const reading = await provider.readRollout(rollout, { at, since });
  if (reading.status !== "measured") throw new Error(`${rollout}: ${reading.error}`);
  return { counts: reading.value };
}

const measured = (counts: RolloutCounts): MetricReading<RolloutCounts> => ({ status: "measured", value: counts, sources: [] });

/** What the engine decides on cumulative counts as one stage's window (the stage began with nothing counted). */
function judge(name: string, spec: EngineSpec, counts: RolloutCounts): { measurements: Measurement[]; trafficMix: TrafficMixResult[] } {
  const t0 = Date.UTC(2026, 0, 1);
  let state = initialState({ rollout: name, spec, segments: SEGMENTS, now: t0 });
  state = step(state, { now: t0, counts: measured(emptyRolloutCounts()) }).state;
  const evaluation = step(state, { now: t0 + 3_600_000, counts: measured(counts) }).evaluation!;
  return { measurements: evaluation.measurements, trafficMix: evaluation.trafficMix };
}

const key = (m: Measurement) => `${m.gate} ${m.segment ? `${m.segment.dimension}=${m.segment.value}` : "overall"}`;

/** Verdicts and values of both sources side by side; returns the largest latency difference in buckets. */
function compareVerdicts(
  admin: ReturnType<typeof judge>,
  prom: ReturnType<typeof judge>,
): { gates: number; worstLatencyBuckets: number; statuses: Record<string, string> } {
  expect(prom.measurements.map(key)).toEqual(admin.measurements.map(key));
  let worst = 0;
  const statuses: Record<string, string> = {};
  admin.measurements.forEach((a, i) => {
    const p = prom.measurements[i];
    expect(p.status, key(a)).toBe(a.status);
    statuses[key(a)] = a.status;
    for (const field of ["candidateValue", "stableValue"] as const) {
      const [x, y] = [a[field], p[field]];
      if (x === null || y === null) {
        expect(y, `${key(a)} ${field}`).toBe(x);
      } else if (a.gate.startsWith("latency_")) {
        // Bucket bounds are 5% apart: within one bucket's width of each other.
        const width = 0.05 * Math.max(x, y);
        expect(Math.abs(x - y), `${key(a)} ${field}: ${x} vs ${y}`).toBeLessThanOrEqual(width + 1e-9);
        worst = Math.max(worst, Math.abs(x - y) / Math.max(width, 1e-9));
      } else {
        expect(y, `${key(a)} ${field}`).toBeCloseTo(x, 9);
      }
    }
  });
  expect(prom.trafficMix.map((t) => [t.dimension, t.mismatch])).toEqual(admin.trafficMix.map((t) => [t.dimension, t.mismatch]));
  return { gates: admin.measurements.length, worstLatencyBuckets: worst, statuses };
}

/** Counters that are not 0 (to the engine an absent counter is 0; Envoy's `usedonly` leaves unused ones out). */
const counted = (counters: Record<string, number>) => Object.fromEntries(Object.entries(counters).filter(([, n]) => n !== 0));

/** A histogram's non-empty cumulative buckets (bound -> count); leading empty buckets say nothing. */
const buckets = (h: { bounds: number[]; cumulative: number[] }) => h.bounds.map((b, i) => [b, h.cumulative[i]]).filter(([, n]) => n > 0);

/** Every counter of every slice equal, and histograms equal bucket by bucket. */
function expectSameCounts(admin: CountsSnapshot, prom: CountsSnapshot): void {
  expect(Object.keys(prom.slices).sort()).toEqual(Object.keys(admin.slices).sort());
  for (const [slice, variants] of Object.entries(admin.slices)) {
    expect(Object.keys(prom.slices[slice]).sort(), slice).toEqual(Object.keys(variants).sort());
    for (const [variant, counts] of Object.entries(variants)) {
      const other = prom.slices[slice][variant as keyof typeof variants]!;
      expect(counted(other.counters), `${slice} ${variant}`).toEqual(counted(counts!.counters));
      for (const [name, h] of Object.entries(counts!.histograms)) {
        if (h.total === 0) continue;
        expect(buckets(other.histograms[name]), `${slice} ${variant} ${name}`).toEqual(buckets(h));
        expect(other.histograms[name].total, `${slice} ${variant} ${name}`).toBe(h.total);
      }
    }
  }
}

const requestsIn = (counts: RolloutCounts) => counts.stable.requests + counts.canary.requests;

describe("Prometheus as the built-in gates' metric source, against Envoy admin", () => {
  it("a. the same traffic gives the same counts and the same verdicts from both sources", { timeout: 120_000 }, async () => {
    const name = "pm-diff";
    const since = await createRollout(
      {
        name,
        match: { pathPrefix: `/${name}` },
        stickyKey: { header: "x-user-id" },
        canaryPercent: 50,
        segments: [{ name: "tier", header: "x-tier", values: ["free", "pro", "enterprise"] }],
        shadow: { percent: 100 },
        output: { labels: ["approve", "review", "decline"], schema: SCHEMA },
      },
      [stack.dataUrl],
    );
    const admin = new EnvoyAdminMetricProvider([stack.adminUrl, second.adminUrl]);
    const prom = new PrometheusMetricProvider(client);
    const canarySpec = specFrom(
      {
        stages: [{ canaryPercent: 50, minDurationSeconds: 1, minRequests: 10 }, 100],
        promotion_gates: {
          latency_p95_ms: { maximum_regression_percent: 10 },
          latency_p50_ms: { maximum: 200 },
          error_rate: { maximum: 0.02 },
          schema_validation_pass_rate: { minimum: 0.95 },
          confidence_drift: { maximum: 0.1 },
        },
        trafficMix: { check: true },
      },
      { shadowPercent: 100 },
    );
    const shadowSpec = specFrom(
      {
        changeKind: "major",
        stages: ["shadow", 50, 100],
        promotion_gates: {
          shadow_agreement_rate: { minimum: 0.9 },
          shadow_status_match_rate: { minimum: 0.95 },
          error_rate: { maximum: 0.02 },
          schema_validation_pass_rate: { minimum: 0.95 },
        },
      },
      { shadowPercent: 100 },
    );

    const phases: Array<{ phase: string; canary: Record<string, unknown>; shadow: Record<string, unknown> }> = [
      { phase: "healthy", canary: {}, shadow: {} },
      { phase: "bad", canary: { errorRate: 0.25, latencyMs: 40, labelShift: 1 }, shadow: { errorRate: 0.3, labelShift: 1 } },
    ];
    let sent = 0;
    try {
      for (const { phase, canary, shadow } of phases) {
        await behave(stack.canary, canary);
        await behave(stack.shadow, shadow);
        const replies: Reply[] = await sendMany(
          `${stack.dataUrl}/${name}/predict`,
          800,
          (i) => ({ "x-user-id": `u${sent + i}`, "x-tier": TIERS[(sent + i) % TIERS.length] }),
          16,
        );
        sent += replies.length;
        // Mirrored calls finish after their primaries; Envoy flushes histograms every second.
        await new Promise((r) => setTimeout(r, 1500));
        await prometheusCaughtUp(name, Date.now());
        const at = Date.now();
        const [a, p] = await Promise.all([read(admin, name, since, at), read(prom, name, since, at)]);
        expect(requestsIn(a.counts)).toBe(sent + probes[name]);
        expectSameCounts(toSnapshot(a.counts), toSnapshot(p.counts));
        const canaryVerdicts = compareVerdicts(judge(name, canarySpec, a.counts), judge(name, canarySpec, p.counts));
        const shadowVerdicts = compareVerdicts(judge(name, shadowSpec, a.counts), judge(name, shadowSpec, p.counts));
        const failed = (v: typeof canaryVerdicts) =>
          Object.entries(v.statuses)
            .filter(([, s]) => s === "Failed")
            .map(([k]) => k);
        console.log(
          `a. ${phase}: ${sent} requests (canary ${a.counts.canary.requests}, shadow ${a.counts.shadow?.requests ?? 0}); ` +
            "counters identical from admin and Prometheus; " +
            `${canaryVerdicts.gates + shadowVerdicts.gates} gate verdicts identical (largest latency difference ${canaryVerdicts.worstLatencyBuckets.toFixed(2)} of a bucket width); ` +
            `failed in both: ${[...failed(canaryVerdicts), ...failed(shadowVerdicts)].join(", ") || "none"}`,
        );
        if (phase === "healthy") {
          expect(failed(canaryVerdicts)).toEqual([]);
          expect(failed(shadowVerdicts)).toEqual([]);
        } else {
          expect(canaryVerdicts.statuses["error_rate overall"]).toBe("Failed");
          expect(shadowVerdicts.statuses["shadow_agreement_rate overall"]).toBe("Failed");
        }
      }
    } finally {
      await behave(stack.canary, { errorRate: 0, latencyMs: 0, labelShift: 0 });
      await behave(stack.shadow, { errorRate: 0, latencyMs: 0, labelShift: 0 });
    }
  });

  it("b. a sidecar that restarts: admin counts go down (a data-path restart to the engine), Prometheus' keep counting", { timeout: 120_000 }, async () => {
    const name = "pm-restart";
    const since = await createRollout({ name, match: { pathPrefix: `/${name}` }, stickyKey: { header: "x-user-id" }, canaryPercent: 50 }, [
      stack.dataUrl,
      secondUrl,
    ]);
    const admin = new EnvoyAdminMetricProvider([stack.adminUrl, second.adminUrl]);
    const prom = new PrometheusMetricProvider(client);
    const byVariant = (replies: Reply[]) => ({
      stable: replies.filter((r) => r.variant === "stable").length,
      canary: replies.filter((r) => r.variant === "canary").length,
    });
    const through = (url: string, n: number, offset: number) => sendMany(`${url}/${name}/predict`, n, (i) => ({ "x-user-id": `r${offset + i}` }), 8);

    const before = [...(await through(stack.dataUrl, 200, 0)), ...(await through(secondUrl, 300, 1000))];
    await new Promise((r) => setTimeout(r, 1200));
    await prometheusCaughtUp(name, Date.now());
    const at1 = Date.now();
    const [a1, p1] = await Promise.all([read(admin, name, since, at1), read(prom, name, since, at1)]);
    expectSameCounts(toSnapshot(a1.counts), toSnapshot(p1.counts));

    // The second sidecar restarts (same address, so the same series in Prometheus) and starts counting from 0.
    await second.stop();
    second = await startEnvoy({ bootstrapYaml: secondYaml, adminPort: Number(new URL(second.adminUrl).port), concurrency: 2 });
    const probesBefore = probes[name];
    await untilActive(secondUrl, name);
    const restartProbes = probes[name] - probesBefore;
    const after = await through(secondUrl, 30, 5000);
    await new Promise((r) => setTimeout(r, 1200));
    await prometheusCaughtUp(name, Date.now());
    const at2 = Date.now();
    const [a2, p2] = await Promise.all([read(admin, name, since, at2), read(prom, name, since, at2)]);

    const adminWindow = windowBetween(toSnapshot(a2.counts), toSnapshot(a1.counts));
    const promWindow = windowBetween(toSnapshot(p2.counts), toSnapshot(p1.counts));
    const sentAfter = byVariant(after);
    const promAfter = {
      stable: promWindow.window.slices.overall.stable!.counters.requests,
      canary: promWindow.window.slices.overall.canary!.counters.requests,
    };
    console.log(
      `b. restart of one of two sidecars: requests before ${before.length}, after ${after.length} ${JSON.stringify(sentAfter)} (+${restartProbes} probes); ` +
        `admin total ${requestsIn(a1.counts)} -> ${requestsIn(a2.counts)} (reset seen: ${adminWindow.reset}); ` +
        `Prometheus ${requestsIn(p1.counts)} -> ${requestsIn(p2.counts)} (reset seen: ${promWindow.reset}), window ${JSON.stringify(promAfter)}`,
    );
    expect(adminWindow.reset).toBe(true);
    expect(promWindow.reset).toBe(false);
    // Exactly what went through since the first reading: the 30 requests and the probes, by the variant each answered with.
    expect(promAfter.stable + promAfter.canary).toBe(after.length + restartProbes);
    expect(promAfter.canary).toBeGreaterThanOrEqual(sentAfter.canary);
    expect(promAfter.stable).toBeGreaterThanOrEqual(sentAfter.stable);
    expect(requestsIn(p2.counts)).toBe(before.length + after.length + probes[name]);
  });
});
