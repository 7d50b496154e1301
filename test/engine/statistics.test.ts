import { describe, expect, it } from "vitest";
import {
  addEmpiricalBernstein,
  boundedMeanHalfWidth,
  chiSquareHomogeneity,
  chiSquareSurvival,
  countThresholds,
  emptyEmpiricalBernstein,
  histogramMeanConfidenceSequence,
  logGamma,
  logTiltMixture,
  proportionConfidenceSequence,
  quantileConfidenceSequence,
  TILTS,
  type CumulativeHistogram,
} from "../../controller/src/engine/statistics.ts";
import { ENVOY_LATENCY_BOUNDS, rng } from "./sim.ts";

describe("special functions", () => {
  it.each([
    [1, 0],
    [2, 0],
    [5, Math.log(24)],
    [0.5, 0.5 * Math.log(Math.PI)],
    [10, Math.log(362880)],
    [100, 359.1342053695754],
    [12.5, 18.734347511936445],
  ])("logGamma(%f)", (x, expected) => {
    expect(logGamma(x)).toBeCloseTo(expected, 9);
  });

  it.each([
    [3.841458820694124, 1, 0.05],
    [5.991464547107979, 2, 0.05],
    [6.634896601021214, 1, 0.01],
    [0, 3, 1],
    [30, 2, 3.059023205018258e-7],
  ])("chi-square survival of %f with %i degrees of freedom", (x, df, p) => {
    expect(chiSquareSurvival(x, df)).toBeCloseTo(p, 8);
  });
});

describe("proportionConfidenceSequence", () => {
  it("holds the estimate, narrows with data, widens with confidence", () => {
    const small = proportionConfidenceSequence(5, 100, 0.05);
    const large = proportionConfidenceSequence(50, 1000, 0.05);
    const strict = proportionConfidenceSequence(50, 1000, 0.001);
    for (const i of [small, large, strict]) {
      expect(i.lower).toBeLessThan(0.05);
      expect(i.upper).toBeGreaterThan(0.05);
    }
    expect(large.upper - large.lower).toBeLessThan(small.upper - small.lower);
    expect(strict.upper - strict.lower).toBeGreaterThan(large.upper - large.lower);
  });

  it.each([
    [1, 10, 0.05],
    [30, 10000, 0.001],
    [9990, 10000, 0.0001],
    [500, 1000, 0.2],
  ])("ends where the one-sided mixture reaches 1/alpha: %i of %i at %f", (s, n, alpha) => {
    const { lower, upper } = proportionConfidenceSequence(s, n, alpha);
    const edge = Math.log(1 / alpha);
    // Each end is on the rejected side of its boundary (rounding only widens), and just inside it is kept;
    // a lower end of 0 means nothing below the estimate is rejected yet.
    if (lower > 0) expect(logTiltMixture(s, n, lower, "above")).toBeGreaterThanOrEqual(edge - 1e-9);
    else expect(logTiltMixture(s, n, 1e-12, "above")).toBeLessThan(edge);
    expect(logTiltMixture(s, n, upper, "below")).toBeGreaterThanOrEqual(edge - 1e-9);
    expect(logTiltMixture(s, n, lower + (upper - lower) * 1e-4, "above")).toBeLessThan(edge);
    expect(logTiltMixture(s, n, upper - (upper - lower) * 1e-4, "below")).toBeLessThan(edge);
  });

  it("is a mixture of likelihood ratios: each tilt is a martingale under p0 (mean 1 over exact binomial weights)", () => {
    // E[exp(theta S - n psi(theta))] = 1 for S ~ Binomial(n, p0): the exact expectation of the mixture is 1.
    const n = 40;
    for (const p0 of [0.01, 0.3, 0.95]) {
      for (const side of ["above", "below"] as const) {
        let mean = 0;
        for (let s = 0; s <= n; s++) {
          const logWeight = logGamma(n + 1) - logGamma(s + 1) - logGamma(n - s + 1) + s * Math.log(p0) + (n - s) * Math.log1p(-p0);
          mean += Math.exp(logWeight + logTiltMixture(s, n, p0, side));
        }
        expect(mean).toBeCloseTo(1, 9);
      }
    }
    expect(TILTS).toHaveLength(8);
  });

  it("one side rejects only in its direction: an estimate far above p0 is rejected by 'above', never by 'below'", () => {
    expect(logTiltMixture(50, 1000, 0.01, "above")).toBeGreaterThan(Math.log(1e6));
    expect(logTiltMixture(50, 1000, 0.01, "below")).toBeLessThan(0);
  });

  it("handles the edges: no trials, no successes, all successes", () => {
    expect(proportionConfidenceSequence(0, 0, 0.05)).toMatchObject({ lower: 0, upper: 1, estimate: null });
    const none = proportionConfidenceSequence(0, 2000, 0.01);
    expect(none.lower).toBe(0);
    expect(none.upper).toBeGreaterThan(0);
    expect(none.upper).toBeLessThan(0.01);
    expect(proportionConfidenceSequence(30, 30, 0.01).upper).toBe(1);
  });

  it("is wider than a fixed-sample 95% interval (the price of looking every tick)", () => {
    const n = 10000;
    const s = 100;
    const p = s / n;
    const wald = 1.96 * Math.sqrt((p * (1 - p)) / n);
    const cs = proportionConfidenceSequence(s, n, 0.025);
    expect(cs.upper - p).toBeGreaterThan(wald);
    expect(cs.upper - p).toBeLessThan(4 * wald);
  });

  it("keeps its coverage when looked at every 50 trials, where a fixed-sample interval does not", () => {
    // The worst case for a gate: the true rate sits exactly on the threshold. 1500 runs of 10000 Bernoulli
    // trials each, looked at 200 times per run.
    const alpha = 0.05;
    const p = 0.01;
    const random = rng(42);
    const runs = 1500;
    let sequenceMisses = 0;
    let naiveMisses = 0;
    for (let run = 0; run < runs; run++) {
      let successes = 0;
      let sequenceMissed = false;
      let naiveMissed = false;
      for (let n = 1; n <= 10000; n++) {
        if (random() < p) successes++;
        if (n % 50 !== 0) continue;
        if (!sequenceMissed) {
          // Each end at alpha / 2: the two-sided miss rate is at most alpha. The interval leaves out p exactly
          // when a side's mixture at p reaches 2 / alpha (checked against the interval itself above), which is
          // what is evaluated here: one mixture per side instead of a root search per look.
          const edge = Math.log(2 / alpha);
          if (logTiltMixture(successes, n, p, "above") >= edge || logTiltMixture(successes, n, p, "below") >= edge) sequenceMissed = true;
        }
        const estimate = successes / n;
        const half = 1.96 * Math.sqrt(Math.max(estimate * (1 - estimate), 1e-12) / n);
        if (Math.abs(estimate - p) > half) naiveMissed = true;
      }
      if (sequenceMissed) sequenceMisses++;
      if (naiveMissed) naiveMisses++;
    }
    const sequenceRate = sequenceMisses / runs;
    const naiveRate = naiveMisses / runs;
    console.log(`proportion CS at alpha ${alpha}, 200 looks: miss rate ${sequenceRate} (fixed-sample 95% interval: ${naiveRate})`);
    expect(sequenceRate).toBeLessThanOrEqual(alpha);
    // The harness can see the problem the sequence solves: repeated fixed-sample intervals miss far more often.
    expect(naiveRate).toBeGreaterThan(3 * alpha);
  });
});

