/**
 * Turning intervals into a verdict. A limit is Failed only when the whole always-valid interval is past
 * it, Passed only when the whole interval is within it; anything else is Inconclusive.
 */
import type { LimitKind, Limits } from "./gate-spec.ts";
import { MeasurementStatus, formatInterval, formatValue, type Measurement } from "./measurement.ts";
import type { Interval } from "./sequences.ts";

interface LimitVerdict {
  status: MeasurementStatus.Passed | MeasurementStatus.Failed | MeasurementStatus.Inconclusive;
  decisive: { kind: LimitKind; value: number } | null;
  comparison?: Interval;
}

const ORDER: LimitKind[] = ["maximum", "minimum", "maxDelta", "minDelta", "maxRatio"];

/**
 * All limits in display units; `stable` is needed only for the relative ones (callers drop those without it).
 * `tolerance` (display units, latency gates): a maxRatio limit also holds while candidate - stable is at most
 * this, so it fails only when the candidate is shown both past the ratio and more than `tolerance` above
 * stable, and passes when either is shown within.
 */
export function judgeLimits(limits: Limits, candidate: Interval, stable: Interval | null, tolerance = 0): LimitVerdict {
  let firstOpen: { kind: LimitKind; value: number } | null = null;
  let first: { kind: LimitKind; value: number } | null = null;
  let comparison: Interval | undefined;
  for (const kind of ORDER) {
    const value = limits[kind];
    if (value === undefined) continue;
    first ??= { kind, value };
    let fail = false;
    let pass = false;
    switch (kind) {
      case "maximum":
        fail = candidate.lower > value;
        pass = candidate.upper <= value;
        break;
      case "minimum":
        fail = candidate.upper < value;
        pass = candidate.lower >= value;
        break;
      case "maxDelta":
      case "minDelta": {
        if (!stable) continue;
        const diff = { lower: candidate.lower - stable.upper, upper: candidate.upper - stable.lower };
        comparison = diff;
        if (kind === "maxDelta") {
          fail = diff.lower > value;
          pass = candidate.upper - (stable.passLower ?? stable.lower) <= value;
        } else {
          fail = diff.upper < value;
          pass = diff.lower >= value;
        }
        break;
      }
      case "maxRatio": {
        if (!stable) continue;
        // Histogram quantiles are compared as the histogram states them, both ways (README, Gate statistics).
        const stableLower = stable.passLower ?? stable.lower;
        const candidateLower = candidate.passLower ?? candidate.lower;
        const ratio = {
          lower: stable.upper === Infinity ? 0 : stable.upper > 0 ? candidateLower / stable.upper : Infinity,
          upper: stableLower > 0 ? candidate.upper / stableLower : Infinity,
        };
        comparison = ratio;
        fail = ratio.lower > value;
        pass = ratio.upper <= value;
        if (tolerance > 0) {
          fail = fail && candidate.lower - stable.upper > tolerance;
          pass = pass || candidate.upper - stableLower <= tolerance;
        }
        break;
      }
    }
    if (fail) return { status: MeasurementStatus.Failed, decisive: { kind, value }, comparison };
    if (!pass) firstOpen ??= { kind, value };
  }
  if (firstOpen) return { status: MeasurementStatus.Inconclusive, decisive: firstOpen, comparison };
  return { status: MeasurementStatus.Passed, decisive: first, comparison };
}

/** How far the point estimates are past the limit, relative to it: ranks Failed slices, worst first. */
export function severityOf(kind: LimitKind, limit: number, candidate: number | null, stable: number | null, unit: Measurement["unit"]): number {
  if (candidate === null) return 0;
  const scale = (x: number) => Math.max(Math.abs(x), 1e-9);
  switch (kind) {
    case "maximum":
      return limit === 0 ? candidate : (candidate - limit) / scale(limit);
    case "minimum":
      return unit === "ratio" ? (limit - candidate) / scale(1 - limit) : (limit - candidate) / scale(limit);
    case "maxDelta":
      return stable === null ? 0 : (candidate - stable - limit) / scale(limit);
    case "minDelta":
      return stable === null ? 0 : (limit - (candidate - stable)) / scale(limit);
    case "maxRatio":
      return stable === null || stable <= 0 ? 0 : candidate / stable / limit - 1;
  }
}

export function describeLimit(kind: LimitKind, value: number, unit: Measurement["unit"], tolerance?: number): string {
  switch (kind) {
    case "maximum":
      return `maximum ${formatValue(value, unit)}`;
    case "minimum":
      return `minimum ${formatValue(value, unit)}`;
    case "maxDelta":
      return `at most ${signed(value, unit)} vs stable`;
    case "minDelta":
      return `at least ${signed(value, unit)} vs stable`;
    case "maxRatio":
      return tolerance
        ? `at most ${trimPercent((value - 1) * 100)}% or ${formatValue(tolerance, unit)} above stable`
        : `at most ${trimPercent((value - 1) * 100)}% above stable`;
  }
}

function signed(value: number, unit: Measurement["unit"]): string {
  return `${value >= 0 ? "+" : "-"}${formatValue(Math.abs(value), unit)}`;
}

function trimPercent(x: number): string {
  return Number(x.toFixed(2)).toString();
}

/**
 * "error rate 4.1% vs 0.3% (maximum 1%; 99.99% interval for the canary [3.0%, 5.5%]; 1204 vs 98012)"
 * The head names the candidate's value first, as the rollback reason reads it.
 */
export function describeMeasurement(m: Omit<Measurement, "reason" | "severity">, label: string): string {
  const values = `${label} ${formatValue(m.candidateValue, m.unit)} vs ${formatValue(m.stableValue, m.unit)}`;
  const limit = m.threshold ? describeLimit(m.threshold.kind, m.threshold.value, m.unit, m.threshold.tolerance) : "no limit";
  const level = m.confidence === null ? "" : `${trimPercent(m.confidence * 100)}% `;
  const interval =
    m.threshold && (m.threshold.kind === "maxRatio" || m.threshold.kind === "maxDelta" || m.threshold.kind === "minDelta") && m.intervals.comparison
      ? `${level}interval for ${m.threshold.kind === "maxRatio" ? `${m.candidate}/stable` : `${m.candidate} - stable`} ${
          m.threshold.kind === "maxRatio" ? formatInterval(m.intervals.comparison, "") : formatInterval(m.intervals.comparison, m.unit)
        }`
      : `${level}interval for the ${m.candidate} ${formatInterval(m.intervals.candidate, m.unit)}`;
  const samples = `n=${m.sampleSizes.candidate} vs ${m.sampleSizes.stable}${m.scope === "rollout" ? " over the rollout so far" : ""}`;
  switch (m.status) {
    case MeasurementStatus.Failed:
      return `${values} (${limit}; ${interval}; ${samples})`;
    case MeasurementStatus.Passed:
      return `${values}: within ${limit} (${interval}; ${samples})`;
    default:
      // An estimate past the limit is not "not enough data": the data point the wrong way, not yet conclusively.
      return m.beyondLimit
        ? `${values}: beyond ${limit}, not yet shown (${interval}; ${samples})`
        : `${values}: not enough data yet for ${limit} (${interval}; ${samples})`;
  }
}
