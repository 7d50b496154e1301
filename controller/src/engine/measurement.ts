/**
 * The answer of one gate for one slice of traffic at one tick, with the numbers behind it. Only Failed
 * rolls a rollout back; Inconclusive and Error hold the stage until its deadline.
 */
import type { LimitKind } from "./gate-spec.ts";
import type { Requirement } from "./requirements.ts";
import type { Interval } from "./sequences.ts";

export enum MeasurementStatus {
  /** The evidence shows the candidate within every limit of the gate (at the gate's confidence). */
  Passed = "Passed",
  /** The evidence shows the candidate past a limit of the gate (at the gate's confidence): roll back. */
  Failed = "Failed",
  /** Measured, but not enough data yet to say either. */
  Inconclusive = "Inconclusive",
  /** Could not measure: a metric source did not answer, or answered something unusable. */
  Error = "Error",
}

export interface Segment {
  dimension: string;
  value: string;
}

export interface Measurement {
  gate: string;
  status: MeasurementStatus;
  /** The slice: null for all of the variants' traffic, else one segment value. */
  segment: Segment | null;
  /** What is compared with stable: the shadow in a shadow stage, the canary otherwise. */
  candidate: "canary" | "shadow";
  /** Point estimates in the gate's display unit (null: nothing to estimate from). */
  stableValue: number | null;
  candidateValue: number | null;
  /**
   * The limit that decided (the failing one, else the first one not yet shown, else the first). `tolerance`
   * (latency maxRatio only, display units): a regression up to it is within the limit whatever the ratio.
   */
  threshold: { kind: LimitKind; value: number; tolerance?: number } | null;
  unit: "ratio" | "ms" | "";
  /** Observations behind each value: requests, validated answers, reviews... */
  sampleSizes: { stable: number; candidate: number };
  /**
   * Always-valid intervals in display units; `comparison` is candidate - stable (or candidate / stable for a
   * ratio limit, its upper end at stable's bucket resolution). null ends are unbounded (JSON has no Infinity).
   */
  intervals: { stable?: RecordedInterval; candidate?: RecordedInterval; comparison?: RecordedInterval };
  /** 1 - alpha of this test (null for gates without a sampling model: PromQL). */
  confidence: number | null;
  /** How far past its limit a Failed measurement is (point estimates, relative); ranks the worst slice. */
  severity: number;
  /** One sentence a person can act on. */
  reason: string;
  // The fields below were added with evidence across stages; decisions recorded before lack them.
  /** What the evidence covers: the whole rollout so far (proportion gates' absolute limits), or this stage's window. */
  scope?: "rollout" | "stage";
  /** What the current stage asks of this gate on this slice (requirements.ts). */
  requirement?: Requirement;
  /**
   * Candidate samples (in `scope`) needed to reach a verdict at the expected value (pass), and to be expected
   * to fail a candidate at `harm` (detect); null when it cannot be said (README, "What a stage must show").
   */
  needed?: { pass: number | null; detect: number | null };
  /** The harmful value `needed.detect` is about (display units; for a maxRatio limit, the ratio). */
  harm?: number | null;
  /** Candidate samples in this stage's window: with the window's length, the rate the ETA uses. */
  stageSamples?: number;
  // Added with issue 19 (stage-bound.ts); decisions recorded before lack them.
  /** The declared limit the point estimates are on the wrong side of (null: within every limit). */
  beyondLimit?: { kind: LimitKind; value: number } | null;
  /**
   * The stage bound a slice asked to detect harm must be within before the stage advances: its limit (display
   * units; a ratio for maxRatio), the multiple of the allowance, and whether the interval is within it.
   */
  bound?: { kind: LimitKind; value: number; tolerance?: number; multiple: number; reached: boolean } | null;
}

export interface RecordedInterval {
  lower: number | null;
  upper: number | null;
}

export function recordInterval(interval: Interval): RecordedInterval {
  const finite = (x: number) => (Number.isFinite(x) ? x : null);
  return { lower: finite(interval.lower), upper: finite(interval.upper) };
}

export function segmentLabel(segment: Segment | null): string {
  return segment === null ? "overall" : `${segment.dimension}=${segment.value}`;
}

/** 0.041 -> "4.1%", 0.00012 -> "0.012%"; ms and plain numbers with 3 significant digits. */
export function formatValue(value: number | null | undefined, unit: Measurement["unit"]): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "n/a";
  if (value === Infinity) return "unbounded";
  if (value === -Infinity) return "-unbounded";
  if (unit === "ratio") {
    const percent = value * 100;
    const abs = Math.abs(percent);
    // Three significant digits, as the dashboard shows them: 24.3%, 1.04% (not 1%, which reads as on a 1% limit), 0.512%.
    const digits = percent === 0 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
    return `${roundTo(percent, digits)}%`;
  }
  const text = String(significant(value, 3));
  return unit === "ms" ? `${text} ms` : text;
}

// Plain arithmetic rather than toFixed/toPrecision: reasons are built for every measurement every tick.
function roundTo(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function significant(x: number, digits: number): number {
  if (x === 0 || Math.abs(x) >= 10 ** digits) return Math.round(x);
  const magnitude = Math.floor(Math.log10(Math.abs(x)));
  return roundTo(x, digits - 1 - magnitude);
}

export function formatInterval(interval: RecordedInterval | undefined, unit: Measurement["unit"]): string {
  if (!interval) return "n/a";
  const lower = interval.lower === null ? "unbounded" : formatValue(interval.lower, unit);
  const upper = interval.upper === null ? "unbounded" : formatValue(interval.upper, unit);
  return `[${lower}, ${upper}]`;
}
