/**
 * A rollout's engine state, the actions it asks the caller to apply, and the decisions it records.
 * The state is plain JSON (no Infinity, no class instances): the store can persist it as is and a
 * restarted controller resumes from it.
 */
import { errorBudget, type ErrorBudget } from "./budget.ts";
import type { CountsSnapshot } from "./counts.ts";
import type { Evidence } from "./evidence.ts";
import type { ExternalStates } from "./gate-measure.ts";
import type { Measurement, Segment } from "./measurement.ts";
import { Phase } from "./phase.ts";
import type { PropagationState } from "./propagation-view.ts";
import type { StageKind } from "./spec-schema.ts";
import type { EngineSpec, StageSpec } from "./spec.ts";
import type { TrafficMixResult } from "./traffic-mix.ts";

export interface Weights {
  canaryPercent: number;
  shadowPercent: number;
}

/** A segment dimension as the rollout declares it; "other" is added for values not listed. */
interface DeclaredSegment {
  dimension: string;
  values: string[];
}

export interface EngineState {
  rollout: string;
  spec: EngineSpec;
  segments: DeclaredSegment[];
  /**
   * How falseAlarmRate is split over the rollout's tests (budget.ts). States saved before it existed have
   * alphaPerTest instead; budgetOf() computes the budget for them.
   */
  budget?: ErrorBudget;
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
  /**
   * Proportion-gate counters gathered over the rollout (evidence.ts). Missing in states saved before
   * evidence accumulated across stages: it then starts from the current stage.
   */
  evidence?: Evidence;
  /**
   * Set when a stage's weights are decided: the window waits until the data plane runs them (propagation.ts).
   * Missing or null: no wait (states saved before it, or a controller without a version source).
   */
  propagation?: PropagationState | null;
  /** Signatures of the last recorded hold / traffic-mix warning, so a change is recorded at once. */
  holdSignature: string | null;
  /** When the last hold was recorded: a steady hold is recorded again every HOLD_SNAPSHOT_SECONDS. */
  holdRecordedAt?: number | null;
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
  | "specChanged"
  /** The controller saw the rollout's stable or canary upstream change and held it (rollouts/upstreams.ts). */
  | "upstreamsChanged"
  /** An operator accepted the changed upstreams: the release starts again from its first stage. */
  | "upstreamsAccepted";

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
  /** On holds: what holds the stage and when a decision is expected (eta.ts). */
  eta?: StageEta;
}

/** One thing holding a stage (eta.ts builds them). */
export interface Hold {
  /** Stable across ticks while the same thing holds (no numbers): the hold signature. */
  key: string;
  text: string;
  gate: string | null;
  segment: Segment | null;
  /** Samples gathered and needed (in the measurement's scope); null when the hold is not about samples. */
  samples: number | null;
  needed: number | null;
  /** Seconds until it is expected to clear at the current traffic; null when that cannot be told. */
  seconds: number | null;
}

export interface StageEta {
  /** Seconds until the stage is expected to decide; null when some hold cannot be timed (no traffic, an error, a review). */
  secondsToDecision: number | null;
  /** The hold that takes longest (or cannot be timed). */
  limitedBy: string | null;
  holds: Hold[];
  /** The stage (or a later one) is not expected to conclude before its deadline at the observed traffic. */
  warnings: string[];
}

export const ENGINE_ACTOR = "engine";

interface InitialStateParams {
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
    budget: errorBudget(params.spec, segments),
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
    evidence: { carried: null, stage: null },
    holdSignature: null,
    holdRecordedAt: null,
    mixSignature: null,
    deadlineNoted: false,
    review: null,
    createdAt: params.now,
    endedAt: null,
    endReason: null,
  };
}

/** The rollout's false-alarm budget (computed from the spec for states saved before it was kept). */
export function budgetOf(state: EngineState): ErrorBudget {
  return state.budget ?? errorBudget(state.spec, state.segments);
}

export function candidateOf(kind: StageKind): "canary" | "shadow" {
  return kind === "shadow" ? "shadow" : "canary";
}

export function phaseOf(kind: StageKind): Phase {
  return kind === "shadow" ? Phase.Shadowing : kind === "canary" ? Phase.Canary : Phase.Baking;
}

export function currentStage(state: EngineState): StageSpec | null {
  return state.stageIndex >= 0 ? (state.spec.stages[state.stageIndex] ?? null) : null;
}

/** The spec's stage at `index`; an index outside the spec is a defect in the engine, named here. */
export function stageAt(spec: EngineSpec, index: number): StageSpec {
  const stage = spec.stages[index];
  if (stage === undefined) throw new Error(`engine: no stage ${index} in a spec of ${spec.stages.length} stages`);
  return stage;
}

/**
 * The stage a running rollout is in and when it started. Every phase between Pending and the end has both (enterStage
 * sets them together); a state without them is a defect in the engine, named here rather than met as undefined later.
 */
export function runningStage(state: EngineState): { stage: StageSpec; startedAt: number } {
  const stage = currentStage(state);
  if (stage === null || state.stageStartedAt === null) {
    throw new Error(`engine: phase ${state.phase} without a current stage (stageIndex ${state.stageIndex}, stageStartedAt ${state.stageStartedAt})`);
  }
  return { stage, startedAt: state.stageStartedAt };
}

export function stageRef(state: EngineState): Decision["stage"] {
  const stage = currentStage(state);
  return stage ? { index: stage.index, name: stage.name } : null;
}
