/**
 * The rollback reason: which slice to blame. A fault that hits every segment alike fails its smallest slices
 * by chance as early as the large ones (a few early errors in a small slice are enough), so a segment value
 * is named as the cause only when the evidence says it differs from the rest of the traffic: the candidate's
 * bad outcomes fall into it more often than its share explains (a conditional binomial test, p < 0.001),
 * and more so than stable's do (a segment that is worse for both models is not the candidate's fault).
 * Otherwise the reason says "worse overall" and lists the failing slices.
 * This test runs once, when the rollback is already decided: it is not part of the false-alarm budget.
 */
import { histogramDelta, OVERALL, sliceKey, snapshotQuantile, sumCounters, type CountsSnapshot, type HistogramSnapshot, type SliceSnapshot } from "./counts.ts";
import type { GateSpec, QuantileGate } from "./gate-spec.ts";
import { formatValue, segmentLabel, type Measurement } from "./measurement.ts";
import { cdfAt } from "./power.ts";
import { logGamma } from "./special.ts";

export const ATTRIBUTION_ALPHA = 0.001;

export interface AttributionContext {
  gates: readonly GateSpec[];
  window: CountsSnapshot | null;
  /** Counters over the rollout so far (for measurements whose scope is the rollout). */
  accumulated: CountsSnapshot | null;
}

export interface RestComparison {
  differs: boolean;
  /** The candidate's value on the rest of the traffic (display units), when it could be computed. */
  rest: number | null;
}

export function rollbackReason(failed: Measurement[], candidate: "canary" | "shadow", ctx: AttributionContext): string {
  const sorted = [...failed].sort((a, b) => b.severity - a.severity);
  const labels = sorted.map((m) => `${m.gate} ${segmentLabel(m.segment)}`);
  const listed = (exclude: Measurement) => {
    const others = sorted.filter((m) => m !== exclude).map((m) => `${m.gate} ${segmentLabel(m.segment)}`);
    return others.length > 0 ? `; also failing: ${others.slice(0, 8).join(", ")}${others.length > 8 ? `, +${others.length - 8} more` : ""}` : "";
  };
  for (const m of sorted) {
    if (m.segment === null) continue;
    const comparison = compareWithRest(m, ctx);
    if (comparison.differs) {
      const rest = comparison.rest === null ? "" : `; the rest of the traffic: ${formatValue(comparison.rest, m.unit)}`;
      return `${candidate} worse for ${segmentLabel(m.segment)}: ${m.reason}${rest}${listed(m)}`;
    }
  }
  const worst = sorted[0];
  const overall = sorted.find((m) => m.segment === null && m.gate === worst.gate) ?? sorted.find((m) => m.segment === null);
  if (overall) return `${candidate} worse overall: ${overall.reason}${listed(overall)}`;
  const comparison = compareWithRest(worst, ctx);
  const rest = comparison.rest === null ? "" : ` (${formatValue(comparison.rest, worst.unit)} on the rest of the traffic)`;
  return (
    `${candidate} worse overall: ${worst.reason}; first shown on ${segmentLabel(worst.segment)}, which does not differ from the rest of the traffic${rest}` +
    `; failing slices: ${labels.slice(0, 8).join(", ")}`
  );
}

/** Does the candidate do worse on this segment value than on the rest of its traffic (and more so than stable)? */
export function compareWithRest(m: Measurement, ctx: AttributionContext): RestComparison {
  const gate = ctx.gates.find((g) => g.name === m.gate);
  const segment = m.segment;
  const counts = m.scope === "rollout" ? ctx.accumulated ?? ctx.window : ctx.window;
  if (!gate || !segment || !counts) return { differs: false, rest: null };
  const here = counts.slices[sliceKey(segment)];
  const all = counts.slices[OVERALL];
  if (!here || !all) return { differs: false, rest: null };
  const variant = gate.kind === "proportion" && gate.variant === "shadow" ? "shadow" : m.candidate;
  if (gate.kind === "proportion") {
    // Bad outcomes: the numerator under a maximum, the rest of the denominator under a minimum.
    const higherIsWorse = gate.limits.maximum !== undefined || gate.limits.maxDelta !== undefined;
    const tally = (slice: SliceSnapshot | undefined) => {
      const n = sumCounters(slice, gate.denominator);
      const s = sumCounters(slice, gate.numerator);
      return { n, bad: higherIsWorse ? s : n - s, value: n > 0 ? s / n : null };
    };
    const c = tally(here[variant]);
    const ca = tally(all[variant]);
    const rest = { n: ca.n - c.n, bad: ca.bad - c.bad };
    const restValue = rest.n > 0 ? (higherIsWorse ? rest.bad : rest.n - rest.bad) / rest.n : null;
    const st = tally(here.stable);
    const sa = tally(all.stable);
    return { differs: differs(c, rest, st, { n: sa.n - st.n, bad: sa.bad - st.bad }), rest: restValue };
  }
  if (gate.kind === "quantile") return compareQuantile(gate, here, all, m.candidate);
  return { differs: false, rest: null };
}

