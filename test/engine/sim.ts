/**
 * Simulated traffic for engine tests: a seeded stream of requests split stable/canary by the weights the
 * engine asked for, mirrored to a shadow, with per-variant and per-segment error rates, latency and schema
 * pass rates, counted into cumulative RolloutCounts exactly as the metric provider reports them (latency
 * into the bootstrap's own histogram buckets).
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { emptyVariantCounts, type MetricReading, type RolloutCounts, type VariantCounts } from "../../controller/src/metrics/provider.ts";

/** The latency bucket bounds Envoy uses (deploy/envoy/envoy.template.yaml), read from the template itself. */
export const ENVOY_LATENCY_BOUNDS: readonly number[] = (() => {
  const template = readFileSync(fileURLToPath(new URL("../../deploy/envoy/envoy.template.yaml", import.meta.url)), "utf8");
  const lines = template.split("\n");
  const at = lines.findIndex((l) => /match:\s*\{\s*suffix:\s*latency_us\s*\}/.test(l));
  const buckets = /buckets:\s*\[([^\]]+)\]/.exec(lines[at + 1]);
  if (!buckets) throw new Error("sim: no latency_us buckets in deploy/envoy/envoy.template.yaml");
  return buckets[1].split(",").map((x) => Number(x.trim()));
})();

/** Small, fast, seeded PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Behavior {
  errorRate: number;
  /** Lognormal latency: median and sigma of ln(latency). */
  latencyMedianMs: number;
  latencySigma: number;
  schemaPassRate: number;
}

export const GOOD: Behavior = { errorRate: 0.003, latencyMedianMs: 40, latencySigma: 0.25, schemaPassRate: 0.9995 };

export type SimVariant = "stable" | "canary" | "shadow";

export interface SimConfig {
  seed: number;
  /** One segment dimension with its values' shares of traffic, per variant (default: the same shares). */
  segment?: { dimension: string; shares: Record<string, number>; canaryShares?: Record<string, number> };
  behavior: (variant: SimVariant, segmentValue: string | null) => Behavior;
  /** Emit every bucket bound like Envoy (true), or only non-empty buckets (faster, same information). */
  allBuckets?: boolean;
}

class Tally {
  requests = 0;
  errors = 0;
  valid = 0;
  invalid = 0;
  latencySumUs = 0;
  readonly buckets = new Float64Array(ENVOY_LATENCY_BOUNDS.length + 1);
  /** Shadow tallies: the primary answers to the mirrored requests (the filter's primary_latency_us). */
  pairedSumUs = 0;
  readonly pairedBuckets = new Float64Array(ENVOY_LATENCY_BOUNDS.length + 1);
}

const SIM_VARIANTS: readonly SimVariant[] = ["stable", "canary", "shadow"];

/** A behavior with its latency distribution over Envoy's buckets, sampled by inverse transform. */
interface PreparedBehavior extends Behavior {
  /** P(latency <= bound) per bound; the rest is the +Inf bucket. */
  cdf: Float64Array;
  /** Representative latency per bucket (for the _sum), us. */
  midUs: Float64Array;
}

function prepare(b: Behavior): PreparedBehavior {
  const bounds = ENVOY_LATENCY_BOUNDS;
  const cdf = new Float64Array(bounds.length);
  const midUs = new Float64Array(bounds.length + 1);
  const mu = Math.log(b.latencyMedianMs * 1000);
  for (let i = 0; i < bounds.length; i++) {
    cdf[i] = normalCdf((Math.log(bounds[i]) - mu) / b.latencySigma);
    midUs[i] = i === 0 ? bounds[0] / 2 : (bounds[i - 1] + bounds[i]) / 2;
  }
  midUs[bounds.length] = bounds[bounds.length - 1];
  return { ...b, cdf, midUs };
}

