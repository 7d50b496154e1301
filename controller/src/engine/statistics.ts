/**
 * Confidence sequences: intervals that hold at every look at once, not just at one planned sample size.
 * The engine looks at a stage's data every tick; a fixed-sample test looked at every tick would, sooner or
 * later, "see" a difference between two identical models. Each sequence here comes from a nonnegative
 * martingale and Ville's inequality (P(sup_t M_t >= 1/alpha) <= alpha), so "the true value left the interval
 * at some look" has probability at most alpha over the whole, unbounded, sequence of looks.
 * The README's "Gate statistics" section explains how gates use them.
 */

export interface Interval {
  lower: number;
  upper: number;
  /**
   * Only for histogram quantiles: a lower end used when deciding Pass on a limit relative to this value,
   * at the histogram's resolution (QuantileInterval.bucketLower). Failing always uses `lower`.
   */
  passLower?: number;
}

// ---------------------------------------------------------------------------------------------------------
// Special functions

const HALF_LOG_TWO_PI = 0.5 * Math.log(2 * Math.PI);
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos, g = 7): about 15 significant digits, enough for likelihood ratios. */
export function logGamma(x: number): number {
  if (x >= 10) {
    // Stirling's series: error below 1e-10 from here on, and much cheaper than Lanczos.
    const inv = 1 / x;
    const inv2 = inv * inv;
    return (x - 0.5) * Math.log(x) - x + HALF_LOG_TWO_PI + inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 / 1680)));
  }
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  const z = x - 1;
  let a = LANCZOS[0];
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i] / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

export function logBeta(a: number, b: number): number {
  return logGamma(a) + logGamma(b) - logGamma(a + b);
}

/** Regularized upper incomplete gamma Q(s, x) = Γ(s, x) / Γ(s): the chi-square survival function at 2x, 2s. */
export function upperRegularizedGamma(s: number, x: number): number {
  if (x <= 0) return 1;
  if (x < s + 1) {
    // Series for P(s, x), then Q = 1 - P.
    let term = 1 / s;
    let sum = term;
    for (let n = 1; n < 1000; n++) {
      term *= x / (s + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-15) break;
    }
    return Math.max(0, 1 - sum * Math.exp(-x + s * Math.log(x) - logGamma(s)));
  }
  // Continued fraction for Q(s, x) (modified Lentz).
  const tiny = 1e-300;
  let b = x + 1 - s;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - s);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return Math.min(1, Math.exp(-x + s * Math.log(x) - logGamma(s)) * h);
}

export function chiSquareSurvival(statistic: number, degreesOfFreedom: number): number {
  return upperRegularizedGamma(degreesOfFreedom / 2, statistic / 2);
}

// ---------------------------------------------------------------------------------------------------------
// Proportions: beta-binomial mixture martingale

/** Jeffreys' Beta(1/2, 1/2): spreads the mixture over all rates, including the rare-event end. */
const PRIOR_A = 0.5;
const PRIOR_B = 0.5;

/**
 * ln M_n(p): the mixture likelihood ratio of n Bernoulli trials with `successes` against the point null p.
 * Under "every trial succeeds with probability p" M_n is a nonnegative martingale with M_0 = 1.
 */
export function logBetaBinomialMartingale(successes: number, trials: number, p: number): number {
  const mixture = logBeta(PRIOR_A + successes, PRIOR_B + trials - successes) - logBeta(PRIOR_A, PRIOR_B);
  const failures = trials - successes;
  const nullLikelihood = (successes > 0 ? successes * Math.log(p) : 0) + (failures > 0 ? failures * Math.log1p(-p) : 0);
  return mixture - nullLikelihood;
}

export interface ProportionSequence extends Interval {
  estimate: number | null;
  successes: number;
  trials: number;
}

/**
 * Always-valid interval for a success probability: every p whose martingale is still below 1/alpha.
 * ln M_n(p) is convex in p with its minimum (<= 0) at successes/trials, so the set is an interval; its ends
 * are found by bisection. Coverage: P(true p outside at any look) <= alpha, for iid trials.
 */
