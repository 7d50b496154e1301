/**
 * What keeps a canary whose measurements break a gate from reaching a bigger stage (issue 19; README, "What a
 * stage must show"). Two rules for every slice a stage asks to detect harm on (requirements.ts):
 *   the estimate  the point estimate must not be on the wrong side of the declared limit (p95 26% above stable
 *                 against a 10% limit holds the stage, however few samples "detecting harm" would take); the
 *                 stage holds until the always-valid interval shows the violation (Failed: rollback) or the
 *                 estimate comes back within the limit;
 *   the bound     the interval's bad-side end (the upper end of a "lower is better" gate) must be within the
 *                 stage bound: the declared limit widened to `multiple` times its allowance, where
 *                 multiple = 1 + (1 - s) x (harmMultiple - 1) and s is the share of traffic the next stage
 *                 gives the canary. Before a 25% stage (harmMultiple 4) a 10% latency limit becomes 32.5%,
 *                 before 50% 25%, before 100% the limit itself (the proof stage must pass). The exposure that
 *                 would follow decides how much harm must already be ruled out.
 * Segment values at the proof stage are held to harmMultiple times the allowance (they are never asked to prove
 * the limit itself before 100%). The allowance is the one power.ts uses for its harm sizes (harmOf).
 */
import type { LimitKind, Limits } from "./gate-spec.ts";
import { formatValue, type Measurement } from "./measurement.ts";
import type { EngineSpec } from "./spec.ts";

/** Limits widened to a stage bound, in the gate's display units; `tolerance` for latency ratio limits. */
export interface BoundLimits {
  multiple: number;
  limits: Limits;
  tolerance?: number;
}

/** The multiple of its allowance a gate's interval must be within before leaving stage `stageIndex`. */
export function boundMultiple(spec: EngineSpec, stageIndex: number, segment: boolean): number {
  const m = Math.max(1, spec.harmMultiple ?? 4);
  if (segment) return m;
  const next = spec.stages[stageIndex + 1];
  const share = next === undefined ? 1 : next.kind === "bake" ? 1 : Math.min(100, Math.max(0, next.canaryPercent)) / 100;
  return 1 + (1 - share) * (m - 1);
}

/**
 * `limits` widened to `multiple` times their allowance: a rate maximum from 0 (1% -> 3.25%), a rate minimum
 * from 1 (99.5% -> 98.4%), other maximums and minimums from stable's value when it is inside the limit
 * (else a minimum is left out: no allowance to scale), deltas from 0, ratios from 1.
 */
export function widenLimits(limits: Limits, multiple: number, base: number | null, unit: Measurement["unit"], tolerance?: number): BoundLimits {
  const out: Limits = {};
  const clamp = (x: number) => (unit === "ratio" ? Math.min(1, Math.max(0, x)) : x);
  for (const kind of Object.keys(limits) as LimitKind[]) {
    const limit = limits[kind];
    if (limit === undefined) continue;
    switch (kind) {
      case "maximum": {
        const b = unit !== "ratio" && base !== null && base < limit ? base : 0;
        out.maximum = clamp(b + multiple * (limit - b));
        break;
      }
      case "minimum": {
        const b = unit === "ratio" ? 1 : base !== null && base > limit ? base : null;
        if (b !== null) out.minimum = clamp(b - multiple * (b - limit));
        break;
      }
      case "maxDelta":
      case "minDelta":
        out[kind] = multiple * limit;
        break;
      case "maxRatio":
        out.maxRatio = 1 + multiple * (limit - 1);
        break;
    }
  }
  return { multiple, limits: out, tolerance: tolerance === undefined ? undefined : multiple * tolerance };
}

/** The first declared limit the point estimates are on the wrong side of (null: within every limit, or no estimate). */
export function estimateBeyond(limits: Limits, candidate: number | null, stable: number | null, tolerance = 0): { kind: LimitKind; value: number } | null {
  if (candidate === null || !Number.isFinite(candidate)) return null;
  const s = stable !== null && Number.isFinite(stable) ? stable : null;
  for (const kind of ["maximum", "minimum", "maxDelta", "minDelta", "maxRatio"] as const) {
    const value = limits[kind];
    if (value === undefined) continue;
    let beyond = false;
    switch (kind) {
      case "maximum":
        beyond = candidate > value;
        break;
      case "minimum":
        beyond = candidate < value;
        break;
      case "maxDelta":
        beyond = s !== null && candidate - s > value;
        break;
      case "minDelta":
        beyond = s !== null && candidate - s < value;
        break;
      case "maxRatio":
        beyond = s !== null && s > 0 && candidate / s > value && candidate - s > tolerance;
        break;
    }
    if (beyond) return { kind, value };
  }
  return null;
}

/** The harm a bound rules out, in words: "3.25% or more", "98.4% or less", "a regression of more than 32.5% and 6.5 ms". */
export function describeBoundHarm(kind: LimitKind, value: number, unit: Measurement["unit"], tolerance?: number): string {
  switch (kind) {
    case "maximum":
      return `${formatValue(value, unit)} or more`;
    case "minimum":
      return `${formatValue(value, unit)} or less`;
    case "maxDelta":
      return `${signed(value, unit)} or more vs stable`;
    case "minDelta":
      return `${signed(value, unit)} or less vs stable`;
    case "maxRatio":
      return tolerance ? `regression of more than ${percent(value - 1)} and ${formatValue(tolerance, unit)}` : `regression of ${percent(value - 1)} or more`;
  }
}

/** The point estimate in the terms of a limit: "26% above stable", "2.1%", "+0.4% vs stable". */
export function describeEstimate(kind: LimitKind, candidate: number | null, stable: number | null, unit: Measurement["unit"]): string {
  if (candidate === null) return "nothing";
  switch (kind) {
    case "maximum":
    case "minimum":
      return formatValue(candidate, unit);
    case "maxDelta":
    case "minDelta":
      return stable === null ? formatValue(candidate, unit) : `${signed(candidate - stable, unit)} vs stable`;
    case "maxRatio":
      if (stable === null || !(stable > 0)) return formatValue(candidate, unit);
      return candidate >= stable ? `${percent(candidate / stable - 1)} above stable` : `${percent(1 - candidate / stable)} below stable`;
  }
}

/** The bound and what was measured against the declared limit: "no regression of 32.5% or more; 2.1% above stable measured, limit ...". */
export function ruledOutText(m: Measurement, limitText: string): string {
  const b = m.bound;
  if (!b) return "";
  const kind = m.beyondLimit?.kind ?? b.kind;
  return `no ${describeBoundHarm(b.kind, b.value, m.unit, b.tolerance)}; ${describeEstimate(kind, m.candidateValue, m.stableValue, m.unit)} measured, limit ${limitText}`;
}

function percent(x: number): string {
  return `${Number((x * 100).toFixed(1))}%`;
}

function signed(value: number, unit: Measurement["unit"]): string {
  return `${value >= 0 ? "+" : "-"}${formatValue(Math.abs(value), unit)}`;
}
