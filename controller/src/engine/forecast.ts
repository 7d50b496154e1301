/**
 * How long the remaining stages are expected to take, and which cannot conclude before their deadline: from
 * the traffic and base rates observed so far (each tick), or, before any traffic, from the traffic the spec
 * expects (expectedTraffic) and planning base rates. A rough projection: every gate is assumed to need in a
 * later stage what it needs now, traffic to the candidate scales with the stage's percent, and evidence that
 * accumulates (proportion gates' absolute limits) carries over.
 */
import { OVERALL, sliceKey } from "./counts.ts";
import { firstLimit } from "./gate-measure.ts";
import { hasAbsoluteLimit, isStatistical, type GateSpec, type Limits } from "./gate-spec.ts";
import { MeasurementStatus, segmentLabel, type Measurement } from "./measurement.ts";
import { proportionNeeds, quantileNeeds, meanNeeds, type Needs } from "./power.ts";
import { requirementAt, type Requirement } from "./requirements.ts";
import type { CumulativeHistogram } from "./sequences.ts";
import type { EngineSpec, StageSpec } from "./spec.ts";
import type { EngineState } from "./state.ts";
import { errorBudget, testAlpha } from "./budget.ts";
import { boundMultiple, widenLimits } from "./stage-bound.ts";

interface StageForecast {
  stage: string;
  /** Expected seconds in the stage (null: cannot tell). */
  seconds: number | null;
  limitedBy: string | null;
  deadlineSeconds: number;
}

export interface Forecast {
  basis: "observed traffic" | "expected traffic";
  stages: StageForecast[];
  warnings: string[];
}

/** One gate on one slice, as the projection sees it. */
interface Item {
  gate: GateSpec;
  segment: string | null;
  candidate: "canary" | "shadow";
  scope: "rollout" | "stage";
  /** Samples already gathered (rollout scope) and samples per second per percent of traffic on the candidate. */
  samples: number;
  ratePerPercent: number;
  /** A segment value carrying at least segmentTrafficShare of the traffic (it must be within its bound at the proof stage). */
  carries: boolean;
  needs: (stage: StageSpec) => Needs | null;
  /** The stage-bound multiple the observed `detect` need was computed for (null: needs(stage) is per stage already). */
  measuredAt: number | null;
}

const percentOf = (stage: StageSpec) => (stage.kind === "shadow" ? stage.shadowPercent : stage.canaryPercent);

/** Later stages, from the current measurements (each carries its needs and the samples it got in the window). */
export function forecastFromEvaluation(
  state: EngineState,
  measurements: readonly Measurement[],
  windowSeconds: number,
  currentEtaSeconds: number | null,
  carries: (segment: NonNullable<Measurement["segment"]>) => boolean,
): Forecast {
  const current = state.spec.stages[state.stageIndex];
  const items: Item[] = [];
  if (current && windowSeconds > 0) {
    for (const m of measurements) {
      const gate = state.spec.gates.find((g) => g.name === m.gate);
      const needed = m.needed;
      if (!gate || !isStatistical(gate) || gate.kind === "external" || !needed) continue;
      const rate = (m.stageSamples ?? 0) / windowSeconds;
      const pct = percentOf(current);
      items.push({
        gate,
        segment: m.segment === null ? null : segmentLabel(m.segment),
        candidate: m.candidate,
        scope: m.scope ?? "stage",
        samples: (m.scope === "rollout" ? m.sampleSizes.candidate : 0) + rate * Math.max(0, currentEtaSeconds ?? 0),
        ratePerPercent: pct > 0 ? rate / pct : 0,
        carries: m.segment === null || carries(m.segment),
        needs: () => ({ pass: needed.pass, detect: needed.detect, harm: m.harm ?? null }),
        measuredAt: m.bound?.multiple ?? null,
      });
    }
  }
  const forecast = project(state.spec, items, state.stageIndex + 1, "observed traffic", currentEtaSeconds === null);
  // An estimate past its limit holds the stage until the interval decides, most likely with a rollback: say so
  // rather than let the projection of the stages after it read as the plan.
  for (const m of measurements) {
    if (!m.beyondLimit || m.status !== MeasurementStatus.Inconclusive) continue;
    const verdict = m.needed?.pass ?? null;
    forecast.warnings.push(
      `${m.gate} ${segmentLabel(m.segment)} is past its limit at the estimate: the stage holds until its interval decides${
        verdict === null ? "" : ` (about ${verdict} ${m.candidate} samples at the estimate, has ${m.sampleSizes.candidate})`
      }, a rollback if the estimate stays where it is; the later stages are projected as if it came back within the limit`,
    );
  }
  return forecast;
}

