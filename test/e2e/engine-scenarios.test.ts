// Engine scenarios on real Envoy, with demo models that misbehave on purpose: a defect in one tenant tier
// only, a 30% p95 latency regression, and review scores posted from outside. The controller's driver reads
// the filter's stats from Envoy's admin endpoint every 250 ms and decides on its own; each test asserts the
// outcome (phase, the decision's gate, slice and values) and prints what it measured.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  api,
  createManaged,
  decisionsOf,
  managedSpec,
  phaseOf as rolloutPhase,
  sendMany,
  startStack,
  waitFor,
  type DecisionView,
  type Reply,
  type Stack,
} from "./harness.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ controller: { tickIntervalMs: 250 } });
});
afterAll(async () => {
  await stack?.stop();
});

const RESET = { errorRate: 0, latencyMs: 0, labelShift: 0, garbage: false, fixedResponse: null, overrides: [] };
const TERMINAL = ["RolledBack", "Failed", "Succeeded"];

const ctl = () => stack.controller!.url;

async function behave(server: { url: string }, behavior: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${server.url}/__demo/behavior`, { method: "PUT", body: JSON.stringify(behavior) });
  expect(res.status, await res.text()).toBe(200);
}

async function restore(): Promise<void> {
  await Promise.all([behave(stack.stable, RESET), behave(stack.canary, RESET)]);
}

const phaseOf = (name: string) => rolloutPhase(ctl(), name);
const decisions = (name: string) => decisionsOf(ctl(), name);
const managed = (name: string, extra: Record<string, unknown>) => managedSpec(name, "a gate fails on any slice", extra);
const create = (spec: { name: string }) => createManaged(ctl(), spec);

interface Drive {
  phase: string;
  sent: number;
  replies: Array<Reply & { headers: Record<string, string> }>;
}

/**
 * Sends batches of real traffic through Envoy until the rollout's phase satisfies `done`, or `timeoutMs`
 * passes (then the last phase is returned and the caller's assertions fail).
 */
async function drive(
  name: string,
  opts: { done: (phase: string) => boolean; headersFor: (i: number) => Record<string, string>; batch?: number; concurrency?: number; timeoutMs?: number },
): Promise<Drive> {
  const started = performance.now();
  const batch = opts.batch ?? 200;
  const replies: Drive["replies"] = [];
  let phase = await phaseOf(name);
  while (!opts.done(phase) && performance.now() - started < (opts.timeoutMs ?? 60_000)) {
    const offset = replies.length;
    const got = await sendMany(`${stack.dataUrl}/${name}/predict`, batch, (i) => opts.headersFor(offset + i), opts.concurrency ?? 16);
    for (const [i, r] of got.entries()) replies.push({ ...r, headers: opts.headersFor(offset + i) });
    phase = await phaseOf(name);
  }
  return { phase, sent: replies.length, replies };
}

async function allOnStable(name: string): Promise<void> {
  await waitFor(
    `${name}: all traffic on stable`,
    async () =>
      (await sendMany(`${stack.dataUrl}/${name}/predict`, 32, (i) => ({ "x-user-id": `after-${i}` }), 8)).every(
        (r) => r.variant === "stable" && r.modelVersion === "v1",
      ),
    5000,
    20,
  );
  expect((await api(ctl(), "GET", `/v1/rollouts/${name}`)).json.canaryPercent).toBe(0);
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? "n/a" : `${(x * 100).toFixed(2)}%`);
const ms = (x: number | null | undefined) => (x === null || x === undefined ? "n/a" : `${x.toFixed(2)} ms`);

/** Deterministic scores in [mean - spread, mean + spread], three decimals (an LCG: same values every run). */
function scores(n: number, mean: number, spread: number, seed: number): number[] {
  let x = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out.push(Math.round((mean + ((x / 2 ** 32) * 2 - 1) * spread) * 1000) / 1000);
  }
  return out;
}

async function postScores(name: string, variant: "stable" | "canary", values: number[]): Promise<void> {
  const res = await api(ctl(), "POST", `/v1/rollouts/${name}/measurements`, { metric: "human_review_score", variant, values });
  expect(res.status, JSON.stringify(res.json)).toBe(200);
  expect(res.json.recorded).toBe(values.length);
}

describe("engine scenarios on real Envoy", () => {
  it("rolls back a canary failing for enterprise tenants only, and names the segment", { timeout: 120_000 }, async () => {
    const name = "seg-defect";
    // The canary answers 30% errors to enterprise requests and serves every other tier normally. (At 15% the
    // overall gate could pass before the small enterprise slice had shown its defect: a value under
    // segmentTrafficShare does not hold the stage, so the defect must be plain enough to be seen in time.)
    await behave(stack.canary, { overrides: [{ when: { header: "x-tenant-tier", equals: "enterprise" }, errorRate: 0.3 }] });
    try {
      await create(
        managed(name, {
          segments: [{ name: "tenant_tier", header: "x-tenant-tier", values: ["free", "pro", "enterprise"] }],
          stages: [{ canaryPercent: 50, minDurationSeconds: 1, minRequests: 100, deadlineSeconds: 120 }, 100],
          promotion_gates: { error_rate: { maximum: 0.01 } },
        }),
      );
      // Enterprise is 1 request in 50 (2%): its 30% errors are 0.6% of the canary's traffic, under the
      // 1% limit, so only the per-segment gate can see the defect.
      const tierOf = (i: number) => (i % 50 === 0 ? "enterprise" : i % 3 === 0 ? "pro" : "free");
      const run = await drive(name, {
        done: (p) => p !== "Canary",
        headersFor: (i) => ({ "x-user-id": `sd-${i}`, "x-tenant-tier": tierOf(i) }),
        timeoutMs: 90_000,
      });

      const canary = run.replies.filter((r) => r.variant === "canary");
      const failedOf = (rs: typeof canary) => rs.filter((r) => r.status >= 500).length;
      const enterprise = canary.filter((r) => r.headers["x-tenant-tier"] === "enterprise");
      const others = canary.filter((r) => r.headers["x-tenant-tier"] !== "enterprise");
      const stableErrors = failedOf(run.replies.filter((r) => r.variant === "stable"));
      const history = await decisions(name);
      const last = history[history.length - 1];
      const failed = last.measurements.filter((m) => m.status === "Failed");
      const overall = last.measurements.find((m) => m.gate === "error_rate" && m.segment === null);
      const seg = last.measurements.find((m) => m.gate === "error_rate" && m.segment?.value === "enterprise");
      console.log(
        `segment defect: ${run.phase} after ${run.sent} requests sent (${canary.length} canary: ` +
          `${enterprise.length} enterprise with ${failedOf(enterprise)} errors, ${others.length} other tiers with ${failedOf(others)} errors; ` +
          `stable errors ${stableErrors}); client-side canary error rate overall ${pct(failedOf(canary) / Math.max(1, canary.length))}, ` +
          `enterprise ${pct(failedOf(enterprise) / Math.max(1, enterprise.length))}\n` +
          `  engine overall: ${overall?.status} ${pct(overall?.candidateValue)} (n=${overall?.sampleSizes.candidate}); ` +
          `enterprise: ${seg?.status} ${pct(seg?.candidateValue)} (n=${seg?.sampleSizes.candidate})\n  decision: ${last.kind}: ${last.reason}`,
      );

      expect(run.phase).toBe("RolledBack");
      expect(last.kind).toBe("rolledBack");
      expect(last.reason).toMatch(/^canary worse for tenant_tier=enterprise: error rate /);
      // Only the enterprise slice failed; every other slice, overall included, did not.
      expect(failed.map((m) => `${m.gate} ${m.segment ? `${m.segment.dimension}=${m.segment.value}` : "overall"}`)).toEqual([
        "error_rate tenant_tier=enterprise",
      ]);
      expect(seg!.candidateValue!).toBeGreaterThan(0.01);
      expect(seg!.intervals.candidate!.lower!).toBeGreaterThan(0.01);
      // The overall error rate alone would not have rolled it back: its interval still reaches below the 1%
      // limit (the long-run rate is 2% x 30% = 0.6%), and its estimate is a small fraction of enterprise's.
      // (The estimate itself can touch 1% by chance: the engine may stop after 2 enterprise errors in 4.)
      expect(overall!.status).not.toBe("Failed");
      expect(overall!.intervals.candidate!.lower!).toBeLessThan(0.01);
      expect(overall!.candidateValue!).toBeLessThan(seg!.candidateValue! / 10);
      // The free and pro tiers were served normally by the canary.
      expect(failedOf(others)).toBe(0);
      expect(stableErrors).toBe(0);
      await allOnStable(name);
    } finally {
      await restore();
    }
  });

  it("rolls back a 30% p95 latency regression and names the latency gate with both values", { timeout: 180_000 }, async () => {
    const name = "lat-regress";
    // Both models have a base latency, so Envoy's 5%-apart latency buckets can resolve the difference. What
    // the filter measures also holds everything else on the path (Envoy, the Node event loop shared by both
    // demo models, the controller and this client, other tests on a 2-core machine): a few to 20 ms added to
    // both variants at p95, which shrinks the ratio (20 vs 26 ms measured 35.8 vs 41.6 ms under load, a ratio
    // of 1.16). 40 vs 55 ms puts the canary's p95 as the filter sees it about 25-30% above stable's.
    await behave(stack.stable, { latencyMs: 40 });
    await behave(stack.canary, { latencyMs: 55 });
    try {
      await create(
        managed(name, {
          stages: [{ canaryPercent: 50, minDurationSeconds: 1, minRequests: 100, deadlineSeconds: 120 }, 100],
          promotion_gates: { latency_p95_ms: { maximum_regression_percent: 10 }, error_rate: { maximum: 0.01 } },
        }),
      );
      const run = await drive(name, { done: (p) => p !== "Canary", headersFor: (i) => ({ "x-user-id": `lr-${i}` }), concurrency: 16, timeoutMs: 120_000 });
      const history = await decisions(name);
      const last = history[history.length - 1];
      const latency = last.measurements.find((m) => m.gate === "latency_p95_ms" && m.segment === null);
      const canaryN = run.replies.filter((r) => r.variant === "canary").length;
      const ratio = latency?.intervals.comparison;
      const stats = (await api(ctl(), "GET", `/v1/rollouts/${name}/stats`)).json;
      console.log(
        `p95 latency regression: ${run.phase} after ${run.sent} requests sent (${canaryN} canary); ` +
          `stats API since creation: p95 stable ${ms(stats.variants?.stable?.latencyMs?.p95)}, canary ${ms(stats.variants?.canary?.latencyMs?.p95)}; ` +
          `engine p95 stable ${ms(latency?.stableValue)}, canary ${ms(latency?.candidateValue)} ` +
          `(ratio ${latency?.candidateValue && latency.stableValue ? (latency.candidateValue / latency.stableValue).toFixed(3) : "n/a"}, ` +
          `interval for canary/stable [${ratio?.lower?.toFixed(3)}, ${ratio?.upper?.toFixed(3)}], n=${latency?.sampleSizes.candidate} vs ${latency?.sampleSizes.stable})\n` +
          `  decision: ${last.kind}: ${last.reason}`,
      );

      expect(run.phase).toBe("RolledBack");
      expect(last.kind).toBe("rolledBack");
      expect(last.reason).toMatch(/^canary worse overall: p95 latency [\d.]+ ms vs [\d.]+ ms \(at most 10% or 2 ms above stable;/);
      expect(latency!.status).toBe("Failed");
      expect(latency!.threshold).toEqual({ kind: "maxRatio", value: 1.1, tolerance: 2 });
      // The values behind it: stable above 40 ms, canary above 55 ms, the whole ratio interval above 1.1.
      expect(latency!.stableValue!).toBeGreaterThanOrEqual(39);
      expect(latency!.candidateValue!).toBeGreaterThanOrEqual(53);
      expect(latency!.candidateValue! / latency!.stableValue!).toBeGreaterThan(1.1);
      expect(ratio!.lower!).toBeGreaterThan(1.1);
      // The reason carries both values as the measurement has them (shown to 3 significant digits).
      const shown = /p95 latency ([\d.]+) ms vs ([\d.]+) ms/.exec(last.reason)!;
      expect(Number(shown[1])).toBeCloseTo(latency!.candidateValue!, 0);
      expect(Number(shown[2])).toBeCloseTo(latency!.stableValue!, 0);
      // No other gate failed: the error gate saw a healthy canary.
      expect(last.measurements.filter((m) => m.status === "Failed").map((m) => m.gate)).toEqual(["latency_p95_ms"]);
      await allOnStable(name);
    } finally {
      await restore();
    }
  });

  it("never lets a canary 25% slower than stable past its first stage, and rolls it back there (issue 19)", { timeout: 420_000 }, async () => {
    const name = "slow-exposure";
    // Every answer 25% slower as the models see it (120 vs 150 ms). The filter's p95s also hold the shared path
    // (tens of ms on this loaded 2-core machine, added to both), which pulls the measured ratio toward 1: with
    // 40 vs 50 ms it measured 80.7 vs 94.3 ms (1.17), with these base latencies it stays above 1.2, twice the
    // 10% limit, the issue's case (27.2 vs 34 ms).
    await behave(stack.stable, { latencyMs: 120 });
    await behave(stack.canary, { latencyMs: 150 });
    try {
      await create(
        managed(name, {
          stages: [5, 25, 50, 100],
          // A deadline long enough for the interval to decide at the measured ratio (1.19 took 147 s under load).
          stageDefaults: { minDurationSeconds: 1, minRequests: 100, deadlineSeconds: 600 },
          promotion_gates: { latency_p95_ms: { maximum_regression_percent: 10 }, error_rate: { maximum: 0.01 } },
        }),
      );
      // Between rounds of traffic: the phase and the canary's share the API reports, in the order seen.
      const seen: string[] = [];
      const headersFor = (i: number) => ({ "x-user-id": `se-${i}` });
      let sent = 0;
      await waitFor(
        `${name}: an end`,
        async () => {
          const view = (await api(ctl(), "GET", `/v1/rollouts/${name}`)).json;
          const now = `${view.phase} ${view.canaryPercent}%`;
          if (seen.at(-1) !== now) seen.push(now);
          if (TERMINAL.includes(view.phase)) return true;
          await sendMany(`${stack.dataUrl}/${name}/predict`, 256, (i) => headersFor(sent + i), 32);
          sent += 256;
          return false;
        },
        380_000,
        0,
      );
      const history = await decisions(name);
      const last = history[history.length - 1];
      const latency = last.measurements.find((m) => m.gate === "latency_p95_ms" && m.segment === null);
      const holds = history.filter((d) => d.kind === "held" && /latency_p95_ms: [\d.]+% above stable measured/.test(d.reason));
      console.log(
        `25% slower canary over 5/25/50/100: ${seen.join(" -> ")} after ${sent} requests sent; ` +
          `engine p95 stable ${ms(latency?.stableValue)}, canary ${ms(latency?.candidateValue)}, interval for canary/stable ` +
          `[${latency?.intervals.comparison?.lower?.toFixed(3)}, ${latency?.intervals.comparison?.upper?.toFixed(3)}]\n` +
          `  decisions: ${history.map((d) => `${d.kind}@${d.stage?.name}`).join(", ")}\n` +
          `  ${holds.length} holds on the estimate past the limit${holds[0] ? `, e.g.: ${holds[0].reason}` : ""}\n  decision: ${last.kind}: ${last.reason}`,
      );
      // Never above the first stage, in what the API showed and in what the engine decided.
      expect(seen.filter((x) => x !== "Canary 5%")).toEqual(["RolledBack 0%"]);
      expect(history.filter((d) => d.kind === "advanced")).toEqual([]);
      expect(history.every((d) => d.stage?.name === "5%")).toBe(true);
      expect(last.kind).toBe("rolledBack");
      expect(last.reason).toMatch(/^canary worse overall: p95 latency [\d.]+ ms vs [\d.]+ ms \(at most 10% or 2 ms above stable;/);
      expect(latency!.status).toBe("Failed");
      expect(latency!.intervals.comparison!.lower!).toBeGreaterThan(1.1);
      // A hold on the latency gate, if one was recorded, named the estimate and the limit, not "not enough data".
      for (const d of holds) expect(d.reason).toMatch(/limit at most 10% or 2 ms above stable: holding until the interval shows it past the limit/);
      await allOnStable(name);
    } finally {
      await restore();
    }
  });

  describe("a human review score gate fed through the measurements endpoint", () => {
    const spec = (name: string) =>
      managed(name, {
        stages: [
          { canaryPercent: 20, minDurationSeconds: 1, minRequests: 50, deadlineSeconds: 120 },
          { canaryPercent: 100, minDurationSeconds: 1, minRequests: 20, deadlineSeconds: 120 },
        ],
        promotion_gates: { human_review_score: { minimum_delta: -0.02 } },
      });

    it("holds the stage while the scores cannot tell, then passes a canary within 0.02 of stable", { timeout: 120_000 }, async () => {
      const name = "review-good";
      await create(spec(name));
      // A few scores: the canary (mean 0.795) may be within 0.02 of stable (0.80), but 200 of each cannot show it.
      await postScores(name, "stable", scores(200, 0.8, 0.1, 1));
      await postScores(name, "canary", scores(200, 0.795, 0.1, 2));
      const headersFor = (i: number) => ({ "x-user-id": `rg-${i}` });
      let heldOnReview: DecisionView | undefined;
      let sent = 0;
      // Traffic until the stage's minimum duration and traffic are met and only the review gate holds it.
      await waitFor(
        `${name}: a hold on the review gate alone`,
        async () => {
          heldOnReview = (await decisions(name)).find(
            (d) =>
              d.kind === "held" &&
              d.reason.includes("human_review_score Inconclusive") &&
              !d.reason.includes("minimum duration") &&
              !d.reason.includes("traffic:"),
          );
          if (heldOnReview) return true;
          await sendMany(`${stack.dataUrl}/${name}/predict`, 100, (i) => headersFor(sent + i), 16);
          sent += 100;
          return false;
        },
        30_000,
        50,
      );
      expect(await phaseOf(name)).toBe("Canary");
      const holdScore = heldOnReview!.measurements.find((m) => m.gate === "human_review_score")!;
      console.log(`review gate, 200 scores each: held: ${heldOnReview!.reason}`);
      expect(holdScore.status).toBe("Inconclusive");

      // Many more scores: now the interval for canary - stable lies above -0.02.
      await postScores(name, "stable", scores(3800, 0.8, 0.1, 3));
      await postScores(name, "canary", scores(3800, 0.795, 0.1, 4));
      const run = await drive(name, { done: (p) => TERMINAL.includes(p), headersFor: (i) => headersFor(100_000 + i), batch: 100, timeoutMs: 60_000 });
      const history = await decisions(name);
      // An advance is filed under the stage it passed; from/to say where it went.
      const advanced = history.find((d) => d.kind === "advanced" && d.from === "Canary" && d.to === "Baking");
      const m = advanced?.measurements.find((x) => x.gate === "human_review_score");
      console.log(
        `review gate, 4000 scores each: ${run.phase} after ${run.sent} more requests; ` +
          `score canary ${m?.candidateValue?.toFixed(4)} vs stable ${m?.stableValue?.toFixed(4)}, ` +
          `interval for canary - stable [${m?.intervals.comparison?.lower?.toFixed(4)}, ${m?.intervals.comparison?.upper?.toFixed(4)}]\n` +
          `  decisions: ${history.map((d) => `${d.kind}${d.stage ? `@${d.stage.name}` : ""}`).join(", ")}\n  advanced: ${advanced?.reason}`,
      );
      expect(run.phase).toBe("Succeeded");
      expect(advanced).toBeDefined();
      expect(m!.status).toBe("Passed");
      expect(m!.reason).toMatch(/^human review score 0\.\d+ vs 0\.\d+: within at least -0\.02 vs stable/);
      expect(m!.candidateValue!).toBeCloseTo(0.795, 2);
      expect(m!.stableValue!).toBeCloseTo(0.8, 2);
      expect(m!.sampleSizes).toEqual({ candidate: 4000, stable: 4000 });
      expect(m!.intervals.comparison!.lower!).toBeGreaterThanOrEqual(-0.02);
      expect(history.some((d) => d.kind === "rolledBack")).toBe(false);
    });

    it("rolls back a canary whose review scores are clearly worse, naming the gate and both scores", { timeout: 60_000 }, async () => {
      const name = "review-bad";
      await create(spec(name));
      await postScores(name, "stable", scores(200, 0.8, 0.1, 5));
      await postScores(name, "canary", scores(200, 0.6, 0.1, 6));
      // The gate needs no traffic: the next tick judges the posted scores.
      await waitFor(`${name}: the engine's verdict`, async () => TERMINAL.includes(await phaseOf(name)), 10_000, 50);
      const history = await decisions(name);
      const last = history[history.length - 1];
      const m = last.measurements.find((x) => x.gate === "human_review_score")!;
      console.log(
        `bad review scores: ${await phaseOf(name)} after posting; score canary ${m?.candidateValue?.toFixed(4)} vs stable ${m?.stableValue?.toFixed(4)}, ` +
          `interval for canary - stable [${m?.intervals.comparison?.lower?.toFixed(4)}, ${m?.intervals.comparison?.upper?.toFixed(4)}]\n  decision: ${last.kind}: ${last.reason}`,
      );
      expect(await phaseOf(name)).toBe("RolledBack");
      expect(last.kind).toBe("rolledBack");
      expect(last.reason).toMatch(/^canary worse overall: human review score 0\.\d+ vs 0\.\d+ \(at least -0\.02 vs stable;/);
      expect(m.status).toBe("Failed");
      expect(m.threshold).toEqual({ kind: "minDelta", value: -0.02 });
      expect(m.candidateValue!).toBeCloseTo(0.6, 1);
      expect(m.stableValue!).toBeCloseTo(0.8, 1);
      expect(m.intervals.comparison!.upper!).toBeLessThan(-0.02);
      await allOnStable(name);
    });
  });
});
