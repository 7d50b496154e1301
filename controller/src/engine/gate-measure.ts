/**
 * What every gate evaluation shares: its input, and turning a gate's numbers (estimates, intervals, samples)
 * into a Measurement with a verdict and a reason.
 */
import type { MetricReading } from "../metrics/provider.ts";
import type { ErrorBudget } from "./budget.ts";
import type { CountsSnapshot, EngineVariant } from "./counts.ts";
import type { GateSpec, Limits } from "./gate-spec.ts";
import { describeMeasurement, judgeLimits, severityOf } from "./judge.ts";
import { MeasurementStatus, recordInterval, type Measurement, type Segment } from "./measurement.ts";
import type { EmpiricalBernsteinState } from "./means.ts";
import type { Needs } from "./power.ts";
import type { Requirement } from "./requirements.ts";
import type { Interval } from "./sequences.ts";
import { estimateBeyond, type BoundLimits } from "./stage-bound.ts";
import type { StageKind } from "./spec-schema.ts";
import type { JudgeReading } from "./webhook-answer.ts";

/** Per external gate, per variant: the running confidence sequence of the posted values ([0, 1] scale). */
export type ExternalStates = Record<string, Partial<Record<EngineVariant, EmpiricalBernsteinState>>>;

export interface GateEvaluationInput {
  gates: readonly GateSpec[];
  stageKind: StageKind;
  candidate: "canary" | "shadow";
  /** The candidate's share of traffic in this stage (canary percent, or the shadow's mirrored percent). */
  candidatePercent?: number;
  /** The false-alarm budget; budget.ts gives each (gate, group, slice) test its alpha. */
  budget: ErrorBudget;
  /** The stage's window, or null when the counts could not be read (then windowError says why). */
  window: CountsSnapshot | null;
  windowError: string | null;
  /** Counters gathered over the whole rollout so far (evidence.ts); null: use the window. */
  accumulated: CountsSnapshot | null;
  /** "overall" first, then every declared segment value. */
  slices: readonly string[];
  promql: Readonly<Record<string, MetricReading<number | null>>> | undefined;
  /** Each webhook gate's latest judge answer (release/webhook-judge.ts reads them). */
  judges?: Readonly<Record<string, JudgeReading>>;
  /** The stage judged: its index and when it started, so only an answer about it counts (webhook gates). */
  stage?: { index: number; startedAt: number | null };
  external: ExternalStates;
  /** For the detect floors (power.ts); default 4. */
  harmMultiple?: number;
  /** What the stage asks of a gate on a slice (requirements.ts); default: must pass. */
  requirement?: (gate: GateSpec, segment: Segment | null) => Requirement;
  /** The stage bound's multiple of a gate's allowance on a slice (stage-bound.ts); absent: no bound is judged. */
  boundMultiple?: (gate: GateSpec, segment: Segment | null) => number;
}

interface SliceNumbers {
  segment: Segment | null;
  candidate: "canary" | "shadow";
  candidateValue: number | null;
  stableValue: number | null;
  candidateInterval: Interval | null;
  stableInterval: Interval | null;
  sampleSizes: { candidate: number; stable: number };
  unit: Measurement["unit"];
  /** The test's alpha (the confidence shown is 1 - alpha). */
  alpha: number;
  relative: boolean;
  emptyReason: string | null;
  scope: "rollout" | "stage";
  stageSamples: number;
  needs: Needs | null;
  input: GateEvaluationInput;
  /** In place of the gate's label in the reason. */
  label?: string;
  /** Latency: a regression up to this (display units) is within a maxRatio limit (judge.ts). */
  tolerance?: number;
  /** The stage bound (display units) and the candidate samples to be within it at the expected value (stage-bound.ts). */
  bound?: BoundLimits | null;
  /** Called only while the bound is not reached (power calculations are most of a tick's cost). */
  boundNeed?: () => number | null;
}