export class TrafficSim {
  private readonly random: () => number;
  private readonly values: string[];
  /** [variant][0] overall, [variant][1 + value index] per segment value. */
  private readonly tallies: Tally[][];
  private readonly behaviors: PreparedBehavior[][];
  private readonly shares: Float64Array[];
  private shadowSeen = false;
  private readonly skips: Array<Array<{ untilError: number; untilInvalid: number }>>;

  constructor(private readonly config: SimConfig) {
    this.random = rng(config.seed);
    this.values = config.segment ? Object.keys(config.segment.shares) : [];
    this.tallies = SIM_VARIANTS.map(() => [new Tally(), ...this.values.map(() => new Tally())]);
    this.behaviors = SIM_VARIANTS.map((variant) =>
      this.values.length === 0 ? [prepare(config.behavior(variant, null))] : this.values.map((value) => prepare(config.behavior(variant, value))),
    );
    this.skips = this.behaviors.map((row) =>
      row.map((b) => ({ untilError: geometric(this.random, b.errorRate), untilInvalid: geometric(this.random, 1 - b.schemaPassRate) })),
    );
    const segment = config.segment;
    this.shares = SIM_VARIANTS.map((variant) => {
      const shares = variant === "canary" && segment?.canaryShares ? segment.canaryShares : segment?.shares ?? {};
      return Float64Array.from(this.values.map((v) => shares[v] ?? 0));
    });
  }

  /**
   * `requests` primary requests at the given weights, each possibly mirrored. Per request only the variant,
   * the segment value and the latency bucket are drawn; errors and invalid answers are placed by geometric
   * skips (one draw per rare event), which gives exactly the same distribution as a coin per request.
   */
  run(requests: number, weights: { canaryPercent: number; shadowPercent: number }): void {
    const r = this.random;
    const canary = weights.canaryPercent / 100;
    const shadow = weights.shadowPercent / 100;
    for (let i = 0; i < requests; i++) {
      const variant = canary > 0 && r() < canary ? 1 : 0;
      const value = this.pickValue(variant);
      const primaryBucket = this.serve(variant, value);
      if (shadow > 0 && r() < shadow) {
        this.serve(2, value);
        // The filter times the primary of a mirrored request like the call; the simulation has no path difference.
        const midUs = this.behaviors[variant][value < 0 ? 0 : value].midUs[primaryBucket];
        const row = this.tallies[2];
        for (const t of value >= 0 ? [row[0], row[1 + value]] : [row[0]]) {
          t.pairedBuckets[primaryBucket]++;
          t.pairedSumUs += midUs;
        }
      }
    }
  }

  private pickValue(variant: number): number {
    const shares = this.shares[variant];
    if (shares.length === 0) return -1;
    let u = this.random();
    for (let k = 0; k < shares.length; k++) {
      u -= shares[k];
      if (u < 0) return k;
    }
    return shares.length - 1;
  }

