import { randomBytes } from "node:crypto";
import { ConflictError, InvalidRequestError, NotFoundError } from "../errors.ts";
import { initialState, isClosed, Phase, type Decision, type EngineState, type ParseResult, type Policy, type Weights } from "../engine/index.ts";
import { acceptSpec } from "./accept.ts";
import { RolloutArchive, type ArchiveEntry } from "./archive.ts";
import { pathHeldMessage } from "./lifecycle-view.ts";
import {
  toBasisPoints,
  type EngineOutcome,
  type HookStatus,
  type ManagedState,
  type NormalizedSpec,
  type RollbackNote,
  type Rollout,
  type RolloutEvent,
  type StatsBaseline,
} from "./model.ts";
import type { RolloutPersistence } from "./persistence.ts";
import { canaryClusterHolder } from "./clusters.ts";
import type { RolloutSpec } from "./schemas.ts";
import { segmentValueNames } from "./segments.ts";
import type { RolloutUpstreams } from "./upstreams.ts";

interface RolloutStoreOptions {
  /** Fixed epoch for tests; a random one otherwise. */
  epoch?: string;
  clock?: () => Date;
  /** Release policy overrides for managed rollouts (engine DEFAULT_POLICY otherwise). */
  policy?: Partial<Policy>;
  /**
   * Where the state lives (buildApp opens an SqliteRolloutState, ":memory:" or a file, and closes it). Saved
   * state is resumed: its epoch, version and rollouts win.
   */
  state: RolloutPersistence;
  /** The upstreams a new rollout starts on, when known (release/upstream-guard.ts): recorded as it is created. */
  upstreamsAt?: (spec: NormalizedSpec, at: Date) => RolloutUpstreams | null;
}

/** One change to commit: the config version it makes, the engine decisions to record, what to tell, and an archive reason. */
interface Change {
  version: number;
  decisions?: readonly Decision[];
  events: RolloutEvent[];
  archive?: string;
}

function newEpoch(): string {
  return randomBytes(8).toString("hex");
}

/**
 * Rollouts and the config version the filters follow. Reads come from memory; every mutation goes through
 * #commit(), which writes it to the state file first and only then changes memory and tells the config
 * distributors (filter-config/) and the listeners.
 */
export class RolloutStore {
  /** Lets filters tell this controller's versions from those of a previous run that counted from 1 too. */
  readonly epoch: string;
  readonly #rollouts = new Map<string, Rollout>();
  readonly #listeners = new Set<(event: RolloutEvent) => void>();
  readonly #configListeners = new Set<(version: number) => void>();
  readonly #clock: () => Date;
  readonly policy: Partial<Policy> | undefined;
  readonly #state: RolloutPersistence;
  readonly #upstreamsAt: RolloutStoreOptions["upstreamsAt"];
  readonly archive: RolloutArchive;
  #version = 1;
  #resumed = false;
  /** list()'s answer, kept up to date by #commit (null: not built yet). */
  #sorted: Rollout[] | null = null;

  constructor(options: RolloutStoreOptions) {
    this.#clock = options.clock ?? (() => new Date());
    this.policy = options.policy;
    this.#state = options.state;
    this.#upstreamsAt = options.upstreamsAt;
    const saved = this.#state.load();
    if (saved) {
      // Resume: the same epoch and version, so filters already holding them keep waiting instead of refetching.
      this.epoch = saved.epoch;
      this.#version = saved.version;
      this.#resumed = true;
      for (const rollout of saved.rollouts) this.#rollouts.set(rollout.spec.name, rollout);
    } else {
      this.epoch = options.epoch ?? newEpoch();
      this.#state.initialize(this.epoch, this.#version);
    }
    this.archive = new RolloutArchive(saved?.archived ?? [], (id) => this.#state.archivedDecisions(id));
  }

  /** True when this store started from saved state (a restart), false on a new state file. */
  get resumed(): boolean {
    return this.#resumed;
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

  /**
   * Calls `listener` with the new config version after every commit that moved it, before the event listeners
   * (the config distributors of filter-config/ follow the store this way).
   */
  onConfigChange(listener: (version: number) => void): () => void {
    this.#configListeners.add(listener);
    return () => this.#configListeners.delete(listener);
  }

  /**
   * The rollouts sorted by name. Kept sorted across commits (one rollout placed, not all sorted again: at 3,000
   * rollouts sorting on every read was a quarter of a write's time); a new array after every change, so a
   * caller holding the old one keeps what it read.
   */
  list(): readonly Rollout[] {
    this.#sorted ??= [...this.#rollouts.values()].sort((a, b) => compareNames(a.spec.name, b.spec.name));
    return this.#sorted;
  }

  /** The sorted list after `name` changed to `next` (null: left the live set); O(log n) to find, one copy. */
  #placeSorted(name: string, next: Rollout | null): void {
    const sorted = this.#sorted;
    if (sorted === null) return;
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareNames((sorted[mid] as Rollout).spec.name, name) < 0) lo = mid + 1;
      else hi = mid;
    }
    const present = sorted[lo]?.spec.name === name;
    const copy = sorted.slice();
    if (next === null) {
      if (present) copy.splice(lo, 1);
    } else if (present) copy[lo] = next;
    else copy.splice(lo, 0, next);
    this.#sorted = copy;
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

