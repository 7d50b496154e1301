// The shadow's paired primary latency (primary_latency_us, filter/stats.ts) as Envoy prints it: read apart from
// the shadow's own latency_us, carried into the engine's snapshot, and summarized by the stats API.
import { describe, expect, it } from "vitest";
import { toSnapshot } from "../../controller/src/engine/counts.ts";
import { parsePrometheusText } from "../../controller/src/metrics/prometheus-text.ts";
import { rolloutCountsFromSamples } from "../../controller/src/metrics/rollout-counts.ts";
import { summarizeShadow } from "../../controller/src/metrics/summary.ts";

const SHADOW = 'modelroll_rollout="r",modelroll_variant="shadow"';
const SEGMENT = `${SHADOW},modelroll_segment_dimension="tier",modelroll_segment="pro"`;
const TEXT = [
  "# TYPE modelroll_latency_us histogram",
  `modelroll_latency_us_bucket{${SHADOW},le="1000"} 10`,
  `modelroll_latency_us_bucket{${SHADOW},le="2000"} 40`,
  `modelroll_latency_us_bucket{${SHADOW},le="+Inf"} 40`,
  `modelroll_latency_us_sum{${SHADOW}} 50000`,
  `modelroll_latency_us_count{${SHADOW}} 40`,
  "# TYPE modelroll_primary_latency_us histogram",
  `modelroll_primary_latency_us_bucket{${SHADOW},le="1000"} 30`,
  `modelroll_primary_latency_us_bucket{${SHADOW},le="2000"} 40`,
  `modelroll_primary_latency_us_bucket{${SHADOW},le="+Inf"} 40`,
  `modelroll_primary_latency_us_sum{${SHADOW}} 30000`,
  `modelroll_primary_latency_us_count{${SHADOW}} 40`,
  `modelroll_primary_latency_us_bucket{${SEGMENT},le="1000"} 3`,
  `modelroll_primary_latency_us_bucket{${SEGMENT},le="+Inf"} 4`,
  `modelroll_primary_latency_us_sum{${SEGMENT}} 3500`,
  `modelroll_primary_latency_us_count{${SEGMENT}} 4`,
].join("\n");

describe("primary_latency_us", () => {
  const counts = rolloutCountsFromSamples(parsePrometheusText(TEXT).samples, "r");

  it("is a histogram of the shadow slices, apart from the shadow's latency_us", () => {
    expect(counts.shadow!.latency.count).toBe(40);
    expect(counts.shadow!.latency.bucketsUs.map((b) => b.cumulativeCount)).toEqual([10, 40, 40]);
    expect(counts.shadow!.histograms.primary_latency_us).toEqual({
      buckets: [
        { upperBound: 1000, cumulativeCount: 30 },
        { upperBound: 2000, cumulativeCount: 40 },
        { upperBound: Infinity, cumulativeCount: 40 },
      ],
      sum: 30000,
      count: 40,
    });
    expect(counts.segments.tier.pro.shadow!.histograms.primary_latency_us.count).toBe(4);
    // Nothing of it leaks into counters.
    expect(Object.keys(counts.shadow!.counters).filter((k) => k.includes("latency"))).toEqual([]);
  });

  it("reaches the engine's snapshot and the stats API's shadow comparison", () => {
    const snapshot = toSnapshot(counts);
    expect(snapshot.slices.overall.shadow!.histograms.primary_latency_us.total).toBe(40);
    expect(snapshot.slices.overall.shadow!.histograms.latency_us.cumulative).toEqual([10, 40]);
    const summary = summarizeShadow(counts.shadow!);
    expect(summary.comparison!.primaryLatencyMs.count).toBe(40);
    // p50: rank 20 of 40, inside the first bucket (30 of 40 at or below 1 ms).
    expect(summary.comparison!.primaryLatencyMs.p50).toBeCloseTo(20 / 30, 6);
    expect(summary.latencyMs.p50).toBeCloseTo(1 + 10 / 30, 6);
  });
});
