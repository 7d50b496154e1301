/**
 * Rollout telemetry history in the state file: table `series`, one row per rollout and snapshot, owned by
 * this module alone (the rollout store's tables do not know it, and a state file without it is simply a
 * file with no history yet). It shares the state file's connection, since the file is opened in exclusive
 * locking mode (one connection per file).
 *
 * Retention: rows older than `retentionHours` (default 7 days) are removed, checked at most once a minute
 * on write. Rows outlive a deleted rollout until then, for its postmortem; a rollout created again under the
 * same name reads only the rows since its own creation.
 *
 * A future change of the row's shape gets a table of another name, so an older controller reading a newer
 * file, or the reverse, never misreads rows.
 */
import { deflateRawSync, inflateRawSync } from "node:zlib";
import type Database from "better-sqlite3";
import { mergeCells, SERIES_VARIANTS, type StoredCell, type StoredGates, type StoredSnapshot } from "./point.ts";
import { variantPoint, type SeriesPoint } from "./view.ts";

const DEFAULT_RETENTION_HOURS = 7 * 24;
const PRUNE_EVERY_MS = 60_000;

// A rowid table: snapshots are 0.5-2 KB, and a WITHOUT ROWID table moves rows that large to overflow pages
// (measured: 4.7 KB of pages per 1.6 KB row). `data` is the snapshot's JSON, deflated (about 3x smaller).
const TABLE = `
  CREATE TABLE IF NOT EXISTS series (
    rollout TEXT NOT NULL,
    at INTEGER NOT NULL,
    interval_ms INTEGER NOT NULL,
    phase TEXT,
    stage TEXT,
    canary_percent REAL NOT NULL,
    shadow_percent REAL NOT NULL,
    data BLOB NOT NULL
  );
  CREATE UNIQUE INDEX IF NOT EXISTS series_by_rollout ON series (rollout, at);
  CREATE INDEX IF NOT EXISTS series_by_time ON series (at);
`;

interface SeriesRow {
  rollout: string;
  /** End of the window, ms. */
  at: number;
  /** Length of the window, ms. */
  intervalMs: number;
  phase: string | null;
  stage: string | null;
  canaryPercent: number;
  shadowPercent: number;
  snapshot: StoredSnapshot;
}

export interface SeriesQuery {
  from: number;
  to: number;
  stepMs: number;
  /** Slice keys to keep ("overall", "tier=free"); null: all. */
  slices: ReadonlySet<string> | null;
}

export class SeriesStore {
  readonly retentionHours: number;
  readonly #db: Database.Database;
  readonly #insert: Database.Statement;
  readonly #range: Database.Statement;
  readonly #prune: Database.Statement;
  readonly #clock: () => number;
  #prunedAt = 0;

