/**
 * Confidence sequences for means of bounded observations: histogram means (confidence_drift, custom mean
 * gates) and values posted from outside (review scores, KPIs). Each holds at every look at once (Ville's
 * inequality on a nonnegative martingale), like the proportion and quantile sequences in sequences.ts.
 */
import { checkAlpha } from "./special.ts";
import type { CumulativeHistogram, Interval } from "./sequences.ts";

/**
 * Half-width of an always-valid interval for the mean of `count` observations known to lie in a range of
 * the given width. Such observations are sub-Gaussian with sigma = width/2 (Hoeffding's lemma); Robbins'
 * normal mixture gives the two-sided boundary
 *   |S_n - n mu| < sqrt((n sigma^2 + rho) ln((n sigma^2 + rho) / (rho alpha^2)))   for all n, w.p. >= 1 - alpha.
 * rho is tuned to be tightest near `targetCount` observations; any rho is valid.
 * Conservative when the observations cluster (it assumes the worst spread the range allows).
 */
export function boundedMeanHalfWidth(count: number, width: number, alpha: number, targetCount = 1000): number {
  checkAlpha(alpha);
  if (!(count > 0)) return Infinity;
  const sigma2 = (width / 2) ** 2;
  const twoLogInv = 2 * Math.log(1 / alpha);
  const rho = (sigma2 * targetCount) / (twoLogInv + Math.log(1 + twoLogInv));
  const v = count * sigma2 + rho;
  return Math.sqrt(v * Math.log(v / (rho * alpha * alpha))) / count;
}

/**
 * Always-valid interval for the mean of a histogram's observations, each known to lie in [min, max].
 * The sample mean is bracketed from the buckets alone (every observation at its bucket's lower edge, then
 * at its upper edge), because Envoy's _sum is approximate; the sequence's half-width is added outside the
 * bracket. Without buckets, the sum is used as is.
 */
export function histogramMeanConfidenceSequence(
  histogram: CumulativeHistogram & { sum: number },
  range: readonly [number, number],
  alpha: number,
): Interval & { estimate: number | null } {
  const [min, max] = range;
  const n = histogram.total;
  if (!(n > 0)) return { lower: min, upper: max, estimate: null };
  let low = 0;
  let high = 0;
  let previousBound = min;
  let previousCount = 0;
  const { bounds, cumulative } = histogram;
  for (const [i, bound] of bounds.entries()) {
    const count = cumulative[i] ?? previousCount;
    const inBucket = count - previousCount;
    if (inBucket > 0) {
      low += inBucket * Math.min(max, Math.max(min, previousBound));
      high += inBucket * Math.min(max, Math.max(min, bound));
    }
    previousBound = bound;
    previousCount = count;
  }
  const above = n - previousCount;
  if (above > 0) {
    low += above * Math.min(max, Math.max(min, previousBound));
    high += above * max;
  }
  let lowMean = low / n;
  let highMean = high / n;
  if (bounds.length === 0) lowMean = highMean = histogram.sum / n;
  const halfWidth = boundedMeanHalfWidth(n, max - min, alpha);
  const estimate = Math.min(highMean, Math.max(lowMean, histogram.sum / n));
  return { lower: Math.max(min, lowMean - halfWidth), upper: Math.min(max, highMean + halfWidth), estimate };
}

/**
 * Running state of the predictable plug-in empirical-Bernstein confidence sequence (Waudby-Smith & Ramdas,
 * "Estimating means of bounded random variables by betting", JRSS-B 2023, Theorem 2), for observations fed
 * one by one, in the order they were posted. Unlike the sum/count bound above it adapts to the observed
 * variance, which matters for review scores (few, clustered). Everything is on the [0, 1] scale; alpha is
 * fixed at creation because the bet sizes depend on it. JSON-serializable (it lives in the rollout state).
 */
export interface EmpiricalBernsteinState {
  alpha: number;
  count: number;
  sum: number;
  /** Σ (x_i - mean_i)^2, mean_i including x_i: the plug-in variance numerator. */
  squaredDeviations: number;
  lambdaSum: number;
  lambdaWeightedSum: number;
  penalty: number;
  /** Running intersection of every interval so far (still valid, never wider). */
  lower: number;
  upper: number;
}

const BET_CAP = 0.5;

export function emptyEmpiricalBernstein(alpha: number): EmpiricalBernsteinState {
  checkAlpha(alpha);
  return { alpha, count: 0, sum: 0, squaredDeviations: 0, lambdaSum: 0, lambdaWeightedSum: 0, penalty: 0, lower: 0, upper: 1 };
}

/** Adds observations already rescaled to [0, 1]; returns a new state. */
export function addEmpiricalBernstein(state: EmpiricalBernsteinState, observations: readonly number[]): EmpiricalBernsteinState {
  const logTerm = Math.log(2 / state.alpha);
  let { count, sum, squaredDeviations, lambdaSum, lambdaWeightedSum, penalty, lower, upper } = state;
  for (const observation of observations) {
    const x = Math.min(1, Math.max(0, observation));
    const t = count + 1;
    const previousMean = (0.5 + sum) / t; // mean_{t-1} with its 1/2 pseudo-observation
    const previousVariance = (0.25 + squaredDeviations) / t;
    const lambda = Math.min(Math.sqrt((2 * logTerm) / (previousVariance * t * Math.log(1 + t))), BET_CAP);
    const deviation = x - previousMean;
    penalty += deviation * deviation * (-Math.log1p(-lambda) - lambda);
    lambdaSum += lambda;
    lambdaWeightedSum += lambda * x;
    count = t;
    sum += x;
    const mean = (0.5 + sum) / (t + 1);
    squaredDeviations += (x - mean) * (x - mean);
  }
  if (lambdaSum > 0) {
    // Only the latest interval needs computing: the running intersection is monotone in both ends.
    const center = lambdaWeightedSum / lambdaSum;
    const halfWidth = (logTerm + penalty) / lambdaSum;
    lower = Math.max(lower, center - halfWidth);
    upper = Math.min(upper, center + halfWidth);
  }
  return { alpha: state.alpha, count, sum, squaredDeviations, lambdaSum, lambdaWeightedSum, penalty, lower, upper };
}
