/**
 * Kubernetes mode's state: the ModelRollouts in the API server are the truth, the store a watch-fed cache.
 *
 * - At start every ModelRollout and decision chunk is listed and the store built from them (load()).
 * - Each local commit is written to the API server by rollout, one write after the other (writeRollout): the
 *   object's spec for a rollout made through the REST API, the decision chunks, then the status, each
 *   conditional on the resourceVersion last seen. A refused write (409: someone wrote first; or the server
 *   unreachable) puts the server's version back into the store: a change the API server did not take did
 *   not happen.
 * - The watch adopts what others wrote (another replica, the leader) and hands kubectl's changes (a new
 *   object, a changed spec, a delete, a command annotation) to reconcile.ts.
 *
 * Status writes that only refresh the latest evaluation are written at most every `statusEveryMs` per
 * rollout (the next tick has a fresh one anyway); every decision, phase, stage, weight or spec change at once.
 */
import { randomBytes } from "node:crypto";
import type { FastifyBaseLogger } from "fastify";
import type { Decision } from "../engine/index.ts";
import { KubeError, type KubeClient, type ResourceRef, type WatchEvent } from "../kube/client.ts";
import type { ArchiveEntry } from "../rollouts/archive.ts";
import type { Rollout } from "../rollouts/model.ts";
import type { SavedState, StateChange } from "../rollouts/persistence.ts";
import type { RolloutStore } from "../rollouts/store.ts";
import { DECISIONS_PLURAL, GROUP, ROLLOUT_PLURAL, VERSION } from "./crd.ts";
import { chunksFor, DecisionWriter, historyFromChunks, ROLLOUT_LABEL, type DecisionChunk } from "./decisions.ts";
import { ANNOTATIONS, FINALIZER, type ModelRolloutObject, newObject, type RolloutStatus, rolloutOfObject, specOfRollout, statusOf } from "./objects.ts";
import type { ChangeSink } from "./persistence.ts";
import { answerFor, essentialOf, ignoreNotFound, isArchived, rvNumber, sameDecisionsAt, sleep, sortKeys } from "./sync-util.ts";

export interface KubeSyncOptions {
  client: KubeClient;
  namespace: string;
  log: FastifyBaseLogger;
  clock?: () => Date;
  /** Evaluation-only status refreshes at most this often per rollout; default 30 000 ms. */
  statusEveryMs?: number;
}

/** What was written, counted (the report's "API writes per tick"). */
export interface WriteCounts {
  objects: number;
  specs: number;
  statuses: number;
  chunks: number;
  refused: number;
  deferred: number;
}

export class KubeSync implements ChangeSink {
  readonly client: KubeClient;
  readonly namespace: string;
  readonly rollouts: ResourceRef;
  readonly decisionsRef: ResourceRef;
  readonly log: FastifyBaseLogger;
  readonly clock: () => Date;
  readonly counts: WriteCounts = { objects: 0, specs: 0, statuses: 0, chunks: 0, refused: 0, deferred: 0 };
  /** The newest version of each ModelRollout seen (watch events, write answers). */
  readonly objects = new Map<string, ModelRolloutObject>();
  /** The spec generation refused last, per rollout, with its Invalid condition and field errors (kept in every status write for it). */
  readonly refusals = new Map<string, Pick<RolloutStatus, "observedGeneration" | "fieldErrors"> & { condition: RolloutStatus["conditions"][number] }>();
  /** Command annotation tokens acted on, per rollout (also in status.commands). */
  readonly commands = new Map<string, Record<string, string>>();
  readonly #decisions: DecisionWriter;
  /** Decisions the API server holds per rollout, and the status written last (its evaluation-free form, when). */
  readonly #written = new Map<string, { decisions: number; essential: string; at: number }>();
  readonly #queues = new Map<string, Promise<void>>();
  readonly #deferred = new Set<string>();
  /** Specs sent through the REST API (create, PUT), to write as the ModelRollout's spec. */
  readonly #specs = new Map<string, Record<string, unknown>>();
  /** Rollouts whose local copy may be ahead of the server (a refused write not yet repaired). */
  readonly #dirty = new Set<string>();
  readonly #statusEveryMs: number;
  readonly #abort = new AbortController();
  #store: RolloutStore | null = null;
  #listVersion = "";
  #timer: NodeJS.Timeout | null = null;
  #watching: Promise<void> | null = null;
  /** Called with each object the watch delivers (reconcile.ts), after the cache took it. */
  onObject: (object: ModelRolloutObject, type: WatchEvent["type"]) => void = () => {};

