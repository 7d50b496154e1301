/**
 * What the traffic simulators share (sim.ts per request, poisson-sim.ts per tick): Envoy's latency buckets,
 * the seeded PRNG, model behaviors (error rate, lognormal latency with an optional heavy tail, schema pass
 * rate of successful answers) prepared as bucket CDFs, and the tallies counted into RolloutCounts exactly as
 * the metric provider reports them.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { emptyVariantCounts, type VariantCounts } from "../../controller/src/metrics/provider.ts";

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
  /** Of the successful answers: an error answer is not validated (it counts as unanalyzed error_status). */
  schemaPassRate: number;
  /** Heavy tail: this share of requests takes its latency from a second, slower lognormal. */
  latencyTail?: { share: number; medianMs: number; sigma: number };
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

export class Tally {
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

export const SIM_VARIANTS: readonly SimVariant[] = ["stable", "canary", "shadow"];

/** A behavior with its latency distribution over Envoy's buckets, sampled by inverse transform. */
export interface PreparedBehavior extends Behavior {
  /** P(latency <= bound) per bound; the rest is the +Inf bucket. */
  cdf: Float64Array;
  /** Representative latency per bucket (for the _sum), us. */
  midUs: Float64Array;
}

export function prepare(b: Behavior): PreparedBehavior {
  const bounds = ENVOY_LATENCY_BOUNDS;
  const cdf = new Float64Array(bounds.length);
  const midUs = new Float64Array(bounds.length + 1);
  const mu = Math.log(b.latencyMedianMs * 1000);
  const tail = b.latencyTail;
  const tailMu = tail ? Math.log(tail.medianMs * 1000) : 0;
  for (let i = 0; i < bounds.length; i++) {
    const body = normalCdf((Math.log(bounds[i]) - mu) / b.latencySigma);
    cdf[i] = tail ? (1 - tail.share) * body + tail.share * normalCdf((Math.log(bounds[i]) - tailMu) / tail.sigma) : body;
    midUs[i] = i === 0 ? bounds[0] / 2 : (bounds[i - 1] + bounds[i]) / 2;
  }
  midUs[bounds.length] = bounds[bounds.length - 1];
  return { ...b, cdf, midUs };
}

/** Failures before the first success of a p-coin (Infinity for p = 0). */
export function geometric(random: () => number, p: number): number {
  if (p <= 0) return Infinity;
  if (p >= 1) return 0;
  return Math.floor(Math.log(1 - random()) / Math.log1p(-p));
}

/** Standard normal CDF (erfc by Numerical Recipes' Chebyshev fit, relative error < 1.2e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * x);
  const erfc =
    t *
    Math.exp(
      -x * x -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
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

export function tallyCounts(t: Tally, allBuckets: boolean): VariantCounts {
  const counts = emptyVariantCounts();
  counts.requests = t.requests;
  counts.responses["2xx"] = t.requests - t.errors;
  counts.responses["5xx"] = t.errors;
  counts.counters["outputs{schema=valid}"] = t.valid;
  counts.counters["outputs{schema=missing_field}"] = t.invalid;
  // The filter does not analyze error answers: they count once, as errors (and as unanalyzed error_status).
  counts.counters["outputs{unanalyzed=error_status}"] = t.errors;
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
  const x = k + 1;
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
export function binomialSmall(random: () => number, n: number, p: number): number {
  if (n <= 0 || p <= 0) return 0;
  let successes = 0;
  let position = geometric(random, p);
  while (position < n) {
    successes++;
    position += 1 + geometric(random, p);
  }
  return successes;
}