/** Before any traffic: every stage, from the spec's expectedTraffic and planning base rates (null without it). */
export function forecastFromExpectedTraffic(state: EngineState): Forecast | null {
  const expected = state.spec.expectedTraffic;
  if (!expected) return null;
  const budget = state.budget ?? errorBudget(state.spec, state.segments);
  const values = state.segments.flatMap((s) => s.values.filter((v) => v !== "other").map((value) => sliceKey({ dimension: s.dimension, value })));
  const smallest = expected.smallestSegmentShare ?? (values.length > 0 ? 1 / values.length : 1);
  const items: Item[] = [];
  for (const gate of state.spec.gates) {
    if (!isStatistical(gate) || gate.kind === "external") continue;
    for (const slice of [OVERALL, ...values]) {
      const share = slice === OVERALL ? 1 : smallest;
      const alpha = testAlpha(budget, gate.name, slice !== OVERALL);
      for (const candidate of ["shadow", "canary"] as const) {
        items.push({
          gate,
          segment: slice === OVERALL ? null : slice,
          candidate,
          scope: gate.kind === "proportion" && Object.keys(gate.limits).some((k) => k === "maximum" || k === "minimum") ? "rollout" : "stage",
          samples: 0,
          ratePerPercent: (expected.requestsPerSecond * share) / 100,
          carries: share >= state.spec.segmentTrafficShare,
          needs: (stage) => planningNeeds(gate, stage, alpha, boundMultiple(state.spec, stage.index, slice !== OVERALL)),
          measuredAt: null,
        });
      }
    }
  }
  return project(state.spec, items, 0, "expected traffic", false);
}

function project(spec: EngineSpec, items: Item[], from: number, basis: Forecast["basis"], unknownStart: boolean): Forecast {
  const stages: StageForecast[] = [];
  const warnings: string[] = [];
  let unknown = unknownStart;
  for (const stage of spec.stages.slice(from)) {
    const k = stage.index;
    const variant = stage.kind === "shadow" ? "shadow" : "canary";
    const pct = percentOf(stage);
    let seconds = stage.minDurationSeconds;
    let limitedBy: string | null = "minimum duration";
    for (const item of items) {
      if (item.candidate !== variant || !item.gate.during.includes(stage.kind)) continue;
      // At 100% stable has no traffic: a traffic gate with only relative limits is not judged there (gates.ts).
      if (stage.kind === "bake" && !hasAbsoluteLimit(item.gate)) continue;
      const requirement: Requirement = requirementAt(spec, k, item.gate, item.segment !== null, item.carries);
      if (requirement === "none") continue;
      const needs = item.needs(stage);
      // A later stage's bound is tighter: samples to be within it grow about as the square of the distance
      // from the estimate shrinks (the distance scales with the multiple when the estimate is near stable's).
      const later = boundMultiple(spec, k, item.segment !== null);
      const scale = item.measuredAt !== null && later < item.measuredAt ? (item.measuredAt / later) ** 2 : 1;
      const detect = needs?.detect === null || needs?.detect === undefined ? needs?.detect : Math.ceil(needs.detect * scale);
      const need = requirement === "pass" ? needs?.pass : detect;
      const rate = item.ratePerPercent * pct;
      const start = item.scope === "rollout" ? item.samples : 0;
      if (need === null || need === undefined || (rate <= 0 && need > start)) {
        unknown = true;
        limitedBy = `${item.gate.name} ${item.segment ?? "overall"} (${requirement})`;
        continue;
      }
      const t = Math.max(0, need - start) / rate;
      if (t > seconds) {
        seconds = t;
        limitedBy = `${item.gate.name} ${item.segment ?? "overall"} ${requirement === "pass" ? "must pass" : "must rule out harm past its stage bound"}: about ${need} ${variant} samples`;
      }
    }
    for (const item of items) if (item.scope === "rollout" && item.candidate === variant) item.samples += item.ratePerPercent * pct * seconds;
    const rounded = unknown ? null : Math.ceil(seconds);
    stages.push({ stage: stage.name, seconds: rounded, limitedBy, deadlineSeconds: stage.deadlineSeconds });
    if (rounded !== null && rounded > stage.deadlineSeconds) {
      warnings.push(
        `stage ${stage.name} is projected to take about ${rounded} s at the ${basis} (${limitedBy}), past its deadline of ${stage.deadlineSeconds} s (onDeadline: ${stage.onDeadline})`,
      );
    }
  }
  return { basis, stages, warnings };
}

