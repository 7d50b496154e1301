/**
 * Confidence sequences for proportions and quantiles: intervals that hold at every look at once, not just at
 * one planned sample size. The engine looks at the data every tick; a fixed-sample test looked at every tick
 * would, sooner or later, "see" a difference between two identical models. Each end here comes from a
 * nonnegative martingale and Ville's inequality (P(sup_t M_t >= 1/alpha) <= alpha), so "the true value left
 * that end at some look" has probability at most alpha over the whole, unbounded, sequence of looks.
 *
 * The martingale is a mixture of likelihood ratios (a mixture sequential probability ratio test): for the
 * point null p0, each component tilts p0 by a fixed odds ratio e^theta (the Bernoulli exponential family),
 *   L_theta(s, n; p0) = exp(theta * s - n * ln(1 - p0 + p0 e^theta)),
 * and the mixture averages eight of them with equal weights, theta on a geometric grid from 0.1 to 4.5
 * (odds ratios 1.1 to 90). One side at a time: thetas > 0 test "p above p0", thetas < 0 "p below p0". Each
 * L_theta is a martingale under p0 and a supermartingale on the far side of it, so one mixture tests the
 * composite null "p <= p0" (or ">= p0") at once. It depends on the counts only (not on their order), so an
 * interval is recomputed from cumulative counts each tick and survives a restart. bench/sequential-tests.ts
 * compares it with the Jeffreys beta-binomial mixture it replaced and with a betting sequence.
 * The README's "Gate statistics" section explains how gates use them.
 */
import type { CumulativeHistogram } from "../metrics/histogram.ts";
import { checkAlpha } from "./special.ts";

export type { CumulativeHistogram };

export interface Interval {
  lower: number;
  upper: number;
  /**
   * Only for histogram quantiles: the lower end at the histogram's resolution (QuantileInterval.bucketLower),
   * used by relative limits, which compare the quantiles as the histogram states them: stable's on Pass,
   * the candidate's on Fail. Absolute limits always use `lower`.
   */
  passLower?: number;
}

/** |theta| of the mixture's components: log odds ratios 0.1 ... 4.5, geometric (README, Gate statistics). */
export const TILTS: readonly number[] = Array.from({ length: 8 }, (_, k) => 0.1 * 45 ** (k / 7));
const LOG_WEIGHT = -Math.log(TILTS.length);

export type Side = "above" | "below";

/**
 * ln M(s, n; p0): the one-sided mixture martingale of n Bernoulli trials with s successes against p0. With
 * side "above" it grows when the rate is above p0, with "below" when it is below. s may be fractional (the
 * power calculations feed expected counts).
 */
export function logTiltMixture(successes: number, trials: number, p0: number, side: Side): number {
  const sign = side === "above" ? 1 : -1;
  let max = -Infinity;
  let k = 0;
  for (const tilt of TILT_TERMS) {
    const v = sign * tilt.theta * successes - trials * Math.log1p(p0 * (side === "above" ? tilt.expm1Above : tilt.expm1Below));
    TERMS[k++] = v;
    if (v > max) max = v;
  }
  let sum = 0;
  for (const term of TERMS) sum += Math.exp(term - max);
  return max + Math.log(sum) + LOG_WEIGHT;
}

// Scratch space and e^theta - 1 for each tilt (above and below): this runs thousands of times a tick.
const TERMS = new Float64Array(TILTS.length);
const TILT_TERMS = TILTS.map((theta) => ({ theta, expm1Above: Math.expm1(theta), expm1Below: Math.expm1(-theta) }));

interface ProportionSequence extends Interval {
  estimate: number | null;
  successes: number;
  trials: number;
}

const EDGE = 1e-12;
const logit = (p: number) => Math.log(p / (1 - p));
const expit = (x: number) => 1 / (1 + Math.exp(-x));

/**
 * Always-valid interval for a success probability. `lower` is the smallest p0 the "above" mixture has not
 * rejected at level alpha, `upper` the largest the "below" mixture has not: each end alone is wrong at some
 * look with probability at most alpha (so both together at most 2 alpha). For iid trials.
 * ln M is monotone in p0 on each side, so each end is found by bisection (in log-odds, for rates near 0 or
 * 1); the end is returned on the rejected side of the boundary, so rounding only widens the interval.
 */
export function proportionConfidenceSequence(successes: number, trials: number, alpha: number): ProportionSequence {
  checkAlpha(alpha);
  if (!(trials > 0)) return { lower: 0, upper: 1, estimate: null, successes: 0, trials: 0 };
  const s = Math.min(Math.max(successes, 0), trials);
  const estimate = s / trials;
  const threshold = Math.log(1 / alpha);
  const lower = s === 0 ? 0 : boundary(s, trials, threshold, "above", estimate);
  const upper = s === trials ? 1 : boundary(s, trials, threshold, "below", estimate);
  return { lower, upper, estimate, successes: s, trials };
}

