/**
 * Notifications as buildApp wires them: the outbox tables in the state file, the store's persistence wrapped
 * so each write enqueues its events in its own transaction, and the dispatcher that delivers them (its
 * metrics go on the controller's registry with dispatcher.registerMetrics once that exists).
 */
import type { FastifyBaseLogger } from "fastify";
import type { SqliteRolloutState } from "../rollouts/sqlite-state.ts";
import type { UpstreamLookup } from "../metrics/envoy-upstreams.ts";
import { NotificationDispatcher } from "./dispatcher.ts";
import { NotificationOutbox } from "./outbox.ts";
import { NotifyingPersistence } from "./persistence.ts";
import { checkTargetList, type NotificationTarget, type NotificationTargetInput } from "../engine/index.ts";

export interface NotificationOptions {
  /** Controller-wide targets (the form of a spec's notifications.targets): every managed rollout's events go there too. */
  targets?: ReadonlyArray<NotificationTargetInput | NotificationTarget>;
  /** Pending events per destination at most (default 1000); beyond it the oldest are dropped and counted. */
  maxPendingPerTarget?: number;
  /** First retry delay (default 1000 ms), doubling per failed attempt up to retryMaxMs (default 300000). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** An event not delivered within this is dropped as expired (default 24 h). */
  maxAgeMs?: number;
  /** How often due retries are looked for (default 500 ms). */
  pollMs?: number;
}

export interface Notifications {
  outbox: NotificationOutbox;
  dispatcher: NotificationDispatcher;
  persistence: NotifyingPersistence;
}

/** Throws on invalid controller-wide targets (naming the item, never the URL). */
export function setupNotifications(
  state: SqliteRolloutState,
  options: NotificationOptions & { fresh?: boolean; publicUrl?: string | null; upstreams?: UpstreamLookup; clock?: () => number; log: FastifyBaseLogger },
): Notifications {
  // Normalized targets (events: null for all) are accepted back in the input form.
  const inputs = (options.targets ?? []).map((t) => Object.fromEntries(Object.entries(t).filter(([, v]) => v !== null && v !== undefined)));
  const checked = checkTargetList(inputs, "");
  if ("errors" in checked) {
    throw new Error(`notification targets: ${checked.errors.map((e) => `target ${e.path || "(list)"} ${e.reason}`).join("; ")}`);
  }
  const outbox = new NotificationOutbox(state.database, { fresh: options.fresh });
  const dispatcher = new NotificationDispatcher(outbox, {
    clock: options.clock,
    log: options.log,
    retryBaseMs: options.retryBaseMs,
    retryMaxMs: options.retryMaxMs,
    maxAgeMs: options.maxAgeMs,
    pollMs: options.pollMs,
  });
  const persistence = new NotifyingPersistence(state, state.database, outbox, {
    controllerTargets: checked.targets,
    publicUrl: options.publicUrl,
    ...(options.upstreams ? { upstreams: options.upstreams } : {}),
    maxPendingPerTarget: options.maxPendingPerTarget,
    clock: options.clock,
    log: options.log,
    onEnqueued: (result, events) => dispatcher.enqueued(result, events),
    onError: () => dispatcher.metrics.dropped.inc({ format: "any", reason: "internal" }),
  });
  return { outbox, dispatcher, persistence };
}