  create(spec: RolloutSpec, options: { statsBaseline?: StatsBaseline } = {}): Rollout {
    const { normalized, engine: engineParse } = acceptSpec(spec, this.policy);
    if (this.#rollouts.has(normalized.name)) {
      throw new ConflictError(`rollout ${normalized.name}: already exists`);
    }
    // Two rollouts on one prefix would make the filter's choice depend on config order.
    const rival = this.list().find((r) => r.spec.match.pathPrefix === normalized.match.pathPrefix);
    if (rival) throw new ConflictError(pathHeldMessage(normalized.name, normalized.match.pathPrefix, rival));
    const canaryHolder = canaryClusterHolder(normalized, this.list());
    if (canaryHolder)
      throw new ConflictError(
        `rollout ${normalized.name}: canary cluster ${canaryHolder.cluster} is the canary of rollout ${canaryHolder.holder.spec.name}: each model behind the proxy has its own`,
      );
    const at = this.#clock();
    const engine = this.#initialEngine(engineParse, normalized, at);
    const version = this.#version + 1;
    const upstreams = this.#upstreamsAt?.(normalized, at) ?? null;
    const rollout: Rollout = {
      spec: normalized,
      // A managed rollout starts Pending: no traffic on the new model until the engine's first stage.
      canaryPercent: engine ? 0 : normalized.canaryPercent,
      shadowPercent: engine ? 0 : (normalized.shadow?.percent ?? 0),
      configVersion: version,
      revision: 1,
      createdAt: at,
      updatedAt: at,
      lastRollbackAt: null,
      lastRollbackNote: null,
      finalizeHook: null,
      engine,
      ...(options.statsBaseline ? { statsBaseline: options.statsBaseline } : {}),
      ...(upstreams ? { upstreams } : {}),
    };
    this.#commit(rollout, { version, events: [{ type: "created", rollout: normalized.name, version, at }] });
    return rollout;
  }