export function proportionConfidenceSequence(successes: number, trials: number, alpha: number): ProportionSequence {
  checkAlpha(alpha);
  if (!(trials > 0)) return { lower: 0, upper: 1, estimate: null, successes: 0, trials: 0 };
  const s = Math.min(Math.max(successes, 0), trials);
  const f = trials - s;
  const estimate = s / trials;
  // The mixture part does not depend on p: compute it once; solve excess(p) = 0 on each side of the estimate.
  const constant = logBeta(PRIOR_A + s, PRIOR_B + f) - logBeta(PRIOR_A, PRIOR_B) - Math.log(1 / alpha);
  const excess = (p: number) => constant - (s > 0 ? s * Math.log(p) : 0) - (f > 0 ? f * Math.log1p(-p) : 0);
  const slope = (p: number) => -s / p + f / (1 - p);
  const spread = Math.sqrt(Math.max(estimate * (1 - estimate), 1 / trials) / trials);
  const lower = s === 0 ? 0 : outerRoot(excess, slope, estimate, -spread);
  const upper = f === 0 ? 1 : outerRoot(excess, slope, estimate, spread);
  return { lower, upper, estimate, successes: s, trials };
}

/**
 * Root of the convex `excess` on one side of its minimum at `center` (direction = sign of `step`), found by
 * Newton's method from outside: on a convex function the iterates then approach the root monotonically
 * without crossing it, so stopping early always errs outwards (a wider, still valid interval).
 */
function outerRoot(excess: (p: number) => number, slope: (p: number) => number, center: number, step: number): number {
  const left = step < 0;
  // A starting point outside the plausible set (excess >= 0), moving out geometrically towards 0 or 1.
  let p = center + 6 * step;
  if (left && !(p > 0)) p = center / 1000;
  if (!left && !(p < 1)) p = 1 - (1 - center) / 1000;
  while (!(excess(p) >= 0)) p = left ? p / 16 : 1 - (1 - p) / 16;
  for (let i = 0; i < 50; i++) {
    const value = excess(p);
    if (value < 1e-9) break;
    const next = p - value / slope(p);
    if (!(left ? next > p : next < p) || Math.abs(next - p) <= 1e-12 * Math.max(p, 1e-300)) break;
    p = next;
  }
  return p;
}

/**
 * For a fixed, known q: the counts c such that "c of n trials succeeded" is still plausible for
 * Bernoulli(q) at every look, as the open range (below, above). P(S_n leaves it at any n) <= alpha.
 */
export function plausibleCountRange(trials: number, q: number, alpha: number): { below: number; above: number } {
  checkAlpha(alpha);
  const threshold = Math.log(1 / alpha);
  const f = (s: number) => logBetaBinomialMartingale(s, trials, q) - threshold;
  const center = Math.min(trials, Math.max(0, Math.round(trials * q)));
  // f is convex in s with its minimum near n*q. Bracket each boundary around a normal-approximation guess
  // (widened until it really brackets), then bisect over whole counts.
  const sd = Math.sqrt(trials * q * (1 - q));
  const reach = Math.ceil(2 * sd * Math.sqrt(2 * threshold + Math.log(trials + 1)) + 1);
  let below = -1;
  if (f(0) >= 0) {
    if (f(center) >= 0) return { below: -1, above: trials + 1 }; // too few trials for any statement
    let hi = center; // f(hi) < 0
    let lo = Math.max(0, center - reach);
    while (lo > 0 && f(lo) < 0) {
      hi = lo;
      lo = Math.max(0, center - 2 * (center - lo));
    }
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (f(mid) >= 0) lo = mid;
      else hi = mid;
    }
    below = lo;
  }
  let above = trials + 1;
  if (f(trials) >= 0) {
    let lo = center; // f(lo) < 0
    let hi = Math.min(trials, center + reach);
    while (hi < trials && f(hi) < 0) {
      lo = hi;
      hi = Math.min(trials, center + 2 * (hi - center));
    }
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (f(mid) >= 0) hi = mid;
      else lo = mid;
    }
    above = hi;
  }
  return { below, above };
}

// ---------------------------------------------------------------------------------------------------------
// Quantiles from cumulative histograms

export interface CumulativeHistogram {
  /** Finite upper bounds, ascending. A bound may be left out when its bucket is empty (step function). */
  bounds: readonly number[];
  /** Observations <= bounds[i]. */
  cumulative: readonly number[];
  /** All observations, the +Inf bucket included. */
  total: number;
}

