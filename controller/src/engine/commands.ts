/**
 * Manual actions on a rollout (promote, pause, resume, rollback, fail, undo, review, finalize) and external
 * measurements (review scores, KPIs). Pure like step(): the caller applies the returned actions and
 * records the decisions. A command that does not fit the current phase is refused with a message naming
 * the rollout, and changes nothing (the API answers 409).
 */
import type { EngineVariant } from "./counts.ts";
import type { ExternalGate } from "./gate-spec.ts";
import { lifecycleCommand } from "./lifecycle.ts";
import { isClosed, isTerminal, Phase } from "./phase.ts";
import { testAlpha } from "./budget.ts";
import { addEmpiricalBernstein, emptyEmpiricalBernstein } from "./means.ts";
import { budgetOf, currentStage, type EngineState } from "./state.ts";
import type { Evaluation } from "./step.ts";
import { completeBake, decision, endWithRollback, enterStage, succeed, type Transition } from "./transitions.ts";

export type Command =
  /** Next stage now, whatever the gates say (from Pending: the first stage; from the last: complete). */
  | { type: "promote"; actor: string; reason?: string }
  /** Hold the current weights: no promotion, no deadline; a Failed gate still rolls back. */
  | { type: "pause"; actor: string; reason?: string }
  | { type: "resume"; actor: string; reason?: string }
  /** All traffic to stable now. */
  | { type: "rollback"; actor: string; reason?: string }
  /** Give up on this rollout (stable gets all traffic), without claiming the candidate is worse. */
  | { type: "fail"; actor: string; reason?: string }
  /** During the bake period or the wait for review: go back to the old stable, which is still warm. */
  | { type: "undo"; actor: string; reason?: string }
  /** The review a high-impact rollout waits for. */
  | { type: "review"; actor: string; approved: boolean; reason?: string }
  /** After Succeeded: stable now serves the new model; verify it (unless verify is false), then all traffic to stable. */
  | { type: "finalize"; actor: string; reason?: string; verify?: boolean }
  /** Values of an external metric (e.g. human_review_score) for one variant, in the order observed. */
  | { type: "recordExternal"; metric: string; variant: EngineVariant; values: number[]; actor?: string };

type CommandResult = ({ ok: true } & Transition) | { ok: false; error: string };

const ACTIVE: ReadonlySet<Phase> = new Set([Phase.Pending, Phase.Shadowing, Phase.Canary, Phase.Baking]);

/**
 * `lastEvaluation` (the latest tick's) is attached to the decision, so a manual action is on record with
 * the numbers the operator saw.
 */
