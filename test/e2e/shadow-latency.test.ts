// A latency gate in a shadow stage on real Envoy. The shadow's latency is the mirrored calls' (from dispatch,
// when the request is complete, to the whole answer); the filter times each mirrored request's primary answer
// the same way (primary_latency_us), and the gate compares the two, with the default 2 ms tolerance. Two
// identical demo models at sub-millisecond latency pass; a shadow 20 ms slower is rolled back before any real
// traffic reaches it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, decisionsOf, managedSpec, phaseOf, sendMany, startStack, waitFor, type DecisionView, type Stack } from "./harness.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ controller: { tickIntervalMs: 250 } });
});
afterAll(async () => {
  await stack?.stop();
});

const ctl = () => stack.controller!.url;
// Two at a time: more would load the shared event loop of the demo models and this client past sub-millisecond latency.
const CONCURRENCY = 2;

async function behave(server: { url: string }, behavior: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${server.url}/__demo/behavior`, {
    method: "PUT",
    body: JSON.stringify({ errorRate: 0, latencyMs: 0, labelShift: 0, garbage: false, ...behavior }),
  });
  expect(res.status).toBe(200);
}

/**
 * A shadow stage mirroring every request, then canary stages; the only gate is the seed's p95 latency gate, judged
 * in the shadow stage only, which makes that stage its proof stage: the stage advances only once the gate Passed
 * (in an earlier stage it would only need enough samples to detect harm: README, "What a stage must show").
 */
const spec = (name: string) =>
  managedSpec(name, "the shadow's p95 latency more than 10% (and 2 ms) above stable's", {
    shadow: { percent: 100, timeoutMs: 2000 },
    stages: [{ shadow: true, shadowPercent: 100, minDurationSeconds: 1, minRequests: 200, deadlineSeconds: 120, onDeadline: "hold" }, 50, 100],
    promotion_gates: { latency_p95_ms: { maximum_regression_percent: 10, during: ["shadow"] } },
  });

async function create(name: string): Promise<void> {
  const created = await api(ctl(), "POST", "/v1/rollouts", spec(name));
  expect(created.status, JSON.stringify(created.json)).toBe(201);
  await waitFor(`${name}: the shadow stage`, async () => (await phaseOf(ctl(), name)) === "Shadowing", 10_000, 50);
}

/** Real traffic through Envoy until the rollout leaves its shadow stage (or `timeoutMs` passes). */
async function driveShadowStage(name: string, timeoutMs: number): Promise<{ phase: string; sent: number }> {
  const started = performance.now();
  let sent = 0;
  let phase = await phaseOf(ctl(), name);
  while (phase === "Shadowing" && performance.now() - started < timeoutMs) {
    const replies = await sendMany(`${stack.dataUrl}/${name}/predict`, 100, (i) => ({ "x-user-id": `${name}-${sent + i}` }), CONCURRENCY);
    // Real traffic stays on stable while the stage lasts (a batch may straddle the advance to the canary stage).
    expect(replies.every((r) => r.status === 200 && r.modelVersion !== "v3")).toBe(true);
    sent += replies.length;
    phase = await phaseOf(ctl(), name);
  }
  return { phase, sent };
}

const ms = (x: number | null | undefined) => (x === null || x === undefined ? "n/a" : `${x.toFixed(3)} ms`);

function latencyOf(decision: DecisionView) {
  return decision.measurements.find((m) => m.gate === "latency_p95_ms" && m.segment === null);
}

describe("a shadow-stage latency gate compares like with like", () => {
  it("identical models at sub-millisecond latency pass the shadow stage, never roll back", { timeout: 120_000 }, async () => {
    const name = "lat-same";
    await create(name);
    const run = await driveShadowStage(name, 90_000);
    const history = await decisionsOf(ctl(), name);
    const advanced = history.find((d) => d.kind === "advanced" && d.from === "Shadowing");
    const m = advanced ? latencyOf(advanced) : undefined;
    // Every primary answer of a mirrored request is timed (the shadow answered each, no client left early): once
    // Envoy's 1 s histogram flush has passed, the paired count equals the shadow's.
    let stats: any;
    await waitFor(
      "the paired histograms flushed",
      async () => {
        stats = (await api(ctl(), "GET", `/v1/rollouts/${name}/stats`)).json.variants;
        return stats.shadow.comparison.primaryLatencyMs.count === stats.shadow.latencyMs.count;
      },
      5000,
      200,
    ).catch(() => undefined);
    console.log(
      `identical models, shadow stage: ${run.phase} after ${run.sent} requests; ` +
        `since creation p95: stable (headers -> headers) ${ms(stats.stable.latencyMs.p95)}, stable paired with the mirrored calls ` +
        `${ms(stats.shadow.comparison.primaryLatencyMs.p95)}, shadow ${ms(stats.shadow.latencyMs.p95)}\n  gate: ${m?.status}: ${m?.reason}\n` +
        `  decisions: ${history.map((d) => d.kind).join(", ")}\n` +
        history
          .filter((d) => d.kind === "held")
          .map((d) => `   held: ${d.reason}`)
          .join("\n"),
    );
    expect(history.some((d) => d.kind === "rolledBack")).toBe(false);
    expect(run.phase).not.toBe("RolledBack");
    expect(advanced, `still ${run.phase}: ${history.at(-1)?.reason}`).toBeDefined();
    expect(m!.status).toBe("Passed");
    expect(m!.reason).toMatch(/^p95 latency of the mirrored requests [\d.]+ ms vs [\d.]+ ms: within at most 10% or 2 ms above stable/);
    expect(m!.threshold).toEqual({ kind: "maxRatio", value: 1.1, tolerance: 2 });
    // Sub-millisecond models: both p95s as the gate saw them.
    expect(m!.stableValue!).toBeGreaterThan(0);
    expect(m!.candidateValue!).toBeGreaterThan(0);
    expect(stats.shadow.comparison.primaryLatencyMs.count).toBe(stats.shadow.latencyMs.count);
  });

  it("a shadow 20 ms slower is rolled back in the shadow stage, naming the paired latencies", { timeout: 120_000 }, async () => {
    const name = "lat-slow";
    await behave(stack.shadow, { latencyMs: 20 });
    try {
      await create(name);
      const run = await driveShadowStage(name, 90_000);
      const history = await decisionsOf(ctl(), name);
      const last = history[history.length - 1];
      const m = latencyOf(last);
      console.log(`shadow +20 ms: ${run.phase} after ${run.sent} requests\n  decision: ${last.kind}: ${last.reason}`);
      expect(run.phase).toBe("RolledBack");
      expect(last.kind).toBe("rolledBack");
      expect(last.stage?.name).toBe("shadow");
      expect(last.reason).toMatch(/^shadow worse overall: p95 latency of the mirrored requests [\d.]+ ms vs [\d.]+ ms \(at most 10% or 2 ms above stable;/);
      expect(m!.status).toBe("Failed");
      expect(m!.candidateValue!).toBeGreaterThanOrEqual(20);
      expect(m!.candidateValue! - m!.stableValue!).toBeGreaterThan(2);
      // Nobody was served by the shadow.
      expect((await api(ctl(), "GET", `/v1/rollouts/${name}`)).json.canaryPercent).toBe(0);
    } finally {
      await behave(stack.shadow, {});
    }
  });
});
