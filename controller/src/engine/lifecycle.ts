/**
 * What a release goes through besides its stages: the models' identity checked on every tick that routes
 * to the canary, and the finalize step after Succeeded (stable made to serve the new model, verified by the
 * versions stable answers, then all traffic to stable). Pure like step(): readings and the clock come in,
 * the new state, decisions and weight actions go out.
 *
 * The filter counts every answer per variant as answers{model=stable|canary|other|missing}: the version
 * it states compared with the declared ones (filter/identity.ts).
 */
import { OVERALL, type CountsSnapshot } from "./counts.ts";
import { finalizeOf, modelsOf, type ModelIdentity } from "./lifecycle-spec.ts";
import { Phase } from "./phase.ts";
import { ENGINE_ACTOR, type EngineState, type FinalizeProgress, type LifecycleState } from "./state.ts";
import { decision, endWithRollback, type DecisionDetails, type Transition } from "./transitions.ts";

const MODEL_CLASSES = ["stable", "canary", "other", "missing"] as const;
export type ModelClass = (typeof MODEL_CLASSES)[number];
type ModelAnswers = Record<ModelClass, number>;

/** The counter key of answers of one class, as the metric provider names it. */
const answersKey = (k: ModelClass): string => `answers{model=${k}}`;

function answersOf(snapshot: CountsSnapshot, variant: "stable" | "canary"): ModelAnswers {
  const counters = snapshot.slices[OVERALL]?.[variant]?.counters ?? {};
  return {
    stable: counters[answersKey("stable")] ?? 0,
    canary: counters[answersKey("canary")] ?? 0,
    other: counters[answersKey("other")] ?? 0,
    missing: counters[answersKey("missing")] ?? 0,
  };
}

function lifecycleOf(state: EngineState): LifecycleState {
  return state.lifecycle ?? { canaryMismatchMark: null, canaryWithdrawn: null, finalize: null, finalizeNote: null };
}

function withLifecycle(state: EngineState, change: Partial<LifecycleState>): EngineState {
  return { ...state, lifecycle: { ...lifecycleOf(state), ...change } };
}

/** A count that went down means the data path restarted: what it shows now is all new. */
const since = (now: number, before: number) => (now < before ? now : now - before);

/**
 * Canary answers stating another model (stable's version or any other) since the last reading; the mark is
 * moved to this reading. The first reading only sets the mark (counts of an earlier rollout of the same name
 * are not this one's). 0 when the spec gives no version source or the counts could not be read.
 */
export function checkCanaryIdentity(
  state: EngineState,
  snapshot: CountsSnapshot | null,
): { state: EngineState; mismatched: number; models: ModelIdentity | null } {
  const models = modelsOf(state.spec);
  if (!models?.source || !snapshot) return { state, mismatched: 0, models: null };
  const a = answersOf(snapshot, "canary");
  const cumulative = a.stable + a.other;
  const mark = lifecycleOf(state).canaryMismatchMark;
  const mismatched = mark === null ? 0 : since(cumulative, mark);
  return { state: mark === cumulative ? state : withLifecycle(state, { canaryMismatchMark: cumulative }), mismatched, models };
}

/** "the canary answered another model than the declared v2: 3 answers stating v1 (stable's) or another version (header x-model-version)" */
export function identityReason(models: ModelIdentity, mismatched: number, snapshot: CountsSnapshot | null): string {
  const a = snapshot ? answersOf(snapshot, "canary") : null;
  const what = a
    ? [a.stable > 0 ? `${models.stable} (stable's version)` : null, a.other > 0 ? "a version that is neither" : null].filter(Boolean).join(" or ")
    : "another version";
  return `the canary answered another model than the declared ${models.canary}: ${mismatched} answer${mismatched === 1 ? "" : "s"} stating ${what || "another version"} (${models.source}); the filters stopped sending this rollout's traffic to the canary where they saw it`;
}

/**
 * One tick of a Succeeded or Finalizing rollout: the canary's identity (its traffic withdrawn when its
 * upstream now answers another model), then, while Finalizing, the verification of stable.
 */
