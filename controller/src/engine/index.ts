/**
 * The rollout engine: spec parsing, one pure step per tick, manual commands. No I/O: the caller reads the
 * metric sources (metrics/) before each step and passes the readings in.
 */
export { Phase, isTerminal, isClosed } from "./phase.ts";
export { parseEngineSpec, describeSpecErrors, DEFAULT_POLICY, DEFAULT_STAGES, STAGE_DEFAULTS } from "./spec.ts";
export type { EngineSpec, StageSpec, Policy, SpecContext, ParseResult } from "./spec.ts";
export { EngineSpecInput, ENGINE_SPEC_KEYS } from "./spec-schema.ts";
export type { GateSpec, Limits } from "./gate-spec.ts";
export { MeasurementStatus, type Measurement, type Segment } from "./measurement.ts";
export { initialState, budgetOf } from "./state.ts";
export { errorBudget, testAlpha, type ErrorBudget } from "./budget.ts";
export type { EngineState, Action, Decision, DecisionKind, Weights, WindowSummary, InitialStateParams, Hold, StageEta } from "./state.ts";
export { step, type TickInput, type StepResult, type Evaluation } from "./step.ts";
export { applyCommand, type Command, type CommandResult } from "./commands.ts";
export type { EngineVariant } from "./counts.ts";
export { promqlQueries } from "./promql.ts";
