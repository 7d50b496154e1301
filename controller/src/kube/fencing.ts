/**
 * Fencing: every status write of a kind of resource carries the leadership term it was written in
 * (`status.leader`), and the API server refuses a term lower than the stored one (the CRD's CEL transition
 * rule, kube-state/crd.ts), on top of each write being conditional on the resourceVersion it read. So a deposed
 * leader that goes on reconciling beside the new one (argo-rollouts#2117) has its writes refused, and is told
 * (`deposed`) the first time, so it stops.
 *
 * Done here, around the client, so every status write is covered whoever makes it (the engine's decisions, a
 * command applied on a follower, a refusal recorded): the leader writes its own term; any other replica
 * writes the term already stored (its write is a person's, linearized by the resourceVersion alone), or the
 * newest it saw in the Lease when the object has none yet.
 */
import type { KubeClient, KubeObject, ResourceRef } from "./client.ts";
import type { Leadership } from "./leadership.ts";
import type { LeaderTerm } from "./lease.ts";

/** The field the term is written to, and the CEL rule's message the API server answers a lower term with. */
export const TERM_FIELD = "status.leader";

/** Whether an API error is the fencing rule's refusal (422 on status.leader). */
export function isFenced(error: unknown): boolean {
  const e = error as { status?: number; causes?: Array<{ field?: string }>; message?: string };
  return e?.status === 422 && (e.causes?.some((c) => c.field === TERM_FIELD || c.field === "leader") ?? false);
}

/** The term a status write of this replica carries. */
export function termToWrite(leadership: Leadership, stored: LeaderTerm | undefined): LeaderTerm | undefined {
  const own = leadership.term;
  if (own) return own;
  return stored ?? leadership.observedTerm ?? undefined;
}

type StatusObject = KubeObject & { status?: { leader?: LeaderTerm; [key: string]: unknown } };

/**
 * The same client, with status writes of `plural` (replaceStatus; merge patches of the status) carrying the
 * term, and whole writes (create, replace) of `recordsPlural` (objects holding decisions beside the status, with
 * a top-level `leader` under the same rule) carrying it too. Everything else passes through unchanged.
 *
 * A records object is written whole from the writer's history. A leader's replace refused as stale (409: the
 * object was written since this replica last saw it, e.g. by a leader it succeeded) is retried once on the
 * current version, since the term rule refuses it if a newer leader wrote meanwhile; a follower's is not (its
 * status write, conditional on the version, decides).
 */
export function fencedClient(client: KubeClient, plural: string, leadership: Leadership, recordsPlural?: string): KubeClient {
  const refused = (error: unknown) => {
    if (isFenced(error)) leadership.deposed(`the API server refused a status of term ${leadership.term?.term ?? "?"}: ${(error as Error).message}`);
    return error;
  };
  const replaceStatus = async <T extends KubeObject>(ref: ResourceRef, object: T, options?: { fieldManager?: string }): Promise<T> => {
    if (ref.plural !== plural) return client.replaceStatus(ref, object, options);
    const o = object as StatusObject;
    const term = termToWrite(leadership, o.status?.leader);
    const fenced = term ? ({ ...o, status: { ...o.status, leader: { term: term.term, holder: term.holder } } } as unknown as T) : object;
    try {
      return await client.replaceStatus(ref, fenced, options);
    } catch (error) {
      throw refused(error);
    }
  };
  const patchStatus: KubeClient["patchStatus"] = async (ref, name, body, options) => {
    if (ref.plural !== plural) return client.patchStatus(ref, name, body, options);
    const own = leadership.term;
    const patch =
      own && (options?.type ?? "merge") === "merge" && body && typeof body === "object"
        ? { ...(body as Record<string, unknown>), status: { ...((body as { status?: object }).status ?? {}), leader: { term: own.term, holder: own.holder } } }
        : body;
    try {
      return await client.patchStatus(ref, name, patch, options);
    } catch (error) {
      throw refused(error);
    }
  };
  const stamped = <T extends KubeObject>(object: T): T => {
    const term = termToWrite(leadership, (object as { leader?: LeaderTerm }).leader);
    return term ? ({ ...object, leader: { term: term.term, holder: term.holder } } as T) : object;
  };
  const create = async <T extends KubeObject>(ref: ResourceRef, object: T, options?: { fieldManager?: string }): Promise<T> => {
    if (ref.plural !== recordsPlural) return client.create(ref, object, options);
    try {
      return await client.create(ref, stamped(object), options);
    } catch (error) {
      throw refused(error);
    }
  };
  const replace = async <T extends KubeObject>(ref: ResourceRef, object: T, options?: { fieldManager?: string }): Promise<T> => {
    if (ref.plural !== recordsPlural) return client.replace(ref, object, options);
    const leading = leadership.term !== null;
    try {
      return await client.replace(ref, stamped(object), options);
    } catch (error) {
      if (!leading || (error as { status?: number }).status !== 409) throw refused(error);
      try {
        const current = await client.get<T>(ref, object.metadata.name);
        return await client.replace(ref, stamped({ ...object, metadata: { ...object.metadata, resourceVersion: current.metadata.resourceVersion } }), options);
      } catch (again) {
        throw refused(again);
      }
    }
  };
  return new Proxy(client, {
    get(target, property) {
      if (property === "replaceStatus") return replaceStatus;
      if (property === "patchStatus") return patchStatus;
      if (property === "create") return create;
      if (property === "replace") return replace;
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