export function stepAfterRelease(state: EngineState, snapshot: CountsSnapshot | null, now: number): Transition {
  if (state.phase !== Phase.Succeeded && state.phase !== Phase.Finalizing) return { state, decisions: [], actions: [] };
  const out: Transition = { state, decisions: [], actions: [] };
  const identity = checkCanaryIdentity(state, snapshot);
  out.state = identity.state;
  if (identity.models !== null && identity.mismatched > 0 && out.state.weights.canaryPercent > 0) {
    const models = identity.models;
    const stableNow = snapshot ? answersOf(snapshot, "stable").canary : 0;
    const next =
      stableNow > 0
        ? `Stable answers ${models.canary} (${stableNow} answers): if it has been repointed to the new model, POST finalize to verify it and archive the rollout`
        : `If stable now serves ${models.canary}, POST finalize; otherwise roll back`;
    const reason = `${identityReason(models, identity.mismatched, snapshot)}; all traffic back on stable. ${next}`;
    const withdrawn = withLifecycle({ ...out.state, weights: { canaryPercent: 0, shadowPercent: 0 } }, { canaryWithdrawn: reason });
    out.decisions.push(decision(out.state, withdrawn, "canaryWithdrawn", now, { actor: ENGINE_ACTOR, reason }));
    out.actions.push({ type: "setWeights", canaryPercent: 0, shadowPercent: 0, reason });
    out.state = withdrawn;
  }
  if (out.state.phase !== Phase.Finalizing) return out;
  const verified = verifyStable(out.state, snapshot, now);
  return { state: verified.state, decisions: [...out.decisions, ...verified.decisions], actions: [...out.actions, ...verified.actions] };
}

function verifyStable(state: EngineState, snapshot: CountsSnapshot | null, now: number): Transition {
  const progress = lifecycleOf(state).finalize;
  const models = modelsOf(state.spec);
  const spec = finalizeOf(state.spec);
  if (!progress || !models) return { state, decisions: [], actions: [] };
  let p: FinalizeProgress = progress;
  const decisions: Transition["decisions"] = [];
  if (snapshot) {
    const a = answersOf(snapshot, "stable");
    const current = { fresh: a.canary, stale: a.stable + a.other };
    const delta = p.last === null ? { fresh: 0, stale: 0 } : { fresh: since(current.fresh, p.last.fresh), stale: since(current.stale, p.last.stale) };
    // Order within one tick is unknown: a stale answer in it restarts the streak.
    const streak = delta.stale > 0 ? 0 : p.streak + delta.fresh;
    p = { ...p, last: current, seen: { fresh: p.seen.fresh + delta.fresh, stale: p.seen.stale + delta.stale }, streak };
    if (streak >= spec.verifyAnswers) {
      const reason = `finalized: stable answered ${models.canary} ${streak} times in a row (${p.seen.fresh} with ${models.canary}, ${p.seen.stale} with another version since ${p.by} asked); all traffic to stable, the rollout is archived`;
      const done: EngineState = withLifecycle(
        { ...state, phase: Phase.Finalized, weights: { canaryPercent: 0, shadowPercent: 0 } },
        { finalize: p, finalizeNote: null },
      );
      return {
        state: done,
        decisions: [decision(state, done, "finalized", now, { actor: ENGINE_ACTOR, reason })],
        actions: [{ type: "setWeights", canaryPercent: 0, shadowPercent: 0, reason }],
      };
    }
    if (delta.stale > 0 && !p.waitingNoted) {
      p = { ...p, waitingNoted: true };
      const reason = `finalize: stable still answers another version than ${models.canary} (${p.seen.stale} answers since ${p.by} asked); waiting for its deployment to serve ${models.canary} (${spec.verifyAnswers} answers in a row needed)`;
      decisions.push(decision(state, state, "finalizeWaiting", now, { actor: ENGINE_ACTOR, reason }));
    }
  }
  if (now - p.askedAt >= spec.deadlineSeconds * 1000) {
    const withdrawn = lifecycleOf(state).canaryWithdrawn !== null;
    const reason = `finalize not verified within ${spec.deadlineSeconds} s: stable answered ${models.canary} ${p.seen.fresh} times and another version ${p.seen.stale} times since ${p.by} asked (${spec.verifyAnswers} in a row needed); ${
      withdrawn ? "traffic stays on stable" : "back to 100% canary"
    }. Make stable serve ${models.canary} and POST finalize again, or roll back`;
    const weights = { canaryPercent: withdrawn ? 0 : 100, shadowPercent: 0 };
    const back = withLifecycle({ ...state, phase: Phase.Succeeded, weights }, { finalize: null, finalizeNote: reason });
    decisions.push(decision(state, back, "finalizeNotVerified", now, { actor: ENGINE_ACTOR, reason }));
    return { state: back, decisions, actions: [{ type: "setWeights", ...weights, reason }] };
  }
  return { state: withLifecycle(state, { finalize: p }), decisions, actions: [] };
}

