/**
 * The rollout store's persistence with the notification outbox written into the same transaction: a
 * decorator of RolloutPersistence, so the store does not know about notifications and the outbox row of an
 * event exists exactly when its decision does (a crash keeps both or neither). Deriving the events from each
 * write, rather than reading the decision table later with a cursor, also sees what a cursor over `decisions`
 * could not: a finalized rollout's decisions go straight to the archive tables, and a re-created name starts
 * its decision numbers again.
 *
 * Working out the events never fails a write: an exception there is logged and counted (the events of that
 * write are lost, the decision is not). Only a failing SQLite write fails both, as one.
 */
import type Database from "better-sqlite3";
import type { FastifyBaseLogger } from "fastify";
import type { Decision } from "../engine/index.ts";
import type { RolloutPersistence, SavedState, StateChange } from "../rollouts/persistence.ts";
import type { Rollout } from "../rollouts/model.ts";
import type { UpstreamLookup } from "../metrics/envoy-upstreams.ts";
import { decisionEvents, gateStreaks, type GateStreak, type NotificationPayload } from "./events.ts";
import { targetKey, type Enqueued, type NotificationOutbox } from "./outbox.ts";
import { NOTIFY_DEFAULTS, wants, type NotificationTarget } from "../engine/index.ts";

interface NotifyingPersistenceOptions {
  /** Controller-wide targets: every managed rollout's events go there too (unless its spec opts out). */
  controllerTargets?: readonly NotificationTarget[];
  publicUrl?: string | null;
  /** What each Envoy cluster reaches, for the events' `variants`. */
  upstreams?: UpstreamLookup;
  /** Pending events per destination at most; beyond it the oldest are dropped (counted). Default 1000. */
  maxPendingPerTarget?: number;
  clock?: () => number;
  log?: FastifyBaseLogger;
  /** Told after each commit that enqueued events (the dispatcher starts delivering at once). */
  onEnqueued?: (result: Enqueued, events: NotificationPayload[]) => void;
  /** Told when working out a write's events failed (they are lost; the write went through). */
  onError?: (error: Error) => void;
}

interface Plan {
  rows: Array<{ payload: NotificationPayload; target: NotificationTarget }>;
  events: NotificationPayload[];
  streaks: { rollout: string; next: Map<string, GateStreak> } | null;
  clear: string | null;
}

const DEFAULT_MAX_PENDING_PER_TARGET = 1000;

export class NotifyingPersistence implements RolloutPersistence {
  readonly #inner: RolloutPersistence;
  readonly #outbox: NotificationOutbox;
  readonly #controllerTargets: readonly NotificationTarget[];
  readonly #publicUrl: string | null;
  readonly #upstreams: UpstreamLookup | undefined;
  readonly #maxPending: number;
  readonly #clock: () => number;
  readonly #log: FastifyBaseLogger | undefined;
  readonly #onEnqueued: NotifyingPersistenceOptions["onEnqueued"];
  readonly #onError: NotifyingPersistenceOptions["onError"];
  readonly #streaks: Map<string, Map<string, GateStreak>>;
  readonly #writeWith: (change: StateChange, plan: Plan) => Enqueued;

