/**
 * Delivers the outbox beside the engine, never in its way: the engine's write only inserts rows (in its own
 * transaction, notify/persistence.ts); here a timer and a nudge after each insert send the head of every
 * destination's queue, one request per destination at a time (so each receives its events in order), a few
 * destinations at once. Nothing the engine does waits for a receiver.
 *
 *   2xx                           delivered (recorded at once; then the next event of that queue)
 *   408, 425, 429, 5xx, network,  failed attempt: retried after 1, 2, 4 ... s (retryBaseMs doubling, at most
 *   timeout                       retryMaxMs; a Retry-After header is honoured up to that), the queue waits
 *   any other status (3xx, 4xx)   rejected: the receiver will not take it; dropped and counted, the queue goes on
 *   pending past maxAge           expired: dropped and counted
 *
 * Delivery is at least once. An event counts as delivered when its row says so; a controller that dies after
 * a receiver's 2xx and before that row is written (one SQLite write, right after the answer) sends the event
 * again after its restart, with the same id. A receiver that keeps the ids it has seen sees each event once;
 * Slack and Teams cannot, so there that window can show a message twice.
 */
import type { FastifyBaseLogger } from "fastify";
import { Counter, Gauge, type Registry } from "prom-client";
import { describeFetchError } from "../net.ts";
import type { NotificationPayload } from "./events.ts";
import { render } from "./formats.ts";
import type { NotificationOutbox, OutboxRow } from "./outbox.ts";
import { redactUrl, scrubUrl } from "../secrets.ts";
import type { TargetFormat } from "../engine/index.ts";

interface DispatcherOptions {
  clock?: () => number;
  log?: FastifyBaseLogger;
  registry?: Registry;
  /** First retry delay; doubles per failed attempt. Default 1000 ms. */
  retryBaseMs?: number;
  /** Longest retry delay. Default 300000 ms (5 min). */
  retryMaxMs?: number;
  /** An event not delivered within this is dropped as expired. Default 24 h. */
  maxAgeMs?: number;
  /** Destinations delivered to at once. Default 8. */
  concurrency?: number;
  /** How often the queues are looked at besides the nudges (retries fall due). Default 500 ms. */
  pollMs?: number;
  /** Delivered and dropped rows are kept this long for GET /v1/notifications. Default 7 days. */
  keepMs?: number;
}

export class NotificationDispatcher {
  readonly #outbox: NotificationOutbox;
  readonly #clock: () => number;
  readonly #log: FastifyBaseLogger | undefined;
  readonly #retryBaseMs: number;
  readonly #retryMaxMs: number;
  readonly #maxAgeMs: number;
  readonly #concurrency: number;
  readonly #pollMs: number;
  readonly #keepMs: number;
  readonly #inFlight = new Map<number, Promise<void>>();
  readonly #stop = new AbortController();
  readonly metrics: { enqueued: Counter<"event">; sent: Counter<"format">; failed: Counter<"format" | "reason">; dropped: Counter<"format" | "reason"> };
  #timer: NodeJS.Timeout | null = null;
  #nudged = false;
  #prunedAt = 0;
  #stopped = false;
  #active: () => boolean = () => true;

