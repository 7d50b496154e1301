import { randomBytes } from "node:crypto";
import { ConflictError, InvalidRequestError, NotFoundError } from "../errors.ts";
import { VersionWatch } from "../filter-config/version-watch.ts";
import {
  initialState,
  isTerminal,
  parseEngineSpec,
  type Action,
  type Decision,
  type EngineState,
  type Evaluation,
  type Policy,
} from "../engine/index.ts";
import type { ErrorDetail } from "../errors.ts";
import { enginePart, ENGINE_PROPERTIES, type RolloutSpec } from "./schemas.ts";
import { checkSegments, segmentValueNames, toFilterSegment, type FilterSegment } from "./segments.ts";
import { normalizeShadow, toFilterShadow, type FilterShadow, type NormalizedShadow } from "./shadow.ts";
import { checkOutput, normalizeOutput, toFilterOutput, type FilterOutput, type NormalizedOutput } from "./output.ts";

export type NormalizedSpec = Required<Omit<RolloutSpec, "shadow" | "output" | keyof typeof ENGINE_PROPERTIES>> & {
  shadow: NormalizedShadow | null;
  output: NormalizedOutput;
};

export interface Rollout {
  readonly spec: NormalizedSpec;
  readonly canaryPercent: number;
  /** Share mirrored to the shadow now: the spec's percent until changed or rolled back. */
  readonly shadowPercent: number;
  /** Config version at which this rollout last changed. */
  readonly configVersion: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly lastRollbackAt: Date | null;
  /** Set when the rollout is managed by the engine (its spec has any engine key); null for a manual rollout. */
  readonly engine: ManagedState | null;
}

export interface ManagedState {
  readonly state: EngineState;
  /** Every decision, oldest first. */
  readonly decisions: readonly Decision[];
  /** The latest tick's evaluation, attached to manual commands' decisions. */
  readonly lastEvaluation: Evaluation | null;
}

/** What the engine returned (step() or an accepted applyCommand()), to apply with applyEngine(). */
export interface EngineOutcome {
  state: EngineState;
  decisions: Decision[];
  actions: Action[];
  evaluation?: Evaluation | null;
}

export type RolloutEvent =
  | { type: "created"; rollout: string; version: number; at: Date }
  | { type: "weight-changed"; rollout: string; version: number; at: Date; from: number; to: number }
  | { type: "shadow-changed"; rollout: string; version: number; at: Date; from: number; to: number }
  | { type: "rolled-back"; rollout: string; version: number; at: Date; from: number }
  | { type: "deleted"; rollout: string; version: number; at: Date };

export interface FilterRollout {
  name: string;
  pathPrefix: string;
  stickyHeader: string;
  canaryBasisPoints: number;
  segments: FilterSegment[];
  shadow?: FilterShadow;
  output: FilterOutput;
}

export interface FilterConfig {
  epoch: string;
  version: number;
  rollouts: FilterRollout[];
}

export interface RolloutStoreOptions {
  /** Fixed epoch for tests; a random one otherwise. */
  epoch?: string;
  clock?: () => Date;
  /** Release policy overrides for managed rollouts (engine DEFAULT_POLICY otherwise). */
  policy?: Partial<Policy>;
}

/**
 * Errors of the engine part of a rollout spec, pointers from the spec root; empty for a manual rollout.
 * Also refuses a starting canaryPercent on a managed rollout: its stages set the weights.
 */
export function engineSpecErrors(spec: Record<string, unknown>, policy?: Partial<Policy>): ErrorDetail[] {
  const part = enginePart(spec);
  if (part === null) return [];
  const output = spec.output as { schema?: unknown } | undefined;
  const parsed = parseEngineSpec(part, { hasOutputSchema: output?.schema !== undefined, hasShadow: spec.shadow !== undefined, policy });
  const errors = parsed.ok ? [] : [...parsed.errors];
  if (typeof spec.canaryPercent === "number" && spec.canaryPercent !== 0) {
    errors.push({ path: "/canaryPercent", reason: "must be 0 or absent for a rollout managed by the engine (its stages set the weights)" });
  }
  return errors;
}