  /** Returns the latency bucket drawn. */
  private serve(variant: number, value: number): number {
    if (variant === 2) this.shadowSeen = true;
    const slot = value < 0 ? 0 : value;
    const b = this.behaviors[variant][slot];
    const skip = this.skips[variant][slot];
    // Geometric skips: requests left until the next error / invalid answer.
    let error = false;
    if (skip.untilError-- <= 0) {
      error = true;
      skip.untilError = geometric(this.random, b.errorRate);
    }
    let valid = true;
    if (!error && skip.untilInvalid-- <= 0) {
      valid = false;
      skip.untilInvalid = geometric(this.random, 1 - b.schemaPassRate);
    }
    // Inverse transform over the bucket CDF: the bucket a lognormal latency falls in, exactly.
    const u = this.random();
    const cdf = b.cdf;
    let lo = 0;
    let hi = cdf.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (u <= cdf[mid]) hi = mid;
      else lo = mid + 1;
    }
    const row = this.tallies[variant];
    this.count(row[0], error, valid, lo, b.midUs[lo]);
    if (value >= 0) this.count(row[1 + value], error, valid, lo, b.midUs[lo]);
    return lo;
  }

  private count(t: Tally, error: boolean, valid: boolean, bucket: number, latencyUs: number): void {
    t.requests++;
    if (error) t.errors++;
    else if (valid) t.valid++;
    else t.invalid++;
    t.latencySumUs += latencyUs;
    t.buckets[bucket]++;
  }

  /** Cumulative counts as the metric provider reports them. */
  counts(): RolloutCounts {
    const counts: RolloutCounts = { stable: this.variantCounts(0, 0), canary: this.variantCounts(1, 0), segments: {} };
    if (this.shadowSeen) counts.shadow = this.variantCounts(2, 0);
    if (this.config.segment) {
      const perValue: RolloutCounts["segments"][string] = {};
      this.values.forEach((value, k) => {
        const slice: RolloutCounts["segments"][string][string] = { stable: this.variantCounts(0, k + 1), canary: this.variantCounts(1, k + 1) };
        if (this.shadowSeen) slice.shadow = this.variantCounts(2, k + 1);
        perValue[value] = slice;
      });
      counts.segments[this.config.segment.dimension] = perValue;
    }
    return counts;
  }

  reading(): MetricReading<RolloutCounts> {
    return { status: "measured", value: this.counts(), sources: [{ url: "sim", ok: true }] };
  }

  private variantCounts(variant: number, slot: number): VariantCounts {
    return tallyCounts(this.tallies[variant][slot], this.config.allBuckets ?? false);
  }
}

/** Failures before the first success of a p-coin (Infinity for p = 0). */
function geometric(random: () => number, p: number): number {
  if (p <= 0) return Infinity;
  if (p >= 1) return 0;
  return Math.floor(Math.log(1 - random()) / Math.log1p(-p));
}

/** Standard normal CDF (erfc by Numerical Recipes' Chebyshev fit, relative error < 1.2e-7). */
function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * x);
  const erfc =
    t *
    Math.exp(
      -x * x -
        1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return z >= 0 ? 1 - erfc / 2 : erfc / 2;
}

/** Review scores in [0, 1]: a clipped normal around `mean`. */
export function reviewScores(random: () => number, count: number, mean: number, sd: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    out.push(Math.min(1, Math.max(0, mean + sd * z)));
  }
  return out;
}

/**
 * The same traffic drawn per tick instead of per request, for the many-runs false-alarm check: the number
 * of requests in a tick is Poisson, so (Poisson splitting) every (variant, segment value, latency bucket)
 * count is an independent Poisson draw, and errors / invalid answers are binomial within each cell. Same
 * distributions as TrafficSim with Poisson arrivals, at a cost independent of the traffic.
 */
export class PoissonTrafficSim {
  private readonly random: () => number;
  private readonly values: string[];
  private readonly tallies: Tally[][];
  private readonly behaviors: PreparedBehavior[][];
  private readonly shares: Float64Array[];
  /** Per behavior: bucket probabilities (the +Inf bucket last), for Poisson splitting. */
  private readonly bucketP: Float64Array[][];
  private shadowSeen = false;
  /** Its own stream, so that adding the paired draws left every other draw of a seed as it was. */
  private readonly pairedRandom: () => number;

  constructor(private readonly config: SimConfig) {
    this.random = rng(config.seed);
    this.pairedRandom = rng(config.seed ^ 0x9e3779b9);
    this.values = config.segment ? Object.keys(config.segment.shares) : [];
    this.tallies = SIM_VARIANTS.map(() => [new Tally(), ...this.values.map(() => new Tally())]);
    this.behaviors = SIM_VARIANTS.map((variant) =>
      this.values.length === 0 ? [prepare(config.behavior(variant, null))] : this.values.map((value) => prepare(config.behavior(variant, value))),
    );
    this.bucketP = this.behaviors.map((row) =>
      row.map((b) => {
        const p = new Float64Array(b.cdf.length + 1);
        let previous = 0;
        for (let i = 0; i < b.cdf.length; i++) {
          p[i] = b.cdf[i] - previous;
          previous = b.cdf[i];
        }
        p[b.cdf.length] = 1 - previous;
        return p;
      }),
    );
    const segment = config.segment;
    this.shares = SIM_VARIANTS.map((variant) => {
      const shares = variant === "canary" && segment?.canaryShares ? segment.canaryShares : segment?.shares ?? {};
      return this.values.length === 0 ? Float64Array.of(1) : Float64Array.from(this.values.map((v) => shares[v] ?? 0));
    });
  }

