// A canary whose measurements break a gate never moves to a bigger stage (issue 19): the estimate rule and the
// stage bound (controller/src/engine/stage-bound.ts), on issue 10's small service at the default settings.
// Outcomes, order and decision texts are asserted, never durations (exposure figures are in bench/decisions.ts).
import { describe, expect, it } from "vitest";
import { MeasurementStatus } from "../../controller/src/engine/measurement.ts";
import { Phase } from "../../controller/src/engine/phase.ts";
import { boundMultiple, estimateBeyond, widenLimits } from "../../controller/src/engine/stage-bound.ts";
import { drive, specFrom, start } from "./drive.ts";
import { ISSUE_SETUP } from "./false-alarm-runs.ts";
import { GOOD, PoissonTrafficSim, type Behavior } from "./sim.ts";

const TIERS = [{ dimension: "tenant_tier", values: ["free", "pro", "enterprise"] }];
const PER_TICK = ISSUE_SETUP.requestsPerSecond * ISSUE_SETUP.tickSeconds;
const spec = (extra: Record<string, unknown> = {}) =>
  specFrom({ promotion_gates: ISSUE_SETUP.gates, stages: ISSUE_SETUP.stages, ...extra }, { hasShadow: false });

function run(canary: Partial<Behavior>, seed: number, extra: Record<string, unknown> = {}, maxTicks = 720) {
  const sim = new PoissonTrafficSim({
    seed,
    segment: ISSUE_SETUP.segment,
    behavior: (variant) => (variant === "canary" ? { ...GOOD, ...canary } : GOOD),
  });
  return drive(start(spec(extra), TIERS), { sim, requestsPerTick: PER_TICK, tickSeconds: ISSUE_SETUP.tickSeconds, maxTicks });
}

describe("the stage bound", () => {
  it("tightens from harmMultiple times the allowance toward the declared limit as the next stage's share grows", () => {
    const s = spec();
    // Next stages 25%, 50%, 100%: 1 + (1 - share) x (4 - 1).
    expect([0, 1, 2, 3].map((i) => boundMultiple(s, i, false))).toEqual([3.25, 2.5, 1, 1]);
    // Segment values are held to harmMultiple times the allowance at every stage.
    expect(boundMultiple(s, 2, true)).toBe(4);
    expect(boundMultiple(spec({ statistics: { harmMultiple: 2 } }), 0, false)).toBe(1.75);
  });

  it("widens every limit kind by its allowance: rates from 0 or 1, ratios from 1, deltas from 0, other absolutes from stable", () => {
    expect(widenLimits({ maximum: 0.01 }, 3.25, 0.003, "ratio").limits.maximum).toBeCloseTo(0.0325, 10);
    expect(widenLimits({ minimum: 0.995 }, 3.25, 0.9995, "ratio").limits.minimum).toBeCloseTo(0.98375, 10);
    const latency = widenLimits({ maxRatio: 1.1 }, 2.5, null, "ms", 2);
    expect(latency.limits.maxRatio).toBeCloseTo(1.25, 10);
    expect(latency.tolerance).toBe(5);
    expect(widenLimits({ maxDelta: 0.01, minDelta: -0.02 }, 2, 0.1, "ratio").limits).toEqual({ maxDelta: 0.02, minDelta: -0.04 });
    // A 300 ms maximum with stable at 100 ms: twice the allowance is 500 ms.
    expect(widenLimits({ maximum: 300 }, 2, 100, "ms").limits.maximum).toBe(500);
    // A mean's minimum with stable below it leaves nothing to scale: only the estimate rule applies.
    expect(widenLimits({ minimum: 0.8 }, 2, 0.7, "").limits).toEqual({});
    expect(widenLimits({ maximum: 0.4 }, 1, 0, "ratio").limits.maximum).toBe(0.4);
  });

  it("an estimate is beyond a limit on its wrong side, for every limit kind; a latency ratio only past the tolerance too", () => {
    expect(estimateBeyond({ maximum: 0.01 }, 0.012, null)).toEqual({ kind: "maximum", value: 0.01 });
    expect(estimateBeyond({ maximum: 0.01 }, 0.009, null)).toBeNull();
    expect(estimateBeyond({ minimum: 0.995 }, 0.99, 0.9995)).toEqual({ kind: "minimum", value: 0.995 });
    expect(estimateBeyond({ maxDelta: 0.01 }, 0.05, 0.03)).toEqual({ kind: "maxDelta", value: 0.01 });
    expect(estimateBeyond({ minDelta: -0.02 }, 3.9, 4.0)).toEqual({ kind: "minDelta", value: -0.02 });
    expect(estimateBeyond({ maxRatio: 1.1 }, 34, 27.2, 2)).toEqual({ kind: "maxRatio", value: 1.1 });
    // 26% slower but only 1.3 ms: within "at most 10% or 2 ms above stable".
    expect(estimateBeyond({ maxRatio: 1.1 }, 6.3, 5, 2)).toBeNull();
    expect(estimateBeyond({ maxRatio: 1.1 }, null, 5)).toBeNull();
  });
});

