/**
 * Where a rollout is in its release process. A tick of the engine (engine/step.ts) or a manual command
 * (engine/commands.ts) moves it. In a terminal phase the release has been decided (no more stages or
 * gates); a Succeeded release still has its finalize step ahead (Finalizing, Finalized), or can be taken
 * back (rollback, undo). A closed phase never changes again.
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
  /** Terminal: the new model passed; the canary answers all traffic until stable is made to serve it (finalize). */
  Succeeded = "Succeeded",
  /** Terminal: finalize asked; a small share goes back to stable until it is seen answering the new model's version. */
  Finalizing = "Finalizing",
  /** Closed: stable serves the new model and answers all traffic; the rollout is archived and its path free. */
  Finalized = "Finalized",
  /** Closed: all traffic back on stable because a gate failed, or an operator rolled back or undid the release. */
  RolledBack = "RolledBack",
  /** Closed: all traffic back on stable because a stage could not be shown good before its deadline, or an operator failed it. */
  Failed = "Failed",
}

const TERMINAL_PHASES: ReadonlySet<Phase> = new Set([Phase.Succeeded, Phase.Finalizing, Phase.Finalized, Phase.RolledBack, Phase.Failed]);
const CLOSED_PHASES: ReadonlySet<Phase> = new Set([Phase.Finalized, Phase.RolledBack, Phase.Failed]);

/** The release has been decided: no more stages or gates (a Succeeded one still awaits finalize). */
export function isTerminal(phase: Phase): boolean {
  return TERMINAL_PHASES.has(phase);
}

/** Nothing more will happen to the rollout: the engine no longer ticks it. */
export function isClosed(phase: Phase): boolean {
  return CLOSED_PHASES.has(phase);
}
