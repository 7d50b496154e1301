// One quantile for one window. The same latency counts reach an operator three ways: /v1/rollouts/{name}/stats
// (metrics/summary.ts over stats/baseline.ts's window), the gates (engine/gates.ts, the value a latency gate
// judges and the view shows) and the decisions' window summaries (engine/transitions.ts, read by the report). Each
// must give the same p50 and p95, to the last bit, for any histogram a provider can return: a second quantile
// implementation anywhere on these paths makes this test fail.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { errorBudget } from "../../controller/src/engine/budget.ts";
import { toSnapshot } from "../../controller/src/engine/counts.ts";
import { evaluateGates } from "../../controller/src/engine/gates.ts";
import { initialState } from "../../controller/src/engine/state.ts";
import { summarizeWindow } from "../../controller/src/engine/transitions.ts";
import { emptyRolloutCounts, type HistogramBucket, type RolloutCounts, type VariantCounts } from "../../controller/src/metrics/provider.ts";
import { summarizeVariant } from "../../controller/src/metrics/summary.ts";
import { countsSince } from "../../controller/src/stats/baseline.ts";
import { countsFromSnapshot } from "../../controller/src/stats/snapshot-counts.ts";
import { specFrom } from "../engine/drive.ts";
import { ENVOY_LATENCY_BOUNDS } from "../engine/sim.ts";

/** Per finite bound (and +Inf last) how many observations fell in that bucket, then and now. */
interface VariantDraw {
  bounds: number[];
  now: number[];
  before: number[];
}

const variantDraw: fc.Arbitrary<VariantDraw> = fc
  .tuple(
    // Some of Envoy's bounds (a provider may leave out empty buckets), or arbitrary ones.
    fc.oneof(
      fc.subarray([...ENVOY_LATENCY_BOUNDS], { minLength: 1 }),
      fc.uniqueArray(fc.double({ min: 0.5, max: 1e7, noNaN: true }), { minLength: 1, maxLength: 12 }).map((b) => b.sort((x, y) => x - y)),
    ),
    fc.integer({ min: 0, max: 2 ** 31 }),
  )
  .chain(([bounds, seed]) =>
    fc.tuple(
      fc.constant(bounds),
      fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 100_000 })), {
        minLength: bounds.length + 1,
        maxLength: bounds.length + 1,
      }),
      fc.constant(seed),
    ),
  )
  .chain(([bounds, now, seed]) =>
    fc.constant({
      bounds,
      now,
      // What was counted before the window: a part of each bucket (deterministic from the seed).
      before: now.map((n, i) => Math.floor((n * ((seed >> (i % 16)) % 5)) / 4)),
    }),
  );

function variantCounts(bounds: number[], inBucket: number[]): VariantCounts {
  let running = 0;
  const bucketsUs: HistogramBucket[] = [...bounds, Infinity].map((upperBound, i) => ({ upperBound, cumulativeCount: (running += inBucket[i]) }));
  const counts = emptyRolloutCounts().stable;
  counts.requests = running;
  counts.responses["2xx"] = running;
  counts.latency = { bucketsUs, sumUs: running * 1000, count: running };
  return counts;
}

function readings(stable: VariantDraw, canary: VariantDraw): { now: RolloutCounts; before: RolloutCounts } {
  return {
    now: { stable: variantCounts(stable.bounds, stable.now), canary: variantCounts(canary.bounds, canary.now), segments: {} },
    before: { stable: variantCounts(stable.bounds, stable.before), canary: variantCounts(canary.bounds, canary.before), segments: {} },
  };
}

describe("one quantile: /stats, the gates and the decision windows agree", () => {
  const spec = specFrom(
    { stages: [5, 100], promotion_gates: { latency_p50_ms: { maximum: 1e9 }, latency_p95_ms: { maximum: 1e9 } } },
    { hasOutputSchema: false, hasShadow: false },
  );
  const state = initialState({ rollout: "fraud-model", spec, now: 0 });

  it("gives the same p50 and p95 of stable and canary over the same window", () => {
    fc.assert(
      fc.property(variantDraw, variantDraw, (stableDraw, canaryDraw) => {
        const { now, before } = readings(stableDraw, canaryDraw);
        // /stats?window=stage: current minus the window's baseline, summarized for people (before rounding).
        const window = countsSince(toSnapshot(now), toSnapshot(before));
        expect(window.envoyRestarted).toBe(false);
        const counts = countsFromSnapshot(window.counts);
        const stats = { stable: summarizeVariant(counts.stable).latencyMs, canary: summarizeVariant(counts.canary).latencyMs };

        // The gates, over the same window.
        const measured = evaluateGates({
          gates: spec.gates,
          stageKind: "canary",
          candidate: "canary",
          budget: errorBudget(spec, []),
          window: window.counts,
          windowError: null,
          accumulated: null,
          slices: ["overall"],
          promql: undefined,
          external: {},
        });
        const gate = (name: string) => measured.find((m) => m.gate === name && m.segment === null)!;
        expect({ stable: gate("latency_p50_ms").stableValue, canary: gate("latency_p50_ms").candidateValue }).toEqual({
          stable: stats.stable.p50,
          canary: stats.canary.p50,
        });
        expect({ stable: gate("latency_p95_ms").stableValue, canary: gate("latency_p95_ms").candidateValue }).toEqual({
          stable: stats.stable.p95,
          canary: stats.canary.p95,
        });

        // The window summary a decision records (and the report shows).
        const [overall] = summarizeWindow(state, window.counts, 1)!.slices;
        expect({ stable: overall.stable.p95Ms, canary: overall.candidate.p95Ms }).toEqual({ stable: stats.stable.p95, canary: stats.canary.p95 });
      }),
      { seed: 11, numRuns: 400 },
    );
  });

  it("the shared cases: interpolation, an empty bucket, a rank past every finite bound, no observations", () => {
    const p95 = (bounds: number[], inBucket: number[]) =>
      summarizeVariant(countsFromSnapshot(toSnapshot({ ...emptyRolloutCounts(), canary: variantCounts(bounds, inBucket) })).canary).latencyMs.p95;
    // 40 observations: 10 <= 100 us, 20 in (100, 200], 10 in (200, 500]: rank 38 -> 200 + 300 * 8/10 us.
    expect(p95([100, 200, 500], [10, 20, 10, 0])).toBeCloseTo(0.44, 12);
    // 9 of 10 at or below 200 us and nothing in (200, 500]: rank 9.5 is in +Inf -> the highest finite bound.
    expect(p95([100, 200, 500], [5, 4, 0, 1])).toBe(0.5);
    expect(p95([100, 200], [0, 0, 0])).toBeNull();
  });
});
