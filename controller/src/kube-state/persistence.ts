/**
 * The store's persistence in Kubernetes mode: a decorator that lets the inner persistence (the in-memory
 * SQLite with the notification outbox, notify/persistence.ts) record the change as before, then hands the
 * rollout's name to the writer (writer.ts), which brings its ModelRollout up to date in the API server.
 *
 * The store commits synchronously; the API server answers later. So a REST request records the writes it
 * caused (AsyncLocalStorage, one context per request) and the route's answer waits for them (hooks.ts): a
 * write the API server refused becomes the request's 409/412/503, and the writer puts the server's version
 * back into the store.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Decision } from "../engine/index.ts";
import type { RolloutPersistence, SavedState, StateChange } from "../rollouts/persistence.ts";

/** What one REST request caused: the API writes its answer waits for. */
export interface RequestWrites {
  writes: Array<Promise<void>>;
  /** Whether the request sent If-Match: a write refused as stale answers 412 then, 409 otherwise. */
  ifMatch: boolean;
  /** A create's or PUT's spec as sent: the ModelRollout's spec of a rollout made through the REST API. */
  body?: Record<string, unknown>;
}

export const requestWrites = new AsyncLocalStorage<RequestWrites>();

export interface ChangeSink {
  /** Schedules the API write for `name` after a local commit; resolves when the API server has it, rejects when refused. */
  changed(name: string, change: StateChange, spec?: Record<string, unknown>): Promise<void>;
}

export class KubePersistence implements RolloutPersistence {
  readonly #inner: RolloutPersistence;
  readonly #initial: SavedState;
  readonly #sink: ChangeSink;

  constructor(inner: RolloutPersistence, initial: SavedState, sink: ChangeSink) {
    this.#inner = inner;
    this.#initial = initial;
    this.#sink = sink;
  }

  /** What the API server held at start (sync.ts lists it before the store is built). */
  load(): SavedState | null {
    return this.#initial;
  }

  initialize(epoch: string, version: number): void {
    this.#inner.initialize(epoch, version);
  }

  write(change: StateChange): void {
    // The inner write keeps the outbox's events in step with the decisions (and can refuse the change).
    this.#inner.write(change);
    const name = change.rollout?.spec.name ?? change.deleted;
    if (name === undefined) return;
    const context = requestWrites.getStore();
    const body = context?.body;
    const spec = body && body.name === name && change.rollout ? body : undefined;
    const done = this.#sink.changed(name, change, spec);
    if (context) context.writes.push(done);
    // Outside a request (engine ticks) the writer logs and repairs a refused write itself.
    else done.catch(() => {});
  }

  archivedDecisions(id: number): Decision[] {
    return this.#inner.archivedDecisions(id);
  }

  close(): void {
    this.#inner.close();
  }
}
