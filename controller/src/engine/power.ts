/**
 * How many candidate samples a gate needs before its sequence can conclude, from the observed base rates:
 * the minimums shown to the user and used as stage floors (README, "What a stage must show").
 *   pass    samples at which the candidate, at its expected value, would reach a verdict (Passed, or Failed
 *           when it is expected past the limit): the stage's ETA for a gate that must pass.
 *   detect  samples at which a candidate `harmMultiple` times past the gate's allowance would be expected to
 *           fail: the floor a stage waits for before a gate has to pass.
 * "Expected" means the counts a rate would produce on average (s = rate * n), run through the same one-sided
 * mixture the gate uses (sequences.ts), so about half of such candidates conclude earlier, half later.
 * Relative limits split the margin between candidate and stable and take the best split; stable's samples
 * grow with the candidate's at the ratio seen in the window.
 */
import type { LimitKind, Limits } from "./gate-spec.ts";
import { boundedMeanHalfWidth } from "./means.ts";
import { TILTS, type CumulativeHistogram, type Side } from "./sequences.ts";

export interface Needs {
  /** Candidate samples to reach a verdict at the expected value (null: cannot, e.g. exactly at the limit). */
  pass: number | null;
  /** Candidate samples to be expected to fail a candidate at `harm` (null: not defined). */
  detect: number | null;
  /** The harmful value `detect` is about, in the gate's display units (a ratio for maxRatio). */
  harm: number | null;
}

const MAX_SAMPLES = 1e9;
const LOG_K = Math.log(TILTS.length);

/**
 * Smallest n at which n trials with the expected count rate * n make the one-sided mixture against p0
 * reach 1/alpha (Infinity when the rate is on the wrong side of p0). ln M(n) is a log-sum-exp of terms
 * linear in n, so it is convex in n and lies between max_k(n g_k) - ln K and max_k(n g_k): the root is
 * bracketed in closed form, and Newton's method from the right end descends to it without crossing it.
 */
export function binomialSamplesNeeded(rate: number, p0: number, side: Side, alpha: number): number {
  if (!(p0 > 0 && p0 < 1)) return Infinity;
  const r = Math.min(1, Math.max(0, rate));
  if (side === "above" ? r <= p0 : r >= p0) return Infinity;
  const sign = side === "above" ? 1 : -1;
  let gmax = -Infinity;
  let k = 0;
  for (const tilt of TILTS) {
    const theta = sign * tilt;
    const g = theta * r - Math.log1p(p0 * Math.expm1(theta));
    SLOPES[k++] = g;
    if (g > gmax) gmax = g;
  }
  if (!(gmax > 0)) return Infinity;
  const threshold = Math.log(1 / alpha);
  let n = (threshold + LOG_K) / gmax;
  if (n > MAX_SAMPLES) return Infinity;
  for (let i = 0; i < 12; i++) {
    const excess = logMixtureAt(n, gmax) - threshold;
    if (excess <= 1e-9) break;
    n -= excess / derivative;
  }
  const whole = Math.max(1, Math.ceil(n - 1e-9));
  return whole > 1 && logMixtureAt(whole - 1, gmax) >= threshold ? whole - 1 : whole;
}

/** ln sum_k e^(n g_k) - ln K over SLOPES; leaves the derivative (the softmax-weighted mean slope) in `derivative`. */
function logMixtureAt(n: number, gmax: number): number {
  let sum = 0;
  let weighted = 0;
  for (const slope of SLOPES) {
    const e = Math.exp(n * (slope - gmax));
    sum += e;
    weighted += e * slope;
  }
  derivative = weighted / sum;
  return n * gmax + Math.log(sum) - LOG_K;
}

const SLOPES = new Float64Array(TILTS.length);
let derivative = 0;

/**
 * The harmful value a detect floor is about: `multiple` times past the allowance the limit leaves. For rates
 * the allowance of a maximum is the maximum itself (4 x 1% errors = 4%) and of a minimum what it leaves out
 * (4 x 0.5% failing the schema = 2%), so the floor does not move with stable's rate; for relative limits it
 * is the limit's distance from stable's value, and for other absolute limits (milliseconds, means) the
 * distance from stable's value when it is inside the limit (else from zero).
 */
