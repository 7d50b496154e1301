/**
 * Special functions the statistics need (log-gamma, the chi-square tail) and Pearson's homogeneity test the
 * traffic-mix check uses. Pure numerics, no engine types.
 */

const HALF_LOG_TWO_PI = 0.5 * Math.log(2 * Math.PI);
// The Lanczos coefficients: c0, then c1..c8 (each over z + i).
const LANCZOS_C0 = 0.99999999999980993;
const LANCZOS = [
  676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
  1.5056327351493116e-7,
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
  let a = LANCZOS_C0;
  const t = z + 7.5;
  for (const [k, c] of LANCZOS.entries()) a += c / (z + k + 1);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Regularized upper incomplete gamma Q(s, x) = Γ(s, x) / Γ(s): the chi-square survival function at 2x, 2s. */
function upperRegularizedGamma(s: number, x: number): number {
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
// Traffic mix

interface HomogeneityTest {
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
  for (const [i, x] of a.entries()) {
    const y = b[i] ?? 0;
    if (x + y > 0) columns.push([x, y]);
  }
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

export function checkAlpha(alpha: number): void {
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha ${alpha}: must be between 0 and 1 (exclusive)`);
}
