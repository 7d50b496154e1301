/**
 * Phase changes shared by the tick (step.ts) and the manual commands (commands.ts). Each returns the new
 * state, the decision to record and the actions for the caller; none mutates its input.
 */
import { cumulativeQuantile } from "../metrics/histogram.ts";
import { OVERALL, parseSliceKey, sliceKey, sumCounters, type CountsSnapshot, type SliceSnapshot } from "./counts.ts";
import { foldStage } from "./evidence.ts";
import type { Measurement } from "./measurement.ts";
import { Phase } from "./phase.ts";
import {
  candidateOf,
  currentStage,
  phaseOf,
  stageAt,
  stageRef,
  type Action,
  type Decision,
  type DecisionKind,
  type EngineState,
  type VariantWindow,
  type WindowSummary,
} from "./state.ts";
import type { TrafficMixResult } from "./traffic-mix.ts";

export interface Transition {
  state: EngineState;
  decisions: Decision[];
  actions: Action[];
}

export interface DecisionDetails {
  actor: string;
  reason: string;
  measurements?: Measurement[];
  trafficMix?: TrafficMixResult[];
  window?: WindowSummary | null;
}

export function decision(before: EngineState, after: EngineState, kind: DecisionKind, at: number, details: DecisionDetails): Decision {
  return {
    at,
    rollout: before.rollout,
    kind,
    from: before.phase,
    to: after.phase,
    stage: stageRef(before.stageIndex >= 0 ? before : after),
    actor: details.actor,
    reason: details.reason,
    measurements: details.measurements ?? [],
    trafficMix: details.trafficMix ?? [],
    window: details.window ?? null,
  };
}

/**
 * Start stage `index`. `baseline` is the cumulative reading taken at this moment, or null to take it at the
 * next readable tick (manual promotion carries no reading).
 */
export function enterStage(
  state: EngineState,
  index: number,
  now: number,
  baseline: CountsSnapshot | null,
  kind: DecisionKind,
  details: DecisionDetails,
): Transition {
  const stage = stageAt(state.spec, index);
  const next: EngineState = {
    ...state,
    phase: phaseOf(stage.kind),
    stageIndex: index,
    stageStartedAt: now,
    pausedFrom: null,
    pausedAt: null,
    pausedMsInStage: 0,
    baseline,
    baselineAt: baseline ? now : null,
    // The window waits for the data plane to run these weights (propagation.ts); a rollback never waits.
    propagation: { since: now, confirmed: null },
    weights: { canaryPercent: stage.canaryPercent, shadowPercent: stage.shadowPercent },
    // The stage left keeps its counters as evidence for the gates that accumulate (evidence.ts).
    evidence: foldStage(state.evidence),
    holdSignature: null,
    holdRecordedAt: null,
    mixSignature: null,
    deadlineNoted: false,
  };
  // The decision belongs to the stage it judged (its measurements and window are that stage's); only the
  // first stage's "started" has none before it, and so names the stage it starts.
  const record = decision(state, next, kind, now, details);
  return {
    state: next,
    decisions: [record],
    actions: [{ type: "setWeights", canaryPercent: stage.canaryPercent, shadowPercent: stage.shadowPercent, reason: `stage ${stage.name}: ${details.reason}` }],
  };
}

/** RolledBack or Failed: stable takes all traffic at once. */
export function endWithRollback(
  state: EngineState,
  phase: Phase.RolledBack | Phase.Failed,
  kind: DecisionKind,
  now: number,
  details: DecisionDetails,
): Transition {
  const next: EngineState = {
    ...state,
    phase,
    pausedFrom: null,
    pausedAt: null,
    weights: { canaryPercent: 0, shadowPercent: 0 },
    endedAt: now,
    endReason: details.reason,
  };
  return {
    state: next,
    decisions: [decision(state, next, kind, now, details)],
    actions: [{ type: "rollback", canaryPercent: 0, shadowPercent: 0, reason: details.reason }],
  };
}

/** The bake period is over: Succeeded, or AwaitingReview when the policy asks for a review. */
export function completeBake(state: EngineState, now: number, kind: DecisionKind, details: DecisionDetails): Transition {
  if (state.spec.endsInReview && state.review === null) {
    const next: EngineState = { ...state, phase: Phase.AwaitingReview, pausedFrom: null, pausedAt: null };
    return {
      state: next,
      decisions: [
        decision(state, next, kind === "advanced" ? "awaitingReview" : kind, now, {
          ...details,
          reason: `${details.reason}; high-impact rollout: waiting for a review`,
        }),
      ],
      actions: [],
    };
  }
  return succeed(state, now, kind === "advanced" ? "succeeded" : kind, details);
}

export function succeed(state: EngineState, now: number, kind: DecisionKind, details: DecisionDetails): Transition {
  const next: EngineState = { ...state, phase: Phase.Succeeded, pausedFrom: null, pausedAt: null, endedAt: now, endReason: details.reason };
  return {
    state: next,
    decisions: [decision(state, next, kind, now, details)],
    actions: [{ type: "finalize", reason: details.reason }],
  };
}

/** Stage telemetry for the record: per slice, requests, error rate and p95 of stable and the candidate. */
export function summarizeWindow(state: EngineState, window: CountsSnapshot | null, now: number): WindowSummary | null {
  if (!window) return null;
  const stage = currentStage(state);
  const candidate = candidateOf(stage?.kind ?? "canary");
  const keys = [OVERALL, ...state.segments.flatMap((s) => s.values.map((value) => sliceKey({ dimension: s.dimension, value })))];
  const slices: WindowSummary["slices"] = [];
  for (const key of keys) {
    const variants = window.slices[key];
    if (!variants) continue;
    const stable = variantWindow(variants.stable);
    const cand = variantWindow(variants[candidate]);
    if (key !== OVERALL && stable.requests === 0 && cand.requests === 0) continue;
    slices.push({ segment: parseSliceKey(key), stable, candidate: cand });
  }
  return { from: state.baselineAt, to: now, slices };
}

function variantWindow(slice: SliceSnapshot | undefined): VariantWindow {
  const responses = sumCounters(slice, ["responses{class=*}"]);
  const errors = sumCounters(slice, ["responses{class=5xx}", "responses{class=local}"]);
  const latency = slice?.histograms.latency_us;
  let p95Ms: number | null = null;
  if (latency && latency.total > 0) {
    const q = cumulativeQuantile(latency, 0.95);
    p95Ms = q === null ? null : q / 1000;
  }
  return { requests: slice?.counters.requests ?? 0, errorRate: responses > 0 ? errors / responses : null, p95Ms };
}