/** The filter's unit: 1 basis point = 0.01%. Specs are validated to two decimals, so this is exact. */
export function toBasisPoints(percent: number): number {
  return Math.min(10_000, Math.max(0, Math.round(percent * 100)));
}

export function newEpoch(): string {
  return randomBytes(8).toString("hex");
}

/**
 * Rollouts and the config version the filters follow. Kept in memory for now; every mutation goes
 * through here so a persistent store can replace the Map without touching the routes.
 */
export class RolloutStore {
  /** Lets filters tell this controller's versions from those of a previous run that counted from 1 too. */
  readonly epoch: string;
  readonly changes: VersionWatch;
  readonly #rollouts = new Map<string, Rollout>();
  readonly #listeners = new Set<(event: RolloutEvent) => void>();
  readonly #clock: () => Date;
  readonly policy: Partial<Policy> | undefined;
  #version = 1;

  constructor(options: RolloutStoreOptions = {}) {
    this.epoch = options.epoch ?? newEpoch();
    this.#clock = options.clock ?? (() => new Date());
    this.policy = options.policy;
    this.changes = new VersionWatch(() => this.#version);
  }

  get version(): number {
    return this.#version;
  }

  get size(): number {
    return this.#rollouts.size;
  }

  subscribe(listener: (event: RolloutEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  list(): Rollout[] {
    return [...this.#rollouts.values()].sort((a, b) => compareNames(a.spec.name, b.spec.name));
  }

  get(name: string): Rollout {
    const rollout = this.#rollouts.get(name);
    if (!rollout) throw new NotFoundError(`rollout ${name}: not found`);
    return rollout;
  }

  /** The rollout, or undefined when there is none by that name. */
  find(name: string): Rollout | undefined {
    return this.#rollouts.get(name);
  }

  create(spec: RolloutSpec): Rollout {
    const outputCheck = checkOutput(spec.output);
    const normalized: NormalizedSpec = {
      name: spec.name,
      match: { pathPrefix: spec.match.pathPrefix },
      stickyKey: { header: spec.stickyKey.header },
      canaryPercent: spec.canaryPercent ?? 0,
      segments: spec.segments ?? [],
      shadow: normalizeShadow(spec.shadow),
      output: normalizeOutput(spec.output, outputCheck.compiled),
    };
    const problems = [...checkSegments(normalized.segments), ...outputCheck.errors, ...engineSpecErrors(spec, this.policy)];
    if (problems.length > 0) {
      const summary = problems.map((d) => `${d.path} ${d.reason}`).join("; ");
      throw new InvalidRequestError(`rollout ${normalized.name}: invalid request body: ${summary}`, problems);
    }
    if (this.#rollouts.has(normalized.name)) {
      throw new ConflictError(`rollout ${normalized.name}: already exists`);
    }
    // Two rollouts on one prefix would make the filter's choice depend on config order.
    const rival = this.list().find((r) => r.spec.match.pathPrefix === normalized.match.pathPrefix);
    if (rival) {
      throw new ConflictError(
        `rollout ${normalized.name}: pathPrefix ${normalized.match.pathPrefix} is already used by rollout ${rival.spec.name}`,
      );
    }
    const at = this.#clock();
    const engine = this.#initialEngine(spec, normalized, at);
    const version = this.#bump();
    const rollout: Rollout = {
      spec: normalized,
      // A managed rollout starts Pending: no traffic on the new model until the engine's first stage.
      canaryPercent: engine ? 0 : normalized.canaryPercent,
      shadowPercent: engine ? 0 : normalized.shadow?.percent ?? 0,
      configVersion: version,
      createdAt: at,
      updatedAt: at,
      lastRollbackAt: null,
      engine,
    };
    this.#rollouts.set(normalized.name, rollout);
    this.#publish({ type: "created", rollout: normalized.name, version, at });
    return rollout;
  }

  #initialEngine(spec: RolloutSpec, normalized: NormalizedSpec, at: Date): ManagedState | null {
    const part = enginePart(spec as Record<string, unknown>);
    if (part === null) return null;
    const parsed = parseEngineSpec(part, {
      hasOutputSchema: spec.output?.schema !== undefined,
      hasShadow: spec.shadow !== undefined,
      policy: this.policy,
    });
    // engineSpecErrors() ran on the same input in create(); a failure here is a bug, not a bad request.
    if (!parsed.ok) throw new Error(`rollout ${normalized.name}: engine spec rejected after validation: ${JSON.stringify(parsed.errors)}`);
    const state = initialState({
      rollout: normalized.name,
      spec: parsed.spec,
      segments: normalized.segments.map((s) => ({ dimension: s.name, values: segmentValueNames(s) })),
      now: at.getTime(),
    });
    return { state, decisions: [], lastEvaluation: null };
  }

  /** Managed rollouts the engine still has to move (not in a terminal phase). */
  activeManaged(): Rollout[] {
    return this.list().filter((r) => r.engine !== null && !isTerminal(r.engine.state.phase));
  }

  /**
   * Records what the engine returned and applies its actions: the new state, the decisions appended, and
   * the weights. One version bump per weight change (filters get one push per step); a rollback is
   * applied at once through rollback(); finalize is only recorded.
   */
  applyEngine(name: string, outcome: EngineOutcome): Rollout {
    const current = this.get(name);
    if (current.engine === null) throw new ConflictError(`rollout ${name}: not managed by the engine (no stages/promotion_gates/owner)`);
    const decisions = [...outcome.decisions];
    const note = (text: string) => {
      const last = decisions.at(-1);
      if (last) decisions[decisions.length - 1] = { ...last, reason: `${last.reason} (${text})` };
    };
    let rollout: Rollout = {
      ...current,
      engine: {
        state: outcome.state,
        decisions: [...current.engine.decisions, ...decisions],
        lastEvaluation: outcome.evaluation ?? current.engine.lastEvaluation,
      },
    };
    this.#rollouts.set(name, rollout);
    for (const action of outcome.actions) {
      if (action.type === "setWeights") {
        let shadow = action.shadowPercent;
        if (rollout.spec.shadow === null) {
          if (shadow > 0) note(`the spec has no shadow: mirroring ${shadow}% skipped`);
          shadow = 0;
        }
        rollout = this.#setWeights(rollout, action.canaryPercent, shadow);
      } else if (action.type === "rollback") {
        rollout = this.rollback(name);
      }
      // finalize: recorded in the decisions only (the old stable may be released by its owner).
    }
    // The decisions, with any notes, replace the ones recorded above.
    rollout = { ...rollout, engine: { ...rollout.engine!, decisions: [...current.engine.decisions, ...decisions] } };
    this.#rollouts.set(name, rollout);
    return rollout;
  }

  /** Canary and shadow weights in one config change: one version bump, one push. */
  #setWeights(current: Rollout, canaryPercent: number, shadowPercent: number): Rollout {
    const canaryChanged = toBasisPoints(current.canaryPercent) !== toBasisPoints(canaryPercent);
    const shadowChanged = toBasisPoints(current.shadowPercent) !== toBasisPoints(shadowPercent);
    if (!canaryChanged && !shadowChanged) return current;
    const name = current.spec.name;
    const at = this.#clock();
    const version = this.#bump();
    const next: Rollout = { ...current, canaryPercent, shadowPercent, configVersion: version, updatedAt: at };
    this.#rollouts.set(name, next);
    // One notify for the version; listeners hear each change.
    this.changes.notify();
    const events: RolloutEvent[] = [];
    if (canaryChanged) events.push({ type: "weight-changed", rollout: name, version, at, from: current.canaryPercent, to: canaryPercent });
    if (shadowChanged) events.push({ type: "shadow-changed", rollout: name, version, at, from: current.shadowPercent, to: shadowPercent });
    for (const event of events) for (const listener of this.#listeners) listener(event);
    return next;
  }

  setCanaryPercent(name: string, canaryPercent: number): Rollout {
    const current = this.#manual(name, "weight");
    if (toBasisPoints(current.canaryPercent) === toBasisPoints(canaryPercent)) return current;
    const at = this.#clock();
    const version = this.#bump();
    const next: Rollout = { ...current, canaryPercent, configVersion: version, updatedAt: at };
    this.#rollouts.set(name, next);
    this.#publish({
      type: "weight-changed",
      rollout: name,
      version,
      at,
      from: current.canaryPercent,
      to: canaryPercent,
    });
    return next;
  }

  setShadowPercent(name: string, percent: number): Rollout {
    const current = this.#manual(name, "shadow percent");
    if (current.spec.shadow === null) {
      throw new InvalidRequestError(`rollout ${name}: has no shadow; declare one in the spec to mirror traffic`, [
        { path: "/percent", reason: "the rollout spec has no shadow section" },
      ]);
    }
    if (toBasisPoints(current.shadowPercent) === toBasisPoints(percent)) return current;
    const at = this.#clock();
    const version = this.#bump();
    const next: Rollout = { ...current, shadowPercent: percent, configVersion: version, updatedAt: at };
    this.#rollouts.set(name, next);
    this.#publish({ type: "shadow-changed", rollout: name, version, at, from: current.shadowPercent, to: percent });
    return next;
  }

  /**
   * Canary to 0 and shadow off at once. Recorded even when the canary already had no traffic (someone judged it bad),
   * but the version only moves when filters have something to change.
   */
  rollback(name: string): Rollout {
    const current = this.get(name);
    const at = this.#clock();
    const changed = current.canaryPercent !== 0 || current.shadowPercent !== 0;
    const version = changed ? this.#bump() : current.configVersion;
    const next: Rollout = {
      ...current,
      canaryPercent: 0,
      shadowPercent: 0,
      configVersion: version,
      updatedAt: at,
      lastRollbackAt: at,
    };
    this.#rollouts.set(name, next);
    this.#publish({ type: "rolled-back", rollout: name, version, at, from: current.canaryPercent });
    return next;
  }

  /** Weights of a managed rollout are the engine's: a manual change would be silently undone at its next stage. */
  #manual(name: string, what: string): Rollout {
    const current = this.get(name);
    if (current.engine !== null) {
      throw new ConflictError(`rollout ${name}: managed by the engine, which sets its ${what}; use promote, pause, resume, rollback, fail or undo`);
    }
    return current;
  }

