/**
 * One tick's gate evaluation: every applicable gate, overall and for every declared segment value. Proportion
 * gates judge absolute limits on the evidence of the whole rollout so far (evidence.ts) and relative limits
 * on the stage's window; latency and mean gates judge the stage's window. Each measurement carries the
 * samples its gate needs (power.ts) and what the stage asks of it (requirements.ts). Pure: the numbers come
 * in, Measurements go out.
 */
import { cumulativeQuantile } from "../metrics/histogram.ts";
import { testAlpha } from "./budget.ts";
import { OVERALL, parseSliceKey, sumCounters, type CountsSnapshot, type HistogramSnapshot, type SliceSnapshot } from "./counts.ts";
import {
  RELATIVE_LIMITS,
  type ExternalGate,
  type GateSpec,
  type Limits,
  type MeanGate,
  type PromQLGate,
  type ProportionGate,
  type QuantileGate,
  type WebhookGate,
} from "./gate-spec.ts";
import { absoluteOnly, errorMeasurement, finish, relativeOnly, scaleLimits, type GateEvaluationInput } from "./gate-measure.ts";
import { evaluateExternal, evaluatePromQL } from "./gates-external.ts";
import { evaluateWebhook } from "./gates-webhook.ts";
import { MeasurementStatus, type Measurement, type Segment } from "./measurement.ts";
import { histogramMeanConfidenceSequence } from "./means.ts";
import { meanNeeds, proportionNeeds, quantileNeeds } from "./power.ts";
import { widenLimits, type BoundLimits } from "./stage-bound.ts";
import { proportionConfidenceSequence, quantileConfidenceSequence, type Interval, type QuantileInterval } from "./sequences.ts";

export type { ExternalStates, GateEvaluationInput } from "./gate-measure.ts";

const LATENCY_HISTOGRAM = "latency_us";
/** Shadow slices only: the primary's answers to the mirrored requests, timed like the mirrored calls (filter/stats.ts). */
const PAIRED_PRIMARY_HISTOGRAM = "primary_latency_us";

export const DEFAULT_HARM_MULTIPLE = 4;

/** The stage bound of a slice the stage does not ask to pass (stage-bound.ts), in `limits`' units; null otherwise. */
function boundOf(
  gate: GateSpec,
  segment: Segment | null,
  input: GateEvaluationInput,
  limits: Limits,
  base: number | null,
  unit: Measurement["unit"],
  tolerance?: number,
): BoundLimits | null {
  if (!input.boundMultiple || (input.requirement?.(gate, segment) ?? "pass") === "pass") return null;
  return widenLimits(limits, input.boundMultiple(gate, segment), base, unit, tolerance);
}

export function evaluateGates(input: GateEvaluationInput): Measurement[] {
  const out: Measurement[] = [];
  for (const gate of input.gates) {
    if (!gate.during.includes(input.stageKind)) continue;
    // A judge has no limits to drop at 100%: its verdict counts in every stage it runs in.
    if (gate.kind === "webhook") {
      out.push(evaluateWebhook(gate, input));
      continue;
    }
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
        if (key === OVERALL)
          out.push(errorMeasurement(gate, segment, input.candidate, `could not read the data-path counts: ${input.windowError ?? "unknown error"}`));
        continue;
      }
      const measured = measureSlice(gate, limits, key, segment, input, input.window);
      // A segment value without any traffic says nothing; leave it out rather than list empty rows.
      if (measured) out.push(measured);
    }
  }
  return out;
}

function measureSlice(
  gate: Exclude<GateSpec, PromQLGate | ExternalGate | WebhookGate>,
  limits: Limits,
  key: string,
  segment: Segment | null,
  input: GateEvaluationInput,
  stageWindow: CountsSnapshot,
): Measurement | null {
  const variants = stageWindow.slices[key];
  const relative = RELATIVE_LIMITS.some((k) => limits[k] !== undefined);
  const testAlphaOf = testAlpha(input.budget, gate.name, segment !== null);
  const alpha = splitAlpha(testAlphaOf, relative, input);
  switch (gate.kind) {
    case "proportion":
      return measureProportion(gate, limits, key, segment, input, stageWindow, testAlphaOf);
    case "quantile":
      return measureQuantile(gate, limits, variants?.stable, variants?.[input.candidate], segment, input, alpha, relative, testAlphaOf);
    case "mean":
      return measureMean(gate, limits, variants?.stable, variants?.[input.candidate], segment, input, alpha, relative, testAlphaOf);
  }
}

interface SplitAlpha {
  candidate: number;
  stable: number;
}

/**
 * A relative test's alpha is shared by the candidate's sequence and stable's. At a small canary share stable
 * has many times the samples and needs little of it, so stable gets the candidate's traffic fraction of it
 * (at least a tenth, at most half): fixed by the stage's weights, not by the data.
 */
function splitAlpha(alpha: number, relative: boolean, input: GateEvaluationInput): SplitAlpha {
  if (!relative) return { candidate: alpha, stable: alpha };
  const f = Math.min(0.5, Math.max(0.1, (input.candidatePercent ?? 50) / 100));
  return { candidate: alpha * (1 - f), stable: alpha * f };
}

