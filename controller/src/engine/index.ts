/**
 * The rollout engine: spec parsing, one pure step per tick, manual commands. No I/O except the PromQL
 * source, which the caller runs before each step.
 *
 * The engine's one door: code outside engine/ imports from this file only (test/unit/import-cycles.test.ts
 * checks it), so what the rest of the controller relies on is listed here and everything else may change. The
 * one exception is the operator CLI's formatter (engine/measurement.ts), which must not load the whole engine.
 */
export { Phase, isTerminal, isClosed } from "./phase.ts";
export { parseEngineSpec, describeSpecErrors, DEFAULT_POLICY, DEFAULT_STAGES, STAGE_DEFAULTS } from "./spec.ts";
export type { EngineSpec, StageSpec, Policy, SpecContext, ParseResult } from "./spec.ts";
export { EngineSpecInput, ENGINE_SPEC_KEYS, CustomGate, LatencyGate, PromotionGates, StageDefaults, StageObject } from "./spec-schema.ts";
export { DEFAULT_LATENCY_TOLERANCE_MS, type GateSpec, type Limits } from "./gate-spec.ts";
export { MeasurementStatus, segmentLabel, type Measurement, type Segment } from "./measurement.ts";
export { initialState, budgetOf, stageRef } from "./state.ts";
export { errorBudget, testAlpha, type ErrorBudget } from "./budget.ts";
export type { EngineState, Action, Decision, DecisionKind, Weights, WindowSummary, InitialStateParams, Hold, StageEta } from "./state.ts";
export { step, type TickInput, type StepResult, type Evaluation } from "./step.ts";
export { applyCommand, type Command, type CommandResult } from "./commands.ts";
export { OVERALL, parseSliceKey, sumCounters, toSnapshot, windowBetween } from "./counts.ts";
export type { CountsSnapshot, EngineVariant, HistogramSnapshot, SliceSnapshot, VariantSnapshots } from "./counts.ts";
export { finalizeOf, modelsOf, type ModelIdentity } from "./lifecycle-spec.ts";
export { needsReadings } from "./lifecycle.ts";
export { respec } from "./respec.ts";
export { liveEvaluation, rolloutForecast } from "./view.ts";
export { PrometheusHttpSource, readPromQLGates, type PromQLSource } from "./promql.ts";
