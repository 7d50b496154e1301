/**
 * One tick's gate evaluation: every applicable gate, overall and for every declared segment value, over
 * the stage's window. Pure: the numbers come in, Measurements go out.
 */
import type { MetricReading } from "../metrics/provider.ts";
import { OVERALL, parseSliceKey, snapshotQuantile, sumCounters, type CountsSnapshot, type EngineVariant, type HistogramSnapshot, type SliceSnapshot } from "./counts.ts";
import { RELATIVE_LIMITS, type ExternalGate, type GateSpec, type Limits, type MeanGate, type PromQLGate, type ProportionGate, type QuantileGate } from "./gate-spec.ts";
import { describeMeasurement, judgeLimits, severityOf } from "./judge.ts";
import { MeasurementStatus, recordInterval, type Measurement, type Segment } from "./measurement.ts";
import type { StageKind } from "./spec-schema.ts";

const LATENCY_HISTOGRAM = "latency_us";
/** Shadow slices only: the primary's answers to the mirrored requests, timed like the mirrored calls (filter/stats.ts). */
const PAIRED_PRIMARY_HISTOGRAM = "primary_latency_us";
import {
  histogramMeanConfidenceSequence,
  proportionConfidenceSequence,
  quantileConfidenceSequence,
  type EmpiricalBernsteinState,
  type Interval,
  type QuantileInterval,
} from "./statistics.ts";

/** Per external gate, per variant: the running confidence sequence of the posted values ([0, 1] scale). */
export type ExternalStates = Record<string, Partial<Record<EngineVariant, EmpiricalBernsteinState>>>;

export interface GateEvaluationInput {
  gates: readonly GateSpec[];
  stageKind: StageKind;
  candidate: "canary" | "shadow";
  /** The error budget of one (gate, stage, slice) test; see state.ts. */
  alphaPerTest: number;
  /** The stage's window, or null when the counts could not be read (then windowError says why). */
  window: CountsSnapshot | null;
  windowError: string | null;
  /** "overall" first, then every declared segment value. */
  slices: readonly string[];
  promql: Readonly<Record<string, MetricReading<number | null>>> | undefined;
  external: ExternalStates;
}

export function evaluateGates(input: GateEvaluationInput): Measurement[] {
  const out: Measurement[] = [];
  for (const gate of input.gates) {
    if (!gate.during.includes(input.stageKind)) continue;
    // At 100% stable has no traffic: only the absolute limits of traffic gates can be judged. External values
    // (review scores, KPIs) are posted per variant whatever the weights, so their relative limits still hold.
    const limits = input.stageKind === "bake" && gate.kind !== "external" ? absoluteOnly(gate.limits) : gate.limits;
    if (Object.keys(limits).length === 0) continue;
    if (gate.kind === "promql") {
      out.push(evaluatePromQL(gate, limits, input));
      continue;
    }
    if (gate.kind === "external") {
      out.push(evaluateExternal(gate, limits, input));
      continue;
    }
    for (const key of input.slices) {
      const segment = parseSliceKey(key);
      if (!input.window) {
        if (key === OVERALL) out.push(errorMeasurement(gate, segment, input.candidate, `could not read the data-path counts: ${input.windowError ?? "unknown error"}`));
        continue;
      }
      const variants = input.window.slices[key];
      const measured = measureSlice(gate, limits, variants?.stable, variants?.[input.candidate], variants?.shadow, segment, input);
      // A segment value without any traffic says nothing; leave it out rather than list empty rows.
      if (measured) out.push(measured);
    }
  }
  return out;
}

function measureSlice(
  gate: Exclude<GateSpec, PromQLGate | ExternalGate>,
  limits: Limits,
  stable: SliceSnapshot | undefined,
  candidate: SliceSnapshot | undefined,
  shadow: SliceSnapshot | undefined,
  segment: Segment | null,
  input: GateEvaluationInput,
): Measurement | null {
  const relative = RELATIVE_LIMITS.some((k) => limits[k] !== undefined);
  // Two sequences (candidate and stable) share the test's budget; one alone gets all of it.
  const alpha = relative ? input.alphaPerTest / 2 : input.alphaPerTest;
  switch (gate.kind) {
    case "proportion":
      return measureProportion(gate, limits, stable, gate.variant === "shadow" ? shadow : candidate, segment, input, alpha, relative);
    case "quantile":
      return measureQuantile(gate, limits, stable, candidate, segment, input, alpha, relative);
    case "mean":
      return measureMean(gate, limits, stable, candidate, segment, input, alpha, relative);
  }
}