/** Latency: observations above the limit's threshold (r x stable's quantile, or the maximum), here vs the rest. */
function compareQuantile(gate: QuantileGate, here: Partial<Record<string, SliceSnapshot>>, all: Partial<Record<string, SliceSnapshot>>, candidate: string): RestComparison {
  const h = (slice: SliceSnapshot | undefined) => slice?.histograms[gate.histogram];
  const stableAll = h(all.stable);
  const q = stableAll && stableAll.total > 0 ? snapshotQuantile(stableAll, gate.quantile) : null;
  const threshold = gate.limits.maxRatio !== undefined && q !== null ? gate.limits.maxRatio * q : gate.limits.maximum;
  if (threshold === undefined) return { differs: false, rest: null };
  const tally = (x: HistogramSnapshot | undefined) => ({ n: x?.total ?? 0, bad: x && x.total > 0 ? Math.round(x.total * (1 - cdfAt(x, threshold))) : 0 });
  const restOf = (a: HistogramSnapshot | undefined, b: HistogramSnapshot | undefined) => (a && b ? histogramDelta(a, b) ?? undefined : a);
  const cRestH = restOf(h(all[candidate]), h(here[candidate]));
  const c = tally(h(here[candidate]));
  const cRest = tally(cRestH);
  const restQuantile = cRestH && cRestH.total > 0 ? snapshotQuantile(cRestH, gate.quantile) : null;
  return {
    differs: differs(c, cRest, tally(h(here.stable)), tally(restOf(h(all.stable), h(here.stable)))),
    rest: restQuantile === null ? null : restQuantile / gate.displayScale,
  };
}

interface Tally {
  n: number;
  bad: number;
}

function differs(c: Tally, cRest: Tally, s: Tally, sRest: Tally): boolean {
  // Without traffic elsewhere the segment is all there is: that is "overall".
  if (c.n === 0 || cRest.n === 0) return false;
  // Given the candidate's bad outcomes, how likely is it that this many fell here by its share of requests?
  const p = binomialUpperTail(c.bad, c.bad + cRest.bad, c.n / (c.n + cRest.n));
  if (!(p < ATTRIBUTION_ALPHA)) return false;
  if (s.n === 0 || sRest.n === 0) return true;
  // Stable's odds of a bad outcome here vs elsewhere: the candidate's must be clearly larger.
  const odds = (t: Tally, u: Tally) => ((t.bad + 0.5) / (t.n - t.bad + 0.5)) / ((u.bad + 0.5) / (u.n - u.bad + 0.5));
  return odds(c, cRest) > 1.5 * odds(s, sRest);
}

/** P(X >= k) for X ~ Binomial(n, p). */
export function binomialUpperTail(k: number, n: number, p: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  const lp = Math.log(p);
  const lq = Math.log1p(-p);
  const logTerm = (i: number) => logGamma(n + 1) - logGamma(i + 1) - logGamma(n - i + 1) + i * lp + (n - i) * lq;
  let max = -Infinity;
  const terms: number[] = [];
  for (let i = k; i <= n; i++) {
    const t = logTerm(i);
    terms.push(t);
    if (t > max) max = t;
    if (t < max - 40) break; // the remaining terms only shrink (past the mode)
  }
  let sum = 0;
  for (const t of terms) sum += Math.exp(t - max);
  return Math.min(1, Math.exp(max + Math.log(sum)));
}