  /** A tick with Poisson(meanRequests) primary requests at the given weights. */
  run(meanRequests: number, weights: { canaryPercent: number; shadowPercent: number }): void {
    const rates = [meanRequests * (1 - weights.canaryPercent / 100), (meanRequests * weights.canaryPercent) / 100, (meanRequests * weights.shadowPercent) / 100];
    for (let v = 0; v < 3; v++) {
      if (rates[v] <= 0) continue;
      if (v === 2) this.shadowSeen = true;
      const shares = this.shares[v];
      for (let k = 0; k < shares.length; k++) {
        const mean = rates[v] * shares[k];
        if (mean <= 0) continue;
        this.cell(v, k, mean);
        // The primaries of the mirrored requests, timed like the calls (primary_latency_us): by Poisson splitting,
        // independent draws from the primary variants' latency, in proportion to their weights.
        if (v === 2) {
          const canaryShare = weights.canaryPercent / 100;
          if (canaryShare < 1) this.pairedCell(0, k, mean * (1 - canaryShare));
          if (canaryShare > 0) this.pairedCell(1, k, mean * canaryShare);
        }
      }
    }
  }

  private pairedCell(primary: number, slot: number, mean: number): void {
    const b = this.behaviors[primary][slot];
    const p = this.bucketP[primary][slot];
    const row = this.tallies[2];
    const tallies = this.values.length > 0 ? [row[0], row[1 + slot]] : [row[0]];
    for (let i = 0; i < p.length; i++) {
      if (p[i] < 1e-15) continue;
      const c = poisson(this.pairedRandom, mean * p[i]);
      if (c === 0) continue;
      for (const t of tallies) {
        t.pairedBuckets[i] += c;
        t.pairedSumUs += c * b.midUs[i];
      }
    }
  }

  private cell(variant: number, slot: number, mean: number): void {
    const b = this.behaviors[variant][slot];
    const p = this.bucketP[variant][slot];
    const row = this.tallies[variant];
    const segmentTally = this.values.length > 0 ? row[1 + slot] : null;
    let n = 0;
    for (let i = 0; i < p.length; i++) {
      if (p[i] < 1e-15) continue;
      const c = poisson(this.random, mean * p[i]);
      if (c === 0) continue;
      n += c;
      for (const t of segmentTally ? [row[0], segmentTally] : [row[0]]) {
        t.buckets[i] += c;
        t.latencySumUs += c * b.midUs[i];
      }
    }
    const errors = binomialSmall(this.random, n, b.errorRate);
    const invalid = binomialSmall(this.random, n - errors, 1 - b.schemaPassRate);
    for (const t of segmentTally ? [row[0], segmentTally] : [row[0]]) {
      t.requests += n;
      t.errors += errors;
      t.invalid += invalid;
      t.valid += n - errors - invalid;
    }
  }

  reading(): MetricReading<RolloutCounts> {
    return { status: "measured", value: this.counts(), sources: [{ url: "sim", ok: true }] };
  }

  counts(): RolloutCounts {
    const view = (v: number, slot: number) => tallyCounts(this.tallies[v][slot], this.config.allBuckets ?? false);
    const counts: RolloutCounts = { stable: view(0, 0), canary: view(1, 0), segments: {} };
    if (this.shadowSeen) counts.shadow = view(2, 0);
    if (this.config.segment) {
      const perValue: RolloutCounts["segments"][string] = {};
      this.values.forEach((value, k) => {
        perValue[value] = { stable: view(0, k + 1), canary: view(1, k + 1), ...(this.shadowSeen ? { shadow: view(2, k + 1) } : {}) };
      });
      counts.segments[this.config.segment.dimension] = perValue;
    }
    return counts;
  }
}

