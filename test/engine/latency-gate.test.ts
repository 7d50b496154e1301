// Latency gates: the absolute tolerance of a regression limit (judge.ts), its validation (gate-parse.ts), and
// the baseline a shadow stage compares with (the primary timed like the mirrored calls, gates.ts).
import { describe, expect, it } from "vitest";
import { errorBudget } from "../../controller/src/engine/budget.ts";
import type { HistogramSnapshot, SliceSnapshot } from "../../controller/src/engine/counts.ts";
import { DEFAULT_LATENCY_TOLERANCE_MS, type QuantileGate } from "../../controller/src/engine/gate-spec.ts";
import { evaluateGates, type GateEvaluationInput } from "../../controller/src/engine/gates.ts";
import { describeLimit, judgeLimits } from "../../controller/src/engine/judge.ts";
import { MeasurementStatus } from "../../controller/src/engine/measurement.ts";
import { parseEngineSpec } from "../../controller/src/engine/spec.ts";
import { ENVOY_LATENCY_BOUNDS } from "./sim.ts";
import { specFrom } from "./drive.ts";

const { Passed, Failed, Inconclusive } = MeasurementStatus;

describe("judgeLimits: a ratio limit with an absolute tolerance", () => {
  const limit = { maxRatio: 1.1 };
  // Intervals in ms: a sub-millisecond stable, a candidate 0.4 ms (50%) slower, both shown tightly.
  const stable = { lower: 0.74, upper: 0.76, passLower: 0.74 };
  const slower = { lower: 1.12, upper: 1.14 };

  it("without a tolerance, a 0.4 ms regression at sub-millisecond latency fails", () => {
    expect(judgeLimits(limit, slower, stable).status).toBe(Failed);
  });

  it("a regression shown below the tolerance passes, whatever the ratio", () => {
    const verdict = judgeLimits(limit, slower, stable, 2);
    expect(verdict.status).toBe(Passed);
    expect(verdict.decisive).toEqual({ kind: "maxRatio", value: 1.1 });
    // The comparison recorded is still the ratio interval: about 1.5.
    expect(verdict.comparison!.lower).toBeGreaterThan(1.4);
  });

  it("fails only when the candidate is shown both past the ratio and more than the tolerance above stable", () => {
    // 20 ms slower than a 1 ms stable: past both.
    expect(judgeLimits(limit, { lower: 20.5, upper: 22 }, { lower: 0.9, upper: 1.1, passLower: 0.9 }, 2).status).toBe(Failed);
    // 30% slower at 100 ms: past the ratio, and 30 ms is far past a 2 ms tolerance.
    expect(judgeLimits(limit, { lower: 129, upper: 131 }, { lower: 99, upper: 101, passLower: 99 }, 2).status).toBe(Failed);
    // Past the ratio, but the regression may still be within the tolerance (interval of candidate - stable: [1.5, 2.5]): not Failed.
    expect(judgeLimits(limit, { lower: 3.5, upper: 4 }, { lower: 1.5, upper: 2, passLower: 1.5 }, 2).status).toBe(Inconclusive);
  });

  it("passes when the regression is shown within either the ratio or the tolerance, else stays inconclusive", () => {
    // Ratio shown within 1.1 (tolerance not needed).
    expect(judgeLimits(limit, { lower: 99, upper: 105 }, { lower: 99, upper: 101, passLower: 99 }, 2).status).toBe(Passed);
    // Wide intervals: neither shown.
    expect(judgeLimits(limit, { lower: 0.5, upper: 4 }, { lower: 0.5, upper: 1, passLower: 0.5 }, 2).status).toBe(Inconclusive);
    // The Pass side uses stable's bucket-resolution lower end, as the ratio does.
    expect(judgeLimits(limit, { lower: 1, upper: 3 }, { lower: 1.1, upper: 1.2, passLower: 0.9 }, 2).status).toBe(Inconclusive);
    expect(judgeLimits(limit, { lower: 1, upper: 3 }, { lower: 1.1, upper: 1.2, passLower: 1 }, 2).status).toBe(Passed);
  });

  it("does not touch absolute limits: a maximum is a maximum", () => {
    expect(judgeLimits({ maximum: 1 }, { lower: 1.5, upper: 2 }, null, 2).status).toBe(Failed);
  });

  it("the limit's text names the tolerance", () => {
    expect(describeLimit("maxRatio", 1.1, "ms", 2)).toBe("at most 10% or 2 ms above stable");
    expect(describeLimit("maxRatio", 1.1, "ms")).toBe("at most 10% above stable");
  });
});