describe("a canary past its limit never leaves its first stage", () => {
  it("every answer 25% slower (the issue's case): held at 5% saying the estimate and the limit, then rolled back there", () => {
    let held = 0;
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const r = run({ latencyMedianMs: GOOD.latencyMedianMs * 1.25 }, seed);
      expect(
        r.decisions.filter((d) => d.kind === "advanced"),
        `seed ${seed}`,
      ).toEqual([]);
      expect(r.state.phase, `seed ${seed}`).toBe(Phase.RolledBack);
      expect(r.state.weights.canaryPercent).toBe(0);
      const rollback = r.decisions.at(-1)!;
      expect(rollback.stage?.name).toBe("5%");
      expect(rollback.reason).toMatch(/p95 latency/);
      const beyond = r.decisions.filter((d) => d.kind === "held" && /measured, limit at most 10% or 2 ms above stable: holding until/.test(d.reason));
      held += beyond.length;
      for (const d of beyond) expect(d.reason).toMatch(/latency_p95_ms: [\d.]+% above stable measured, limit at most 10% or 2 ms above stable: holding until/);
    }
    // The hold is said in words in most runs (in the others the interval showed the regression before the estimate held alone).
    expect(held).toBeGreaterThan(0);
  });

  it("the forecast says the stage holds until the interval decides, instead of projecting the later stages as the plan", () => {
    const r = run({ latencyMedianMs: GOOD.latencyMedianMs * 1.25 }, 2);
    const holding = r.evaluations.filter((e) => e.measurements.some((m) => m.gate === "latency_p95_ms" && m.segment === null && m.beyondLimit));
    expect(holding.length).toBeGreaterThan(0);
    for (const e of holding) {
      const latency = e.measurements.find((m) => m.gate === "latency_p95_ms" && m.segment === null)!;
      if (latency.status !== MeasurementStatus.Inconclusive) continue;
      expect(e.forecast!.warnings).toContainEqual(
        expect.stringMatching(
          /^latency_p95_ms overall is past its limit at the estimate: the stage holds until its interval decides .*a rollback if the estimate stays/,
        ),
      );
      // The hold's time is the time to the interval's verdict at the estimate, not to a sample floor.
      const hold = e.eta!.holds.find((h) => h.gate === "latency_p95_ms")!;
      expect(hold.needed).toBe(latency.needed!.pass);
    }
  });

  it("an error rate past its maximum but not yet shown past it holds the first stage instead of advancing", () => {
    // 1.5% errors against a 1% maximum: a third of the way to the 3.25% bound, so without the estimate rule the
    // 5% stage would pass once 3.25% was ruled out. With it, the rollout stays at 5% until the interval decides.
    for (const seed of [11, 12, 13]) {
      const r = run({ errorRate: 0.015 }, seed, {}, 240);
      const advanced = r.decisions.filter((d) => d.kind === "advanced");
      expect(advanced, `seed ${seed}: ${advanced.map((d) => d.reason).join(" | ")}`).toEqual([]);
      const last = r.evaluations.at(-1)!;
      const error = last.measurements.find((m) => m.gate === "error_rate" && m.segment === null)!;
      if (r.state.phase !== Phase.RolledBack) {
        expect(error.beyondLimit).toEqual({ kind: "maximum", value: 0.01 });
        expect(last.blocking.join("; ")).toMatch(/error_rate: (no 3\.25% or more; )?[\d.]+% measured, limit maximum 1%: holding until/);
      }
    }
  });

  it("every answer 25% slower for one tier (30% of the traffic): its estimate holds the first stage once it has 100 requests", () => {
    for (const seed of [21, 22, 23, 24, 25]) {
      const sim = new PoissonTrafficSim({
        seed,
        segment: ISSUE_SETUP.segment,
        behavior: (variant, value) => (variant === "canary" && value === "pro" ? { ...GOOD, latencyMedianMs: GOOD.latencyMedianMs * 1.25 } : GOOD),
      });
      const r = drive(start(spec(), TIERS), { sim, requestsPerTick: PER_TICK, tickSeconds: ISSUE_SETUP.tickSeconds, maxTicks: 720 });
      expect(
        r.decisions.filter((d) => d.kind === "advanced").map((d) => d.reason),
        `seed ${seed}`,
      ).toEqual([]);
      expect(r.state.phase).toBe(Phase.RolledBack);
      const segmentHolds = r.decisions.filter((d) => d.kind === "held" && /latency_p95_ms tenant_tier=pro: [\d.]+% above stable measured/.test(d.reason));
      expect(segmentHolds.length, `seed ${seed}`).toBeGreaterThan(0);
    }
  });

  it("a good canary's advances say which harm was ruled out, with the estimate and the limit", () => {
    const r = run({}, 3);
    expect(r.state.phase).toBe(Phase.Succeeded);
    const first = r.decisions.find((d) => d.kind === "advanced")!;
    expect(first.reason).not.toMatch(/no harm seen/);
    expect(first.reason).toMatch(/schema_validation_pass_rate overall \(no 98\.4% or less; [\d.]+% measured, limit minimum 99\.5%\)/);
    for (const m of first.measurements.filter((x) => x.segment === null && x.requirement === "detect")) {
      expect(m.status).not.toBe(MeasurementStatus.Failed);
      expect(m.beyondLimit ?? null).toBeNull();
      expect(m.bound).toMatchObject({ multiple: 3.25, reached: true });
    }
  });
});
