// Samples needed (power.ts), the false-alarm budget (budget.ts) and what each stage asks of a gate (requirements.ts).
import { describe, expect, it } from "vitest";
import { errorBudget, testAlpha } from "../../controller/src/engine/budget.ts";
import { binomialSamplesNeeded, harmOf, proportionNeeds, quantileNeeds } from "../../controller/src/engine/power.ts";
import { proofStageOf, requirementAt } from "../../controller/src/engine/requirements.ts";
import { logTiltMixture } from "../../controller/src/engine/sequences.ts";
import { SEED_GATES, specFrom } from "./drive.ts";
import { ENVOY_LATENCY_BOUNDS } from "./sim.ts";

describe("binomialSamplesNeeded", () => {
  it.each([
    [0.05, 0.01, "above", 0.005],
    [0.003, 0.01, "below", 0.005],
    [0.0205, 0.005, "above", 0.0083],
    [0.4, 0.01, "above", 0.002],
    [0.9, 0.95, "below", 0.001],
  ] as const)("is the first n at which rate %f against %f (%s, alpha %f) reaches 1/alpha with expected counts", (rate, p0, side, alpha) => {
    const n = binomialSamplesNeeded(rate, p0, side, alpha);
    const edge = Math.log(1 / alpha);
    expect(Number.isFinite(n)).toBe(true);
    expect(logTiltMixture(rate * n, n, p0, side)).toBeGreaterThanOrEqual(edge - 1e-9);
    expect(logTiltMixture(rate * (n - 1), n - 1, p0, side)).toBeLessThan(edge);
  });

  it("is Infinity on the wrong side of p0, and grows as the rate nears p0 or alpha shrinks", () => {
    expect(binomialSamplesNeeded(0.005, 0.01, "above", 0.01)).toBe(Infinity);
    expect(binomialSamplesNeeded(0.02, 0.01, "above", 0.01)).toBeGreaterThan(binomialSamplesNeeded(0.04, 0.01, "above", 0.01));
    expect(binomialSamplesNeeded(0.04, 0.01, "above", 0.0001)).toBeGreaterThan(binomialSamplesNeeded(0.04, 0.01, "above", 0.01));
  });
});

describe("harm and needs", () => {
  it("harm is harmMultiple times the allowance: of a rate maximum from zero, of a rate minimum from one, of a ratio from 1", () => {
    expect(harmOf("maximum", 0.01, 0.004, 4, "ratio")).toBeCloseTo(0.04, 12);
    expect(harmOf("minimum", 0.995, 0.9995, 4, "ratio")).toBeCloseTo(0.98, 12);
    expect(harmOf("maxRatio", 1.1, null, 4, "ms")).toBeCloseTo(1.4, 12);
    expect(harmOf("maxDelta", 0.002, 0.003, 4, "ratio")).toBeCloseTo(0.011, 12);
    expect(harmOf("maxDelta", 0.002, null, 4, "ratio")).toBeNull();
    expect(harmOf("maximum", 200, 100, 4, "ms")).toBe(500);
  });

  it("proportion needs: to pass at the expected rate, to detect the harm; relative limits need more than absolute ones", () => {
    const absolute = proportionNeeds({ limits: { maximum: 0.01 }, expected: 0.003, stable: 0.003, alpha: 0.005, harmMultiple: 4, stableRatio: 19 });
    expect(absolute.harm).toBeCloseTo(0.04, 12);
    expect(absolute.pass).toBe(binomialSamplesNeeded(0.003, 0.01, "below", 0.005));
    expect(absolute.detect).toBe(binomialSamplesNeeded(0.04, 0.01, "above", 0.005));
    // A candidate expected past its maximum concludes too, as a failure.
    expect(proportionNeeds({ limits: { maximum: 0.01 }, expected: 0.03, stable: 0.003, alpha: 0.005, harmMultiple: 4, stableRatio: 19 }).pass).toBe(
      binomialSamplesNeeded(0.03, 0.01, "above", 0.005),
    );
    const relative = proportionNeeds({ limits: { maxDelta: 0.007 }, expected: 0.003, stable: 0.003, alpha: 0.005, harmMultiple: 4, stableRatio: 19 });
    expect(relative.pass!).toBeGreaterThan(absolute.pass!);
    // With less stable traffic per candidate sample (a later stage), the candidate needs more.
    const halfHalf = proportionNeeds({ limits: { maxDelta: 0.007 }, expected: 0.003, stable: 0.003, alpha: 0.005, harmMultiple: 4, stableRatio: 1 });
    expect(halfHalf.pass!).toBeGreaterThan(relative.pass!);
    expect(
      proportionNeeds({ limits: { maximum: 0.01 }, expected: 0.003, stable: 0.003, alpha: 0.005, harmMultiple: 4, stableRatio: 19, detectOnly: true }).pass,
    ).toBeNull();
  });

  it("quantile needs: a 40% slower canary is detected long before an identical one can pass", () => {
    // Stable: lognormal, median 40 ms, sigma 0.25, as expected counts over Envoy's buckets.
    const total = 1e6;
    const cdf = (x: number) => 0.5 * erfc(-Math.log(x / 40_000) / 0.25 / Math.SQRT2);
    const stable = { bounds: [...ENVOY_LATENCY_BOUNDS], cumulative: ENVOY_LATENCY_BOUNDS.map((b) => total * cdf(b)), total };
    const q95 = 40_000 * Math.exp(0.25 * 1.6448536);
    const needs = quantileNeeds({
      limits: { maxRatio: 1.1 },
      q: 0.95,
      stable,
      stableQuantile: q95,
      observedRatio: 1,
      alpha: 0.005,
      harmMultiple: 4,
      stableRatio: 19,
    });
    expect(needs.harm).toBeCloseTo(1.4, 12);
    expect(needs.detect!).toBeGreaterThan(10);
    expect(needs.detect!).toBeLessThan(300);
    expect(needs.pass!).toBeGreaterThan(5 * needs.detect!);
    expect(needs.pass!).toBeLessThan(20_000);
  });

  it("quantile needs with tolerance_ms: at a p95 of a few milliseconds the harm is measured from the tolerance, not from a percent it hides", () => {
    // Stable: lognormal, median 3 ms, sigma 0.3 (p95 about 4.9 ms): 10% is 0.5 ms, under the default 2 ms tolerance.
    const total = 1e6;
    const cdf = (x: number) => 0.5 * erfc(-Math.log(x / 3_000) / 0.3 / Math.SQRT2);
    const stable = { bounds: [...ENVOY_LATENCY_BOUNDS], cumulative: ENVOY_LATENCY_BOUNDS.map((b) => total * cdf(b)), total };
    const q95 = 3_000 * Math.exp(0.3 * 1.6448536);
    const input = { limits: { maxRatio: 1.1 }, q: 0.95, stable, stableQuantile: q95, observedRatio: 1, alpha: 0.005, harmMultiple: 4, stableRatio: 1 };
    const without = quantileNeeds(input);
    const withTolerance = quantileNeeds({ ...input, tolerance: 2_000 });
    // The limit in effect is 1 + 2 / 4.9 ms, and harm four times that allowance: p95 + 8 ms.
    expect(withTolerance.harm).toBeCloseTo(1 + (4 * 2_000) / q95, 9);
    // A +40% candidate (+1.96 ms) can never fail a 2 ms tolerance, so a floor sized for it waits for nothing.
    expect((without.harm! - 1) * q95).toBeLessThan(2_000);
    expect(withTolerance.detect!).toBeLessThan(without.detect! / 3);
    expect(withTolerance.detect!).toBeLessThan(500);
    // Far above the tolerance (a 50 ms p95) it changes nothing.
    const slow = { ...input, stable: { ...stable, bounds: stable.bounds.map((b) => b * 10) }, stableQuantile: q95 * 10 };
    expect(quantileNeeds({ ...slow, tolerance: 2_000 })).toEqual(quantileNeeds(slow));
  });
});