  delete(name: string): void {
    this.get(name);
    this.#rollouts.delete(name);
    const version = this.#bump();
    this.#publish({ type: "deleted", rollout: name, version, at: this.#clock() });
  }

  filterConfig(): FilterConfig {
    return {
      epoch: this.epoch,
      version: this.#version,
      rollouts: this.list().map((r) => ({
        name: r.spec.name,
        pathPrefix: r.spec.match.pathPrefix,
        stickyHeader: r.spec.stickyKey.header,
        canaryBasisPoints: toBasisPoints(r.canaryPercent),
        segments: r.spec.segments.map(toFilterSegment),
        ...(r.spec.shadow ? { shadow: toFilterShadow(r.spec.shadow, r.shadowPercent) } : {}),
        output: toFilterOutput(r.spec.output),
      })),
    };
  }

  /** Releases held long-polls; the store stays readable. */
  close(): void {
    this.changes.close();
  }

  #bump(): number {
    this.#version += 1;
    return this.#version;
  }

  #publish(event: RolloutEvent): void {
    // Waiters first: a slow or throwing listener must not delay the push to the filters.
    this.changes.notify();
    for (const listener of this.#listeners) listener(event);
  }
}

// Plain code-unit order, identical on every machine (localeCompare is not), so filters see a stable order.
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