  constructor(db: Database.Database, options: { retentionHours?: number; fresh?: boolean; clock?: () => number } = {}) {
    this.#db = db;
    this.retentionHours = options.retentionHours ?? DEFAULT_RETENTION_HOURS;
    this.#clock = options.clock ?? Date.now;
    db.exec(TABLE);
    if (options.fresh) db.exec("DELETE FROM series");
    this.#insert = db.prepare(
      `INSERT INTO series (rollout, at, interval_ms, phase, stage, canary_percent, shadow_percent, data)
       VALUES (@rollout, @at, @intervalMs, @phase, @stage, @canaryPercent, @shadowPercent, @data)
       ON CONFLICT(rollout, at) DO UPDATE SET data = excluded.data`,
    );
    this.#range = db.prepare(
      "SELECT at, interval_ms, phase, stage, canary_percent, shadow_percent, data FROM series WHERE rollout = ? AND at > ? AND at <= ? ORDER BY at",
    );
    this.#prune = db.prepare("DELETE FROM series WHERE at < ?");
  }

  write(row: SeriesRow): void {
    if (!this.#db.open) return;
    this.#insert.run({
      rollout: row.rollout,
      at: row.at,
      intervalMs: row.intervalMs,
      phase: row.phase,
      stage: row.stage,
      canaryPercent: row.canaryPercent,
      shadowPercent: row.shadowPercent,
      data: deflateRawSync(JSON.stringify(row.snapshot)),
    });
    const now = this.#clock();
    if (now - this.#prunedAt >= PRUNE_EVERY_MS) this.prune(now);
  }

  /** Removes rows past the retention; returns how many. */
  prune(now: number = this.#clock()): number {
    this.#prunedAt = now;
    if (!this.#db.open) return 0;
    return this.#prune.run(now - this.retentionHours * 3_600_000).changes;
  }

  /** Rows and bytes of stored data (the `data` column) of one rollout, for tests and the size figure. */
  size(rollout: string): { rows: number; dataBytes: number } {
    const row = this.#db.prepare("SELECT COUNT(*) AS rows, COALESCE(SUM(LENGTH(data)), 0) AS bytes FROM series WHERE rollout = ?").get(rollout) as {
      rows: number;
      bytes: number;
    };
    return { rows: row.rows, dataBytes: row.bytes };
  }

  /** Snapshots whose window ends in (from, to], merged per step of stepMs starting at `from`. */
  query(rollout: string, q: SeriesQuery): SeriesPoint[] {
    if (!this.#db.open) return [];
    const rows = this.#range.all(rollout, q.from, q.to) as Array<{
      at: number;
      interval_ms: number;
      phase: string | null;
      stage: string | null;
      canary_percent: number;
      shadow_percent: number;
      data: Buffer;
    }>;
    const points: SeriesPoint[] = [];
    let bucket: typeof rows = [];
    let bucketStart = -1;
    const flush = () => {
      const point = mergeStep(bucketStart, bucket, q.slices);
      if (point !== null) points.push(point);
      bucket = [];
    };
    for (const row of rows) {
      const start = q.from + Math.floor((row.at - 1 - q.from) / q.stepMs) * q.stepMs;
      if (start !== bucketStart) {
        flush();
        bucketStart = start;
      }
      bucket.push(row);
    }
    flush();
    return points;
  }
}

function mergeStep(
  start: number,
  rows: ReadonlyArray<{ interval_ms: number; phase: string | null; stage: string | null; canary_percent: number; shadow_percent: number; data: Buffer }>,
  wanted: ReadonlySet<string> | null,
): SeriesPoint | null {
  const last = rows.at(-1);
  if (last === undefined) return null;
  const cells = new Map<string, Map<string, StoredCell[]>>();
  let gates: StoredGates = {};
  let seconds = 0;
  for (const row of rows) {
    seconds += row.interval_ms / 1000;
    let snapshot: StoredSnapshot;
    try {
      snapshot = JSON.parse(inflateRawSync(row.data).toString("utf8")) as StoredSnapshot;
    } catch {
      continue;
    }
    for (const [slice, variants] of Object.entries(snapshot.s ?? {})) {
      if (wanted && !wanted.has(slice)) continue;
      let bySlice = cells.get(slice);
      if (!bySlice) cells.set(slice, (bySlice = new Map()));
      for (const variant of SERIES_VARIANTS) {
        const cell = variants[variant];
        if (!cell) continue;
        let list = bySlice.get(variant);
        if (!list) bySlice.set(variant, (list = []));
        list.push(cell);
      }
    }
    if (snapshot.g) gates = snapshot.g;
  }
  const slices: SeriesPoint["slices"] = {};
  for (const [slice, variants] of cells) {
    const out: SeriesPoint["slices"][string] = {};
    for (const [variant, list] of variants) out[variant as keyof typeof out] = variantPoint(mergeCells(list), seconds, variant);
    slices[slice] = out;
  }
  return {
    at: new Date(start).toISOString(),
    t: start,
    snapshots: rows.length,
    seconds,
    phase: last.phase,
    stage: last.stage,
    canaryPercent: last.canary_percent,
    shadowPercent: last.shadow_percent,
    slices,
    gates: Object.fromEntries(Object.entries(gates).map(([gate, [stable, candidate, status]]) => [gate, { stable, candidate, status }])),
  };
}