function boundary(s: number, n: number, threshold: number, side: Side, estimate: number): number {
  // "above": M decreases in p0, rejecting [0, lower). "below": M increases in p0, rejecting (upper, 1].
  const far = side === "above" ? EDGE : 1 - EDGE;
  const excess = (x: number) => logTiltMixture(s, n, expit(x), side) - threshold;
  let rejected = logit(far);
  let fr = excess(rejected);
  if (fr < 0) return side === "above" ? 0 : 1;
  let kept = logit(Math.min(1 - EDGE, Math.max(EDGE, estimate)));
  let fk = excess(kept);
  // Regula falsi (Illinois) in log-odds, keeping the root bracketed: converges in a few steps where plain
  // bisection needs about fifty, and the answer stays on the rejected side.
  let lastSide = 0;
  for (let i = 0; i < 60 && Math.abs(kept - rejected) > 1e-7 * Math.max(1, Math.abs(rejected)); i++) {
    let x = fk === fr ? (rejected + kept) / 2 : kept - (fk * (kept - rejected)) / (fk - fr);
    if (!(x > Math.min(rejected, kept) && x < Math.max(rejected, kept))) x = (rejected + kept) / 2;
    const fx = excess(x);
    if (fx >= 0) {
      rejected = x;
      fr = fx;
      if (lastSide === 1) fk /= 2;
      lastSide = 1;
    } else {
      kept = x;
      fk = fx;
      if (lastSide === -1) fr /= 2;
      lastSide = -1;
    }
  }
  return expit(rejected);
}

/**
 * For a fixed, known q: the success counts at which "rate q" is rejected at this look, as the open range
 * (below, above): a count <= below rejects "rate >= q" at level alphaBelow, a count >= above rejects
 * "rate <= q" at level alphaAbove. P(a Bernoulli(q) count ever reaches either) <= alphaBelow + alphaAbove.
 */
export function countThresholds(trials: number, q: number, alphaBelow: number, alphaAbove = alphaBelow): { below: number; above: number } {
  checkAlpha(alphaBelow);
  checkAlpha(alphaAbove);
  const thresholdBelow = Math.log(1 / alphaBelow);
  const thresholdAbove = Math.log(1 / alphaAbove);
  // ln M "below" decreases with the count, ln M "above" increases: binary search over whole counts.
  let below = -1;
  if (logTiltMixture(0, trials, q, "below") >= thresholdBelow) {
    let lo = 0; // rejected
    let hi = trials + 1; // not rejected (or past the end)
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (logTiltMixture(mid, trials, q, "below") >= thresholdBelow) lo = mid;
      else hi = mid;
    }
    below = lo;
  }
  let above = trials + 1;
  if (logTiltMixture(trials, trials, q, "above") >= thresholdAbove) {
    let lo = -1; // not rejected
    let hi = trials; // rejected
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (logTiltMixture(mid, trials, q, "above") >= thresholdAbove) hi = mid;
      else lo = mid;
    }
    above = hi;
  }
  return { below, above };
}

// ---------------------------------------------------------------------------------------------------------
// Quantiles from cumulative histograms

export interface QuantileInterval extends Interval {
  /**
   * Lower end for the quantile as the histogram can state it, Q~ = the smallest bucket bound b with
   * F(b) >= q (the upper bound of the bucket holding Q): one bucket above `lower`. See below.
   */
  bucketLower: number;
}

/**
 * Always-valid interval for the q-quantile Q from bucket counts only. For a continuous distribution the
 * number of observations <= Q is Binomial(n, q) at every n, so with probability >= 1 - alphaLower it never
 * falls to countThresholds' `below`, and with probability >= 1 - alphaUpper never rises to `above`. On the
 * first event a bound whose count is at or under `below` lies under Q (`lower`); on the second a bound whose
 * count is at or over `above` lies over Q (`upper`). The interval therefore ends on bucket bounds: it is never
 * narrower than the bucket holding Q (conservative, never optimistic). On the first event a bound b under Q
 * has F(b) < q, so Q~ (defined above) is at least the next bound: that is `bucketLower`, and `upper` bounds
 * Q~ too. `lower` is 0 and `upper` Infinity when the data cannot place Q on that side yet.
 */
export function quantileConfidenceSequence(histogram: CumulativeHistogram, q: number, alphaLower: number, alphaUpper = alphaLower): QuantileInterval {
  const n = histogram.total;
  const { bounds, cumulative } = histogram;
  const first = bounds[0] ?? 0;
  if (!(n > 0)) return { lower: 0, upper: Infinity, bucketLower: first };
  const { below, above } = countThresholds(n, q, alphaLower, alphaUpper);
  let lower = 0;
  let bucketLower = first;
  let upper = Infinity;
  for (const [i, bound] of bounds.entries()) {
    const count = cumulative[i] ?? Number.NaN; // a bound without a count moves neither end
    if (count <= below) {
      lower = bound;
      bucketLower = bounds[i + 1] ?? Infinity;
    }
    if (count >= above) {
      upper = bound;
      break;
    }
  }
  return { lower, upper, bucketLower: Math.min(bucketLower, upper) };
}