function tallyCounts(t: Tally, allBuckets: boolean): VariantCounts {
  const counts = emptyVariantCounts();
  counts.requests = t.requests;
  counts.responses["2xx"] = t.requests - t.errors;
  counts.responses["5xx"] = t.errors;
  counts.counters["outputs{schema=valid}"] = t.valid;
  counts.counters["outputs{schema=missing_field}"] = t.invalid;
  let cumulative = 0;
  for (let i = 0; i < ENVOY_LATENCY_BOUNDS.length; i++) {
    cumulative += t.buckets[i];
    if (allBuckets || t.buckets[i] > 0) counts.latency.bucketsUs.push({ upperBound: ENVOY_LATENCY_BOUNDS[i], cumulativeCount: cumulative });
  }
  counts.latency.bucketsUs.push({ upperBound: Infinity, cumulativeCount: t.requests });
  counts.latency.count = t.requests;
  counts.latency.sumUs = t.latencySumUs;
  let paired = 0;
  const pairedBuckets: VariantCounts["latency"]["bucketsUs"] = [];
  for (let i = 0; i < ENVOY_LATENCY_BOUNDS.length; i++) {
    paired += t.pairedBuckets[i];
    if (allBuckets || t.pairedBuckets[i] > 0) pairedBuckets.push({ upperBound: ENVOY_LATENCY_BOUNDS[i], cumulativeCount: paired });
  }
  paired += t.pairedBuckets[ENVOY_LATENCY_BOUNDS.length];
  if (paired > 0) {
    pairedBuckets.push({ upperBound: Infinity, cumulativeCount: paired });
    counts.histograms.primary_latency_us = { buckets: pairedBuckets, sum: t.pairedSumUs, count: paired };
  }
  return counts;
}

/** Exact Poisson draw: inversion for small means, PTRS (Hörmann 1993) otherwise. */
export function poisson(random: () => number, mean: number): number {
  if (mean < 12) {
    let p = Math.exp(-mean);
    let cumulative = p;
    const u = random();
    let k = 0;
    while (u > cumulative && k < 1000) {
      k++;
      p *= mean / k;
      cumulative += p;
    }
    return k;
  }
  const slam = Math.sqrt(mean);
  const loglam = Math.log(mean);
  const b = 0.931 + 2.53 * slam;
  const a = -0.059 + 0.02483 * b;
  const invalpha = 1.1239 + 1.1328 / (b - 3.4);
  const vr = 0.9277 - 3.6224 / (b - 2);
  for (;;) {
    const u = random() - 0.5;
    const v = random();
    const us = 0.5 - Math.abs(u);
    const k = Math.floor(((2 * a) / us + b) * u + mean + 0.43);
    if (us >= 0.07 && v <= vr) return k;
    if (k < 0 || (us < 0.013 && v > us)) continue;
    if (Math.log(v) + Math.log(invalpha) - Math.log(a / (us * us) + b) <= -mean + k * loglam - logFactorial(k)) return k;
  }
}

function logFactorial(k: number): number {
  let x = k + 1;
  if (x < 10) {
    let f = 1;
    for (let i = 2; i <= k; i++) f *= i;
    return Math.log(f);
  }
  const inv = 1 / x;
  const inv2 = inv * inv;
  return (x - 0.5) * Math.log(x) - x + 0.5 * Math.log(2 * Math.PI) + inv * (1 / 12 - inv2 * (1 / 360 - inv2 / 1260));
}

/** Exact Binomial(n, p) for small p: count the geometric gaps that fit in n trials. */
function binomialSmall(random: () => number, n: number, p: number): number {
  if (n <= 0 || p <= 0) return 0;
  let successes = 0;
  let position = geometric(random, p);
  while (position < n) {
    successes++;
    position += 1 + geometric(random, p);
  }
  return successes;
}