export function finish(gate: GateSpec, limits: Limits, n: SliceNumbers): Measurement {
  const intervals: Measurement["intervals"] = {};
  if (n.candidateInterval) intervals.candidate = recordInterval(n.candidateInterval);
  if (n.stableInterval) intervals.stable = recordInterval(n.stableInterval);
  const measurement: Measurement = {
    gate: gate.name,
    status: MeasurementStatus.Inconclusive,
    segment: n.segment,
    candidate: n.candidate,
    stableValue: n.stableValue,
    candidateValue: n.candidateValue,
    threshold: firstLimit(limits),
    unit: n.unit,
    sampleSizes: n.sampleSizes,
    intervals,
    confidence: 1 - n.alpha,
    severity: 0,
    reason: "",
    scope: n.scope,
    requirement: n.input.requirement?.(gate, n.segment) ?? "pass",
    // With a stage bound, "detect" is the samples to be within it at the expected value, `harm` the bound.
    needed: { pass: n.needs?.pass ?? null, detect: null },
    harm: n.bound ? (firstLimit(n.bound.limits)?.value ?? null) : null,
    stageSamples: n.stageSamples,
  };
  const label = n.label ?? gate.label;
  measurement.threshold = withTolerance(measurement.threshold, n.tolerance);
  const boundLimit = n.bound ? firstLimit(n.bound.limits) : null;
  if (n.bound && boundLimit) {
    measurement.bound = { ...boundLimit, ...(n.bound.tolerance ? { tolerance: n.bound.tolerance } : {}), multiple: n.bound.multiple, reached: false };
  }
  const sizeBound = () => {
    // A bound already reached needs no more samples than it has.
    if (measurement.needed && n.bound) measurement.needed.detect = measurement.bound?.reached ? n.sampleSizes.candidate : (n.boundNeed?.() ?? null);
  };
  if (n.emptyReason || !n.candidateInterval || (n.relative && !n.stableInterval)) {
    measurement.reason = `${label}: ${n.emptyReason ?? `no ${gate.label} observations for stable in this window yet`}`;
    sizeBound();
    return measurement;
  }
  measurement.beyondLimit = estimateBeyond(limits, n.candidateValue, n.relative ? n.stableValue : null, n.tolerance);
  if (measurement.bound && n.bound) {
    measurement.bound.reached = judgeLimits(n.bound.limits, n.candidateInterval, n.stableInterval, n.bound.tolerance).status === MeasurementStatus.Passed;
  }
  sizeBound();
  const verdict = judgeLimits(limits, n.candidateInterval, n.stableInterval, n.tolerance);
  if (verdict.comparison) intervals.comparison = recordInterval(verdict.comparison);
  measurement.status = verdict.status;
  measurement.threshold = withTolerance(verdict.decisive, n.tolerance);
  if (verdict.status === MeasurementStatus.Failed && verdict.decisive) {
    measurement.severity = severityOf(verdict.decisive.kind, verdict.decisive.value, n.candidateValue, n.stableValue, n.unit);
  }
  measurement.reason = describeMeasurement(measurement, label);
  return measurement;
}

function withTolerance(threshold: Measurement["threshold"], tolerance: number | undefined): Measurement["threshold"] {
  return threshold && threshold.kind === "maxRatio" && tolerance ? { ...threshold, tolerance } : threshold;
}

export function errorMeasurement(gate: GateSpec, segment: Segment | null, candidate: "canary" | "shadow", why: string): Measurement {
  return unmeasured(gate, MeasurementStatus.Error, { segment, candidate }, firstLimit(gate.limits), `${gate.label}: ${why}`);
}

/** A measurement without values: the gate could not measure (Error) or has nothing to judge yet (Inconclusive). */
export function unmeasured(
  gate: GateSpec,
  status: MeasurementStatus.Error | MeasurementStatus.Inconclusive,
  at: { segment: Segment | null; candidate: "canary" | "shadow" },
  threshold: Measurement["threshold"],
  reason: string,
): Measurement {
  return {
    gate: gate.name,
    status,
    segment: at.segment,
    candidate: at.candidate,
    stableValue: null,
    candidateValue: null,
    threshold,
    unit: "",
    sampleSizes: { stable: 0, candidate: 0 },
    intervals: {},
    confidence: null,
    severity: 0,
    reason,
  };
}

export function absoluteOnly(limits: Limits): Limits {
  const out: Limits = {};
  if (limits.maximum !== undefined) out.maximum = limits.maximum;
  if (limits.minimum !== undefined) out.minimum = limits.minimum;
  return out;
}

export function relativeOnly(limits: Limits): Limits {
  const out: Limits = {};
  for (const k of ["maxDelta", "minDelta", "maxRatio"] as const) if (limits[k] !== undefined) out[k] = limits[k];
  return out;
}

/** Stat-unit limits -> display units; ratios are unitless. */
export function scaleLimits(limits: Limits, scale: number): Limits {
  const out: Limits = { ...limits };
  for (const k of ["maximum", "minimum", "maxDelta", "minDelta"] as const) {
    const limit = out[k];
    if (limit !== undefined) out[k] = limit / scale;
  }
  return out;
}

export function firstLimit(limits: Limits): Measurement["threshold"] {
  for (const kind of ["maximum", "minimum", "maxDelta", "minDelta", "maxRatio"] as const) {
    const value = limits[kind];
    if (value !== undefined) return { kind, value };
  }
  return null;
}
