/**
 * The rollback reason: which slice to blame. A fault that hits every segment alike fails its smallest slices
 * by chance as early as the large ones (a few early errors in a small slice are enough), so a segment value
 * is named as the cause only when the evidence says it differs from the rest of the traffic: the candidate's
 * bad outcomes fall into it more often than its share explains (a conditional binomial test, p < 0.01),
 * and more so than stable's do (a segment that is worse for both models is not the candidate's fault), while
 * the rest of the traffic looks within the limit.
 * When all traffic failed, or the rest of the traffic is past the limit too, the reason says "worse overall"
 * and lists the failing slices; when a segment failed first and the rest cannot tell yet, it says so.
 * This test runs once, when the rollback is already decided: it is not part of the false-alarm budget (for a
 * fault hitting every value alike it names one as the cause in about 1 rollback in 100 per value).
 */
import { cumulativeQuantile } from "../metrics/histogram.ts";
import { histogramDelta, OVERALL, sliceKey, sumCounters, type CountsSnapshot, type HistogramSnapshot, type SliceSnapshot } from "./counts.ts";
import type { GateSpec, QuantileGate } from "./gate-spec.ts";
import { formatValue, segmentLabel, type Measurement } from "./measurement.ts";
import { cdfAt } from "./power.ts";
import { logGamma } from "./special.ts";

const ATTRIBUTION_ALPHA = 0.01;

interface AttributionContext {
  gates: readonly GateSpec[];
  window: CountsSnapshot | null;
  /** Counters over the rollout so far (for measurements whose scope is the rollout). */
  accumulated: CountsSnapshot | null;
}

interface RestComparison {
  differs: boolean;
  /** The candidate's value on the rest of the traffic (display units), when it could be computed. */
  rest: number | null;
  /** The rest of the traffic's point estimate is past the same limit too (the fault points the same way). */
  restPast: boolean;
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
    // A cluster in the slice that crossed first can look significant on its own; the rest of the traffic
    // must also look within the limit.
    if (comparison.differs && !comparison.restPast) {
      const rest = comparison.rest === null ? "" : `; the rest of the traffic: ${formatValue(comparison.rest, m.unit)}`;
      return `${candidate} worse for ${segmentLabel(m.segment)}: ${m.reason}${rest}${listed(m)}`;
    }
  }
  const worst = sorted[0];
  if (worst === undefined) return `${candidate}: rolled back without a failed measurement`;
  const overall = sorted.find((m) => m.segment === null && m.gate === worst.gate) ?? sorted.find((m) => m.segment === null);
  if (overall) return `${candidate} worse overall: ${overall.reason}${listed(overall)}`;
  // Only segment slices failed, none shown to differ from the rest.
  const comparison = compareWithRest(worst, ctx);
  const where = segmentLabel(worst.segment);
  const rest = comparison.rest === null ? "" : `: ${formatValue(comparison.rest, worst.unit)} there`;
  const failing = `; failing slices: ${labels.slice(0, 8).join(", ")}`;
  if (comparison.restPast) {
    // A fault of the whole traffic, seen first where an early cluster happened to fall.
    return `${candidate} worse overall (first shown on ${where}; the rest of the traffic points the same way${rest}): ${where} ${worst.reason}${failing}`;
  }
  return `${candidate} worse on ${where}, not yet shown to be specific to it (too few requests elsewhere to tell; the rest of the traffic${rest}): ${worst.reason}${failing}`;
}

/** Does the candidate do worse on this segment value than on the rest of its traffic (and more so than stable)? */
export function compareWithRest(m: Measurement, ctx: AttributionContext): RestComparison {
  const gate = ctx.gates.find((g) => g.name === m.gate);
  const segment = m.segment;
  const counts = m.scope === "rollout" ? (ctx.accumulated ?? ctx.window) : ctx.window;
  const none = { differs: false, rest: null, restPast: false };
  if (!gate || !segment || !counts) return none;
  const here = counts.slices[sliceKey(segment)];
  const all = counts.slices[OVERALL];
  if (!here || !all) return none;
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
    const stableRest = { n: sa.n - st.n, bad: sa.bad - st.bad };
    const stableRestValue = stableRest.n > 0 ? (higherIsWorse ? stableRest.bad : stableRest.n - stableRest.bad) / stableRest.n : null;
    return { differs: differs(c, rest, st, stableRest), rest: restValue, restPast: pastLimit(m.threshold, restValue, stableRestValue) };
  }
  if (gate.kind === "quantile") return compareQuantile(gate, here, all, m);
  return none;
}

/** Latency: observations above the limit's threshold (r x stable's quantile, or the maximum), here vs the rest. */
function compareQuantile(
  gate: QuantileGate,
  here: Partial<Record<string, SliceSnapshot>>,
  all: Partial<Record<string, SliceSnapshot>>,
  m: Measurement,
): RestComparison {
  const candidate = m.candidate;
  const h = (slice: SliceSnapshot | undefined) => slice?.histograms[gate.histogram];
  const stableAll = h(all.stable);
  const q = stableAll && stableAll.total > 0 ? cumulativeQuantile(stableAll, gate.quantile) : null;
  const threshold = gate.limits.maxRatio !== undefined && q !== null ? gate.limits.maxRatio * q : gate.limits.maximum;
  if (threshold === undefined) return { differs: false, rest: null, restPast: false };
  const tally = (x: HistogramSnapshot | undefined) => ({ n: x?.total ?? 0, bad: x && x.total > 0 ? Math.round(x.total * (1 - cdfAt(x, threshold))) : 0 });
  const restOf = (a: HistogramSnapshot | undefined, b: HistogramSnapshot | undefined) => (a && b ? (histogramDelta(a, b) ?? undefined) : a);
  const cRestH = restOf(h(all[candidate]), h(here[candidate]));
  const c = tally(h(here[candidate]));
  const cRest = tally(cRestH);
  const sRestH = restOf(h(all.stable), h(here.stable));
  const quantileOf = (x: HistogramSnapshot | undefined) => (x && x.total > 0 ? cumulativeQuantile(x, gate.quantile) : null);
  const restQuantile = quantileOf(cRestH);
  const stableRestQuantile = quantileOf(sRestH);
  const display = (x: number | null) => (x === null ? null : x / gate.displayScale);
  return {
    differs: differs(c, cRest, tally(h(here.stable)), tally(sRestH)),
    rest: display(restQuantile),
    restPast: pastLimit(m.threshold, display(restQuantile), display(stableRestQuantile)),
  };
}

/** Is `value` (with stable's `stableValue` for relative limits) past the limit? Display units. */
function pastLimit(threshold: Measurement["threshold"], value: number | null, stableValue: number | null): boolean {
  if (!threshold || value === null) return false;
  switch (threshold.kind) {
    case "maximum":
      return value > threshold.value;
    case "minimum":
      return value < threshold.value;
    case "maxDelta":
      return stableValue !== null && value - stableValue > threshold.value;
    case "minDelta":
      return stableValue !== null && value - stableValue < threshold.value;
    case "maxRatio":
      return stableValue !== null && stableValue > 0 && value / stableValue > threshold.value;
  }
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
  const odds = (t: Tally, u: Tally) => (t.bad + 0.5) / (t.n - t.bad + 0.5) / ((u.bad + 0.5) / (u.n - u.bad + 0.5));
  return odds(c, cRest) > 1.5 * odds(s, sRest);
}

/** P(X >= k) for X ~ Binomial(n, p). */
function binomialUpperTail(k: number, n: number, p: number): number {
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
