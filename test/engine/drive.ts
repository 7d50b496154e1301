/**
 * Drives the engine tick by tick against a TrafficSim with an injected clock: the weights the engine asks
 * for are the weights the simulated traffic uses from the next tick on.
 */
import type { MetricReading, RolloutCounts } from "../../controller/src/metrics/provider.ts";
import { applyCommand, type Command } from "../../controller/src/engine/commands.ts";
import { initialState, type Action, type Decision, type EngineState } from "../../controller/src/engine/state.ts";
import { parseEngineSpec, type EngineSpec, type SpecContext } from "../../controller/src/engine/spec.ts";
import { step, type Evaluation } from "../../controller/src/engine/step.ts";
import { isTerminal } from "../../controller/src/engine/phase.ts";
import { reviewScores, rng } from "./sim.ts";

/** What drive() needs from a traffic simulator (TrafficSim, PoissonTrafficSim). */
export interface Sim {
  run(requests: number, weights: { canaryPercent: number; shadowPercent: number }, errorFactor?: number): void;
  reading(): MetricReading<RolloutCounts>;
}

export const T0 = Date.UTC(2026, 0, 1);

/** The seed's gate block, as the seed writes it (plus the query gpu_oom_events needs). */
export const SEED_GATES = {
  latency_p95_ms: { maximum_regression_percent: 10 },
  error_rate: { maximum: 0.01 },
  schema_validation_pass_rate: { minimum: 0.995 },
  human_review_score: { minimum_delta: -0.02 },
  gpu_oom_events: { maximum: 0, query: 'sum(increase(gpu_oom_total{model="fraud"}[5m]))' },
};

export function specFrom(raw: Record<string, unknown>, context: Partial<SpecContext> = {}): EngineSpec {
  const parsed = parseEngineSpec(
    { owner: "team-fraud", rollbackCondition: "errors above 1% or p95 up 10% in any tenant tier", ...raw },
    { hasOutputSchema: true, hasShadow: true, ...context },
  );
  if (!parsed.ok) throw new Error(`test spec invalid: ${JSON.stringify(parsed.errors)}`);
  return parsed.spec;
}

export interface DriveOptions {
  sim: Sim;
  requestsPerTick: number;
  /** Requests and error factor per tick instead of a steady requestsPerTick (traffic-patterns.ts). */
  traffic?: (tick: number) => { requests: number; errorFactor: number };
  tickSeconds: number;
  maxTicks: number;
  /** Replace the reading at some ticks (e.g. unmeasurable). */
  reading?: (tick: number, sim: Sim) => MetricReading<RolloutCounts> | null;
  /** gpu_oom_events and other PromQL gates: the value per tick (default 0). */
  promql?: (tick: number) => Record<string, MetricReading<number | null>>;
  /** Review scores posted per tick per variant: count and mean (sd 0.08). */
  /** Review scores posted every tick once the canary has at least `fromCanaryPercent` (default: any) of traffic. */
  reviews?: { perTick: number; stableMean: number; canaryMean: number; seed?: number; fromCanaryPercent?: number };
  /** Manual commands to apply just before the tick of that number. */
  commands?: Record<number, Command[]>;
  /** Stop early when this returns true (after the tick's step). */
  until?: (state: EngineState, tick: number) => boolean;
}

export interface DriveResult {
  state: EngineState;
  decisions: Decision[];
  actions: Action[];
  evaluations: Evaluation[];
  ticks: number;
  refused: string[];
  /** The clock after the last tick. */
  now: number;
}

export function drive(initial: EngineState, options: DriveOptions): DriveResult {
  let state = initial;
  const decisions: Decision[] = [];
  const actions: Action[] = [];
  const evaluations: Evaluation[] = [];
  const refused: string[] = [];
  const random = rng(options.reviews?.seed ?? 7);
  let now = state.createdAt;
  let tick = 0;
  let lastEvaluation: Evaluation | null = null;
  for (; tick < options.maxTicks && !isTerminal(state.phase); tick++) {
    for (const command of options.commands?.[tick] ?? []) {
      const result = applyCommand(state, command, now, lastEvaluation);
      if (!result.ok) {
        refused.push(result.error);
        continue;
      }
      state = result.state;
      decisions.push(...result.decisions);
      actions.push(...result.actions);
    }
    if (isTerminal(state.phase)) break;
    const traffic = options.traffic?.(tick) ?? { requests: options.requestsPerTick, errorFactor: 1 };
    options.sim.run(traffic.requests, state.weights, traffic.errorFactor);
    if (options.reviews && state.weights.canaryPercent > 0 && state.weights.canaryPercent >= (options.reviews.fromCanaryPercent ?? 0)) {
      const { perTick, stableMean, canaryMean } = options.reviews;
      for (const [variant, mean] of [
        ["stable", stableMean],
        ["canary", canaryMean],
      ] as const) {
        const result = applyCommand(
          state,
          { type: "recordExternal", metric: "human_review_score", variant, values: reviewScores(random, perTick, mean, 0.08) },
          now,
        );
        if (result.ok) state = result.state;
      }
    }
    now += options.tickSeconds * 1000;
    const reading = options.reading?.(tick, options.sim) ?? options.sim.reading();
    const promql = options.promql?.(tick) ?? { gpu_oom_events: { status: "measured" as const, value: 0, sources: [] } };
    const result = step(state, { now, counts: reading, promql });
    state = result.state;
    decisions.push(...result.decisions);
    actions.push(...result.actions);
    if (result.evaluation) evaluations.push((lastEvaluation = result.evaluation));
    if (options.until?.(state, tick)) {
      tick++;
      break;
    }
  }
  return { state, decisions, actions, evaluations, ticks: tick, refused, now };
}

export function start(spec: EngineSpec, segments?: Array<{ dimension: string; values: string[] }>): EngineState {
  return initialState({ rollout: "fraud-model", spec, segments, now: T0 });
}
