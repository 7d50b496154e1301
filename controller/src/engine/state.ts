/**
 * A rollout's engine state, the actions it asks the caller to apply, and the decisions it records.
 * The state is plain JSON (no Infinity, no class instances): the store can persist it as is and a
 * restarted controller resumes from it.
 */
import type { CountsSnapshot } from "./counts.ts";
import type { ExternalStates } from "./gates.ts";
import { hasAbsoluteLimit, type GateSpec } from "./gate-spec.ts";
import type { Measurement, Segment } from "./measurement.ts";
import { Phase } from "./phase.ts";
import type { StageKind } from "./spec-schema.ts";
import type { EngineSpec, StageSpec } from "./spec.ts";
import type { TrafficMixResult } from "./traffic-mix.ts";

export interface Weights {
  canaryPercent: number;
  shadowPercent: number;
}

/** A segment dimension as the rollout declares it; "other" is added for values not listed. */
export interface DeclaredSegment {
  dimension: string;
  values: string[];
}

export interface EngineState {
  rollout: string;
  spec: EngineSpec;
  segments: DeclaredSegment[];
  /** The error budget of one statistical test (falseAlarmRate split evenly; see alphaPerTest()). */
  alphaPerTest: number;
  phase: Phase;
  /** Index into spec.stages; -1 while Pending. */
  stageIndex: number;
  stageStartedAt: number | null;
  /** Set while Paused: the phase to resume to, and since when. */
  pausedFrom: Phase | null;
  pausedAt: number | null;
  /** Time spent paused in the current stage; it does not count towards the stage's duration or deadline. */
  pausedMsInStage: number;
  /** Cumulative counts at the start of the stage's window (null until the first readable tick of the stage). */
  baseline: CountsSnapshot | null;
  baselineAt: number | null;
  /** The weights the caller was last asked to apply. */
  weights: Weights;
  external: ExternalStates;
  /** Signatures of the last recorded hold / traffic-mix warning, so a steady condition is recorded once. */
  holdSignature: string | null;
  mixSignature: string | null;
  deadlineNoted: boolean;
  review: { reviewer: string; approved: boolean; note: string | null; at: number } | null;
  createdAt: number;
  endedAt: number | null;
  endReason: string | null;
  /** Model identity and finalize (engine/lifecycle.ts); absent in state saved before they existed. */
  lifecycle?: LifecycleState;
}

export interface LifecycleState {
  /** Canary answers stating another model's version, cumulative at the last reading (null before the first). */
  canaryMismatchMark: number | null;
  /** Set when canary traffic was withdrawn after Succeeded because its upstream answers another model: why. */
  canaryWithdrawn: string | null;
  /** While Finalizing: who asked, and what stable has answered since. */
  finalize: FinalizeProgress | null;
  /** The last finalize that could not be verified, for the record of what is pending. */
  finalizeNote: string | null;
}

export interface FinalizeProgress {
  by: string;
  askedAt: number;
  /** Stable's answers, cumulative at the last reading: with the new version (fresh), with another (stale). */
  last: { fresh: number; stale: number } | null;
  /** Since finalize was asked. */
  seen: { fresh: number; stale: number };
  /** Fresh answers since the last stale one. */
  streak: number;
  waitingNoted: boolean;
}

export type Action =
  /** Route canaryPercent of real traffic to the canary (sticky) and mirror shadowPercent to the shadow. */
  | { type: "setWeights"; canaryPercent: number; shadowPercent: number; reason: string }
  /** All traffic to stable at once, mirroring off; push it before anything else. */
  | { type: "rollback"; canaryPercent: 0; shadowPercent: 0; reason: string }
  /** The canary is now the stable model: the old stable no longer needs to be kept warm. */
  | { type: "finalize"; reason: string };

export type DecisionKind =
  | "started"
  | "advanced"
  | "held"
  | "deadlinePassed"
  | "trafficMixWarning"
  | "baselineReset"
  | "rolledBack"
  | "failed"
  | "awaitingReview"
  | "succeeded"
  | "promoted"
  | "paused"
  | "resumed"
  | "undone"
  | "reviewed"
  | "finalizeRequested"
  | "finalized"
  | "finalizeNotVerified"
  | "finalizeWaiting"
  | "canaryWithdrawn"
  | "specChanged";