export function applyCommand(state: EngineState, command: Command, now: number, lastEvaluation?: Evaluation | null): CommandResult {
  const refuse = (why: string): CommandResult => ({ ok: false, error: `rollout ${state.rollout}: cannot ${command.type}: ${why}` });
  if (command.type === "recordExternal") return recordExternal(state, command, refuse);
  const actor = command.actor;
  const said = command.reason ? `: ${command.reason}` : "";
  const details = (reason: string) => ({
    actor,
    reason,
    measurements: lastEvaluation?.measurements ?? [],
    trafficMix: lastEvaluation?.trafficMix ?? [],
  });
  if (!isClosed(state.phase)) {
    const lifecycle = lifecycleCommand(state, command, now, details);
    if (typeof lifecycle === "string") return refuse(lifecycle);
    if (lifecycle !== null) return ok(lifecycle);
  }
  if (isTerminal(state.phase) || command.type === "finalize") return refuse(`it has already ended (${state.phase})`);

  switch (command.type) {
    case "promote": {
      if (state.phase === Phase.Paused) return refuse("it is paused (resume it first)");
      if (state.phase === Phase.AwaitingReview) return refuse("it is waiting for a review (post one)");
      const from = currentStage(state);
      const next = state.stageIndex + 1;
      const to = state.spec.stages[next];
      if (to !== undefined) {
        return ok(enterStage(state, next, now, null, "promoted", details(`promoted by ${actor} from ${from?.name ?? "Pending"} to ${to.name}${said}`)));
      }
      return ok(completeBake(state, now, "promoted", details(`promoted by ${actor} past the end of the bake period${said}`)));
    }
    case "pause": {
      if (state.phase === Phase.Pending) return refuse("it has not started yet (nothing to hold)");
      if (!ACTIVE.has(state.phase)) return refuse(`it is ${state.phase}`);
      const next: EngineState = { ...state, phase: Phase.Paused, pausedFrom: state.phase, pausedAt: now };
      return ok({ state: next, decisions: [decision(state, next, "paused", now, details(`paused by ${actor}${said}`))], actions: [] });
    }
    case "resume": {
      if (state.phase !== Phase.Paused || state.pausedFrom === null) return refuse(`it is not paused (${state.phase})`);
      const pausedMs = now - (state.pausedAt ?? now);
      const next: EngineState = {
        ...state,
        phase: state.pausedFrom,
        pausedFrom: null,
        pausedAt: null,
        pausedMsInStage: state.pausedMsInStage + pausedMs,
      };
      return ok({
        state: next,
        decisions: [decision(state, next, "resumed", now, details(`resumed by ${actor} after ${Math.round(pausedMs / 1000)} s${said}`))],
        actions: [],
      });
    }
    case "rollback":
      return ok(endWithRollback(state, Phase.RolledBack, "rolledBack", now, details(`rolled back by ${actor}${said}`)));
    case "fail":
      return ok(endWithRollback(state, Phase.Failed, "failed", now, details(`failed by ${actor}${said}`)));
    case "undo": {
      const atFull =
        state.phase === Phase.Baking || state.phase === Phase.AwaitingReview || (state.phase === Phase.Paused && state.pausedFrom === Phase.Baking);
      if (!atFull) return refuse(`undo is for a rollout at 100% whose old stable is still warm (bake period or review); it is ${state.phase} (use rollback)`);
      return ok(endWithRollback(state, Phase.RolledBack, "undone", now, details(`undone by ${actor}: back to the old stable${said}`)));
    }
    case "review": {
      if (state.phase !== Phase.AwaitingReview) return refuse(`it is not waiting for a review (${state.phase})`);
      const reviewed: EngineState = { ...state, review: { reviewer: actor, approved: command.approved, note: command.reason ?? null, at: now } };
      if (command.approved) return ok(succeed(reviewed, now, "reviewed", details(`approved by ${actor}${said}`)));
      return ok(endWithRollback(reviewed, Phase.RolledBack, "reviewed", now, details(`review by ${actor} rejected it: back to the old stable${said}`)));
    }
  }
}

function recordExternal(state: EngineState, command: Extract<Command, { type: "recordExternal" }>, refuse: (why: string) => CommandResult): CommandResult {
  const gates = state.spec.gates.filter((g): g is ExternalGate => g.kind === "external" && g.metric === command.metric);
  if (gates.length === 0) {
    const known = state.spec.gates.filter((g) => g.kind === "external").map((g) => (g as ExternalGate).metric);
    return refuse(
      `no gate uses the external metric '${command.metric}'${known.length ? ` (gated: ${known.join(", ")})` : " (the spec has no external gates)"}`,
    );
  }
  if (command.values.length === 0) return refuse("no values given");
  const external = { ...state.external };
  for (const gate of gates) {
    const [low, high] = gate.range;
    const bad = command.values.findIndex((v) => !Number.isFinite(v) || v < low || v > high);
    if (bad >= 0) return refuse(`value ${bad} (${command.values[bad]}) is outside the range of gate ${gate.name}, [${low}, ${high}]`);
    const perVariant = { ...(external[gate.name] ?? {}) };
    // Each variant's sequence gets half of the test's budget: the gate compares two of them.
    const previous = perVariant[command.variant] ?? emptyEmpiricalBernstein(testAlpha(budgetOf(state), gate.name, false) / 2);
    perVariant[command.variant] = addEmpiricalBernstein(
      previous,
      command.values.map((v) => (v - low) / (high - low)),
    );
    external[gate.name] = perVariant;
  }
  return { ok: true, state: { ...state, external }, decisions: [], actions: [] };
}

function ok(t: Transition): CommandResult {
  return { ok: true, ...t };
}