  constructor(options: KubeSyncOptions) {
    this.client = options.client;
    this.namespace = options.namespace;
    this.log = options.log;
    this.clock = options.clock ?? (() => new Date());
    this.#statusEveryMs = options.statusEveryMs ?? 30_000;
    this.rollouts = { group: GROUP, version: VERSION, plural: ROLLOUT_PLURAL, namespace: options.namespace };
    this.decisionsRef = { group: GROUP, version: VERSION, plural: DECISIONS_PLURAL, namespace: options.namespace };
    this.#decisions = new DecisionWriter(this.client, this.decisionsRef);
  }

  get store(): RolloutStore {
    if (this.#store === null) throw new Error("kube state: no store attached");
    return this.#store;
  }

  /** Every ModelRollout and its history, as the store starts from. */
  async load(): Promise<SavedState> {
    const list = await this.client.listAll<ModelRolloutObject>(this.rollouts);
    const chunks = await this.client.listAll<DecisionChunk>(this.decisionsRef);
    this.#listVersion = list.resourceVersion;
    for (const chunk of chunks.items) this.#decisions.remember(chunk);
    const live = list.items.filter((o) => o.status?.state && !isArchived(o));
    const counts = new Map(live.map((o) => [o.metadata.name, { count: o.status?.decisions?.count ?? 0, uid: o.metadata.uid }]));
    const history = historyFromChunks(chunks.items, counts);
    const rollouts: Rollout[] = [];
    for (const object of list.items) this.#take(object);
    for (const object of live) {
      const rollout = rolloutOfObject(object, history.get(object.metadata.name) ?? []);
      if (rollout) rollouts.push(rollout);
    }
    rollouts.sort((a, b) => (a.spec.name < b.spec.name ? -1 : 1));
    return { epoch: randomBytes(8).toString("hex"), version: 1, rollouts, archived: [] };
  }

  attach(store: RolloutStore): void {
    this.#store = store;
  }

  /** Watches from the list's version; repairs refused writes and flushes deferred statuses every few seconds. */
  start(): void {
    this.#watching = this.#watch();
    this.#timer = setInterval(() => this.#periodic(), Math.min(this.#statusEveryMs, 5000));
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    if (this.#timer) clearInterval(this.#timer);
    await this.#watching;
    await Promise.allSettled([...this.#queues.values()]);
  }

  /** Waits for every write under way (tests; a clean stop). */
  async settled(): Promise<void> {
    while (this.#queues.size > 0) await Promise.allSettled([...this.#queues.values()]);
  }

  changed(name: string, change: StateChange, spec?: Record<string, unknown>): Promise<void> {
    if (spec) {
      const { name: _name, ...rest } = structuredClone(spec);
      this.#specs.set(name, rest);
    }
    const previous = this.#queues.get(name) ?? Promise.resolve();
    const job = previous.catch(() => {}).then(() => this.#flush(name, change));
    this.#queues.set(name, job);
    void job
      .finally(() => {
        if (this.#queues.get(name) === job) this.#queues.delete(name);
      })
      .catch(() => {});
    return job;
  }

  /** Writes the status of `name` now (after reconcile.ts recorded a refusal or a command), in the rollout's queue. */
  writeStatusNow(name: string, status?: Partial<RolloutStatus>): Promise<void> {
    return this.changed(name, { version: 0, ...(status ? { status } : {}) } as StateChange);
  }

  async #flush(name: string, change: StateChange & { status?: Partial<RolloutStatus> }): Promise<void> {
    try {
      if (change.archive) await this.#archive(name, change.archive);
      else if (change.status) await this.#writeRefused(name, change.status);
      else await this.#writeRollout(name, change.version === 0);
      this.#dirty.delete(name);
    } catch (error) {
      this.counts.refused += 1;
      this.#dirty.add(name);
      await this.#repair(name).catch(() => {});
      throw answerFor(name, error);
    }
  }

  async #writeRollout(name: string, force: boolean): Promise<void> {
    const local = this.store.find(name);
    if (!local) return;
    let object = this.objects.get(name);
    const spec = this.#specs.get(name);
    this.#specs.delete(name);
    if (!object) {
      object = await this.client.create(this.rollouts, newObject(name, this.namespace, spec ?? specOfRollout(local), "rest"));
      this.counts.objects += 1;
      this.#take(object);
    } else if (spec && object.metadata.annotations?.[ANNOTATIONS.origin] === "rest") {
      if (JSON.stringify(sortKeys(spec)) !== JSON.stringify(sortKeys(object.spec))) {
        object = await this.client.replace(this.rollouts, { ...object, spec });
        this.counts.specs += 1;
        this.#take(object);
      }
    }
    const decisions = local.engine?.decisions ?? [];
    const written = this.#written.get(name) ?? { decisions: 0, essential: "", at: 0 };
    if (decisions.length > written.decisions) {
      const before = this.#decisions.writes;
      await this.#decisions.write(name, object.metadata.uid, decisions, written.decisions, object);
      this.counts.chunks += this.#decisions.writes - before;
    }
    const status = statusOf(local, {
      generation: object.metadata.generation ?? 1,
      previous: object.status,
      decisionChunks: chunksFor(decisions.length),
      commands: this.commands.get(name) ?? object.status?.commands,
      now: this.clock(),
    });
    this.#keepRefusal(name, status, object.metadata.generation ?? 1);
    const essential = essentialOf(status);
    const now = this.clock().getTime();
    if (!force && essential === written.essential) {
      // Only the evaluation moved: at most every statusEveryMs (the periodic flush writes it later).
      if (now - written.at < this.#statusEveryMs) {
        this.#deferred.add(name);
        this.counts.deferred += 1;
        this.#written.set(name, { ...written, decisions: decisions.length });
        return;
      }
    }
    this.#deferred.delete(name);
    const updated = await this.client.replaceStatus<ModelRolloutObject>(this.rollouts, { ...object, status });
    this.counts.statuses += 1;
    this.#take(updated);
    this.#written.set(name, { decisions: decisions.length, essential, at: now });
  }

  /** A refused generation stays refused in the status until a newer one is accepted. */
  #keepRefusal(name: string, status: RolloutStatus, generation: number): void {
    const refusal = this.refusals.get(name);
    if (!refusal) return;
    if (refusal.observedGeneration !== generation) {
      this.refusals.delete(name);
      return;
    }
    status.fieldErrors = refusal.fieldErrors;
    status.conditions = [...status.conditions.filter((c) => c.type !== "Invalid"), refusal.condition];
  }

  /** A spec refused (Invalid) or a command's record: the status as reconcile.ts made it, nothing else. */
  async #writeRefused(name: string, status: Partial<RolloutStatus>): Promise<void> {
    const object = this.objects.get(name);
    if (!object) return;
    const updated = await this.client.replaceStatus<ModelRolloutObject>(this.rollouts, { ...object, status: status as RolloutStatus });
    this.counts.statuses += 1;
    this.#take(updated);
  }

  /**
   * The rollout left the live set: deleted (its object goes, the finalizer released) or finalized (the object
   * stays, status Finalized, so a GitOps tool does not create it again; a changed spec starts a new rollout).
   */
  async #archive(name: string, entry: ArchiveEntry): Promise<void> {
    const object = this.objects.get(name);
    if (!object) return;
    const finalized = entry.rollout.engine?.state.phase === "Finalized" && !object.metadata.deletionTimestamp;
    if (finalized) {
      await this.#writeRolloutFrom(name, entry.rollout, object);
      return;
    }
    await this.release(name).catch(ignoreNotFound);
    if (!object.metadata.deletionTimestamp) await this.client.delete(this.rollouts, name).catch(ignoreNotFound);
    this.objects.delete(name);
    this.#written.delete(name);
    this.#decisions.forget(name);
  }

  async #writeRolloutFrom(name: string, rollout: Rollout, object: ModelRolloutObject): Promise<void> {
    const decisions = rollout.engine?.decisions ?? [];
    const written = this.#written.get(name)?.decisions ?? 0;
    if (decisions.length > written) await this.#decisions.write(name, object.metadata.uid, decisions, written, object);
    const status = statusOf(rollout, {
      generation: object.metadata.generation ?? 1,
      previous: object.status,
      decisionChunks: chunksFor(decisions.length),
      commands: this.commands.get(name),
      now: this.clock(),
    });
    this.#take(await this.client.replaceStatus<ModelRolloutObject>(this.rollouts, { ...object, status }));
    this.#written.set(name, { decisions: decisions.length, essential: essentialOf(status), at: this.clock().getTime() });
  }

  /** After a refused write: the server's version of the rollout back into the store. */
  async #repair(name: string): Promise<void> {
    let object: ModelRolloutObject | null;
    try {
      object = await this.client.get<ModelRolloutObject>(this.rollouts, name);
    } catch (error) {
      if (!(error instanceof KubeError) || !error.isNotFound) throw error;
      object = null;
    }
    if (object === null) {
      this.objects.delete(name);
      this.#written.delete(name);
      this.store.adopt(name, null);
      this.#dirty.delete(name);
      return;
    }
    this.#take(object, true);
    await this.#adopt(object);
    this.#dirty.delete(name);
  }