describe("countThresholds", () => {
  it("brackets n*q and grows like sqrt(n)", () => {
    const a = countThresholds(1000, 0.95, 0.01);
    const b = countThresholds(100000, 0.95, 0.01);
    expect(a.below).toBeLessThan(950);
    expect(a.above).toBeGreaterThan(950);
    const widthA = a.above - a.below;
    const widthB = b.above - b.below;
    expect(widthB / widthA).toBeGreaterThan(5);
    expect(widthB / widthA).toBeLessThan(15);
  });

  it("says nothing with too few observations, and each side uses its own alpha", () => {
    expect(countThresholds(2, 0.95, 0.001)).toEqual({ below: -1, above: 3 });
    // Four misses of a 95% event in four are telling at this level; three are not yet.
    expect(countThresholds(3, 0.95, 0.001).below).toBe(-1);
    expect(countThresholds(4, 0.95, 0.001).below).toBe(0);
    const strictAbove = countThresholds(2000, 0.95, 0.01, 0.0001);
    const loose = countThresholds(2000, 0.95, 0.01, 0.01);
    expect(strictAbove.below).toBe(loose.below);
    expect(strictAbove.above).toBeGreaterThan(loose.above);
  });
});

/** Lognormal latencies (median in us) counted into Envoy's buckets. */
function latencyHistogram(random: () => number, n: number, medianUs: number, sigma: number): CumulativeHistogram {
  const counts = new Array(ENVOY_LATENCY_BOUNDS.length + 1).fill(0);
  for (let i = 0; i < n; i++) {
    const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    const x = medianUs * Math.exp(sigma * z);
    let k = ENVOY_LATENCY_BOUNDS.findIndex((b) => x <= b);
    if (k < 0) k = ENVOY_LATENCY_BOUNDS.length;
    counts[k]++;
  }
  let running = 0;
  const cumulative = ENVOY_LATENCY_BOUNDS.map((_, i) => (running += counts[i]));
  return { bounds: [...ENVOY_LATENCY_BOUNDS], cumulative, total: n };
}