/** Stable's weight in the candidate's expected rate: at most 200 pseudo-samples, so the candidate's own data takes over. */
function expectedRate(successes: number, trials: number, stableSuccesses: number, stableTrials: number): number | null {
  const w = stableTrials > 0 ? Math.min(1, 200 / stableTrials) : 0;
  const n = trials + w * stableTrials;
  if (n > 0) return (successes + w * stableSuccesses) / n;
  return null;
}

/**
 * Absolute limits on the accumulated evidence (scope "rollout"), relative limits on the stage's window (scope
 * "stage": within a stage both variants see the same hours, whereas over the rollout the canary's requests
 * come mostly late and stable's early, which a drifting base rate would turn into a difference). A gate with
 * both is judged on both; the measurement shows the part that decides.
 */
function measureProportion(
  gate: ProportionGate,
  limits: Limits,
  key: string,
  segment: Segment | null,
  input: GateEvaluationInput,
  stageWindow: CountsSnapshot,
  testAlphaOf: number,
): Measurement | null {
  const candidate = gate.variant === "shadow" ? "shadow" : input.candidate;
  const window = stageWindow.slices[key];
  const evidence = (input.accumulated ?? stageWindow).slices[key];
  const stageSamples = sumCounters(window?.[candidate], gate.denominator);
  const harmMultiple = input.harmMultiple ?? 4;
  const parts: Measurement[] = [];
  for (const [part, partLimits] of [
    ["rollout", absoluteOnly(limits)],
    ["stage", relativeOnly(limits)],
  ] as const) {
    if (Object.keys(partLimits).length === 0) continue;
    const relative = part === "stage";
    const variants = relative ? window : evidence;
    const cs = variants?.[candidate];
    const ss = variants?.stable;
    const trials = sumCounters(cs, gate.denominator);
    const successes = sumCounters(cs, gate.numerator);
    // A baseline is read from the candidate's own slice (gate-llm.ts); otherwise stable's rate is the baseline.
    const base = gate.baseline;
    const stableTrials = base ? sumCounters(cs, base.denominator) : sumCounters(ss, gate.denominator);
    const stableSuccesses = base ? sumCounters(cs, base.numerator) : sumCounters(ss, gate.numerator);
    if (trials === 0 && stableTrials === 0 && segment !== null && stageSamples === 0) continue;
    const alpha = splitAlpha(testAlphaOf, relative, input);
    const c = proportionConfidenceSequence(successes, trials, alpha.candidate);
    // An absolute limit needs no interval for stable (its rate is shown for comparison only).
    const s = relative ? proportionConfidenceSequence(stableSuccesses, stableTrials, alpha.stable) : null;
    const expected =
      gate.variant === "shadow" ? (trials > 0 ? (successes + 0.5) / (trials + 1) : null) : expectedRate(successes, trials, stableSuccesses, stableTrials);
    // Segment values are never asked to pass before 100%: they need only their bound's samples (boundNeed).
    const needs =
      expected === null || segment !== null
        ? null
        : proportionNeeds({
            limits: partLimits,
            expected,
            stable: stableTrials > 0 ? stableSuccesses / stableTrials : null,
            alpha: testAlphaOf,
            harmMultiple,
            stableRatio: trials > 0 ? stableTrials / trials : 1,
          });
    const bound = boundOf(gate, segment, input, partLimits, null, "ratio");
    const boundNeed = () =>
      bound && expected !== null
        ? proportionNeeds({
            limits: bound.limits,
            expected,
            stable: stableTrials > 0 ? stableSuccesses / stableTrials : null,
            alpha: testAlphaOf,
            harmMultiple,
            stableRatio: trials > 0 ? stableTrials / trials : 1,
          }).pass
        : null;
    parts.push(
      finish(gate, partLimits, {
        segment,
        candidate,
        candidateValue: c.estimate,
        stableValue: stableTrials > 0 ? stableSuccesses / stableTrials : null,
        candidateInterval: trials > 0 ? c : null,
        stableInterval: s && stableTrials > 0 ? s : null,
        sampleSizes: { candidate: trials, stable: stableTrials },
        unit: "ratio",
        alpha: testAlphaOf,
        relative,
        emptyReason: trials === 0 ? `no ${gate.label} observations for the ${candidate} ${relative ? "in this window" : "so far"}` : null,
        scope: part,
        stageSamples,
        needs,
        input,
        bound,
        boundNeed,
      }),
    );
  }
  // The part that holds longest shows: a failure, an estimate past its limit, a bound not yet reached, then any open part.
  return (
    parts.find((m) => m.status === MeasurementStatus.Failed) ??
    parts.find((m) => m.beyondLimit) ??
    parts.find((m) => m.bound && !m.bound.reached) ??
    parts.find((m) => m.status !== MeasurementStatus.Passed) ??
    parts[0] ??
    null
  );
}

