// A controller started with metrics "prometheus" (`--metrics prometheus`): its engine reads the built-in gates'
// counts from a real Prometheus (Debian's) scraping the real Envoy every 250 ms, never from Envoy's admin port.
//   a. a good canary is promoted, and Envoy restarting mid-stage is not a data-path restart to the engine
//      (no baselineReset: Prometheus counts since the rollout began);
//   b. Prometheus lagging (its newest sample older than the bound at the tick: here the controller's clock
//      runs ahead of it) is Error: the stage holds, and moves on once the samples are fresh again;
//   c. Prometheus down is Error: the stage holds (no rollback, no promotion) and moves on once it is back.
// Each test prints what it measured.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPrometheus, type PrometheusProcess } from "../../controller/src/prometheus/process.ts";
import {
  api,
  createManaged,
  decisionsOf,
  freePort,
  managedSpec,
  phaseOf as rolloutPhase,
  sendMany,
  startStack,
  type DecisionView,
  type Stack,
} from "./harness.ts";

const SCRAPE_MS = 250;
const MAX_LAG_MS = 5000;
let stack: Stack;
let prometheus: PrometheusProcess | null = null;
let prometheusPort: number;
/** Added to the controller's clock (ms). */
let clockAhead = 0;

const startOurPrometheus = () =>
  startPrometheus({
    scrapeTargets: [new URL(stack.adminUrl).host],
    port: prometheusPort,
    scrapeIntervalMs: SCRAPE_MS,
    waitForTargets: true,
    readyTimeoutMs: 30_000,
  });

beforeAll(async () => {
  prometheusPort = await freePort();
  stack = await startStack({
    controller: {
      tickIntervalMs: 250,
      metrics: "prometheus",
      prometheusUrl: `http://127.0.0.1:${prometheusPort}`,
      prometheusMaxLagMs: MAX_LAG_MS,
      clock: () => new Date(Date.now() + clockAhead),
    },
  });
  prometheus = await startOurPrometheus();
});

afterAll(async () => {
  await prometheus?.stop();
  await stack?.stop();
});

const ctl = () => stack.controller!.url;
const managed = (name: string, stage: { minDurationSeconds: number; deadlineSeconds: number }) =>
  managedSpec(name, "error rate above 5% or p95 up 50%", {
    stages: [{ canaryPercent: 20, minRequests: 100, ...stage }, 100],
    promotion_gates: { error_rate: { maximum: 0.05 }, latency_p95_ms: { maximum_regression_percent: 50, tolerance_ms: 20 } },
  });
const decisions = (name: string) => decisionsOf(ctl(), name);
const phaseOf = (name: string) => rolloutPhase(ctl(), name);
const errorRate = (d: DecisionView | undefined) => d?.measurements.find((m) => m.gate === "error_rate" && m.segment === null);

/** Batches of 100 requests through Envoy until `done()` or `timeoutMs`; returns requests sent. */
async function traffic(name: string, done: () => Promise<boolean>, timeoutMs: number): Promise<{ sent: number; done: boolean }> {
  const started = performance.now();
  let sent = 0;
  while (performance.now() - started < timeoutMs) {
    if (await done()) return { sent, done: true };
    sent += (await sendMany(`${stack.dataUrl}/${name}/predict`, 100, (i) => ({ "x-user-id": `${name}-${sent + i}` }), 16)).length;
  }
  return { sent, done: await done() };
}
const advanced = (name: string) => async () => (await decisions(name)).some((d) => d.kind === "advanced");