describe("the false-alarm budget", () => {
  const tiers = [{ values: ["free", "pro", "enterprise", "other"] }];

  it("shares falseAlarmRate by gate, then test group, then slice (half to all traffic), and never exceeds it", () => {
    const spec = specFrom({ stages: ["shadow", 5, 25, 50, 100], promotion_gates: SEED_GATES });
    const budget = errorBudget(spec, tiers);
    // Statistical gates: latency, error rate, schema, review score (PromQL takes none).
    expect(budget.perGate).toBeCloseTo(0.05 / 4, 12);
    // Proportions with absolute limits: one group per candidate (shadow, canary); latency: one per stage but 100%;
    // the review score: canary only (it is judged in canary and bake stages).
    expect(budget.groups).toEqual({ latency_p95_ms: 4, error_rate: 2, schema_validation_pass_rate: 2, human_review_score: 1 });
    let total = 0;
    for (const [gate, groups] of Object.entries(budget.groups)) {
      if (gate === "human_review_score") {
        // No segments: its test gets its whole group.
        total += groups * testAlpha(budget, gate, false);
        expect(testAlpha(budget, gate, false)).toBeCloseTo(budget.perGate, 12);
        continue;
      }
      total += groups * (testAlpha(budget, gate, false) + 4 * testAlpha(budget, gate, true));
      expect(testAlpha(budget, gate, false)).toBeCloseTo(4 * testAlpha(budget, gate, true), 12);
    }
    // Every share is used, none more.
    expect(total).toBeCloseTo(0.05, 12);
  });

  it("gives all of a group to all traffic without segments", () => {
    const spec = specFrom({ stages: [5, 100], promotion_gates: { error_rate: { maximum: 0.01 } } }, { hasOutputSchema: false, hasShadow: false });
    expect(testAlpha(errorBudget(spec, []), "error_rate", false)).toBeCloseTo(0.05, 12);
  });
});

describe("what a stage asks", () => {
  const spec = specFrom({ stages: ["shadow", 5, 25, 50, 100], promotion_gates: { ...SEED_GATES, shadow_agreement_rate: { minimum: 0.9 } } });
  const gate = (name: string) => spec.gates.find((g) => g.name === name)!;

  it("each gate must pass at its last stage below 100% (shadow-only gates: the last shadow stage)", () => {
    expect(proofStageOf(spec, gate("error_rate"))).toBe(3);
    expect(proofStageOf(spec, gate("shadow_agreement_rate"))).toBe(0);
  });

  it.each([
    ["error_rate", 1, false, true, "detect"],
    ["error_rate", 1, true, true, "none"],
    ["error_rate", 3, false, true, "pass"],
    ["error_rate", 3, true, true, "detect"],
    ["error_rate", 3, true, false, "none"],
    ["error_rate", 4, false, true, "pass"],
    ["error_rate", 4, true, true, "none"],
    ["human_review_score", 1, false, true, "none"],
    ["human_review_score", 3, false, true, "pass"],
    ["gpu_oom_events", 1, false, true, "pass"],
    ["shadow_agreement_rate", 0, false, true, "pass"],
  ] as const)("%s at stage %i (segment %s, carrying traffic %s): %s", (name, stage, segment, carries, expected) => {
    expect(requirementAt(spec, stage, gate(name), segment, carries)).toBe(expected);
  });
});

/** Complementary error function (Numerical Recipes' erfc, relative error < 1.2e-7). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}