  #initialEngine(parsed: ParseResult | null, normalized: NormalizedSpec, at: Date): ManagedState | null {
    if (parsed === null) return null;
    // create() refused the spec with these errors already; reaching here with them is a bug, not a bad request.
    if (!parsed.ok) throw new Error(`rollout ${normalized.name}: engine spec rejected after validation: ${JSON.stringify(parsed.errors)}`);
    const state = initialState({
      rollout: normalized.name,
      spec: parsed.spec,
      segments: normalized.segments.map((s) => ({ dimension: s.name, values: segmentValueNames(s) })),
      now: at.getTime(),
    });
    return { state, decisions: [], lastEvaluation: null };
  }

  /** Managed rollouts the engine still has to move or watch (not closed: Succeeded awaits finalize). */
  activeManaged(): Rollout[] {
    return this.list().filter((r) => r.engine !== null && !isClosed(r.engine.state.phase));
  }

  /**
   * Records what the engine returned and applies its actions, as one write: the new state, the decisions
   * appended, and the weights. One version bump when the weights change (filters get one push per step); a
   * rollback sets canary and shadow to 0; finalize is only recorded. A rollout that reaches Finalized leaves
   * the live set for the archive in the same write (its path goes to stable).
   */
  applyEngine(name: string, outcome: EngineOutcome, options: { command?: boolean } = {}): Rollout {
    const current = this.get(name);
    if (current.engine === null) throw new ConflictError(`rollout ${name}: not managed by the engine (no stages/promotion_gates/owner)`);
    const decisions = [...outcome.decisions];
    const note = (text: string) => {
      const last = decisions.at(-1);
      if (last) decisions[decisions.length - 1] = { ...last, reason: `${last.reason} (${text})` };
    };
    const at = this.#clock();
    const events: RolloutEvent[] = [];
    let weights = { canaryPercent: current.canaryPercent, shadowPercent: current.shadowPercent };
    let lastRollbackAt = current.lastRollbackAt;
    let lastRollbackNote = current.lastRollbackNote;
    for (const action of outcome.actions) {
      if (action.type === "setWeights") {
        let shadow = action.shadowPercent;
        if (current.spec.shadow === null) {
          if (shadow > 0) note(`the spec has no shadow: mirroring ${shadow}% skipped`);
          shadow = 0;
        }
        weights = { canaryPercent: action.canaryPercent, shadowPercent: shadow };
      } else if (action.type === "rollback") {
        weights = { canaryPercent: 0, shadowPercent: 0 };
        lastRollbackAt = at;
        const by = decisions.at(-1)?.actor ?? "engine";
        lastRollbackNote = { by, reason: action.reason };
      }
      // finalize: recorded in the decisions only (the old stable may be released by its owner).
    }
    // Held for changed upstreams (rollouts/upstreams.ts): nothing reaches the canary until it ends or is accepted.
    const held = current.upstreams?.hold ? !isClosed(outcome.state.phase) : false;
    if (held) weights = { canaryPercent: 0, shadowPercent: 0 };
    const pushed = this.#weightEvents(current, weights, at, events);
    if (lastRollbackAt !== current.lastRollbackAt) {
      // As for a manual rollback: one rolled-back event stands for the weight changes.
      events.splice(0, events.length, { type: "rolled-back", rollout: name, version: pushed.version, at, from: current.canaryPercent });
    }
    const before = current.engine.state;
    const after = outcome.state;
    const moved = before.phase !== after.phase || before.stageIndex !== after.stageIndex || pushed.changed || before.review !== after.review;
    const next: Rollout = {
      ...current,
      ...weights,
      configVersion: pushed.changed ? pushed.version : current.configVersion,
      revision: options.command || moved ? current.revision + 1 : current.revision,
      updatedAt: pushed.changed || lastRollbackAt !== current.lastRollbackAt ? at : current.updatedAt,
      lastRollbackAt,
      lastRollbackNote,
      ...(current.upstreams?.hold && !held ? { upstreams: { ...current.upstreams, hold: null } } : {}),
      engine: {
        state: outcome.state,
        decisions: [...current.engine.decisions, ...decisions],
        lastEvaluation: outcome.evaluation ?? current.engine.lastEvaluation,
      },
    };
    if (after.phase === Phase.Finalized) {
      // Leaving the table is a change for the filters even when the weights were 0 already.
      const version = pushed.changed ? pushed.version : this.#version + 1;
      this.#commit(next, { version, decisions, events, archive: decisions.at(-1)?.reason ?? "finalized" });
      return next;
    }
    this.#commit(next, { version: pushed.version, decisions, events });
    return next;
  }

  /** The version the new weights get (a bump only when filters have something to change) and their events. */
  #weightEvents(
    current: Rollout,
    weights: { canaryPercent: number; shadowPercent: number },
    at: Date,
    events: RolloutEvent[],
  ): { changed: boolean; version: number } {
    const name = current.spec.name;
    const canaryChanged = toBasisPoints(current.canaryPercent) !== toBasisPoints(weights.canaryPercent);
    const shadowChanged = toBasisPoints(current.shadowPercent) !== toBasisPoints(weights.shadowPercent);
    if (!canaryChanged && !shadowChanged) return { changed: false, version: this.#version };
    const version = this.#version + 1;
    if (canaryChanged) events.push({ type: "weight-changed", rollout: name, version, at, from: current.canaryPercent, to: weights.canaryPercent });
    if (shadowChanged) events.push({ type: "shadow-changed", rollout: name, version, at, from: current.shadowPercent, to: weights.shadowPercent });
    return { changed: true, version };
  }

  setCanaryPercent(name: string, canaryPercent: number): Rollout {
    const current = this.#manual(name, "weight");
    return this.#setWeights(current, { canaryPercent, shadowPercent: current.shadowPercent });
  }

  setShadowPercent(name: string, percent: number): Rollout {
    const current = this.#manual(name, "shadow percent");
    if (current.spec.shadow === null) {
      throw new InvalidRequestError(`rollout ${name}: has no shadow; declare one in the spec to mirror traffic`, [
        { path: "/percent", reason: "the rollout spec has no shadow section" },
      ]);
    }
    return this.#setWeights(current, { canaryPercent: current.canaryPercent, shadowPercent: percent });
  }

  #setWeights(current: Rollout, weights: { canaryPercent: number; shadowPercent: number }): Rollout {
    if (current.upstreams?.hold) throw new ConflictError(`rollout ${current.spec.name}: weights refused while ${current.upstreams.hold.reason}`);
    const at = this.#clock();
    const events: RolloutEvent[] = [];
    const pushed = this.#weightEvents(current, weights, at, events);
    if (!pushed.changed) return current;
    const next: Rollout = { ...current, ...weights, configVersion: pushed.version, revision: current.revision + 1, updatedAt: at };
    this.#commit(next, { version: pushed.version, events });
    return next;
  }

  /**
   * Canary to 0 and shadow off at once. Recorded even when the canary already had no traffic (someone judged it
   * bad), but the version only moves when filters have something to change. Asked again with nothing changed
   * since, it is a no-op: the same rollout, the same revision.
   */
  rollback(name: string, note: RollbackNote = { by: "api", reason: null }): Rollout {
    const current = this.get(name);
    if (isRolledBack(current)) return current;
    const at = this.#clock();
    const pushed = this.#weightEvents(current, { canaryPercent: 0, shadowPercent: 0 }, at, []);
    const version = pushed.changed ? pushed.version : this.#version;
    const next: Rollout = {
      ...current,
      canaryPercent: 0,
      shadowPercent: 0,
      configVersion: pushed.changed ? version : current.configVersion,
      revision: current.revision + 1,
      updatedAt: at,
      lastRollbackAt: at,
      lastRollbackNote: note,
    };
    this.#commit(next, { version, events: [{ type: "rolled-back", rollout: name, version, at, from: current.canaryPercent }] });
    return next;
  }

  /** Replaces the stats baseline (an Envoy restart was seen: counting starts again from zero); no revision change. */
  setStatsBaseline(name: string, statsBaseline: StatsBaseline): Rollout {
    const next: Rollout = { ...this.get(name), statsBaseline };
    this.#commit(next, { version: this.#version, events: [] });
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

  /** Takes the rollout out of the live set (its path goes to stable); its report and history stay in the archive. */
  delete(name: string, note: RollbackNote = { by: "api", reason: null }): ArchiveEntry {
    const current = this.get(name);
    const reason = `deleted by ${note.by}${note.reason ? `: ${note.reason}` : ""}`;
    return this.#commit(current, { version: this.#version + 1, events: [], archive: reason });
  }

  /**
   * What the rollout was tested against, and a hold or accept of changed upstreams (rollouts/upstream-check.ts):
   * informational (same revision) unless it brings weights for the filters or a decision for the history; with
   * `engineState` a managed rollout's release starts again.
   */
  setUpstreams(name: string, change: { upstreams: RolloutUpstreams; weights?: Weights; decision?: Decision | null; engineState?: EngineState }): Rollout {
    const current = this.get(name);
    const at = this.#clock();
    const events: RolloutEvent[] = [];
    const weights = change.weights ?? { canaryPercent: current.canaryPercent, shadowPercent: current.shadowPercent };
    const pushed = this.#weightEvents(current, weights, at, events);
    const decisions = change.decision ? [change.decision] : [];
    const engine = current.engine && {
      state: change.engineState ?? current.engine.state,
      decisions: [...current.engine.decisions, ...decisions],
      lastEvaluation: change.engineState ? null : current.engine.lastEvaluation,
    };
    const revised = pushed.changed || decisions.length > 0 || change.engineState !== undefined;
    const next: Rollout = {
      ...current,
      ...weights,
      upstreams: change.upstreams,
      engine,
      configVersion: pushed.changed ? pushed.version : current.configVersion,
      revision: revised ? current.revision + 1 : current.revision,
      updatedAt: revised ? at : current.updatedAt,
    };
    this.#commit(next, { version: pushed.version, decisions, events });
    return next;
  }

  /** Records a finalize webhook delivery or failure; informational, so the revision stays. */
  recordHook(name: string, status: HookStatus): Rollout {
    const next: Rollout = { ...this.get(name), finalizeHook: status };
    this.#commit(next, { version: this.#version, events: [] });
    return next;
  }

  /**
   * Replaces a rollout after an accepted apply (PUT): the spec, and the engine state rebudgeted for it. The
   * weights do not change (only the engine moves them), so the filters only hear of it when their part did.
   */
  replace(next: Rollout, decisions: Decision[] = []): Rollout {
    const current = this.get(next.spec.name);
    const filterChanged = dataPathOf(current) !== dataPathOf(next);
    const version = filterChanged ? this.#version + 1 : this.#version;
    const engine = next.engine && decisions.length > 0 ? { ...next.engine, decisions: [...next.engine.decisions, ...decisions] } : next.engine;
    const replaced: Rollout = {
      ...next,
      engine,
      configVersion: filterChanged ? version : current.configVersion,
      revision: current.revision + 1,
      updatedAt: this.#clock(),
    };
    this.#commit(replaced, { version, decisions, events: [] });
    return replaced;
  }

  /**
   * A rollout as another writer left it (Kubernetes mode: another replica, or the API server's answer to a
   * refused write): memory and listeners only, nothing written back; null takes it out of the live set.
   */
  adopt(name: string, next: Rollout | null): void {
    const current = this.#rollouts.get(name) ?? null;
    if (current === next || (current === null && next === null)) return;
    const at = this.#clock();
    const moved = current === null || next === null || dataPathOf(current) !== dataPathOf(next);
    const version = moved ? this.#version + 1 : this.#version;
    // Config versions are this process's own count: the adopted rollout takes the one its change makes here.
    const rollout = next && { ...next, configVersion: moved ? version : (current?.configVersion ?? version) };
    const events: RolloutEvent[] = [];
    if (rollout === null) events.push({ type: "deleted", rollout: name, version, at });
    else if (current === null) events.push({ type: "created", rollout: name, version, at });
    else this.#weightEvents(current, rollout, at, events);
    this.#placeSorted(name, rollout);
    if (rollout === null) this.#rollouts.delete(name);
    else this.#rollouts.set(name, rollout);
    this.#version = version;
    this.#publish(moved, events);
  }

  /**
   * The one way state changes: written to the state file first (a failed write changes nothing, not even
   * memory), then memory, then the config distributors and the listeners. With `archive` (the reason) the
   * rollout leaves the live set for the archive in the same write (its path goes to stable); the entry is
   * returned.
   */
  #commit(next: Rollout, change: Change & { archive: string }): ArchiveEntry;
  #commit(next: Rollout, change: Change): ArchiveEntry | null;
  #commit(next: Rollout, change: Change): ArchiveEntry | null {
    const name = next.spec.name;
    const entry: ArchiveEntry | null =
      change.archive === undefined ? null : { id: this.archive.nextId(), name, archivedAt: this.#clock(), reason: change.archive, rollout: next };
    this.#state.write({ version: change.version, rollout: next, newDecisions: change.decisions, ...(entry ? { archive: entry, deleted: name } : {}) });
    const events = [...change.events];
    this.#placeSorted(name, entry ? null : next);
    if (entry) {
      this.#rollouts.delete(name);
      this.archive.add(entry);
      const at = entry.archivedAt;
      events.push(
        { type: "archived", rollout: name, version: change.version, at, id: entry.id },
        { type: "deleted", rollout: name, version: change.version, at },
      );
    } else {
      this.#rollouts.set(name, next);
    }
    const versionMoved = change.version !== this.#version;
    this.#version = change.version;
    if (versionMoved || events.length > 0) this.#publish(versionMoved, events);
    return entry;
  }

  #publish(versionMoved: boolean, events: RolloutEvent[]): void {
    // Distributors first: a slow or throwing listener must not delay the push to the filters.
    if (versionMoved) for (const listener of [...this.#configListeners]) listener(this.#version);
    for (const event of events) for (const listener of this.#listeners) listener(event);
  }
}

/** Rolled back already, with nothing changed since (a repeated rollback has nothing to do). */
function isRolledBack(r: Rollout): boolean {
  return r.canaryPercent === 0 && r.shadowPercent === 0 && r.lastRollbackAt !== null && r.updatedAt.getTime() === r.lastRollbackAt.getTime();
}

/**
 * What the data path sees of a rollout: its spec without the release process, and its weights in basis
 * points. The filter config is a projection of it (filter-config/projection.ts), so the config version moves
 * when this changes and a change the proxies cannot see (a gate, a deadline) does not make them refetch.
 */
function dataPathOf(r: Rollout): string {
  const { release: _release, ...routing } = r.spec;
  return JSON.stringify([routing, toBasisPoints(r.canaryPercent), toBasisPoints(r.shadowPercent)]);
}

// Plain code-unit order, identical on every machine (localeCompare is not), so filters see a stable order.
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
