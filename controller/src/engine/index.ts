/**
 * The rollout engine: spec parsing, one pure step per tick, manual commands. No I/O: the caller reads the
 * metric sources (metrics/) before each step and passes the readings in.
 *
 * The engine's one door: code outside engine/ imports from this file only (test/unit/import-cycles.test.ts
 * checks it), so what the rest of the controller relies on is listed here and everything else may change. The
 * one exception is the operator CLI's formatter (engine/measurement.ts), which must not load the whole engine.
 */
export { Phase, isTerminal, isClosed } from "./phase.ts";
export { parseEngineSpec, describeSpecErrors, DEFAULT_POLICY, DEFAULT_STAGES, STAGE_DEFAULTS } from "./spec.ts";
export type { EngineSpec, Policy, SpecContext, ParseResult } from "./spec.ts";
export { specWarnings } from "./spec-warnings.ts";
export { CustomGate, EngineSpecInput, ENGINE_SPEC_KEYS, LatencyGate, PromotionGates, StageDefaults, StageObject } from "./spec-schema.ts";
export { DEFAULT_LATENCY_TOLERANCE_MS } from "./gate-spec.ts";
export type { Limits, WebhookGate } from "./gate-spec.ts";
export { MeasurementStatus, formatValue, segmentLabel, type Measurement, type Segment } from "./measurement.ts";
export { initialState, budgetOf, stageRef, stageAt, candidateOf } from "./state.ts";
export { errorBudget, testAlpha } from "./budget.ts";
export type { EngineState, Action, Decision, DecisionKind, Weights, WindowSummary, Hold } from "./state.ts";
export { step, type StepResult, type Evaluation } from "./step.ts";
export { DEFAULT_PROPAGATION, type PropagationInput } from "./propagation.ts";
export type { PropagationPolicy, PropagationView } from "./propagation-view.ts";
export { DEFAULT_SAMPLE_RATIO, type SampleRatioPolicy } from "./sample-ratio.ts";
export { applyCommand, type Command } from "./commands.ts";
export { OVERALL, parseSliceKey, sumCounters, toSnapshot, windowBetween } from "./counts.ts";
export type { CountsSnapshot, HistogramSnapshot, SliceSnapshot, VariantSnapshots } from "./counts.ts";
export { finalizeOf, modelsOf, type ModelIdentity } from "./lifecycle-spec.ts";
export { needsReadings } from "./lifecycle.ts";
export { respec } from "./respec.ts";
export { liveEvaluation, rolloutForecast } from "./view.ts";
export { promqlQueries } from "./promql.ts";
export { parseJudgeAnswer, type JudgeAnswer, type JudgeReading, type JudgeQuestion } from "./webhook-answer.ts";
export {
  NotificationsInput,
  NOTIFY_DEFAULTS,
  checkTargetList,
  parseTargetsEnv,
  wants,
  type NotificationEvent,
  type NotificationSpec,
  type NotificationTarget,
  type NotificationTargetInput,
  type TargetFormat,
} from "./notify-spec.ts";
