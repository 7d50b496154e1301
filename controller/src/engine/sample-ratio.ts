/**
 * Sample-ratio mismatch: in a canary stage, the requests each variant answered over the stage's window against
 * the split the weights set (Pearson's chi-square goodness of fit, as GrowthBook checks its experiments). A
 * sticky key that is not random, retries that go back to one side, or a route that sends some canary-bucket
 * users to stable skew the split silently; every gate then compares biased groups. A mismatch holds the stage
 * (no promotion, no rollback by itself) until it clears or an operator acts.
 *
 * The unit counted is the request: with a sticky key the filter splits users, and a few users sending much
 * more than the others move the request share too. The strict threshold (p < 0.001 by default) and the
 * minimum sample keep that and chance from holding a healthy stage; `p: 0` turns the check off.
 */
import { OVERALL, requestsOf, type CountsSnapshot } from "./counts.ts";
import { chiSquareSurvival } from "./special.ts";
import type { Hold } from "./state.ts";

export interface SampleRatioPolicy {
  /** A p-value below this is a mismatch; 0 turns the check off. */
  p: number;
  /** The window's requests (stable + canary) before the check speaks. */
  minRequests: number;
}

export const DEFAULT_SAMPLE_RATIO: SampleRatioPolicy = { p: 0.001, minRequests: 200 };

/** Below this expected count per variant the chi-square approximation is not trusted (the usual rule of five). */
const MIN_EXPECTED = 5;

export interface GoodnessOfFit {
  statistic: number;
  degreesOfFreedom: number;
  pValue: number;
  expected: number[];
}

/** Pearson's chi-square of observed counts against expected shares (summing to 1); null for no counts. */
export function chiSquareGoodnessOfFit(observed: readonly number[], shares: readonly number[]): GoodnessOfFit | null {
  const total = observed.reduce((s, x) => s + x, 0);
  if (total <= 0 || observed.length < 2) return null;
  const expected = shares.map((share) => share * total);
  let statistic = 0;
  for (const [i, x] of observed.entries()) {
    const e = expected[i] ?? 0;
    if (e <= 0) {
      // A variant the weights send nothing to: any request there is a mismatch beyond statistics.
      if (x > 0) return { statistic: Infinity, degreesOfFreedom: observed.length - 1, pValue: 0, expected };
      continue;
    }
    statistic += (x - e) ** 2 / e;
  }
  const degreesOfFreedom = observed.length - 1;
  return { statistic, degreesOfFreedom, pValue: chiSquareSurvival(statistic, degreesOfFreedom), expected };
}

export interface SampleRatioResult {
  /** "passed": the split matches; "mismatch": it does not (holds); "notEnoughData": too few requests to tell. */
  status: "passed" | "mismatch" | "notEnoughData";
  observed: { stable: number; canary: number };
  expected: { stable: number; canary: number };
  setCanaryPercent: number;
  observedCanaryPercent: number | null;
  statistic: number | null;
  pValue: number | null;
  policy: SampleRatioPolicy;
  text: string;
}

/** The check over a canary stage's window; null when it does not apply (shadow stage, 0 or 100%, turned off). */
export function checkSampleRatio(window: CountsSnapshot | null, canaryPercent: number, policy: SampleRatioPolicy): SampleRatioResult | null {
  if (!window || !(policy.p > 0) || !(canaryPercent > 0 && canaryPercent < 100)) return null;
  const overall = window.slices[OVERALL];
  const stable = requestsOf(overall?.stable);
  const canary = requestsOf(overall?.canary);
  const total = stable + canary;
  const share = canaryPercent / 100;
  const expected = { stable: total * (1 - share), canary: total * share };
  const observedCanaryPercent = total > 0 ? (100 * canary) / total : null;
  const base = { observed: { stable, canary }, expected, setCanaryPercent: canaryPercent, observedCanaryPercent, policy };
  if (total < policy.minRequests || expected.stable < MIN_EXPECTED || expected.canary < MIN_EXPECTED) {
    const text = `sample ratio: ${total} requests in the window, the check needs ${policy.minRequests} and ${MIN_EXPECTED} expected per variant`;
    return { ...base, status: "notEnoughData", statistic: null, pValue: null, text };
  }
  const fit = chiSquareGoodnessOfFit([stable, canary], [1 - share, share]);
  const statistic = fit?.statistic ?? 0;
  const pValue = fit?.pValue ?? 1;
  const mismatch = pValue < policy.p;
  const counts = `canary ${canary} of ${total} requests (${fmt(observedCanaryPercent ?? 0)}%), expected ${fmt(expected.canary)} (${fmt(canaryPercent)}%); stable ${stable}, expected ${fmt(expected.stable)}; chi-square ${fmt(statistic)}, p = ${pValue.toPrecision(2)}`;
  const text = mismatch
    ? `sample ratio mismatch: ${counts} < ${policy.p}: the split is not the set weight (a sticky key that is not random, retries, or a route that sends some users elsewhere), so the gates compare biased groups; holding until it clears or an operator acts`
    : `sample ratio: ${counts} (matches at p >= ${policy.p})`;
  return { ...base, status: mismatch ? "mismatch" : "passed", statistic: Number.isFinite(statistic) ? statistic : null, pValue, text };
}

export function sampleRatioHold(result: SampleRatioResult | null): Hold | null {
  if (result?.status !== "mismatch") return null;
  return { key: "sampleRatio", text: result.text, gate: null, segment: null, samples: null, needed: null, seconds: null };
}

function fmt(x: number): string {
  return Number.isFinite(x) ? String(Math.round(x * 100) / 100) : String(x);
}
