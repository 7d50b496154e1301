/**
 * What /readyz says about this replica. A follower is ready: it serves the API, the dashboard, the streams and
 * the filters' long-poll. A replica that cannot reach the API server (its election attempts fail) or lost its
 * watch is not: what it would serve may be stale, so the Service should send requests elsewhere; it stays
 * alive (/healthz) and comes back by itself.
 */
import type { Leadership } from "../kube/leadership.ts";
import type { ReplicaStatus } from "./routes.ts";

export function replicaStatus(leadership: Leadership, notReady: string[]): ReplicaStatus {
  const reasons = [...notReady];
  if (leadership.identity !== null) {
    const { at, error } = leadership.contact;
    if (error !== null) reasons.push(`cannot reach the Kubernetes API server: ${error}`);
    else if (at === null) reasons.push("has not reached the Kubernetes API server yet");
  }
  return {
    ready: reasons.length === 0,
    role: leadership.role,
    identity: leadership.identity,
    leader: leadership.holder,
    term: leadership.observedTerm?.term ?? null,
    reasons,
  };
}