export function harmOf(kind: LimitKind, limit: number, base: number | null, multiple: number, unit: "ratio" | "ms" | ""): number | null {
  const clampRate = (x: number) => (unit === "ratio" ? Math.min(1, Math.max(0, x)) : x);
  switch (kind) {
    case "maximum": {
      const b = unit !== "ratio" && base !== null && base < limit ? base : 0;
      return clampRate(b + multiple * (limit - b));
    }
    case "minimum": {
      const b = unit === "ratio" ? 1 : base !== null && base > limit ? base : null;
      return b === null ? null : clampRate(b - multiple * (b - limit));
    }
    case "maxDelta":
    case "minDelta":
      return base === null ? null : clampRate(base + multiple * limit);
    case "maxRatio":
      return 1 + multiple * (limit - 1);
  }
}

const finite = (n: number) => (Number.isFinite(n) && n <= MAX_SAMPLES ? Math.ceil(n) : null);
function maxNeed(xs: Array<number | null>): number | null {
  let max: number | null = null;
  for (const x of xs) {
    if (x === null) return null;
    max = max === null ? x : Math.max(max, x);
  }
  return max;
}

// ---------------------------------------------------------------------------------------------------------
// Proportions

interface ProportionNeedsInput {
  limits: Limits;
  /** The candidate's expected rate (stable's, shrunk towards the candidate's own as it gathers samples). */
  expected: number;
  /** Stable's rate in the same slice (null: none yet). */
  stable: number | null;
  /** Alpha of the test (a relative limit gives each variant half). */
  alpha: number;
  harmMultiple: number;
  /** Stable samples per candidate sample (for relative limits). */
  stableRatio: number;
  /** Only the detect floor (segment slices never have to pass). */
  detectOnly?: boolean;
}

export function proportionNeeds(input: ProportionNeedsInput): Needs {
  const { limits, expected: x, stable, alpha } = input;
  const pass: Array<number | null> = [];
  const detect: Array<number | null> = [];
  let harm: number | null = null;
  for (const kind of ["maximum", "minimum", "maxDelta", "minDelta"] as const) {
    const limit = limits[kind];
    if (limit === undefined) continue;
    const h = harmOf(kind, limit, stable, input.harmMultiple, "ratio");
    harm ??= h;
    if (kind === "maximum" || kind === "minimum") {
      // Upper bounds decide a maximum, lower bounds a minimum; x past the limit concludes as a failure.
      const passSide: Side = kind === "maximum" ? "below" : "above";
      const failSide: Side = kind === "maximum" ? "above" : "below";
      const inside = kind === "maximum" ? x < limit : x > limit;
      if (!input.detectOnly) pass.push(finite(binomialSamplesNeeded(x, limit, inside ? passSide : failSide, alpha)));
      detect.push(h === null ? null : finite(binomialSamplesNeeded(h, limit, failSide, alpha)));
      continue;
    }
    if (stable === null) {
      pass.push(null);
      detect.push(null);
      continue;
    }
    // candidate - stable <= limit (maxDelta) or >= limit (minDelta): minDelta is maxDelta on failure rates.
    const flip = kind === "minDelta";
    const c = flip ? 1 - x : x;
    const s = flip ? 1 - stable : stable;
    const d = flip ? -limit : limit;
    if (!input.detectOnly) pass.push(differenceNeeds(c, s, d, alpha / 2, input.stableRatio));
    detect.push(h === null ? null : differenceNeeds(flip ? 1 - h : h, s, d, alpha / 2, input.stableRatio));
  }
  return { pass: maxNeed(pass), detect: maxNeed(detect), harm };
}

/**
 * Candidate samples for "c - s <= d" to be shown (c - s < d) or refuted (c - s > d), each variant's end at
 * `alpha`: the margin |c - s - d| is split between the two ends, trying a few splits.
 */
