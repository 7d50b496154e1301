/**
 * What kubectl (or a GitOps tool) asks through a ModelRollout, done through the store as the REST API would:
 * - a new object without status: the rollout starts (POST's checks; refused: status Invalid with the field
 *   errors, nothing else);
 * - metadata.generation past status.observedGeneration: the changed spec is applied (PUT's checks; refused:
 *   Invalid, the rollout goes on as it was). On a finalized rollout's object, a changed spec starts a new one;
 * - a delete (deletionTimestamp, held by the finalizer): the canary is withdrawn, the rollout archived, then
 *   the finalizer released;
 * - `modelroll.io/<command>: <token>` annotations: the command, once per new token.
 * Only the replica that acts (the leader; a lone controller always) does these; the others only follow.
 */
import { applyCommand, type Command } from "../engine/index.ts";
import { ModelrollError } from "../errors.ts";
import { applySpec } from "../rollouts/apply.ts";
import type { StatsBaseline } from "../rollouts/model.ts";
import type { RolloutSpec } from "../rollouts/schemas.ts";
import { refusedWhileHeld } from "../rollouts/upstream-check.ts";
import { validateRolloutSpec } from "../rollouts/validate.ts";
import { restoreRedacted } from "../secrets.ts";
import { ANNOTATIONS, COMMAND_ANNOTATIONS, FINALIZER, type ModelRolloutObject, refusedStatus, restSpecOf } from "./objects.ts";
import type { KubeSync } from "./sync.ts";

export interface ReconcileOptions {
  /** Whether this replica acts on kubectl's changes (leader election decides; default: always). */
  acting?: () => boolean;
  /** What Envoy counted under a name before its rollout starts (stats/baseline.ts), as the REST create records it. */
  statsBaseline?: (name: string) => Promise<StatsBaseline>;
}

const ACTOR = "kubectl";
const COMMAND_TYPES: Record<(typeof COMMAND_ANNOTATIONS)[number], Command["type"]> = {
  promote: "promote",
  pause: "pause",
  resume: "resume",
  abort: "rollback",
  undo: "undo",
  fail: "fail",
  finalize: "finalize",
};

export class Reconciler {
  readonly #sync: KubeSync;
  readonly #acting: () => boolean;
  readonly #statsBaseline: ReconcileOptions["statsBaseline"];
  /** One reconcile per rollout at a time; a change arriving meanwhile is looked at again after. */
  readonly #busy = new Map<string, Promise<void>>();

  constructor(sync: KubeSync, options: ReconcileOptions = {}) {
    this.#sync = sync;
    this.#acting = options.acting ?? (() => true);
    this.#statsBaseline = options.statsBaseline;
  }

