/**
 * Who may decide, as the rest of the controller asks it: the LeaderElector (lease.ts) with several replicas in
 * Kubernetes mode, or SOLE_LEADER for one controller on a state file (no election: it always leads).
 */
import type { LeaderTerm, Role } from "./lease.ts";

export interface Leadership {
  /** Election identity; null without election. */
  readonly identity: string | null;
  /** Checked right before every decision is written: true only while the renew deadline has not passed. */
  isLeader(): boolean;
  readonly role: Role;
  /** This replica's term while it leads. */
  readonly term: LeaderTerm | null;
  /** The newest term seen in the Lease, whoever holds it (what a follower's writes carry). */
  readonly observedTerm: LeaderTerm | null;
  /** Who holds the Lease as last seen. */
  readonly holder: string | null;
  /** When the API server last answered the election, and the last failure (null after a success). */
  readonly contact: { at: number | null; error: string | null };
  /** A write of this term was refused by the fencing rule: stop acting at once. */
  deposed(reason: string): void;
  onChange(listener: (role: Role, term: LeaderTerm | null, reason: string) => void): () => void;
}

export const SOLE_LEADER: Leadership = {
  identity: null,
  isLeader: () => true,
  role: "leader",
  term: null,
  observedTerm: null,
  holder: null,
  contact: { at: null, error: null },
  deposed: () => undefined,
  onChange: () => () => undefined,
};