describe("quantileConfidenceSequence", () => {
  const sigma = 0.3;
  const median = 40000;
  const trueP95 = median * Math.exp(sigma * 1.6448536269514722);

  it("brackets the true p95 on bucket bounds", () => {
    const h = latencyHistogram(rng(1), 20000, median, sigma);
    const i = quantileConfidenceSequence(h, 0.95, 0.01);
    expect(i.lower).toBeLessThan(trueP95);
    expect(i.upper).toBeGreaterThanOrEqual(trueP95);
    expect(ENVOY_LATENCY_BOUNDS).toContain(i.lower);
    expect(ENVOY_LATENCY_BOUNDS).toContain(i.upper);
    expect(i.upper / i.lower).toBeLessThan(1.25);
    // The bucket-resolution end is one bucket up and still under the bucket bound holding p95.
    const holding = ENVOY_LATENCY_BOUNDS.find((b) => b >= trueP95)!;
    expect(i.bucketLower).toBeGreaterThan(i.lower);
    expect(i.bucketLower).toBeLessThanOrEqual(holding);
  });

  it("is unbounded without enough data", () => {
    const h = latencyHistogram(rng(2), 5, median, sigma);
    const i = quantileConfidenceSequence(h, 0.95, 0.001);
    expect(i.upper).toBe(Infinity);
    expect(quantileConfidenceSequence({ bounds: [], cumulative: [], total: 0 }, 0.95, 0.01)).toMatchObject({ lower: 0, upper: Infinity });
  });

  it("keeps its coverage over repeated looks", () => {
    const random = rng(7);
    const runs = 300;
    let misses = 0;
    for (let run = 0; run < runs; run++) {
      const counts = new Array(ENVOY_LATENCY_BOUNDS.length + 1).fill(0);
      let n = 0;
      let missed = false;
      for (let look = 0; look < 40 && !missed; look++) {
        for (let i = 0; i < 100; i++) {
          const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
          const x = median * Math.exp(sigma * z);
          let k = ENVOY_LATENCY_BOUNDS.findIndex((b) => x <= b);
          if (k < 0) k = ENVOY_LATENCY_BOUNDS.length;
          counts[k]++;
          n++;
        }
        let running = 0;
        const cumulative = ENVOY_LATENCY_BOUNDS.map((_, i) => (running += counts[i]));
        // Each end at 0.025: the two-sided miss rate is at most 0.05.
        const i = quantileConfidenceSequence({ bounds: [...ENVOY_LATENCY_BOUNDS], cumulative, total: n }, 0.95, 0.025);
        if (i.lower >= trueP95 || i.upper < trueP95) missed = true;
      }
      if (missed) misses++;
    }
    expect(misses / runs).toBeLessThanOrEqual(0.05);
  });
});

describe("means of bounded observations", () => {
  it("histogram mean interval brackets the mean from the buckets, not the (approximate) sum", () => {
    // 100 observations in (20, 40] and 100 in (960, 980]: the mean is in [490, 510] whatever _sum says.
    const h = { bounds: [20, 40, 960, 980], cumulative: [0, 100, 100, 200], total: 200, sum: 123456 };
    const i = histogramMeanConfidenceSequence(h, [0, 1000], 0.05);
    const half = boundedMeanHalfWidth(200, 1000, 0.05);
    expect(i.lower).toBeCloseTo(490 - half, 6);
    expect(i.upper).toBeCloseTo(510 + half, 6);
    expect(i.estimate).toBe(510);
  });

  it("the normal-mixture half-width shrinks like 1/sqrt(n) up to a log factor", () => {
    const a = boundedMeanHalfWidth(1000, 1, 0.01);
    const b = boundedMeanHalfWidth(100000, 1, 0.01);
    expect(a / b).toBeGreaterThan(7);
    expect(a / b).toBeLessThan(11);
  });

  it("empirical Bernstein adapts to low variance and keeps coverage over every observation", () => {
    const random = rng(11);
    const runs = 300;
    const mean = 0.8;
    let misses = 0;
    let lastWidth = 0;
    for (let run = 0; run < runs; run++) {
      let state = emptyEmpiricalBernstein(0.05);
      let missed = false;
      for (let batch = 0; batch < 20; batch++) {
        const values = Array.from({ length: 50 }, () => {
          const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
          return Math.min(1, Math.max(0, mean + 0.05 * z));
        });
        state = addEmpiricalBernstein(state, values);
        if (state.lower > mean || state.upper < mean) missed = true;
      }
      if (missed) misses++;
      lastWidth = state.upper - state.lower;
    }
    expect(misses / runs).toBeLessThanOrEqual(0.05);
    // Scores with sd 0.05: far tighter than the range-based bound for the same 1000 values.
    expect(lastWidth).toBeLessThan(boundedMeanHalfWidth(1000, 1, 0.05));
  });
});

describe("chiSquareHomogeneity", () => {
  it("does not flag equal mixes, flags different ones, reports the share that would have to move", () => {
    const same = chiSquareHomogeneity([5000, 3000, 2000], [500, 300, 200])!;
    expect(same.pValue).toBeGreaterThan(0.5);
    expect(same.totalVariation).toBeCloseTo(0, 10);
    const different = chiSquareHomogeneity([5000, 3000, 2000], [800, 100, 100])!;
    expect(different.pValue).toBeLessThan(1e-10);
    expect(different.totalVariation).toBeCloseTo(0.3, 10);
    expect(different.degreesOfFreedom).toBe(2);
  });

  it("needs two non-empty categories and traffic on both sides", () => {
    expect(chiSquareHomogeneity([10, 0], [0, 0])).toBeNull();
    expect(chiSquareHomogeneity([10, 0], [5, 0])).toBeNull();
  });
});