function differenceNeeds(c: number, s: number, d: number, alpha: number, stableRatio: number): number | null {
  const margin = Math.abs(c - s - d);
  if (!(margin > 0)) return null;
  const passing = c - s < d;
  let best = Infinity;
  for (let i = 1; i < 5; i++) {
    const y = (margin * i) / 5;
    // passing: candidate's upper end under c + y, stable's lower end over s - (margin - y); failing: mirrored.
    const nc = binomialSamplesNeeded(c, passing ? c + y : c - y, passing ? "below" : "above", alpha);
    const ns = binomialSamplesNeeded(s, passing ? s - (margin - y) : s + (margin - y), passing ? "above" : "below", alpha);
    best = Math.min(best, Math.max(nc, ns / Math.max(stableRatio, 1e-9)));
  }
  return finite(best);
}

// ---------------------------------------------------------------------------------------------------------
// Quantiles (latency): the candidate modeled as stable's distribution scaled by a factor

/** Empirical CDF with linear interpolation inside buckets (the first bucket starting at 0). */
export function cdfAt(h: CumulativeHistogram, x: number): number {
  if (!(h.total > 0)) return 0;
  let previousBound = 0;
  let previousCount = 0;
  for (const [i, bound] of h.bounds.entries()) {
    const count = h.cumulative[i] ?? previousCount;
    if (x <= bound) {
      const width = bound - previousBound;
      const within = width > 0 ? (x - previousBound) / width : 1;
      return (previousCount + within * (count - previousCount)) / h.total;
    }
    previousBound = bound;
    previousCount = count;
  }
  return previousCount / h.total;
}

interface QuantileNeedsInput {
  limits: Limits;
  q: number;
  /** Stable's histogram in the window (the shape the candidate is modeled on) and its q-quantile (stat units). */
  stable: CumulativeHistogram;
  stableQuantile: number;
  /** The candidate's quantile over stable's as observed (1 when too few candidate samples to say). */
  observedRatio: number;
  alpha: number;
  harmMultiple: number;
  stableRatio: number;
  /** Only the detect floor (segment slices never have to pass). */
  detectOnly?: boolean;
  /**
   * A latency gate's tolerance_ms, in stat units: a regression of at most this much never fails and is enough
   * to pass (judge.ts), so at this quantile the ratio limit is in effect the larger of maxRatio and 1 + tolerance / Q.
   */
  tolerance?: number;
}

export function quantileNeeds(input: QuantileNeedsInput): Needs {
  const { limits, q, stable: H, stableQuantile: Q, alpha } = input;
  if (!(Q > 0)) return { pass: null, detect: null, harm: null };
  const pass: Array<number | null> = [];
  const detect: Array<number | null> = [];
  let harm: number | null = null;
  if (limits.maxRatio !== undefined) {
    // Without the tolerance, a 2 ms tolerance on a 5 ms p95 would leave a "harm" of 40% (+2 ms) that can never
    // fail, and a floor of tens of thousands of samples that waits for it.
    const r = Math.max(limits.maxRatio, 1 + (input.tolerance ?? 0) / Q);
    const h = 1 + input.harmMultiple * (r - 1);
    harm = h;
    if (!input.detectOnly) pass.push(ratioNeeds(H, Q, q, input.observedRatio, r, alpha / 2, input.stableRatio));
    detect.push(ratioNeeds(H, Q, q, h, r, alpha / 2, input.stableRatio));
  }
  if (limits.maximum !== undefined) {
    const m = limits.maximum;
    // The candidate at `scale` times stable's distribution: its F at the limit is F(m / scale).
    const scale = input.observedRatio;
    const inside = Q * scale < m;
    if (!input.detectOnly) pass.push(finite(binomialSamplesNeeded(cdfAt(H, m / scale), q, inside ? "above" : "below", alpha)));
    const h = harmOf("maximum", m, Q, input.harmMultiple, "ms");
    harm ??= h === null ? null : h;
    detect.push(h === null ? null : finite(binomialSamplesNeeded(cdfAt(H, (m * Q) / h), q, "below", alpha)));
  }
  return { pass: maxNeed(pass), detect: maxNeed(detect), harm };
}

