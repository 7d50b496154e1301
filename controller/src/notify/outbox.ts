/**
 * The notification outbox in the state file: tables `notify_outbox` (one row per event and target, its
 * delivery state) and `notify_gate_streaks` (gates followed while they read Error), owned by this module alone
 * and sharing the state file's connection (it is opened in exclusive mode).
 *
 * Rows are written in the same transaction as the decisions they announce (notify/persistence.ts), so an
 * event is recorded exactly when its decision is: a crash loses neither or both. Each destination (format and
 * URL) is one queue, delivered strictly in `seq` order (AUTOINCREMENT: never reused). UNIQUE(event_id,
 * target) makes enqueueing the same event twice a no-op.
 *
 * The URL column is a secret; nothing reads it but the dispatcher's request (list() leaves it out).
 */
import { createHash } from "node:crypto";
import type Database from "better-sqlite3";
import type { GateStreak, NotificationPayload } from "./events.ts";
import { redactUrl } from "../secrets.ts";
import type { NotificationTarget, TargetFormat } from "../engine/index.ts";

const TABLES = `
  CREATE TABLE IF NOT EXISTS notify_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    target TEXT NOT NULL,
    target_name TEXT NOT NULL,
    format TEXT NOT NULL,
    url TEXT NOT NULL,
    timeout_ms INTEGER NOT NULL,
    rollout TEXT NOT NULL,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT,
    drop_reason TEXT,
    done_at INTEGER,
    UNIQUE (event_id, target)
  );
  CREATE INDEX IF NOT EXISTS notify_outbox_queue ON notify_outbox (state, target, seq);
  CREATE TABLE IF NOT EXISTS notify_gate_streaks (
    rollout TEXT NOT NULL,
    gate TEXT NOT NULL,
    since INTEGER NOT NULL,
    notified INTEGER NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (rollout, gate)
  );
`;

type DeliveryState = "pending" | "sent" | "dropped";
type DropReason = "queue_full" | "expired" | "rejected";

export interface OutboxRow {
  seq: number;
  eventId: string;
  /** The destination's key: one ordered queue per format and URL. */
  target: string;
  targetName: string;
  format: TargetFormat;
  url: string;
  timeoutMs: number;
  rollout: string;
  type: string;
  payload: string;
  createdAt: number;
  state: DeliveryState;
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  dropReason: DropReason | null;
  doneAt: number | null;
}

/** A row as the API shows it: the URL redacted, the payload parsed. */
export interface DeliveryView {
  seq: number;
  id: string;
  type: string;
  rollout: string;
  target: { name: string; format: string; url: string };
  state: DeliveryState;
  attempts: number;
  createdAt: string;
  nextAttemptAt: string | null;
  lastError: string | null;
  dropReason: DropReason | null;
  doneAt: string | null;
  event: NotificationPayload;
}

export interface Enqueued {
  inserted: number;
  /** Rows dropped to keep a queue within its bound, per format. */
  dropped: TargetFormat[];
}

export function targetKey(target: Pick<NotificationTarget, "format" | "url">): string {
  return createHash("sha256").update(`${target.format}\u0000${target.url}`).digest("hex").slice(0, 16);
}

interface RawRow {
  seq: number;
  event_id: string;
  target: string;
  target_name: string;
  format: TargetFormat;
  url: string;
  timeout_ms: number;
  rollout: string;
  type: string;
  payload: string;
  created_at: number;
  state: DeliveryState;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  drop_reason: DropReason | null;
  done_at: number | null;
}

const toRow = (r: RawRow): OutboxRow => ({
  seq: r.seq,
  eventId: r.event_id,
  target: r.target,
  targetName: r.target_name,
  format: r.format,
  url: r.url,
  timeoutMs: r.timeout_ms,
  rollout: r.rollout,
  type: r.type,
  payload: r.payload,
  createdAt: r.created_at,
  state: r.state,
  attempts: r.attempts,
  nextAttemptAt: r.next_attempt_at,
  lastError: r.last_error,
  dropReason: r.drop_reason,
  doneAt: r.done_at,
});