  /** The store's copy of `object`'s rollout made the server's (decisions read from the chunks when they grew). */
  async #adopt(object: ModelRolloutObject): Promise<void> {
    const name = object.metadata.name;
    if (!object.status?.state || isArchived(object)) {
      if (this.store.find(name) && object.status?.state) this.store.adopt(name, null);
      return;
    }
    const count = object.status.decisions?.count ?? 0;
    const local = this.store.find(name)?.engine?.decisions ?? [];
    let decisions: readonly Decision[] = local.slice(0, count);
    if (local.length < count || !sameDecisionsAt(local, count)) {
      const chunks = await this.client.list<DecisionChunk>(this.decisionsRef, { labelSelector: `${ROLLOUT_LABEL}=${name}` });
      for (const chunk of chunks.items) this.#decisions.remember(chunk);
      decisions = historyFromChunks(chunks.items, new Map([[name, { count, uid: object.metadata.uid }]])).get(name) ?? [];
    }
    const rollout = rolloutOfObject(object, decisions);
    this.store.adopt(name, rollout);
    const status = object.status as RolloutStatus;
    this.#written.set(name, { decisions: count, essential: essentialOf(status), at: this.clock().getTime() });
  }

  /** Keeps the newer of the cached and the given object (by resourceVersion). */
  #take(object: ModelRolloutObject, always = false): void {
    const name = object.metadata.name;
    if (always || rvNumber(object) >= rvNumber(this.objects.get(name))) this.objects.set(name, object);
    const tokens = object.status?.commands;
    if (tokens && !this.commands.has(name)) this.commands.set(name, { ...tokens });
    const invalid = object.status?.conditions?.find((c) => c.type === "Invalid" && c.status === "True");
    if (invalid && object.status?.observedGeneration !== undefined && !this.refusals.has(name))
      this.refusals.set(name, { observedGeneration: object.status.observedGeneration, fieldErrors: object.status.fieldErrors, condition: invalid });
  }

  /** Waits for the writes of `name` under way (refusals included: the store has the server's version after). */
  async settledFor(name: string): Promise<void> {
    for (let job = this.#queues.get(name); job !== undefined; job = this.#queues.get(name)) await job.catch(() => {});
  }

  /** Lets a deleted object go: the rollout was archived already (or never accepted). */
  async release(name: string): Promise<void> {
    const object = this.objects.get(name);
    if (!object?.metadata.finalizers?.includes(FINALIZER)) return;
    const finalizers = object.metadata.finalizers.filter((f) => f !== FINALIZER);
    this.#take(
      await this.client.patch<ModelRolloutObject>(this.rollouts, name, {
        metadata: { finalizers: finalizers.length > 0 ? finalizers : null, resourceVersion: object.metadata.resourceVersion },
      }),
    );
  }

  /** Puts the finalizer on an object kubectl created, so its delete waits for the canary's withdrawal. */
  async holdFinalizer(name: string): Promise<void> {
    const object = this.objects.get(name);
    if (!object || object.metadata.finalizers?.includes(FINALIZER)) return;
    this.#take(
      await this.client.patch<ModelRolloutObject>(this.rollouts, name, {
        metadata: { finalizers: [...(object.metadata.finalizers ?? []), FINALIZER], resourceVersion: object.metadata.resourceVersion },
      }),
    );
  }

  isWriting(name: string): boolean {
    return this.#queues.has(name);
  }

  async #watch(): Promise<void> {
    const signal = this.#abort.signal;
    let version = this.#listVersion;
    while (!signal.aborted) {
      try {
        for await (const event of this.client.watch<ModelRolloutObject>(this.rollouts, { resourceVersion: version, signal })) {
          version = event.object.metadata.resourceVersion ?? version;
          if (event.type !== "BOOKMARK") await this.#event(event);
        }
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof KubeError && error.isGone) {
          version = await this.#relist().catch(() => version);
          continue;
        }
        this.log.warn({ err: error }, "kube state: ModelRollout watch failed; watching again in 1 s");
        await sleep(1000, signal);
      }
    }
  }

  async #event(event: WatchEvent<ModelRolloutObject>): Promise<void> {
    const object = event.object;
    const name = object.metadata.name;
    if (event.type === "DELETED") {
      this.objects.delete(name);
      this.onObject(object, "DELETED");
      return;
    }
    const known = this.objects.get(name);
    const newer = rvNumber(object) > rvNumber(known);
    this.#take(object);
    // Our own write's echo, or something we wrote after: nothing to adopt.
    if (!newer) return;
    if (this.isWriting(name)) {
      // Someone else's change (kubectl) while ours is under way: looked at once ours is done.
      this.onObject(object, event.type);
      return;
    }
    try {
      await this.#adopt(object);
    } catch (error) {
      this.log.warn({ err: error, rollout: name }, "kube state: could not read the rollout's decisions; retrying");
      this.#dirty.add(name);
    }
    this.onObject(object, event.type);
  }

  /** After 410 Gone: everything again, adopted; the version to watch from. */
  async #relist(): Promise<string> {
    const list = await this.client.listAll<ModelRolloutObject>(this.rollouts);
    const names = new Set(list.items.map((o) => o.metadata.name));
    for (const object of list.items) {
      if (rvNumber(object) > rvNumber(this.objects.get(object.metadata.name)) && !this.isWriting(object.metadata.name)) {
        this.#take(object);
        await this.#adopt(object).catch(() => this.#dirty.add(object.metadata.name));
        this.onObject(object, "MODIFIED");
      }
    }
    for (const name of [...this.objects.keys()]) if (!names.has(name)) this.objects.delete(name);
    return list.resourceVersion;
  }

  #periodic(): void {
    for (const name of [...this.#dirty]) if (!this.isWriting(name)) void this.#repair(name).catch(() => {});
    for (const name of [...this.#deferred]) if (!this.isWriting(name)) void this.writeStatusNow(name).catch(() => {});
  }
}