  /** Every cached object once (at start: what changed while no controller ran). */
  async all(): Promise<void> {
    await Promise.all([...this.#sync.objects.keys()].map((name) => this.reconcile(name)));
  }

  reconcile(name: string): Promise<void> {
    const previous = this.#busy.get(name) ?? Promise.resolve();
    const job = previous.then(() => this.#once(name)).catch((error) => this.#sync.log.warn({ err: error, rollout: name }, "kube state: reconcile failed"));
    this.#busy.set(name, job);
    void job.finally(() => {
      if (this.#busy.get(name) === job) this.#busy.delete(name);
    });
    return job;
  }

  async #once(name: string): Promise<void> {
    if (!this.#acting()) return;
    await this.#sync.settledFor(name);
    const object = this.#sync.objects.get(name);
    const store = this.#sync.store;
    const local = store.find(name);
    if (!object) {
      // Gone without the finalizer's wait (removed by hand): withdraw and archive all the same.
      if (local) await swallow(() => store.delete(name, { by: ACTOR, reason: "ModelRollout removed" }));
      return;
    }
    if (object.metadata.deletionTimestamp) {
      if (local) await swallow(() => this.#sync.store.delete(name, { by: ACTOR, reason: "ModelRollout deleted" }));
      else await this.#sync.release(name);
      return;
    }
    if (!object.metadata.finalizers?.includes(FINALIZER)) await this.#sync.holdFinalizer(name);
    const generation = object.metadata.generation ?? 1;
    const observed = object.status?.observedGeneration ?? 0;
    const fromRest = object.metadata.annotations?.[ANNOTATIONS.origin] === "rest";
    if (!local) {
      // A REST create on another replica writes its status right after the object: not ours to start.
      if (fromRest && !object.status) return;
      if (observed >= generation) return;
      await this.#start(object);
      return;
    }
    if (generation > observed) await this.#respec(object);
    await this.#commands(object);
  }

  async #start(object: ModelRolloutObject): Promise<void> {
    const name = object.metadata.name;
    const checked = validateRolloutSpec(restSpecOf(object), this.#sync.store.policy);
    if (!checked.ok) {
      await this.#refuse(object, `rollout ${name}: invalid spec`, checked.errors);
      return;
    }
    const statsBaseline = this.#statsBaseline ? await this.#statsBaseline(name) : undefined;
    try {
      this.#sync.store.create(checked.spec, statsBaseline ? { statsBaseline } : {});
    } catch (error) {
      if (!(error instanceof ModelrollError)) throw error;
      await this.#refuse(object, error.message, error.details ?? []);
      return;
    }
    await this.#sync.settledFor(name);
  }

  async #respec(object: ModelRolloutObject): Promise<void> {
    const name = object.metadata.name;
    const store = this.#sync.store;
    const current = store.get(name);
    // A spec read back from a REST-made object carries webhook URLs redacted: they stand for the rollout's.
    const body = restoreRedacted(restSpecOf(object), current.spec.release ?? null);
    const checked = validateRolloutSpec(body, store.policy);
    if (!checked.ok) {
      await this.#refuse(object, `rollout ${name}: invalid spec`, checked.errors);
      return;
    }
    try {
      applySpec(store, name, checked.spec as RolloutSpec, ACTOR, this.#sync.clock().getTime());
    } catch (error) {
      if (!(error instanceof ModelrollError)) throw error;
      await this.#refuse(object, error.message, error.details ?? []);
      return;
    }
    // Accepted, changed or not: the status says which generation it is about.
    await this.#sync.writeStatusNow(name).catch(() => {});
  }

  async #commands(object: ModelRolloutObject): Promise<void> {
    const name = object.metadata.name;
    const annotations = object.metadata.annotations ?? {};
    const done = { ...(this.#sync.commands.get(name) ?? object.status?.commands ?? {}) };
    let acted = false;
    for (const key of COMMAND_ANNOTATIONS) {
      const token = annotations[`modelroll.io/${key}`];
      if (token === undefined || done[key] === token) continue;
      done[key] = token;
      acted = true;
      this.#sync.commands.set(name, done);
      const rollout = this.#sync.store.get(name);
      const type = COMMAND_TYPES[key];
      const held = refusedWhileHeld(rollout, type);
      if (rollout.engine === null || held) {
        this.#sync.log.warn({ rollout: name, command: key }, `kube state: ${held ?? `rollout ${name}: not managed by the engine`}`);
        continue;
      }
      const command = { type, actor: ACTOR, reason: `annotation modelroll.io/${key}=${token}` } as Command;
      const result = applyCommand(rollout.engine.state, command, this.#sync.clock().getTime(), rollout.engine.lastEvaluation);
      if (!result.ok) {
        this.#sync.log.warn({ rollout: name, command: key }, `kube state: rollout ${name}: ${key} refused: ${result.error}`);
        continue;
      }
      await swallow(() => this.#sync.store.applyEngine(name, result, { command: true }));
    }
    if (acted) await this.#sync.writeStatusNow(name).catch(() => {});
  }

  async #refuse(object: ModelRolloutObject, message: string, errors: Parameters<typeof refusedStatus>[3]): Promise<void> {
    const detail = errors.map((e) => `${e.path || "(spec)"} ${e.reason}`).join("; ");
    const generation = object.metadata.generation ?? 1;
    const status = refusedStatus(object.status, generation, detail ? `${message}: ${detail}` : message, errors, this.#sync.clock());
    const condition = status.conditions?.find((c) => c.type === "Invalid");
    if (condition) this.#sync.refusals.set(object.metadata.name, { observedGeneration: generation, fieldErrors: status.fieldErrors, condition });
    await this.#sync.writeStatusNow(object.metadata.name, status).catch(() => {});
  }
}

/** A store call whose API write may be refused: the writer already put the server's version back. */
async function swallow(call: () => unknown): Promise<void> {
  try {
    call();
  } catch (error) {
    if (!(error instanceof ModelrollError)) throw error;
  }
}
