/**
 * What a rollout is, as the store keeps it and the state file saves it: the accepted spec, the weights, the
 * engine's state and decisions, and the events a change announces. Types only (and the weights' unit), so the
 * store, its persistence, the views and the config projection can all read them without reading each other.
 */
import type { Action, CountsSnapshot, Decision, EngineState, Evaluation } from "../engine/index.ts";
import type { NormalizedClusters } from "./clusters.ts";
import type { NormalizedModels } from "./models.ts";
import type { NormalizedOutput } from "./output.ts";
import type { ENGINE_PROPERTIES, RolloutSpec } from "./schemas.ts";
import type { NormalizedShadow } from "./shadow.ts";
import type { NormalizedModelRewrite } from "./model-route.ts";
import type { RolloutUpstreams } from "./upstreams.ts";

/** A spec as accepted (rollouts/accept.ts): defaults filled in, the output schema compiled. */
export type NormalizedSpec = Required<Omit<RolloutSpec, "shadow" | "output" | "models" | "clusters" | "modelRewrite" | keyof typeof ENGINE_PROPERTIES>> & {
  /** Only when the spec rewrites the canary's model (absent otherwise, so rollouts without it read as before). */
  modelRewrite?: NormalizedModelRewrite;
  /** Only when the spec names clusters (absent otherwise, so rollouts without them read as before). */
  clusters?: NormalizedClusters;
  shadow: NormalizedShadow | null;
  output: NormalizedOutput;
  models: NormalizedModels | null;
  /** The release-process part as accepted (stages, gates, owner, ...); null for a manual rollout. */
  release: Record<string, unknown> | null;
};

export interface Rollout {
  readonly spec: NormalizedSpec;
  readonly canaryPercent: number;
  /** Share mirrored to the shadow now: the spec's percent until changed or rolled back. */
  readonly shadowPercent: number;
  /** Config version at which this rollout last changed. */
  readonly configVersion: number;
  /**
   * Changes with every write through the API and whenever the engine moves the phase, stage or weights (not on
   * a tick that only holds): the ETag, for If-Match.
   */
  readonly revision: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly lastRollbackAt: Date | null;
  /** Who asked for the last rollback, and why (a managed rollout also has it in its decisions). */
  readonly lastRollbackNote: RollbackNote | null;
  /** The finalize webhook's deliveries (spec finalize.webhook); null until the rollout succeeds. */
  readonly finalizeHook: HookStatus | null;
  /** Set when the rollout is managed by the engine (its spec has any engine key); null for a manual rollout. */
  readonly engine: ManagedState | null;
  /** What Envoy had counted under this name when the rollout was created (absent: created before it was kept). */
  readonly statsBaseline?: StatsBaseline;
  /** The upstreams it was tested against, and a hold when they changed (rollouts/upstreams.ts); absent: not known. */
  readonly upstreams?: RolloutUpstreams;
}

/** Who asked for a rollback or a delete, and why. */
export interface RollbackNote {
  by: string;
  reason: string | null;
}

export interface HookStatus {
  attempts: number;
  lastAttemptAt: string | null;
  /** The last failure (status or network error); null after a delivery. */
  lastError: string | null;
  nextAttemptAt: string | null;
  deliveredAt: string | null;
}

export interface ManagedState {
  readonly state: EngineState;
  /** Every decision, oldest first. */
  readonly decisions: readonly Decision[];
  /** The latest tick's evaluation, attached to manual commands' decisions. */
  readonly lastEvaluation: Evaluation | null;
}

/** What the engine returned (step() or an accepted applyCommand()), to apply with RolloutStore.applyEngine(). */
export interface EngineOutcome {
  state: EngineState;
  decisions: Decision[];
  actions: Action[];
  evaluation?: Evaluation | null;
}

/** What Envoy had counted under a rollout's name when it was created (stats/baseline.ts reads it). JSON. */
export type StatsBaseline =
  /** Nothing counted under this name yet (the usual case): the counts are the rollout's own. */
  | { at: string; kind: "zero"; note?: string }
  /** An earlier rollout of the same name had counted this much in the running Envoys. */
  | { at: string; kind: "counts"; counts: CountsSnapshot }
  /** The counts could not be read at creation: the stats may include an earlier rollout of the same name. */
  | { at: string; kind: "unknown"; error: string };

/** What a committed change announces to the store's listeners (the SSE streams, telemetry). */
export type RolloutEvent =
  | { type: "created"; rollout: string; version: number; at: Date }
  | { type: "weight-changed"; rollout: string; version: number; at: Date; from: number; to: number }
  | { type: "shadow-changed"; rollout: string; version: number; at: Date; from: number; to: number }
  | { type: "rolled-back"; rollout: string; version: number; at: Date; from: number }
  | { type: "deleted"; rollout: string; version: number; at: Date }
  | { type: "archived"; rollout: string; version: number; at: Date; id: number };

/** The filter's unit: 1 basis point = 0.01%. Specs are validated to two decimals, so this is exact. */
export function toBasisPoints(percent: number): number {
  return Math.min(10_000, Math.max(0, Math.round(percent * 100)));
}