function measureProportion(
  gate: ProportionGate,
  limits: Limits,
  stableSlice: SliceSnapshot | undefined,
  candidateSlice: SliceSnapshot | undefined,
  segment: Segment | null,
  input: GateEvaluationInput,
  alpha: number,
  relative: boolean,
): Measurement | null {
  const candidate = gate.variant === "shadow" ? "shadow" : input.candidate;
  const trials = sumCounters(candidateSlice, gate.denominator);
  const successes = sumCounters(candidateSlice, gate.numerator);
  const stableTrials = sumCounters(stableSlice, gate.denominator);
  const stableSuccesses = sumCounters(stableSlice, gate.numerator);
  if (trials === 0 && stableTrials === 0 && segment !== null) return null;
  const c = proportionConfidenceSequence(successes, trials, alpha);
  const s = relative || stableTrials > 0 ? proportionConfidenceSequence(stableSuccesses, stableTrials, alpha) : null;
  return finish(gate, limits, {
    segment,
    candidate,
    candidateValue: c.estimate,
    stableValue: s?.estimate ?? null,
    candidateInterval: trials > 0 ? c : null,
    stableInterval: s && stableTrials > 0 ? s : null,
    sampleSizes: { candidate: trials, stable: stableTrials },
    unit: "ratio",
    alpha,
    relative,
    emptyReason: trials === 0 ? `no ${gate.label} observations for the ${candidate} in this window yet` : null,
    input,
  });
}

function measureQuantile(
  gate: QuantileGate,
  limits: Limits,
  stableSlice: SliceSnapshot | undefined,
  candidateSlice: SliceSnapshot | undefined,
  segment: Segment | null,
  input: GateEvaluationInput,
  alpha: number,
  relative: boolean,
): Measurement | null {
  const ch = candidateSlice?.histograms[gate.histogram];
  // A mirrored call is timed from its dispatch (request complete) to its whole answer, stable's latency_us from
  // request headers to response headers: in a shadow stage the baseline is the primary's answers to the same
  // mirrored requests, timed like the calls (README, Shadow traffic).
  const paired = input.candidate === "shadow" && gate.histogram === LATENCY_HISTOGRAM;
  const sh = paired ? candidateSlice?.histograms[PAIRED_PRIMARY_HISTOGRAM] : stableSlice?.histograms[gate.histogram];
  const nc = ch?.total ?? 0;
  const ns = sh?.total ?? 0;
  if (nc === 0 && ns === 0 && segment !== null) return null;
  // The Pass side of a relative limit uses stable's bucket-resolution lower end (README, Gate statistics).
  const scale = (i: QuantileInterval): Interval => ({
    lower: i.lower / gate.displayScale,
    upper: i.upper / gate.displayScale,
    passLower: i.bucketLower / gate.displayScale,
  });
  const estimate = (h: HistogramSnapshot | undefined) => {
    if (!h || h.total === 0) return null;
    const q = snapshotQuantile(h, gate.quantile);
    return q === null ? null : q / gate.displayScale;
  };
  return finish(gate, scaleLimits(limits, gate.displayScale), {
    segment,
    candidate: input.candidate,
    candidateValue: estimate(ch),
    stableValue: estimate(sh),
    candidateInterval: ch && nc > 0 ? scale(quantileConfidenceSequence(ch, gate.quantile, alpha)) : null,
    stableInterval: sh && ns > 0 ? scale(quantileConfidenceSequence(sh, gate.quantile, alpha)) : null,
    sampleSizes: { candidate: nc, stable: ns },
    unit: "ms",
    alpha,
    relative,
    emptyReason:
      nc === 0
        ? `no latency observations for the ${input.candidate} in this window yet`
        : paired && relative && ns === 0
          ? `no primary latency paired with the mirrored requests (${PAIRED_PRIMARY_HISTOGRAM}) in this window yet`
          : null,
    input,
    label: paired ? `${gate.label} of the mirrored requests` : undefined,
    tolerance: gate.tolerance / gate.displayScale,
  });
}