export interface QuantileInterval extends Interval {
  /**
   * Lower end for the quantile as the histogram can state it, Q~ = the smallest bucket bound b with
   * F(b) >= q (the upper bound of the bucket holding Q): one bucket above `lower`. See below.
   */
  bucketLower: number;
}

/**
 * Always-valid interval for the q-quantile Q from bucket counts only. For a continuous distribution the
 * number of observations <= Q is Binomial(n, q) at every n, so it stays inside plausibleCountRange(n, q)
 * at every look with probability >= 1 - alpha. On that event a bound whose count is at or under `below`
 * lies under Q, and a bound whose count is at or over `above` lies over Q. The interval therefore ends on
 * bucket bounds: it is never narrower than the bucket holding Q (conservative, never optimistic).
 * On the same event, a bound b under Q has F(b) < q, so Q~ (defined above) is at least the next bound:
 * that is `bucketLower`, and `upper` bounds Q~ too. `lower` is 0 and `upper` Infinity when the data
 * cannot place Q on that side yet.
 */
export function quantileConfidenceSequence(histogram: CumulativeHistogram, q: number, alpha: number): QuantileInterval {
  const n = histogram.total;
  const { bounds, cumulative } = histogram;
  const first = bounds.length > 0 ? bounds[0] : 0;
  if (!(n > 0)) return { lower: 0, upper: Infinity, bucketLower: first };
  const { below, above } = plausibleCountRange(n, q, alpha);
  let lower = 0;
  let bucketLower = first;
  let upper = Infinity;
  for (let i = 0; i < bounds.length; i++) {
    if (cumulative[i] <= below) {
      lower = bounds[i];
      bucketLower = i + 1 < bounds.length ? bounds[i + 1] : Infinity;
    }
    if (cumulative[i] >= above) {
      upper = bounds[i];
      break;
    }
  }
  return { lower, upper, bucketLower: Math.min(bucketLower, upper) };
}

// ---------------------------------------------------------------------------------------------------------
// Means of bounded observations

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
  for (let i = 0; i < bounds.length; i++) {
    const inBucket = cumulative[i] - previousCount;
    if (inBucket > 0) {
      low += inBucket * Math.min(max, Math.max(min, previousBound));
      high += inBucket * Math.min(max, Math.max(min, bounds[i]));
    }
    previousBound = bounds[i];
    previousCount = cumulative[i];
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
  for (let i = 0; i < observations.length; i++) {
    const x = Math.min(1, Math.max(0, observations[i]));
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

// ---------------------------------------------------------------------------------------------------------
// Traffic mix

export interface HomogeneityTest {
  statistic: number;
  degreesOfFreedom: number;
  pValue: number;
  /** Total variation distance between the two rows' shares: half the sum of |share_a - share_b|. */
  totalVariation: number;
}

/**
 * Pearson's chi-square test that two count vectors over the same categories come from one distribution.
 * Categories empty in both rows are dropped. A fixed-sample test: see the README for how it is used.
 */
export function chiSquareHomogeneity(a: readonly number[], b: readonly number[]): HomogeneityTest | null {
  const columns: Array<[number, number]> = [];
  for (let i = 0; i < a.length; i++) if (a[i] + b[i] > 0) columns.push([a[i], b[i]]);
  const totalA = columns.reduce((s, [x]) => s + x, 0);
  const totalB = columns.reduce((s, [, y]) => s + y, 0);
  if (columns.length < 2 || totalA === 0 || totalB === 0) return null;
  const total = totalA + totalB;
  let statistic = 0;
  let totalVariation = 0;
  for (const [x, y] of columns) {
    const column = x + y;
    const expectedA = (totalA * column) / total;
    const expectedB = (totalB * column) / total;
    statistic += (x - expectedA) ** 2 / expectedA + (y - expectedB) ** 2 / expectedB;
    totalVariation += Math.abs(x / totalA - y / totalB) / 2;
  }
  const degreesOfFreedom = columns.length - 1;
  return { statistic, degreesOfFreedom, pValue: chiSquareSurvival(statistic, degreesOfFreedom), totalVariation };
}

// ---------------------------------------------------------------------------------------------------------

function checkAlpha(alpha: number): void {
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha ${alpha}: must be between 0 and 1 (exclusive)`);
}
