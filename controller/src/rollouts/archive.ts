/**
 * Rollouts that left the live set (finalized, or deleted), with their report and history still readable.
 * Each gets its own id: a re-created rollout of the same name starts clean and never inherits them. The
 * summaries stay in memory; a decision history is read from the state file when asked for.
 */
import type { Decision } from "../engine/index.ts";
import { NotFoundError } from "../errors.ts";
import type { Rollout } from "./model.ts";

export interface ArchiveEntry {
  id: number;
  name: string;
  archivedAt: Date;
  /** Why it left the live set, e.g. "finalized: stable answered v2 20 times in a row ..." or "deleted by alice". */
  reason: string;
  /** The rollout as it was when archived (engine decisions are loaded on demand, see RolloutArchive.get). */
  rollout: Rollout;
}

export class RolloutArchive {
  readonly #entries: ArchiveEntry[];
  readonly #decisionsOf: (id: number) => Decision[];

  constructor(entries: ArchiveEntry[], decisionsOf: (id: number) => Decision[]) {
    this.#entries = [...entries].sort((a, b) => a.id - b.id);
    this.#decisionsOf = decisionsOf;
  }

  nextId(): number {
    return (this.#entries.at(-1)?.id ?? 0) + 1;
  }

  add(entry: ArchiveEntry): void {
    this.#entries.push({ ...entry, rollout: withoutDecisions(entry.rollout) });
  }

  /** Oldest first; `name` keeps only the archived rollouts of that name. */
  list(name?: string): ArchiveEntry[] {
    return name === undefined ? [...this.#entries] : this.#entries.filter((e) => e.name === name);
  }

  /** The entry with its whole decision history. */
  get(id: number): ArchiveEntry {
    const entry = this.#entries.find((e) => e.id === id);
    if (!entry) throw new NotFoundError(`archived rollout ${id}: not found`);
    const engine = entry.rollout.engine;
    if (engine === null) return entry;
    return { ...entry, rollout: { ...entry.rollout, engine: { ...engine, decisions: this.#decisionsOf(id) } } };
  }
}

function withoutDecisions(rollout: Rollout): Rollout {
  return rollout.engine === null ? rollout : { ...rollout, engine: { ...rollout.engine, decisions: [] } };
}