function measureMean(
  gate: MeanGate,
  limits: Limits,
  stableSlice: SliceSnapshot | undefined,
  candidateSlice: SliceSnapshot | undefined,
  segment: Segment | null,
  input: GateEvaluationInput,
  alpha: number,
  relative: boolean,
): Measurement | null {
  const ch = candidateSlice?.histograms[gate.histogram];
  const sh = stableSlice?.histograms[gate.histogram];
  const nc = ch?.total ?? 0;
  const ns = sh?.total ?? 0;
  if (nc === 0 && ns === 0 && segment !== null) return null;
  const interval = (h: HistogramSnapshot | undefined) => {
    if (!h || h.total === 0) return null;
    const i = histogramMeanConfidenceSequence(h, gate.range, alpha);
    return { lower: i.lower / gate.displayScale, upper: i.upper / gate.displayScale, estimate: (i.estimate ?? 0) / gate.displayScale };
  };
  const c = interval(ch);
  const s = interval(sh);
  return finish(gate, scaleLimits(limits, gate.displayScale), {
    segment,
    candidate: input.candidate,
    candidateValue: c?.estimate ?? null,
    stableValue: s?.estimate ?? null,
    candidateInterval: c,
    stableInterval: s,
    sampleSizes: { candidate: nc, stable: ns },
    unit: "",
    alpha,
    relative,
    emptyReason: nc === 0 ? `no ${gate.histogram} observations for the ${input.candidate} in this window yet` : null,
    input,
  });
}

function evaluateExternal(gate: ExternalGate, limits: Limits, input: GateEvaluationInput): Measurement {
  const states = input.external[gate.name] ?? {};
  const width = gate.range[1] - gate.range[0];
  const toRange = (x: number) => gate.range[0] + x * width;
  const view = (state: EmpiricalBernsteinState | undefined) =>
    state && state.count > 0
      ? { interval: { lower: toRange(state.lower), upper: toRange(state.upper) }, estimate: toRange(state.sum / state.count), count: state.count, alpha: state.alpha }
      : null;
  const c = view(states[input.candidate]);
  const s = view(states.stable);
  const relative = RELATIVE_LIMITS.some((k) => limits[k] !== undefined);
  return finish(gate, limits, {
    segment: null,
    candidate: input.candidate,
    candidateValue: c?.estimate ?? null,
    stableValue: s?.estimate ?? null,
    candidateInterval: c?.interval ?? null,
    stableInterval: s?.interval ?? null,
    sampleSizes: { candidate: c?.count ?? 0, stable: s?.count ?? 0 },
    unit: "",
    // Each variant's sequence was built at half the test's budget (state.ts).
    alpha: input.alphaPerTest / 2,
    relative,
    emptyReason: !c ? `no ${gate.metric} values posted for the ${input.candidate} yet` : relative && !s ? `no ${gate.metric} values posted for stable yet` : null,
    input,
  });
}

/** A PromQL gate with nothing to judge yet: no series, or NaN. */
function inconclusivePromQL(gate: PromQLGate, limits: Limits, input: GateEvaluationInput, reason: string): Measurement {
  return {
    gate: gate.name,
    status: MeasurementStatus.Inconclusive,
    segment: null,
    candidate: input.candidate,
    stableValue: null,
    candidateValue: null,
    threshold: firstLimit(limits),
    unit: "",
    sampleSizes: { stable: 0, candidate: 0 },
    intervals: {},
    confidence: null,
    severity: 0,
    reason,
  };
}