function measureQuantile(
  gate: QuantileGate,
  limits: Limits,
  stableSlice: SliceSnapshot | undefined,
  candidateSlice: SliceSnapshot | undefined,
  segment: Segment | null,
  input: GateEvaluationInput,
  alpha: SplitAlpha,
  relative: boolean,
  testAlphaOf: number,
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
  const quantileOf = (h: HistogramSnapshot | undefined) => (h && h.total > 0 ? cumulativeQuantile(h, gate.quantile) : null);
  const cq = quantileOf(ch);
  const sq = quantileOf(sh);
  // The candidate is modeled on stable's distribution (or its own at 100%), scaled by the observed ratio
  // once it has a few hundred samples.
  const shape = sh && ns >= 50 ? { histogram: sh, quantile: sq } : { histogram: ch, quantile: cq };
  const observedRatio = nc >= 200 && cq !== null && sq !== null && sq > 0 && shape.histogram === sh ? cq / sq : 1;
  // The samples this gate needs against some limits: the declared ones (pass and detect), or a stage bound's.
  const needsAgainst = (against: typeof limits, tolerance: number | undefined) =>
    shape.histogram && shape.quantile !== null
      ? quantileNeeds({
          limits: against,
          q: gate.quantile,
          stable: shape.histogram,
          stableQuantile: shape.quantile,
          observedRatio,
          alpha: testAlphaOf,
          harmMultiple: input.harmMultiple ?? 4,
          stableRatio: nc > 0 ? ns / nc : 1,
          tolerance,
        })
      : null;
  const needs = segment === null ? needsAgainst(limits, gate.tolerance) : null;
  const bound = boundOf(gate, segment, input, limits, sq, "ms", gate.tolerance);
  const boundNeed = () => (bound ? (needsAgainst(bound.limits, bound.tolerance)?.pass ?? null) : null);
  return finish(gate, scaleLimits(limits, gate.displayScale), {
    segment,
    candidate: input.candidate,
    bound: bound && {
      ...bound,
      limits: scaleLimits(bound.limits, gate.displayScale),
      tolerance: bound.tolerance === undefined ? undefined : bound.tolerance / gate.displayScale,
    },
    boundNeed,
    candidateValue: cq === null ? null : cq / gate.displayScale,
    stableValue: sq === null ? null : sq / gate.displayScale,
    candidateInterval: ch && nc > 0 ? scale(quantileConfidenceSequence(ch, gate.quantile, alpha.candidate)) : null,
    stableInterval: sh && ns > 0 ? scale(quantileConfidenceSequence(sh, gate.quantile, alpha.stable)) : null,
    sampleSizes: { candidate: nc, stable: ns },
    unit: "ms",
    alpha: testAlphaOf,
    relative,
    emptyReason:
      nc === 0
        ? `no latency observations for the ${input.candidate} in this window yet`
        : paired && relative && ns === 0
          ? `no primary latency paired with the mirrored requests (${PAIRED_PRIMARY_HISTOGRAM}) in this window yet`
          : null,
    scope: "stage",
    stageSamples: nc,
    needs,
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
  alpha: SplitAlpha,
  relative: boolean,
  testAlphaOf: number,
): Measurement | null {
  const ch = candidateSlice?.histograms[gate.histogram];
  const sh = stableSlice?.histograms[gate.histogram];
  const nc = ch?.total ?? 0;
  const ns = sh?.total ?? 0;
  if (nc === 0 && ns === 0 && segment !== null) return null;
  const interval = (h: HistogramSnapshot | undefined, a: number) => {
    if (!h || h.total === 0) return null;
    const i = histogramMeanConfidenceSequence(h, gate.range, a);
    return { lower: i.lower / gate.displayScale, upper: i.upper / gate.displayScale, estimate: (i.estimate ?? 0) / gate.displayScale };
  };
  const c = interval(ch, alpha.candidate);
  const s = interval(sh, alpha.stable);
  const display = scaleLimits(limits, gate.displayScale);
  const bound = boundOf(gate, segment, input, display, s?.estimate ?? null, "");
  const meanInput = (l: Limits) =>
    c
      ? meanNeeds({
          limits: l,
          candidate: c.estimate,
          stable: s?.estimate ?? null,
          width: (gate.range[1] - gate.range[0]) / gate.displayScale,
          alpha: testAlphaOf,
          harmMultiple: input.harmMultiple ?? 4,
          stableRatio: nc > 0 ? ns / nc : 1,
        })
      : null;
  return finish(gate, display, {
    bound,
    boundNeed: () => (bound ? (meanInput(bound.limits)?.pass ?? null) : null),
    segment,
    candidate: input.candidate,
    candidateValue: c?.estimate ?? null,
    stableValue: s?.estimate ?? null,
    candidateInterval: c,
    stableInterval: s,
    sampleSizes: { candidate: nc, stable: ns },
    unit: "",
    alpha: testAlphaOf,
    relative,
    emptyReason: nc === 0 ? `no ${gate.histogram} observations for the ${input.candidate} in this window yet` : null,
    scope: "stage",
    stageSamples: nc,
    needs: meanInput(display),
    input,
  });
}