// ---------------------------------------------------------------------------------------------------------
// Planning base rates: a candidate as good as a typical stable, for a forecast made before any traffic.

const PLANNING_SIGMA = 0.3;
const PLANNING_MEDIAN_US = 50_000;

function planningNeeds(gate: GateSpec, stage: StageSpec, alpha: number, multiple: number): Needs | null {
  const pct = stage.kind === "shadow" ? stage.shadowPercent : stage.canaryPercent;
  const stableRatio = pct >= 100 ? 0 : (100 - pct) / Math.max(pct, 1e-9);
  // "pass" against the declared limits, "detect" against the stage bound (stage-bound.ts) at the same base rates.
  const both = (needsFor: (limits: Limits, tolerance?: number) => Needs, base: number | null, unit: Measurement["unit"], tolerance?: number): Needs => {
    const bound = widenLimits(gate.limits, multiple, base, unit, tolerance);
    return { pass: needsFor(gate.limits, tolerance).pass, detect: needsFor(bound.limits, bound.tolerance).pass, harm: firstLimit(bound.limits)?.value ?? null };
  };
  switch (gate.kind) {
    case "proportion": {
      const { maximum, minimum, maxDelta, minDelta } = gate.limits;
      const expected =
        maximum !== undefined
          ? maximum / 4
          : minimum !== undefined
            ? 1 - (1 - minimum) / 10
            : minDelta !== undefined
              ? 0.99
              : maxDelta !== undefined
                ? 0.01
                : 0.5;
      return both(
        (limits) =>
          proportionNeeds({
            limits,
            expected,
            stable: gate.variant === "shadow" && !gate.baseline ? null : expected,
            alpha,
            harmMultiple: multiple,
            stableRatio: Math.max(stableRatio, 1e-9),
          }),
        null,
        "ratio",
      );
    }
    case "quantile": {
      const h = planningHistogram();
      const median = gate.limits.maximum !== undefined ? gate.limits.maximum / 2 / Math.exp(PLANNING_SIGMA * 1.645) : PLANNING_MEDIAN_US;
      const scaled = { ...h, bounds: h.bounds.map((b) => (b * median) / PLANNING_MEDIAN_US) };
      const z = normalQuantile(gate.quantile);
      const stableQuantile = median * Math.exp(PLANNING_SIGMA * z);
      return both(
        (limits, tolerance) =>
          quantileNeeds({
            limits,
            q: gate.quantile,
            stable: scaled,
            stableQuantile,
            observedRatio: 1,
            alpha,
            harmMultiple: multiple,
            stableRatio: Math.max(stableRatio, 1e-9),
            tolerance,
          }),
        stableQuantile,
        "ms",
        gate.tolerance,
      );
    }
    case "mean": {
      const mid = (gate.range[0] + gate.range[1]) / 2 / gate.displayScale;
      const scaled = Object.fromEntries(Object.entries(gate.limits).map(([k, v]) => [k, k === "maxRatio" ? v : (v as number) / gate.displayScale]));
      const bound = widenLimits(scaled, multiple, mid, "");
      const needsFor = (limits: Limits) =>
        meanNeeds({
          limits,
          candidate: mid,
          stable: mid,
          width: (gate.range[1] - gate.range[0]) / gate.displayScale,
          alpha,
          harmMultiple: multiple,
          stableRatio: Math.max(stableRatio, 1e-9),
        });
      return { pass: needsFor(scaled).pass, detect: needsFor(bound.limits).pass, harm: firstLimit(bound.limits)?.value ?? null };
    }
    default:
      return null;
  }
}

let planning: CumulativeHistogram | null = null;
/** A lognormal latency (median 50 ms, sigma 0.3) on 5%-apart buckets, as expected counts of a large sample. */
function planningHistogram(): CumulativeHistogram {
  if (planning) return planning;
  const bounds: number[] = [];
  const cumulative: number[] = [];
  const total = 1e6;
  for (let b = 100; b < 60e6; b *= 1.05) {
    bounds.push(b);
    cumulative.push(total * normalCdf(Math.log(b / PLANNING_MEDIAN_US) / PLANNING_SIGMA));
  }
  planning = { bounds, cumulative, total };
  return planning;
}

function normalCdf(z: number): number {
  // Abramowitz-Stegun 7.1.26 on erf: enough for planning figures.
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

function normalQuantile(p: number): number {
  let lo = -10;
  let hi = 10;
  for (let i = 0; i < 80; i++) {
    const mid = (lo + hi) / 2;
    if (normalCdf(mid) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}
