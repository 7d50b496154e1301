/**
 * Where the rollout store keeps its state so a restarted controller resumes where it was: the config epoch
 * and version the filters follow, every rollout (spec, weights, engine state) and the full decision history.
 * One interface, one SQLite implementation (sqlite-state.ts); ":memory:" gives the same code path without a file.
 */
import type { Decision } from "../engine/index.ts";
import { upgradeSpec } from "./accept.ts";
import type { ArchiveEntry } from "./archive.ts";
import type { Rollout } from "./model.ts";

/** What a controller finds when it starts on an existing state file. */
export interface SavedState {
  epoch: string;
  version: number;
  /** Each rollout with its whole decision history, in name order. */
  rollouts: Rollout[];
  /** Archived rollouts (finalized or deleted), oldest first, without their decisions (archivedDecisions()). */
  archived: ArchiveEntry[];
}

/** One write: applied in full or not at all. */
export interface StateChange {
  /** The config version after the change. */
  version: number;
  /** The rollout as it is now; absent when it was deleted (see `deleted`). */
  rollout?: Rollout;
  /** Decisions appended to the rollout's history by this change, oldest first. */
  newDecisions?: readonly Decision[];
  /** Name of a rollout removed from the live set (after `rollout` is written, when both are given). */
  deleted?: string;
  /** The rollout `deleted` names, kept in the archive with its history under a new id. */
  archive?: ArchiveEntry;
}

export interface RolloutPersistence {
  /** The saved state, or null on a new state file. */
  load(): SavedState | null;
  /** Records the epoch and version of a new state file. */
  initialize(epoch: string, version: number): void;
  /** Throws when the write failed; the store then keeps its previous state in memory too. */
  write(change: StateChange): void;
  /** The decision history of an archived rollout, oldest first. */
  archivedDecisions(id: number): Decision[];
  close(): void;
}

/**
 * A Rollout as stored: Dates as ISO strings and without its decision history, which is kept row by row
 * (appending a decision must not rewrite the whole history every tick).
 */
export interface StoredRollout extends Omit<Rollout, "createdAt" | "updatedAt" | "lastRollbackAt" | "engine"> {
  createdAt: string;
  updatedAt: string;
  lastRollbackAt: string | null;
  engine: { state: NonNullable<Rollout["engine"]>["state"]; lastEvaluation: NonNullable<Rollout["engine"]>["lastEvaluation"] } | null;
}

export function toStored(rollout: Rollout): StoredRollout {
  return {
    ...rollout,
    createdAt: rollout.createdAt.toISOString(),
    updatedAt: rollout.updatedAt.toISOString(),
    lastRollbackAt: rollout.lastRollbackAt?.toISOString() ?? null,
    engine: rollout.engine ? { state: rollout.engine.state, lastEvaluation: rollout.engine.lastEvaluation } : null,
  };
}

export function fromStored(stored: StoredRollout, decisions: Decision[]): Rollout {
  return {
    ...stored,
    // Fields added since schema 1 (models, release part, rollback note, finalize hook) read as absent.
    lastRollbackNote: stored.lastRollbackNote ?? null,
    finalizeHook: stored.finalizeHook ?? null,
    spec: upgradeSpec(stored.spec),
    createdAt: new Date(stored.createdAt),
    updatedAt: new Date(stored.updatedAt),
    lastRollbackAt: stored.lastRollbackAt === null ? null : new Date(stored.lastRollbackAt),
    engine: stored.engine ? { state: stored.engine.state, lastEvaluation: stored.engine.lastEvaluation, decisions } : null,
  };
}