describe("latency gate specs: tolerance_ms", () => {
  const base = { owner: "team-fraud", rollbackCondition: "p95 up 10%", stages: ["shadow", 5, 100] };
  const parse = (gate: Record<string, unknown>) =>
    parseEngineSpec({ ...base, promotion_gates: { latency_p95_ms: gate } }, { hasOutputSchema: false, hasShadow: true });
  const latencyGate = (gate: Record<string, unknown>) => {
    const parsed = parse(gate);
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    return parsed.spec.gates[0] as QuantileGate;
  };

  it("defaults to 2 ms and takes another value or 0, in the stat's unit", () => {
    expect(DEFAULT_LATENCY_TOLERANCE_MS).toBe(2);
    expect(latencyGate({ maximum_regression_percent: 10 }).tolerance).toBe(2000);
    expect(latencyGate({ maximum_regression_percent: 10, tolerance_ms: 0.5 }).tolerance).toBe(500);
    expect(latencyGate({ maximum_regression_percent: 10, tolerance_ms: 0 }).tolerance).toBe(0);
  });

  it.each([
    ["negative", { maximum_regression_percent: 10, tolerance_ms: -1 }, /must be at least 0/],
    ["not a number", { maximum_regression_percent: 10, tolerance_ms: "2ms" }, /must be a number/],
    ["without a regression limit", { maximum: 50, tolerance_ms: 2 }, /only applies with maximum_regression_percent/],
  ])("refuses a tolerance %s, with its pointer", (_what, gate, reason) => {
    const parsed = parse(gate);
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.errors).toContainEqual({ path: "/promotion_gates/latency_p95_ms/tolerance_ms", reason: expect.stringMatching(reason) });
  });
});

describe("the baseline of a latency gate", () => {
  /** n observations spread evenly over the Envoy buckets between `fromUs` and `toUs`. */
  function latencies(n: number, fromUs: number, toUs: number): HistogramSnapshot {
    const bounds = ENVOY_LATENCY_BOUNDS.filter((b) => b >= fromUs && b <= toUs);
    const cumulative = bounds.map((_, i) => Math.round((n * (i + 1)) / bounds.length));
    return { bounds, cumulative, total: n, sum: n * ((fromUs + toUs) / 2) };
  }
  const slice = (histograms: Record<string, HistogramSnapshot>): SliceSnapshot => ({ counters: {}, histograms });
  const gates = { latency_p95_ms: { maximum_regression_percent: 10, tolerance_ms: 0 } };

  function input(stage: "shadow" | "canary", window: GateEvaluationInput["window"]): GateEvaluationInput {
    const spec = specFrom({ stages: ["shadow", 5, 100], promotion_gates: gates }, { hasOutputSchema: false });
    return {
      gates: spec.gates,
      stageKind: stage,
      candidate: stage === "shadow" ? "shadow" : "canary",
      budget: errorBudget(spec, []),
      window,
      windowError: null,
      accumulated: null,
      slices: ["overall"],
      promql: undefined,
      external: {},
    };
  }

  // Stable's own latency_us (headers -> headers) is fast; the mirrored calls and the primary timed like them are
  // both slower, by the same amount: the way each is measured, not the models, differs.
  const stableOwn = latencies(20000, 500, 700);
  const timedLikeTheCalls = latencies(20000, 900, 1100);

  it("in a shadow stage is the primary timed like the mirrored calls, from the shadow's own slice", () => {
    const window = {
      slices: {
        overall: { stable: slice({ latency_us: stableOwn }), shadow: slice({ latency_us: timedLikeTheCalls, primary_latency_us: timedLikeTheCalls }) },
      },
    };
    const [m] = evaluateGates(input("shadow", window));
    expect(m.status).toBe(Passed);
    expect(m.candidate).toBe("shadow");
    expect(m.sampleSizes).toEqual({ candidate: 20000, stable: 20000 });
    expect(m.stableValue).toBeCloseTo(m.candidateValue!, 6);
    expect(m.reason).toMatch(/^p95 latency of the mirrored requests [\d.]+ ms vs [\d.]+ ms: within at most 10% above stable/);
    // Against stable's own latency_us the same shadow would be a 50% regression.
    const unpaired = { slices: { overall: { stable: slice({ latency_us: stableOwn }), canary: slice({ latency_us: timedLikeTheCalls }) } } };
    expect(evaluateGates(input("canary", unpaired))[0].status).toBe(Failed);
  });

  it("in a shadow stage without the paired histogram is inconclusive and says why", () => {
    const window = { slices: { overall: { stable: slice({ latency_us: stableOwn }), shadow: slice({ latency_us: timedLikeTheCalls }) } } };
    const [m] = evaluateGates(input("shadow", window));
    expect(m.status).toBe(Inconclusive);
    expect(m.reason).toBe("p95 latency of the mirrored requests: no primary latency paired with the mirrored requests (primary_latency_us) in this window yet");
  });

  it("in a canary stage is stable's latency_us, whatever the shadow slice holds", () => {
    const window = {
      slices: {
        overall: {
          stable: slice({ latency_us: timedLikeTheCalls }),
          canary: slice({ latency_us: timedLikeTheCalls }),
          shadow: slice({ primary_latency_us: stableOwn }),
        },
      },
    };
    const [m] = evaluateGates(input("canary", window));
    expect(m.status).toBe(Passed);
    expect(m.reason).toMatch(/^p95 latency [\d.]+ ms vs [\d.]+ ms: within/);
  });
});
