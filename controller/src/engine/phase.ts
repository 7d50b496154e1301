/**
 * Where a rollout is in its release process. Terminal phases never change again; every other phase is
 * left by a tick of the engine (engine/step.ts) or by a manual command (engine/commands.ts).
 */
export enum Phase {
  /** Created, no traffic on the new model yet; the first tick starts the first stage. */
  Pending = "Pending",
  /** In a shadow stage: the new model gets a mirrored sample, its answers go nowhere; gates compare shadow with stable. */
  Shadowing = "Shadowing",
  /** In a canary stage below 100%: the new model answers a sticky share of real traffic; gates compare canary with stable. */
  Canary = "Canary",
  /** At 100%, the bake period: the old stable is kept warm so undo is still a routing change; absolute gates still run. */
  Baking = "Baking",
  /** Held by an operator at the current weights: no promotion and no deadline, but a Failed gate still rolls back. */
  Paused = "Paused",
  /** High-impact rollout past its bake period, at 100%, waiting for a posted review; undo is still possible. */
  AwaitingReview = "AwaitingReview",
  /** Terminal: the new model is the stable one; the old stable may be released. */
  Succeeded = "Succeeded",
  /** Terminal: all traffic back on stable because a gate failed, or an operator rolled back or undid the release. */
  RolledBack = "RolledBack",
  /** Terminal: all traffic back on stable because a stage could not be shown good before its deadline, or an operator failed it. */
  Failed = "Failed",
}

export const TERMINAL_PHASES: ReadonlySet<Phase> = new Set([Phase.Succeeded, Phase.RolledBack, Phase.Failed]);

export function isTerminal(phase: Phase): boolean {
  return TERMINAL_PHASES.has(phase);
}