  constructor(outbox: NotificationOutbox, options: DispatcherOptions = {}) {
    this.#outbox = outbox;
    this.#clock = options.clock ?? Date.now;
    this.#log = options.log;
    this.#retryBaseMs = options.retryBaseMs ?? 1000;
    this.#retryMaxMs = options.retryMaxMs ?? 300_000;
    this.#maxAgeMs = options.maxAgeMs ?? 24 * 3_600_000;
    this.#concurrency = options.concurrency ?? 8;
    this.#pollMs = options.pollMs ?? 500;
    this.#keepMs = options.keepMs ?? 7 * 24 * 3_600_000;
    outbox.inFlight = (seq) => this.#inFlight.has(seq);
    const registers: Registry[] = [];
    this.metrics = {
      enqueued: new Counter({
        name: "modelroll_notifications_enqueued_total",
        help: "Notification events written to the outbox, per target, by event.",
        labelNames: ["event"],
        registers,
      }),
      sent: new Counter({
        name: "modelroll_notifications_sent_total",
        help: "Notifications delivered (answered 2xx), by target format.",
        labelNames: ["format"],
        registers,
      }),
      failed: new Counter({
        name: "modelroll_notifications_failed_total",
        help: "Failed delivery attempts (each retry counts), by target format and reason: timeout, network, status (408, 425, 429, 5xx; retried) or rejected (another status; not retried).",
        labelNames: ["format", "reason"],
        registers,
      }),
      dropped: new Counter({
        name: "modelroll_notifications_dropped_total",
        help: "Notifications given up on, by target format and reason: queue_full (the oldest of a full queue), expired (undelivered past the retention), rejected (the receiver refused it), internal (the events of a write could not be worked out).",
        labelNames: ["format", "reason"],
        registers,
      }),
    };
    this.#pending = new Gauge({
      name: "modelroll_notifications_pending",
      help: "Notifications in the outbox waiting for delivery (first attempt or retry).",
      registers,
      collect() {
        // Read at scrape time; after the app has closed, the state file is too.
        try {
          this.set(outbox.pendingCount());
        } catch {
          // nothing to report
        }
      },
    });
    if (options.registry) this.registerMetrics(options.registry);
  }

  readonly #pending: Gauge;

  /** Puts the counters on a registry (the controller's /metrics). */
  registerMetrics(registry: Registry): void {
    for (const metric of [...Object.values(this.metrics), this.#pending] as Array<Parameters<Registry["registerMetric"]>[0]>) registry.registerMetric(metric);
  }

  /** Counts what a write enqueued (and what its bound dropped), and starts delivering. */
  enqueued(result: { dropped: TargetFormat[] }, events: NotificationPayload[]): void {
    for (const e of events) this.metrics.enqueued.inc({ event: e.type.slice("rollout.".length) });
    for (const format of result.dropped) this.metrics.dropped.inc({ format, reason: "queue_full" });
    this.nudge();
  }

  start(): void {
    if (this.#timer || this.#stopped) return;
    this.#timer = setInterval(() => this.pump(), this.#pollMs);
    this.#timer.unref();
    this.nudge();
  }

  /** Looks at the queues on the next turn (after the current write has returned). */
  nudge(): void {
    if (this.#nudged || this.#stopped) return;
    this.#nudged = true;
    setImmediate(() => {
      this.#nudged = false;
      this.pump();
    });
  }

  /**
   * Delivers only while `active` says so: of several replicas, only the leader sends (kube/lease.ts); the others
   * leave the outbox to it. Always, by default.
   */
  deliverWhile(active: () => boolean): void {
    this.#active = active;
  }

  /** Starts the deliveries that are due; returns how many were started. */
  pump(): number {
    if (this.#stopped || !this.#active()) return 0;
    const now = this.#clock();
    let started = 0;
    try {
      for (const format of this.#outbox.expire(now - this.#maxAgeMs, now)) this.metrics.dropped.inc({ format, reason: "expired" });
      if (now - this.#prunedAt > 600_000) {
        this.#prunedAt = now;
        this.#outbox.prune(now - this.#keepMs);
      }
      for (const row of this.#outbox.heads()) {
        if (this.#inFlight.size >= this.#concurrency) break;
        if (this.#inFlight.has(row.seq) || row.nextAttemptAt > now) continue;
        const delivery = this.#deliver(row)
          .catch((error: Error) => this.#log?.error({ err: error, target: row.targetName }, "notifications: recording a delivery failed"))
          .finally(() => {
            this.#inFlight.delete(row.seq);
            this.nudge();
          });
        this.#inFlight.set(row.seq, delivery);
        started++;
      }
    } catch (error) {
      // The state file closed under us (shutdown), or a read failed: the next pump tries again.
      if (!this.#stopped) this.#log?.error({ err: error }, "notifications: reading the outbox failed");
    }
    return started;
  }

  /** Deliveries under way (tests). */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Waits until nothing is in flight and nothing pending is due (tests); gives up after timeoutMs. */
  async idle(timeoutMs = 10_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      this.pump();
      if (this.#inFlight.size === 0 && !this.#outbox.heads().some((r) => r.nextAttemptAt <= this.#clock())) return;
      await Promise.race([...this.#inFlight.values(), new Promise((r) => setTimeout(r, 20))]);
    }
  }

  /**
   * No more deliveries. Those under way get `graceMs` to finish (and be recorded); then they are aborted
   * and stay pending, to be sent after a restart.
   */
  async stop(graceMs = 2000): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    const all = Promise.all([...this.#inFlight.values()]);
    const grace = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
    await Promise.race([all, grace]);
    this.#stop.abort();
    await all;
  }

  async #deliver(row: OutboxRow): Promise<void> {
    const payload = JSON.parse(row.payload) as NotificationPayload;
    const attempts = row.attempts + 1;
    let outcome: { ok: true } | { ok: false; retry: boolean; reason: string; error: string; retryAfterMs: number | null };
    try {
      const response = await fetch(row.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "user-agent": "modelroll-controller",
          "x-modelroll-event-id": row.eventId,
          "x-modelroll-event-type": row.type,
        },
        body: JSON.stringify(render(row.format, payload)),
        // A redirected POST would turn into a GET somewhere else: the URL must be the final one.
        redirect: "manual",
        signal: AbortSignal.any([this.#stop.signal, AbortSignal.timeout(row.timeoutMs)]),
      });
      const text = await response.text().catch(() => "");
      const status = response.status;
      if (status >= 200 && status <= 299) outcome = { ok: true };
      else {
        const retry = status === 408 || status === 425 || status === 429 || status >= 500;
        const said = text.trim().slice(0, 200).replace(/\s+/g, " ");
        outcome = {
          ok: false,
          retry,
          reason: retry ? "status" : "rejected",
          error: `answered HTTP ${status}${said ? `: ${said}` : ""}`,
          retryAfterMs: retryAfter(response.headers.get("retry-after"), this.#clock()),
        };
      }
    } catch (error) {
      // Aborted by stop(): not an attempt; the row stays as it was, for the next start.
      if (this.#stop.signal.aborted) return;
      const timeout = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
      outcome = { ok: false, retry: true, reason: timeout ? "timeout" : "network", error: describeFetchError(error, row.timeoutMs), retryAfterMs: null };
    }
    const now = this.#clock();
    if (outcome.ok) {
      this.#outbox.sent(row.seq, attempts, now);
      this.metrics.sent.inc({ format: row.format });
      return;
    }
    const error = scrubUrl(outcome.error, row.url);
    this.metrics.failed.inc({ format: row.format, reason: outcome.reason });
    const where = { target: row.targetName, url: redactUrl(row.url), event: row.eventId, attempts, error };
    if (!outcome.retry) {
      this.#outbox.drop(row.seq, attempts, "rejected", `rejected: ${error}`, now);
      this.metrics.dropped.inc({ format: row.format, reason: "rejected" });
      this.#log?.warn(where, "notification rejected by its receiver; dropped");
      return;
    }
    const backoff = Math.min(this.#retryMaxMs, this.#retryBaseMs * 2 ** (attempts - 1));
    const delay = Math.min(this.#retryMaxMs, Math.max(backoff, outcome.retryAfterMs ?? 0));
    this.#outbox.retry(row.seq, attempts, now + delay, error);
    this.#log?.warn({ ...where, retryInMs: delay }, "notification delivery failed; retrying");
  }
}

/** Retry-After as seconds or an HTTP date -> ms from now; null when absent or unreadable. */
export function retryAfter(header: string | null, now: number): number | null {
  if (!header) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}