/**
 * Candidate samples for "candidate quantile <= r x stable's" to be decided when the candidate is stable's
 * distribution scaled by k: split the log-distance between the two quantiles' ends at a point a.
 */
function ratioNeeds(H: CumulativeHistogram, Q: number, q: number, k: number, r: number, alpha: number, stableRatio: number): number | null {
  if (Math.abs(Math.log(k / r)) < 1e-9) return null;
  const passing = k < r;
  let best = Infinity;
  for (let i = 1; i < 6; i++) {
    let nc: number;
    let ns: number;
    if (passing) {
      // candidate's upper end under Q*a (F_c(Qa) = F(Qa/k) >= q shown), stable's lower end over Q*a/r.
      const a = k * (r / k) ** (i / 6);
      nc = binomialSamplesNeeded(cdfAt(H, (Q * a) / k), q, "above", alpha);
      ns = binomialSamplesNeeded(cdfAt(H, (Q * a) / r), q, "below", alpha);
    } else {
      // stable's upper end under Q*a, candidate's lower end over r*Q*a.
      const a = (k / r) ** (i / 6);
      ns = binomialSamplesNeeded(cdfAt(H, Q * a), q, "above", alpha);
      nc = binomialSamplesNeeded(cdfAt(H, (r * Q * a) / k), q, "below", alpha);
    }
    best = Math.min(best, Math.max(nc, ns / Math.max(stableRatio, 1e-9)));
  }
  return finite(best);
}

// ---------------------------------------------------------------------------------------------------------
// Means of bounded observations

interface MeanNeedsInput {
  limits: Limits;
  /** Point estimates (display units) and the observation range's width (display units). */
  candidate: number;
  stable: number | null;
  width: number;
  alpha: number;
  harmMultiple: number;
  stableRatio: number;
}

export function meanNeeds(input: MeanNeedsInput): Needs {
  const { limits, candidate: c, stable: s, width, alpha } = input;
  const pass: Array<number | null> = [];
  const detect: Array<number | null> = [];
  let harm: number | null = null;
  const relative = (limit: number, value: number) =>
    smallestN((n) => boundedMeanHalfWidth(n, width, alpha / 2) + boundedMeanHalfWidth(Math.max(1, n * input.stableRatio), width, alpha / 2) < limit - value);
  for (const kind of ["maximum", "minimum", "maxDelta", "minDelta"] as const) {
    const limit = limits[kind];
    if (limit === undefined) continue;
    const h = harmOf(kind, limit, s, input.harmMultiple, "");
    harm ??= h;
    if (kind === "maximum" || kind === "minimum") {
      const sign = kind === "maximum" ? 1 : -1;
      pass.push(smallestN((n) => boundedMeanHalfWidth(n, width, alpha) < Math.abs(limit - c)));
      detect.push(h === null ? null : smallestN((n) => boundedMeanHalfWidth(n, width, alpha) < sign * (h - limit)));
      continue;
    }
    if (s === null) {
      pass.push(null);
      detect.push(null);
      continue;
    }
    const sign = kind === "maxDelta" ? 1 : -1;
    pass.push(relative(sign * limit, sign * (c - s)) ?? smallestN((n) => boundedMeanHalfWidth(n, width, alpha / 2) * 2 < Math.abs(c - s - limit)));
    detect.push(
      smallestN(
        (n) =>
          boundedMeanHalfWidth(n, width, alpha / 2) + boundedMeanHalfWidth(Math.max(1, n * input.stableRatio), width, alpha / 2) <
          (input.harmMultiple - 1) * Math.abs(limit),
      ),
    );
  }
  return { pass: maxNeed(pass), detect: maxNeed(detect), harm };
}

function smallestN(enough: (n: number) => boolean): number | null {
  let hi = 1;
  while (!enough(hi)) {
    hi *= 2;
    if (hi > MAX_SAMPLES) return null;
  }
  let lo = hi / 2;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (enough(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}