type LifecycleCommand =
  | { type: "finalize"; actor: string; reason?: string; verify?: boolean }
  | { type: "rollback" | "undo" | "fail" | "promote" | "pause" | "resume" | "review"; actor: string; reason?: string };

/**
 * Commands on a Succeeded or Finalizing rollout: finalize; rollback and undo go back to the old stable.
 * Returns null for anything else (the caller's rules apply), or the refusal text.
 */
export function lifecycleCommand(
  state: EngineState,
  command: LifecycleCommand,
  now: number,
  details: (reason: string) => DecisionDetails,
): Transition | string | null {
  const afterSuccess = state.phase === Phase.Succeeded || state.phase === Phase.Finalizing;
  const said = command.reason ? `: ${command.reason}` : "";
  const models = modelsOf(state.spec);
  if (command.type === "finalize") {
    if (!afterSuccess) return `finalize is for a rollout that has Succeeded; it is ${state.phase}`;
    if (state.phase === Phase.Finalizing && command.verify !== false) {
      const p = lifecycleOf(state).finalize;
      return `it is already finalizing (stable answered ${models?.canary ?? "the new version"} ${p?.streak ?? 0} of ${finalizeOf(state.spec).verifyAnswers} times in a row so far); send {"verify": false} to finalize without verification`;
    }
    return finalize(state, command.actor, command.verify === false, said, now, details);
  }
  if (!afterSuccess) return null;
  if (command.type === "rollback" || command.type === "undo") {
    const verb = command.type === "rollback" ? "rolled back" : "undone";
    const old = models ? ` (${models.stable})` : "";
    return endWithRollback(
      state,
      Phase.RolledBack,
      command.type === "rollback" ? "rolledBack" : "undone",
      now,
      details(`${verb} by ${command.actor} after the release succeeded: back to the old stable${old}${said}`),
    );
  }
  return `it has Succeeded: finalize it (stable made to serve the new model), or roll it back / undo it to go back to the old stable`;
}

function finalize(state: EngineState, actor: string, skip: boolean, said: string, now: number, details: (reason: string) => DecisionDetails): Transition {
  const models = modelsOf(state.spec);
  const spec = finalizeOf(state.spec);
  const lc = lifecycleOf(state);
  if (skip || !models?.source) {
    const why = skip ? `verification skipped by ${actor}` : "the spec's models give no versionField or versionHeader to check it by";
    const reason = `finalized by ${actor}: not verified (${why}); all traffic to stable, which is taken to serve ${models?.canary ?? "the new model"} now; the rollout is archived${said}`;
    const done = withLifecycle(
      { ...state, phase: Phase.Finalized, weights: { canaryPercent: 0, shadowPercent: 0 } },
      { finalize: lc.finalize, finalizeNote: null },
    );
    return {
      state: done,
      decisions: [decision(state, done, "finalized", now, details(reason))],
      actions: [{ type: "setWeights", canaryPercent: 0, shadowPercent: 0, reason }],
    };
  }
  const weights = { canaryPercent: lc.canaryWithdrawn ? 0 : Math.round((100 - spec.verifyPercent) * 100) / 100, shadowPercent: 0 };
  const progress: FinalizeProgress = { by: actor, askedAt: now, last: null, seen: { fresh: 0, stale: 0 }, streak: 0, waitingNoted: false };
  const share = lc.canaryWithdrawn ? "all traffic is on stable" : `${spec.verifyPercent}% of traffic back to stable`;
  const reason = `finalize asked by ${actor}: verifying that stable answers ${models.canary} (${models.source}): ${share}, ${spec.verifyAnswers} answers in a row needed within ${spec.deadlineSeconds} s${said}`;
  const next = withLifecycle({ ...state, phase: Phase.Finalizing, weights }, { finalize: progress, finalizeNote: null });
  return { state: next, decisions: [decision(state, next, "finalizeRequested", now, details(reason))], actions: [{ type: "setWeights", ...weights, reason }] };
}

/** A tick needs counts: while releasing, finalizing, or Succeeded with a canary identity to watch. */
export function needsReadings(state: EngineState): boolean {
  if (state.phase === Phase.Finalizing) return true;
  if (state.phase === Phase.Succeeded) return !!modelsOf(state.spec)?.source && state.weights.canaryPercent > 0;
  return state.phase !== Phase.Finalized && state.phase !== Phase.RolledBack && state.phase !== Phase.Failed;
}

/** Sets the identity mark from the first reading (Pending), so earlier counts of the same name never count. */
export function markIdentity(state: EngineState, snapshot: CountsSnapshot | null): EngineState {
  return checkCanaryIdentity(state, snapshot).state;
}