export class NotificationOutbox {
  readonly #db: Database.Database;
  readonly #insert: Database.Statement;
  readonly #pendingOf: Database.Statement;
  readonly #oldestPending: Database.Statement;
  readonly #heads: Database.Statement;
  readonly #update: Database.Statement;
  readonly #setStreak: Database.Statement;
  readonly #clearStreaks: Database.Statement;
  /** Rows a delivery is under way for: a bound never drops them (their answer is still to be recorded). */
  inFlight: (seq: number) => boolean = () => false;

  constructor(db: Database.Database, options: { fresh?: boolean } = {}) {
    this.#db = db;
    db.exec(TABLES);
    if (options.fresh) db.exec("DELETE FROM notify_outbox; DELETE FROM notify_gate_streaks;");
    this.#insert = db.prepare(
      `INSERT OR IGNORE INTO notify_outbox (event_id, target, target_name, format, url, timeout_ms, rollout, type, payload, created_at, next_attempt_at)
       VALUES (@eventId, @target, @targetName, @format, @url, @timeoutMs, @rollout, @type, @payload, @createdAt, @createdAt)`,
    );
    this.#pendingOf = db.prepare("SELECT COUNT(*) AS n FROM notify_outbox WHERE state = 'pending' AND target = ?");
    this.#oldestPending = db.prepare("SELECT seq, format FROM notify_outbox WHERE state = 'pending' AND target = ? ORDER BY seq LIMIT 4");
    this.#heads = db.prepare(
      "SELECT * FROM notify_outbox WHERE seq IN (SELECT MIN(seq) FROM notify_outbox WHERE state = 'pending' GROUP BY target) ORDER BY seq",
    );
    this.#update = db.prepare(
      `UPDATE notify_outbox SET state = @state, attempts = @attempts, next_attempt_at = @nextAttemptAt, last_error = @lastError, drop_reason = @dropReason, done_at = @doneAt
       WHERE seq = @seq AND state = 'pending'`,
    );
    this.#setStreak = db.prepare(
      `INSERT INTO notify_gate_streaks (rollout, gate, since, notified, reason) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(rollout, gate) DO UPDATE SET since = excluded.since, notified = excluded.notified, reason = excluded.reason`,
    );
    this.#clearStreaks = db.prepare("DELETE FROM notify_gate_streaks WHERE rollout = ?");
  }

  /**
   * Adds each event for each target that wants it (call inside the decision's transaction). A queue at
   * `maxPending` drops its oldest pending rows first: after a long outage a receiver gets the latest events,
   * which say where the rollout is now.
   */
  enqueue(rows: Array<{ payload: NotificationPayload; target: NotificationTarget }>, now: number, maxPending: number): Enqueued {
    const out: Enqueued = { inserted: 0, dropped: [] };
    for (const { payload, target } of rows) {
      const key = targetKey(target);
      let pending = (this.#pendingOf.get(key) as { n: number }).n;
      while (pending >= maxPending) {
        const victim = (this.#oldestPending.all(key) as Array<{ seq: number; format: TargetFormat }>).find((r) => !this.inFlight(r.seq));
        if (!victim) break;
        this.#finish(victim.seq, {
          state: "dropped",
          attempts: null,
          lastError: `dropped: the queue for this target holds at most ${maxPending} events`,
          dropReason: "queue_full",
          doneAt: now,
        });
        out.dropped.push(victim.format);
        pending--;
      }
      const result = this.#insert.run({
        eventId: payload.id,
        target: key,
        targetName: target.name,
        format: target.format,
        url: target.url,
        timeoutMs: target.timeoutMs,
        rollout: payload.rollout,
        type: payload.type,
        payload: JSON.stringify(payload),
        createdAt: now,
      });
      out.inserted += result.changes;
    }
    return out;
  }

  /** The next row of every queue (the oldest pending), oldest first. */
  heads(): OutboxRow[] {
    return (this.#heads.all() as RawRow[]).map(toRow);
  }

  get(seq: number): OutboxRow | null {
    const row = this.#db.prepare("SELECT * FROM notify_outbox WHERE seq = ?").get(seq) as RawRow | undefined;
    return row ? toRow(row) : null;
  }

  sent(seq: number, attempts: number, at: number): boolean {
    return this.#finish(seq, { state: "sent", attempts, lastError: null, dropReason: null, doneAt: at });
  }

  retry(seq: number, attempts: number, nextAttemptAt: number, error: string): boolean {
    return this.#update.run({ seq, state: "pending", attempts, nextAttemptAt, lastError: error, dropReason: null, doneAt: null }).changes > 0;
  }

  drop(seq: number, attempts: number, reason: DropReason, error: string, at: number): boolean {
    return this.#finish(seq, { state: "dropped", attempts, lastError: error, dropReason: reason, doneAt: at });
  }

  #finish(seq: number, f: { state: DeliveryState; attempts: number | null; lastError: string | null; dropReason: DropReason | null; doneAt: number }): boolean {
    const row = this.get(seq);
    if (!row) return false;
    return (
      this.#update.run({
        seq,
        state: f.state,
        attempts: f.attempts ?? row.attempts,
        nextAttemptAt: row.nextAttemptAt,
        lastError: f.lastError,
        dropReason: f.dropReason,
        doneAt: f.doneAt,
      }).changes > 0
    );
  }

  /** Pending rows created before `before` (not in flight): given up as expired. Returns their formats. */
  expire(before: number, now: number): TargetFormat[] {
    const old = this.#db.prepare("SELECT seq, format FROM notify_outbox WHERE state = 'pending' AND created_at < ?").all(before) as Array<{
      seq: number;
      format: TargetFormat;
    }>;
    const dropped: TargetFormat[] = [];
    for (const row of old) {
      if (this.inFlight(row.seq)) continue;
      const current = this.get(row.seq);
      if (current === null) continue;
      if (this.drop(row.seq, current.attempts, "expired", `expired: not delivered within the retention (last error: ${current.lastError ?? "none"})`, now))
        dropped.push(row.format);
    }
    return dropped;
  }

  /** Removes delivered and dropped rows finished before `before`; returns how many. */
  prune(before: number): number {
    return this.#db.prepare("DELETE FROM notify_outbox WHERE state != 'pending' AND done_at < ?").run(before).changes;
  }

  pendingCount(): number {
    if (!this.#db.open) return 0;
    return (this.#db.prepare("SELECT COUNT(*) AS n FROM notify_outbox WHERE state = 'pending'").get() as { n: number }).n;
  }

  /** Deliveries for the API, newest first, URLs redacted. */
  list(filter: { rollout?: string; state?: DeliveryState; limit: number }): DeliveryView[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.rollout !== undefined) {
      where.push("rollout = ?");
      args.push(filter.rollout);
    }
    if (filter.state !== undefined) {
      where.push("state = ?");
      args.push(filter.state);
    }
    const sql = `SELECT * FROM notify_outbox ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY seq DESC LIMIT ?`;
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    return (this.#db.prepare(sql).all(...args, filter.limit) as RawRow[]).map(toRow).map((r) => ({
      seq: r.seq,
      id: r.eventId,
      type: r.type,
      rollout: r.rollout,
      target: { name: r.targetName, format: r.format, url: redactUrl(r.url) },
      state: r.state,
      attempts: r.attempts,
      createdAt: new Date(r.createdAt).toISOString(),
      nextAttemptAt: r.state === "pending" ? iso(r.nextAttemptAt) : null,
      lastError: r.lastError,
      dropReason: r.dropReason,
      doneAt: iso(r.doneAt),
      event: JSON.parse(r.payload) as NotificationPayload,
    }));
  }

  /** Every rollout's followed gates (at start). */
  loadStreaks(): Map<string, Map<string, GateStreak>> {
    const out = new Map<string, Map<string, GateStreak>>();
    const rows = this.#db.prepare("SELECT rollout, gate, since, notified, reason FROM notify_gate_streaks").all() as Array<{
      rollout: string;
      gate: string;
      since: number;
      notified: number;
      reason: string;
    }>;
    for (const r of rows) {
      let m = out.get(r.rollout);
      if (!m) out.set(r.rollout, (m = new Map()));
      m.set(r.gate, { gate: r.gate, since: r.since, notified: r.notified === 1, reason: r.reason });
    }
    return out;
  }

  /** Replaces a rollout's followed gates (inside the decision's transaction). */
  saveStreaks(rollout: string, streaks: ReadonlyMap<string, GateStreak>): void {
    this.#clearStreaks.run(rollout);
    for (const s of streaks.values()) this.#setStreak.run(rollout, s.gate, s.since, s.notified ? 1 : 0, s.reason);
  }
}