describe("the engine reading the built-in gates from Prometheus", () => {
  it("a. a good canary passes its stage; Envoy restarting mid-stage does not restart the window", { timeout: 120_000 }, async () => {
    const name = "pd-good";
    await createManaged(ctl(), managed(name, { minDurationSeconds: 6, deadlineSeconds: 120 }));
    const first = await traffic(
      name,
      async () => (await decisions(name)).some((d) => errorRate(d)?.status === "Passed" || errorRate(d)?.status === "Inconclusive"),
      30_000,
    );
    expect(first.done).toBe(true);
    await stack.restartEnvoy();
    const rest = await traffic(name, advanced(name), 60_000);
    const history = await decisions(name);
    const advance = history.find((d) => d.kind === "advanced");
    console.log(
      `a. ${first.sent} requests, Envoy restarted, ${rest.sent} more: stage passed after the restart; ` +
        `decisions ${history.map((d) => d.kind).join(", ")}; error rate at the advance: ${errorRate(advance)?.reason}`,
    );
    expect(advance, JSON.stringify(history.map((d) => [d.kind, d.reason]))).toBeDefined();
    expect(errorRate(advance)!.status).toBe("Passed");
    expect(errorRate(advance)!.sampleSizes.candidate).toBeGreaterThan(0);
    expect(history.some((d) => d.kind === "baselineReset")).toBe(false);
    expect(history.some((d) => d.kind === "rolledBack")).toBe(false);
  });

  it("b. Prometheus lagging behind the tick: Error, the stage holds; fresh samples again: it moves on", { timeout: 120_000 }, async () => {
    const name = "pd-lag";
    await createManaged(ctl(), managed(name, { minDurationSeconds: 1, deadlineSeconds: 300 }));
    clockAhead = 3 * MAX_LAG_MS;
    let history: DecisionView[] = [];
    try {
      const started = performance.now();
      const held = await traffic(
        name,
        async () => performance.now() - started > 5000 && (history = await decisions(name)).some((d) => d.kind === "held" && errorRate(d)?.status === "Error"),
        30_000,
      );
      expect(held.done, JSON.stringify(history.map((d) => [d.kind, d.reason]))).toBe(true);
      const errorHold = history.find((d) => d.kind === "held" && errorRate(d)?.status === "Error");
      console.log(`b. clock ${clockAhead / 1000} s ahead of Prometheus: ${await phaseOf(name)} after ${held.sent} requests; ${errorRate(errorHold)?.reason}`);
      expect(errorRate(errorHold)!.reason).toMatch(/newest modelroll_\* sample is \d+\.\d s older than the tick \(at most 5 s\)/);
      expect(history.some((d) => d.kind === "advanced" || d.kind === "rolledBack")).toBe(false);
      expect(await phaseOf(name)).toBe("Canary");
    } finally {
      clockAhead = 0;
    }
    const after = await traffic(name, advanced(name), 60_000);
    history = await decisions(name);
    console.log(`b. clock back in step: stage passed after ${after.sent} more requests; decisions ${history.map((d) => d.kind).join(", ")}`);
    expect(after.done).toBe(true);
    expect(history.some((d) => d.kind === "rolledBack")).toBe(false);
  });

  it("c. Prometheus down: Error, the stage holds; Prometheus back: it moves on", { timeout: 150_000 }, async () => {
    const name = "pd-down";
    await prometheus!.stop();
    prometheus = null;
    await createManaged(ctl(), managed(name, { minDurationSeconds: 1, deadlineSeconds: 300 }));
    const started = performance.now();
    const held = await traffic(name, async () => performance.now() - started > 5000, 30_000);
    let history = await decisions(name);
    const errorHold = history.find((d) => d.kind === "held" && errorRate(d)?.status === "Error");
    const view = (await api(ctl(), "GET", `/v1/rollouts/${name}`)).json;
    console.log(`c. Prometheus down: ${view.phase} at ${view.canaryPercent}% after ${held.sent} requests; ${errorRate(errorHold)?.reason}`);
    expect(view.phase).toBe("Canary");
    expect(errorHold).toBeDefined();
    expect(errorRate(errorHold)!.reason).toMatch(/prometheus http:\/\/127\.0\.0\.1:\d+: /);
    expect(history.some((d) => d.kind === "rolledBack" || d.kind === "advanced" || d.kind === "failed")).toBe(false);

    prometheus = await startOurPrometheus();
    const after = await traffic(name, advanced(name), 60_000);
    history = await decisions(name);
    console.log(`c. Prometheus back (empty): stage passed after ${after.sent} more requests; decisions ${history.map((d) => d.kind).join(", ")}`);
    expect(after.done).toBe(true);
    expect(history.some((d) => d.kind === "rolledBack")).toBe(false);
  });
});
