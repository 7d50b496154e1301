/**
 * The rollout store's state in an embedded SQLite file (better-sqlite3: synchronous, so a store mutation and
 * its write happen in the same turn and no request can slip in between).
 *
 * Tables: meta (epoch, version, schema), rollouts (one JSON record per rollout: spec, weights, engine state),
 * decisions (the history, one row per decision with its measurements and the window summary it was made
 * on: requests, error rate and p95 per variant and segment, which the report reads), archive and
 * archived_decisions (rollouts that left the live set, finalized or deleted, under ids of their own so a
 * re-created name starts clean); the telemetry history keeps tables of its own in the same file
 * (series/store.ts). Each change is one transaction. WAL with synchronous=NORMAL: a killed controller loses
 * nothing that was acknowledged (only a power cut could lose the last transactions).
 *
 * One controller per file: the connection runs in SQLite's exclusive locking mode, so it holds an OS-level
 * (fcntl) lock on the file from opening to closing, and the kernel drops that lock when the process ends,
 * however it ends (SIGKILL included). A second controller is refused at once, with the holder's pid from
 * /proc/locks. Exclusive mode also keeps WAL's index in memory (no -shm file); other programs cannot read the
 * file while a controller has it open.
 */
import { existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { describePid, lockHolders } from "../proc.ts";
import type { Decision } from "../engine/index.ts";
import { fromStored, toStored, type RolloutPersistence, type SavedState, type StateChange, type StoredRollout } from "./persistence.ts";

/**
 * Bumped when the tables or the JSON records change shape; a newer file is refused, not misread. 2: the
 * archive tables, finalize phases and model identity (a schema-1 file loads as is: its records read with
 * those fields absent).
 */
export const STATE_SCHEMA_VERSION = 2;

const TABLES = `
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS rollouts (
    name TEXT PRIMARY KEY,
    revision INTEGER NOT NULL,
    config_version INTEGER NOT NULL,
    record TEXT NOT NULL
  );
  CREATE TABLE IF NOT EXISTS decisions (
    rollout TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (rollout, seq)
  );
  CREATE TABLE IF NOT EXISTS archive (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    archived_at INTEGER NOT NULL,
    reason TEXT NOT NULL,
    record TEXT NOT NULL
  );
  CREATE TABLE IF NOT EXISTS archived_decisions (
    archive_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (archive_id, seq)
  );
`;

/** Another process (or another store in this one) has the state file open. */
export class StateFileInUseError extends Error {
  constructor(
    readonly path: string,
    readonly holders: number[],
  ) {
    const who =
      holders.length > 0 ? holders.map((pid) => (pid === process.pid ? `pid ${pid} (this process)` : describePid(pid))).join(", ") : "another process";
    super(`state file ${path} in use by ${who}: one controller per state file; stop that one, or give this one another state file`);
  }
}

interface SqliteStateOptions {
  /**
   * Start empty: after taking the lock, the file's rollouts, history and epoch are removed (a copy of what was
   * there is kept next to it first, see `freshStart`).
   */
  fresh?: boolean;
}

export class SqliteRolloutState implements RolloutPersistence {
  readonly path: string;
  /** Set by a fresh start on a file that had rollouts: how many, and the copy kept of them. */
  readonly freshStart: { previousRollouts: number; keptIn: string } | null = null;
  readonly #db: Database.Database;
  readonly #write: (change: StateChange) => void;

  /** `path` is a file (created with its directory) or ":memory:". */
  constructor(path: string, options: SqliteStateOptions = {}) {
    this.path = path;
    const inMemory = path === ":memory:";
    if (!inMemory) mkdirSync(dirname(path), { recursive: true });
    let db: Database.Database;
    try {
      // No busy wait: a file held by another controller stays held, and waiting would only delay the refusal.
      db = new Database(path, { timeout: 0 });
    } catch (error) {
      throw new Error(`state file ${path}: cannot open: ${(error as Error).message}`, { cause: error });
    }
    try {
      // Before the first access: exclusive mode then takes the lock on that access and keeps it until close.
      if (!inMemory) db.pragma("locking_mode = EXCLUSIVE");
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = NORMAL");
      db.exec(TABLES);
    } catch (error) {
      db.close();
      if ((error as { code?: string }).code === "SQLITE_BUSY") throw new StateFileInUseError(path, lockHolders(path));
      throw new Error(`state file ${path}: cannot open: ${(error as Error).message}`, { cause: error });
    }
    this.#db = db;
    const schema = this.#meta("schema");
    if (schema !== null && Number(schema) > STATE_SCHEMA_VERSION) {
      this.#db.close();
      throw new Error(`state file ${path}: written by a newer controller (schema ${schema}, this one reads ${STATE_SCHEMA_VERSION})`);
    }
    // An older file is read as is and from now on written in this schema: an older controller must refuse it.
    if (schema !== null && Number(schema) < STATE_SCHEMA_VERSION) {
      this.#db.prepare("UPDATE meta SET value = ? WHERE key = 'schema'").run(String(STATE_SCHEMA_VERSION));
    }
    // Written by earlier controllers and never read: a copy of each decision's window, which the decision's
    // own record keeps (and the archive with it).
    this.#db.exec("DROP TABLE IF EXISTS stage_telemetry");
    if (options.fresh) this.freshStart = this.#clear();

    const setMeta = this.#db.prepare("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    const upsertRollout = this.#db.prepare(
      `INSERT INTO rollouts (name, revision, config_version, record) VALUES (@name, @revision, @configVersion, @record)
       ON CONFLICT(name) DO UPDATE SET revision = excluded.revision, config_version = excluded.config_version, record = excluded.record`,
    );
    const nextSeq = this.#db.prepare("SELECT COALESCE(MAX(seq), 0) + 1 AS seq FROM decisions WHERE rollout = ?");
    const insertDecision = this.#db.prepare("INSERT INTO decisions (rollout, seq, at, kind, record) VALUES (?, ?, ?, ?, ?)");
    const deleteRows = ["rollouts WHERE name", "decisions WHERE rollout"].map((t) => this.#db.prepare(`DELETE FROM ${t} = ?`));
    const insertArchive = this.#db.prepare("INSERT INTO archive (id, name, archived_at, reason, record) VALUES (?, ?, ?, ?, ?)");
    const archiveDecisions = this.#db.prepare(
      "INSERT INTO archived_decisions (archive_id, seq, record) SELECT ?, seq, record FROM decisions WHERE rollout = ?",
    );

    this.#write = this.#db.transaction((change: StateChange) => {
      setMeta.run("version", String(change.version));
      const rollout = change.rollout;
      if (rollout) {
        const name = rollout.spec.name;
        upsertRollout.run({ name, revision: rollout.revision, configVersion: rollout.configVersion, record: JSON.stringify(toStored(rollout)) });
        let seq = (nextSeq.get(name) as { seq: number }).seq;
        for (const decision of change.newDecisions ?? []) {
          insertDecision.run(name, seq, decision.at, decision.kind, JSON.stringify(decision));
          seq += 1;
        }
      }
      const archived = change.archive;
      if (archived) {
        insertArchive.run(archived.id, archived.name, archived.archivedAt.getTime(), archived.reason, JSON.stringify(toStored(archived.rollout)));
        archiveDecisions.run(archived.id, archived.name);
      }
      if (change.deleted !== undefined) for (const statement of deleteRows) statement.run(change.deleted);
    });
  }

  load(): SavedState | null {
    const epoch = this.#meta("epoch");
    if (epoch === null) return null;
    const version = Number(this.#meta("version") ?? "1");
    const decisionRows = this.#db.prepare("SELECT record FROM decisions WHERE rollout = ? ORDER BY seq");
    const rollouts = (this.#db.prepare("SELECT name, record FROM rollouts ORDER BY name").all() as Array<{ name: string; record: string }>).map((row) => {
      try {
        const decisions = (decisionRows.all(row.name) as Array<{ record: string }>).map((d) => JSON.parse(d.record) as Decision);
        return fromStored(JSON.parse(row.record) as StoredRollout, decisions);
      } catch (error) {
        throw new Error(`state file ${this.path}: rollout ${row.name}: unreadable record: ${(error as Error).message}`, { cause: error });
      }
    });
    const archived = (
      this.#db.prepare("SELECT id, name, archived_at, reason, record FROM archive ORDER BY id").all() as Array<{
        id: number;
        name: string;
        archived_at: number;
        reason: string;
        record: string;
      }>
    ).map((row) => {
      try {
        return {
          id: row.id,
          name: row.name,
          archivedAt: new Date(row.archived_at),
          reason: row.reason,
          rollout: fromStored(JSON.parse(row.record) as StoredRollout, []),
        };
      } catch (error) {
        throw new Error(`state file ${this.path}: archived rollout ${row.id} (${row.name}): unreadable record: ${(error as Error).message}`, { cause: error });
      }
    });
    return { epoch, version, rollouts, archived };
  }

  archivedDecisions(id: number): Decision[] {
    const rows = this.#db.prepare("SELECT record FROM archived_decisions WHERE archive_id = ? ORDER BY seq").all(id) as Array<{ record: string }>;
    return rows.map((r) => JSON.parse(r.record) as Decision);
  }

  initialize(epoch: string, version: number): void {
    this.#db.transaction(() => {
      const set = this.#db.prepare("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
      set.run("schema", String(STATE_SCHEMA_VERSION));
      set.run("epoch", epoch);
      set.run("version", String(version));
    })();
  }

  write(change: StateChange): void {
    try {
      this.#write(change);
    } catch (error) {
      const what = change.rollout ? `rollout ${change.rollout.spec.name}` : change.deleted ? `rollout ${change.deleted}` : "config version";
      throw new Error(`state file ${this.path}: ${what}: write failed: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * The open connection, for modules that keep tables of their own in the state file (series/store.ts); the
   * file is opened in exclusive mode, so they cannot open one of their own.
   */
  get database(): Database.Database {
    return this.#db;
  }

  /** Rows per table, for tests and the report of what is on disk. */
  counts(): { rollouts: number; decisions: number; archive: number; archivedDecisions: number } {
    const count = (table: string) => (this.#db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
    return {
      rollouts: count("rollouts"),
      decisions: count("decisions"),
      archive: count("archive"),
      archivedDecisions: count("archived_decisions"),
    };
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }

  /**
   * Empties every table. A file that held rollouts or history is first copied to "<file>.before-fresh-<time>"
   * (VACUUM INTO: a consistent copy), and that copy is returned.
   */
  #clear(): { previousRollouts: number; keptIn: string } | null {
    const { rollouts, decisions } = this.counts();
    let keptIn: string | null = null;
    if (this.path !== ":memory:" && rollouts + decisions > 0) {
      const stamp = new Date().toISOString().replace(/[:.]/g, "-");
      keptIn = `${this.path}.before-fresh-${stamp}`;
      for (let n = 2; existsSync(keptIn); n++) keptIn = `${this.path}.before-fresh-${stamp}-${n}`;
      this.#db.prepare("VACUUM INTO ?").run(keptIn);
    }
    this.#db.transaction(() => {
      for (const table of ["meta", "rollouts", "decisions", "archive", "archived_decisions"]) this.#db.exec(`DELETE FROM ${table}`);
    })();
    return keptIn === null ? null : { previousRollouts: rollouts, keptIn };
  }

  #meta(key: string): string | null {
    const row = this.#db.prepare("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | undefined;
    return row?.value ?? null;
  }
}