function evaluatePromQL(gate: PromQLGate, limits: Limits, input: GateEvaluationInput): Measurement {
  const reading = input.promql?.[gate.name];
  const base = { segment: null, candidate: input.candidate } as const;
  if (!reading) return errorMeasurement(gate, null, input.candidate, `no reading of the PromQL query was taken this tick (${gate.query})`);
  if (reading.status === "unmeasurable") return errorMeasurement(gate, null, input.candidate, `PromQL query failed: ${reading.error}`);
  let value = reading.value;
  if (value !== null && Number.isNaN(value)) {
    return inconclusivePromQL(gate, limits, input, `${gate.label}: the query returned NaN (a 0/0 ratio: nothing counted in its window yet?)`);
  }
  if (value === null) {
    if (gate.emptyResult === "inconclusive") {
      return inconclusivePromQL(gate, limits, input, `${gate.label}: the query matched no series (set empty_result: zero if that means 0, or add "or vector(0)")`);
    }
    value = 0;
  }
  const point = { lower: value, upper: value };
  const verdict = judgeLimits(limits, point, null);
  const measurement: Omit<Measurement, "reason" | "severity"> = {
    gate: gate.name,
    status: verdict.status,
    ...base,
    stableValue: null,
    candidateValue: value,
    threshold: verdict.decisive,
    unit: "",
    sampleSizes: { stable: 0, candidate: 1 },
    intervals: { candidate: point },
    confidence: null,
  };
  const limitText = verdict.decisive ? `${verdict.decisive.kind} ${verdict.decisive.value}` : "";
  return {
    ...measurement,
    severity: verdict.status === MeasurementStatus.Failed && verdict.decisive ? severityOf(verdict.decisive.kind, verdict.decisive.value, value, null, "") : 0,
    reason: `${gate.label} ${value} (${verdict.status === MeasurementStatus.Failed ? "past" : "within"} ${limitText}; PromQL ${gate.query})`,
  };
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
  alpha: number;
  relative: boolean;
  emptyReason: string | null;
  input: GateEvaluationInput;
  /** In place of the gate's label in the reason. */
  label?: string;
  /** Latency: a regression up to this (display units) is within a maxRatio limit (judge.ts). */
  tolerance?: number;
}

function finish(gate: GateSpec, limits: Limits, n: SliceNumbers): Measurement {
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
    confidence: 1 - n.input.alphaPerTest,
    severity: 0,
    reason: "",
  };
  const label = n.label ?? gate.label;
  measurement.threshold = withTolerance(measurement.threshold, n.tolerance);
  if (n.emptyReason || !n.candidateInterval || (n.relative && !n.stableInterval)) {
    measurement.reason = `${label}: ${n.emptyReason ?? `no ${gate.label} observations for stable in this window yet`}`;
    return measurement;
  }
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

function errorMeasurement(gate: GateSpec, segment: Segment | null, candidate: "canary" | "shadow", why: string): Measurement {
  return {
    gate: gate.name,
    status: MeasurementStatus.Error,
    segment,
    candidate,
    stableValue: null,
    candidateValue: null,
    threshold: firstLimit(gate.limits),
    unit: "",
    sampleSizes: { stable: 0, candidate: 0 },
    intervals: {},
    confidence: null,
    severity: 0,
    reason: `${gate.label}: ${why}`,
  };
}

function absoluteOnly(limits: Limits): Limits {
  const out: Limits = {};
  if (limits.maximum !== undefined) out.maximum = limits.maximum;
  if (limits.minimum !== undefined) out.minimum = limits.minimum;
  return out;
}

/** Stat-unit limits -> display units; ratios are unitless. */
function scaleLimits(limits: Limits, scale: number): Limits {
  const out: Limits = { ...limits };
  for (const k of ["maximum", "minimum", "maxDelta", "minDelta"] as const) if (out[k] !== undefined) out[k] = out[k]! / scale;
  return out;
}

function firstLimit(limits: Limits): Measurement["threshold"] {
  for (const kind of ["maximum", "minimum", "maxDelta", "minDelta", "maxRatio"] as const) {
    const value = limits[kind];
    if (value !== undefined) return { kind, value };
  }
  return null;
}