/** Requests, error rate and p95 of each variant over a stage's window: the per-stage telemetry on record. */
export interface WindowSummary {
  from: number | null;
  to: number;
  slices: Array<{ segment: Segment | null; stable: VariantWindow; candidate: VariantWindow }>;
}

export interface VariantWindow {
  requests: number;
  errorRate: number | null;
  p95Ms: number | null;
}

export interface Decision {
  at: number;
  rollout: string;
  kind: DecisionKind;
  from: Phase;
  to: Phase;
  /** The stage judged: the one passed (advanced, promoted), the one started (started), else the current one. */
  stage: { index: number; name: string } | null;
  /** Who decided: "engine", or the operator's name for manual actions. */
  actor: string;
  reason: string;
  measurements: Measurement[];
  trafficMix: TrafficMixResult[];
  window: WindowSummary | null;
}

export const ENGINE_ACTOR = "engine";

export interface InitialStateParams {
  rollout: string;
  spec: EngineSpec;
  /** The rollout's segment dimensions and their listed values (gates are evaluated for these only). */
  segments?: ReadonlyArray<{ dimension: string; values: readonly string[] }>;
  now: number;
}

export function initialState(params: InitialStateParams): EngineState {
  const segments = (params.segments ?? []).map((s) => ({
    dimension: s.dimension,
    values: s.values.includes("other") ? [...s.values] : [...s.values, "other"],
  }));
  return {
    rollout: params.rollout,
    spec: params.spec,
    segments,
    alphaPerTest: alphaPerTest(params.spec, segments),
    phase: Phase.Pending,
    stageIndex: -1,
    stageStartedAt: null,
    pausedFrom: null,
    pausedAt: null,
    pausedMsInStage: 0,
    baseline: null,
    baselineAt: null,
    weights: { canaryPercent: 0, shadowPercent: 0 },
    external: {},
    holdSignature: null,
    mixSignature: null,
    deadlineNoted: false,
    review: null,
    createdAt: params.now,
    endedAt: null,
    endReason: null,
  };
}

/**
 * Bonferroni: the rollout's falseAlarmRate split evenly over every statistical test it can run. A test is
 * one gate in one stage for one slice (overall or a declared segment value), plus one per external gate and
 * candidate variant (those accumulate over the whole rollout). Each test is an always-valid sequence, so
 * its own false-alarm chance over unlimited looks is at most its share; the sum is at most falseAlarmRate.
 */
export function alphaPerTest(spec: EngineSpec, segments: readonly DeclaredSegment[]): number {
  const slices = 1 + segments.reduce((n, s) => n + s.values.length, 0);
  const stageKinds = new Set(spec.stages.map((s) => s.kind));
  let tests = 0;
  for (const gate of spec.gates) {
    if (gate.kind === "promql") continue;
    if (gate.kind === "external") {
      const candidates = new Set(gate.during.filter((k) => stageKinds.has(k)).map(candidateOf));
      tests += candidates.size;
      continue;
    }
    for (const stage of spec.stages) if (appliesTo(gate, stage)) tests += slices;
  }
  return spec.falseAlarmRate / Math.max(1, tests);
}

export function appliesTo(gate: GateSpec, stage: StageSpec): boolean {
  if (!gate.during.includes(stage.kind)) return false;
  return stage.kind !== "bake" || hasAbsoluteLimit(gate);
}

export function candidateOf(kind: StageKind): "canary" | "shadow" {
  return kind === "shadow" ? "shadow" : "canary";
}

export function phaseOf(kind: StageKind): Phase {
  return kind === "shadow" ? Phase.Shadowing : kind === "canary" ? Phase.Canary : Phase.Baking;
}

export function currentStage(state: EngineState): StageSpec | null {
  return state.stageIndex >= 0 ? state.spec.stages[state.stageIndex] : null;
}

export function stageRef(state: EngineState): Decision["stage"] {
  const stage = currentStage(state);
  return stage ? { index: stage.index, name: stage.name } : null;
}