  constructor(inner: RolloutPersistence, db: Database.Database, outbox: NotificationOutbox, options: NotifyingPersistenceOptions = {}) {
    this.#inner = inner;
    this.#outbox = outbox;
    this.#controllerTargets = options.controllerTargets ?? [];
    this.#publicUrl = options.publicUrl ?? null;
    this.#upstreams = options.upstreams;
    this.#maxPending = options.maxPendingPerTarget ?? DEFAULT_MAX_PENDING_PER_TARGET;
    this.#clock = options.clock ?? Date.now;
    this.#log = options.log;
    this.#onEnqueued = options.onEnqueued;
    this.#onError = options.onError;
    this.#streaks = outbox.loadStreaks();
    // The inner write is a transaction of its own; inside this one it becomes a savepoint.
    this.#writeWith = db.transaction((change: StateChange, plan: Plan) => {
      this.#inner.write(change);
      if (plan.clear !== null) this.#outbox.saveStreaks(plan.clear, new Map());
      if (plan.streaks) this.#outbox.saveStreaks(plan.streaks.rollout, plan.streaks.next);
      return this.#outbox.enqueue(plan.rows, this.#clock(), this.#maxPending);
    });
  }

  load(): SavedState | null {
    return this.#inner.load();
  }

  initialize(epoch: string, version: number): void {
    this.#inner.initialize(epoch, version);
  }

  archivedDecisions(id: number): Decision[] {
    return this.#inner.archivedDecisions(id);
  }

  close(): void {
    this.#inner.close();
  }

  write(change: StateChange): void {
    let plan: Plan | null = null;
    try {
      plan = this.#plan(change);
    } catch (error) {
      this.#log?.error({ err: error, rollout: change.rollout?.spec.name }, "notifications: working out the events of a write failed; they are lost");
      this.#onError?.(error as Error);
    }
    if (plan === null || (plan.rows.length === 0 && plan.streaks === null && plan.clear === null)) {
      this.#inner.write(change);
      return;
    }
    const result = this.#writeWith(change, plan);
    if (plan.clear !== null) this.#streaks.delete(plan.clear);
    if (plan.streaks) {
      if (plan.streaks.next.size === 0) this.#streaks.delete(plan.streaks.rollout);
      else this.#streaks.set(plan.streaks.rollout, plan.streaks.next);
    }
    if (plan.rows.length > 0) this.#onEnqueued?.(result, plan.events);
  }

  /** The targets a rollout's events go to: its own, then the controller's (each destination once). */
  targetsOf(rollout: Rollout): NotificationTarget[] {
    const spec = rollout.engine?.state.spec.notifications;
    const all = [...(spec?.targets ?? []), ...(spec?.controllerTargets === false ? [] : this.#controllerTargets)];
    const seen = new Set<string>();
    return all.filter((t) => {
      const key = targetKey(t);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  }

  #plan(change: StateChange): Plan | null {
    const plan: Plan = { rows: [], events: [], streaks: null, clear: null };
    if (change.deleted !== undefined && this.#streaks.has(change.deleted)) plan.clear = change.deleted;
    const rollout = change.rollout;
    if (!rollout?.engine) return plan;
    const targets = this.targetsOf(rollout);
    const name = rollout.spec.name;
    const previous = this.#streaks.get(name) ?? new Map<string, GateStreak>();
    if (targets.length === 0) {
      if (previous.size > 0) plan.streaks = { rollout: name, next: new Map() };
      return plan;
    }
    const ctx = { publicUrl: this.#publicUrl, ...(this.#upstreams ? { upstreams: this.#upstreams } : {}) };
    const events = decisionEvents(rollout, change.newDecisions ?? [], ctx);
    const afterMs = (rollout.engine.state.spec.notifications?.gateErrorAfterSeconds ?? NOTIFY_DEFAULTS.gateErrorAfterSeconds) * 1000;
    // A rollout leaving the live set has no gates to follow; its streaks go with it.
    const streaks =
      change.deleted === name ? { next: new Map<string, GateStreak>(), events: [], changed: previous.size > 0 } : gateStreaks(rollout, previous, afterMs, ctx);
    if (streaks.changed) plan.streaks = { rollout: name, next: streaks.next };
    if (change.deleted === name) plan.clear = null;
    // Gate spells before the decisions of the same write: the error was seen first, the rollback (say) after.
    plan.events = [...streaks.events, ...events];
    for (const payload of plan.events) {
      const event = payload.type.slice("rollout.".length) as Parameters<typeof wants>[1];
      for (const target of targets) if (wants(target, event)) plan.rows.push({ payload, target });
    }
    return plan;
  }
}
