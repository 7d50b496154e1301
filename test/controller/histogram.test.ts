import { describe, expect, it } from "vitest";
import { histogramQuantile } from "../../controller/src/metrics/histogram.ts";
import { summarizeVariant } from "../../controller/src/metrics/summary.ts";
import { emptyVariantCounts, type HistogramBucket } from "../../controller/src/metrics/provider.ts";

const buckets = (pairs: Array<[number, number]>): HistogramBucket[] => pairs.map(([upperBound, cumulativeCount]) => ({ upperBound, cumulativeCount }));

describe("histogramQuantile (Prometheus histogram_quantile semantics)", () => {
  // 40 observations: 10 in (0,100], 20 in (100,200], 10 in (200,500].
  const set = buckets([
    [100, 10],
    [200, 30],
    [500, 40],
    [Infinity, 40],
  ]);

  it("interpolates linearly inside the bucket holding the rank", () => {
    // p50: rank 20, bucket (100,200] holds ranks 11..30 -> 100 + 100 * (20-10)/20 = 150
    expect(histogramQuantile(0.5, set)).toBeCloseTo(150, 10);
    // p95: rank 38, bucket (200,500] holds 31..40 -> 200 + 300 * (38-30)/10 = 440
    expect(histogramQuantile(0.95, set)).toBeCloseTo(440, 10);
    // p25: rank 10, exactly the end of the first bucket -> 100
    expect(histogramQuantile(0.25, set)).toBeCloseTo(100, 10);
  });

  it("starts the first bucket at 0", () => {
    // rank 5 of 10, all in (0,100] -> 50
    expect(
      histogramQuantile(
        0.5,
        buckets([
          [100, 10],
          [Infinity, 10],
        ]),
      ),
    ).toBeCloseTo(50, 10);
  });

  it("answers the highest finite bound when the rank falls in +Inf", () => {
    // 8 of 10 observations at or below 200; p95 rank 9.5 is above every finite bound
    expect(
      histogramQuantile(
        0.95,
        buckets([
          [100, 5],
          [200, 8],
          [Infinity, 10],
        ]),
      ),
    ).toBe(200);
  });

  it("sorts buckets and flattens dips like Prometheus", () => {
    const unsorted = buckets([
      [Infinity, 20],
      [200, 8],
      [100, 10],
    ]);
    // monotonic: 100:10, 200:10, +Inf:20; p50 rank 10 -> end of the first bucket
    expect(histogramQuantile(0.5, unsorted)).toBeCloseTo(100, 10);
  });

  it("returns null without observations, without +Inf, or with +Inf alone", () => {
    expect(histogramQuantile(0.5, [])).toBeNull();
    expect(
      histogramQuantile(
        0.5,
        buckets([
          [100, 0],
          [Infinity, 0],
        ]),
      ),
    ).toBeNull();
    expect(
      histogramQuantile(
        0.5,
        buckets([
          [100, 3],
          [200, 5],
        ]),
      ),
    ).toBeNull();
    expect(histogramQuantile(0.5, buckets([[Infinity, 5]]))).toBeNull();
  });

  it("refuses a quantile outside [0, 1]", () => {
    expect(() => histogramQuantile(1.5, set)).toThrow(/between 0 and 1/);
    expect(() => histogramQuantile(Number.NaN, set)).toThrow(/between 0 and 1/);
  });
});

describe("summarizeVariant", () => {
  it("computes error rate from 5xx and local answers, and latency in milliseconds", () => {
    const counts = emptyVariantCounts();
    counts.requests = 40;
    counts.responses = { "2xx": 30, "3xx": 2, "4xx": 4, "5xx": 3, local: 1 };
    counts.latency = { bucketsUs: set(), sumUs: 9000, count: 40 };
    expect(summarizeVariant(counts)).toEqual({
      requests: 40,
      responses: { "2xx": 30, "3xx": 2, "4xx": 4, "5xx": 3, local: 1 },
      errorRate: 0.1,
      latencyMs: { p50: expect.closeTo(0.15, 10), p95: expect.closeTo(0.44, 10), count: 40 },
    });

    function set() {
      return buckets([
        [100, 10],
        [200, 30],
        [500, 40],
        [Infinity, 40],
      ]);
    }
  });

  it("answers null rates and percentiles for zero traffic, not zero", () => {
    expect(summarizeVariant(emptyVariantCounts())).toEqual({
      requests: 0,
      responses: { "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0, local: 0 },
      errorRate: null,
      latencyMs: { p50: null, p95: null, count: 0 },
    });
  });
});
