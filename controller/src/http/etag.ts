/**
 * Optimistic concurrency for writes to a rollout: its revision is the ETag every answer carries, and a write
 * sent with If-Match is refused (412) when the rollout has moved on since the client read it.
 */
import type { FastifyRequest } from "fastify";
import { PreconditionFailedError } from "../errors.ts";
import type { Rollout } from "../rollouts/model.ts";
import type { RolloutStore } from "../rollouts/store.ts";

/** A rollout's ETag: its revision, quoted as HTTP wants it. */
export function etagOf(rollout: Rollout): string {
  return `"${rollout.revision}"`;
}

/** The If-Match header as one string (a repeated header is a list, as HTTP allows). */
export function ifMatchOf(request: FastifyRequest): string | undefined {
  const value = request.headers["if-match"];
  return Array.isArray(value) ? value.join(", ") : value;
}

/**
 * Refuses a write made against a revision the client no longer has in view (If-Match). Call it in the same
 * synchronous turn as the write it guards. `ifMatch` is the header's value: `*`, or one or more ETags.
 */
export function expectRevision(store: RolloutStore, name: string, ifMatch: string | undefined): void {
  if (ifMatch === undefined) return;
  const rollout = store.get(name);
  if (ifMatch.trim() === "*") return;
  const wanted = ifMatch.split(",").map((tag) => tag.trim().replace(/^W\//, ""));
  if (!wanted.includes(etagOf(rollout))) {
    throw new PreconditionFailedError(
      `rollout ${name}: changed since you read it: If-Match ${ifMatch.trim()}, current revision ${etagOf(rollout)} (phase ${rollout.engine?.state.phase ?? "manual"}, canary ${rollout.canaryPercent}%); read it again and retry`,
    );
  }
}
