/** Small pieces of sync.ts: which status change is worth a write, stable JSON, the REST answer for a refused write. */
import type { Decision } from "../engine/index.ts";
import { ConflictError, UnavailableError } from "../errors.ts";
import { KubeError } from "../kube/client.ts";
import type { ModelRolloutObject, RolloutStatus } from "./objects.ts";

export const rvNumber = (object: { metadata: { resourceVersion?: string } } | undefined) => Number(object?.metadata.resourceVersion ?? 0);
export const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    const stop = () => {
      clearTimeout(timer);
      resolve();
    };
    signal.addEventListener("abort", stop, { once: true });
  });

export function isArchived(object: ModelRolloutObject): boolean {
  return object.status?.phase === "Finalized";
}

/** The status without what changes every tick (the evaluation), to tell a change worth a write at once. */
export function essentialOf(status: Partial<RolloutStatus>): string {
  const { lastEvaluation: _e, conditions, state, ...rest } = status;
  const stateEngine = state?.engine ? { ...state.engine, lastEvaluation: null } : null;
  return JSON.stringify({
    ...rest,
    conditions: conditions?.map((c) => [c.type, c.status, c.reason, c.message]),
    state: state ? { ...state, engine: stateEngine } : null,
  });
}

export function sameDecisionsAt(local: readonly Decision[], count: number): boolean {
  return count === 0 || local.length >= count;
}

export function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
  );
}

export function ignoreNotFound(error: unknown): void {
  if (!(error instanceof KubeError && error.isNotFound)) throw error;
}

/** The REST answer for a write the API server refused. */
export function answerFor(name: string, error: unknown): Error {
  if (error instanceof KubeError && error.isConflict) {
    return new ConflictError(
      `rollout ${name}: changed meanwhile by another writer (the Kubernetes API server refused this change as stale); read it again and retry`,
    );
  }
  const why = error instanceof Error ? error.message : String(error);
  return new UnavailableError(`rollout ${name}: the Kubernetes API server did not take the change (${why}); nothing changed`);
}
