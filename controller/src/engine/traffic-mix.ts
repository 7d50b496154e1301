/**
 * Like-for-like check: the candidate's traffic should be spread over segment values as stable's is. If
 * the canary got mostly "free" tenants, "canary as good as stable" says little about enterprise tenants.
 * Per dimension, Pearson's chi-square on requests per value (candidate vs stable) in the stage's window.
 * It is a fixed-sample test looked at every tick, so alone it would warn on noise eventually; a warning
 * therefore also needs the shares to differ by at least `minDifference` in total variation distance (the
 * share of traffic that would have to move), which noise at these sample sizes does not reach. It never
 * rolls back; with holdOnMismatch it holds the stage.
 */
import { requestsOf, sliceKey, type CountsSnapshot } from "./counts.ts";
import { chiSquareHomogeneity } from "./statistics.ts";

export interface TrafficMixResult {
  dimension: string;
  /** Share of the window's requests per value, each variant summing to 1. */
  stableShares: Record<string, number>;
  candidateShares: Record<string, number>;
  requests: { stable: number; candidate: number };
  pValue: number | null;
  totalVariation: number | null;
  mismatch: boolean;
  reason: string;
}

interface TrafficMixSettings {
  alpha: number;
  minDifference: number;
}

export function evaluateTrafficMix(
  window: CountsSnapshot,
  segments: ReadonlyArray<{ dimension: string; values: readonly string[] }>,
  candidate: "canary" | "shadow",
  settings: TrafficMixSettings,
): TrafficMixResult[] {
  return segments.map(({ dimension, values }) => {
    const stable = values.map((value) => requestsOf(window.slices[sliceKey({ dimension, value })]?.stable));
    const cand = values.map((value) => requestsOf(window.slices[sliceKey({ dimension, value })]?.[candidate]));
    const shares = (counts: number[]) => {
      const total = counts.reduce((a, b) => a + b, 0);
      return Object.fromEntries(values.map((v, i) => [v, total > 0 ? (counts[i] ?? 0) / total : 0]));
    };
    const test = chiSquareHomogeneity(stable, cand);
    const requests = { stable: stable.reduce((a, b) => a + b, 0), candidate: cand.reduce((a, b) => a + b, 0) };
    const mismatch = test !== null && test.pValue < settings.alpha && test.totalVariation >= settings.minDifference;
    const pct = (x: number) => `${Math.round(x * 100)}%`;
    const describe = (s: Record<string, number>) => values.map((v) => `${v} ${pct(s[v] ?? 0)}`).join(", ");
    const reason = !test
      ? `${dimension}: not enough traffic to compare mixes`
      : `${dimension}: ${candidate} mix (${describe(shares(cand))}) ${mismatch ? "differs from" : "matches"} stable's (${describe(shares(stable))}); ` +
        `${pct(test.totalVariation)} of traffic would have to move, chi-square p=${test.pValue.toPrecision(2)}`;
    return {
      dimension,
      stableShares: shares(stable),
      candidateShares: shares(cand),
      requests,
      pValue: test?.pValue ?? null,
      totalVariation: test?.totalVariation ?? null,
      mismatch,
      reason,
    };
  });
}
