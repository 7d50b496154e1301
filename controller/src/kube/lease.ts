/**
 * Leader election with a coordination.k8s.io/v1 Lease, as client-go does it (the timing decisions are in
 * lease-timing.ts): one loop reads the Lease every retry period, renews it while leading, takes it when it is
 * free or expired, each write conditional on the resourceVersion read (a 409 is a lost race, never an error
 * to retry blindly). A leader stops acting the moment its renew deadline passes without a successful renew
 * (a timer, not the next loop turn: a hung request must not keep it leading), and when a write of its term is
 * refused (`deposed`). A clean stop releases the Lease so a follower takes over at its next look.
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import {
  DEFAULT_LEASE_TIMING,
  mayAcquire,
  nextSpec,
  observe,
  releasedSpec,
  retryDelay,
  stillLeading,
  timingError,
  type LeaseSpec,
  type LeaseTiming,
  type Observation,
} from "./lease-timing.ts";

/** The Lease object as the API server returns it (the fields election uses). */
export interface LeaseObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; [key: string]: unknown };
  spec?: LeaseSpec;
}

/** The three calls election makes on one Lease; kube/lease-api.ts binds them to the KubeClient. */
export interface LeaseApi {
  /** The Lease, or null when it does not exist (404). */
  get(): Promise<LeaseObject | null>;
  /** Creates it; a 409 (someone else created it first) throws. */
  create(spec: LeaseSpec): Promise<LeaseObject>;
  /** Replaces it, conditional on `resourceVersion`; a 409 throws. */
  replace(spec: LeaseSpec, resourceVersion: string): Promise<LeaseObject>;
}

/** A leadership period: the Lease's transitions count when it began, and who holds it. Writes carry it (fencing). */
export interface LeaderTerm {
  term: number;
  holder: string;
}

export type Role = "leader" | "follower";

export interface LeaderElectorOptions {
  api: LeaseApi;
  /** Unique per process: hostname (the pod name) and a random suffix by default. */
  identity?: string;
  timing?: Partial<LeaseTiming>;
  /** Milliseconds since the epoch; tests inject one. */
  now?: () => number;
  /** 0..1; tests make the jitter fixed. */
  random?: () => number;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

type Listener = (role: Role, term: LeaderTerm | null, reason: string) => void;

export function defaultIdentity(): string {
  return `${process.env.POD_NAME ?? hostname()}_${randomBytes(4).toString("hex")}`;
}

export class LeaderElector {
  readonly identity: string;
  readonly timing: LeaseTiming;
  readonly #api: LeaseApi;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #log: LeaderElectorOptions["log"];
  readonly #listeners = new Set<Listener>();
  #observation: Observation | null = null;
  #leading: LeaderTerm | null = null;
  /** When the last successful renew (or the acquire) started, on this replica's clock. */
  #renewedAt = 0;
  #deadline: NodeJS.Timeout | null = null;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #stopped = false;
  /** Successful API round trips and failed ones, for /readyz: a replica that cannot reach the API server is broken. */
  #lastContactAt: number | null = null;
  #lastError: string | null = null;

  constructor(options: LeaderElectorOptions) {
    this.#api = options.api;
    this.identity = options.identity ?? defaultIdentity();
    this.timing = { ...DEFAULT_LEASE_TIMING, ...options.timing };
    const invalid = timingError(this.timing);
    if (invalid) throw new Error(`leader election: ${invalid}`);
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#log = options.log;
  }

  get role(): Role {
    return this.isLeader() ? "leader" : "follower";
  }

  /** True only while the renew deadline has not passed: checked again right before every decision is written. */
  isLeader(): boolean {
    return this.#leading !== null && stillLeading(this.#renewedAt, this.#now(), this.timing);
  }

  /** This replica's term while it leads, else null. */
  get term(): LeaderTerm | null {
    return this.isLeader() ? this.#leading : null;
  }

  /** The newest term this replica has seen in the Lease (its own or another's; holder "" once released), for the writes of followers. */
  get observedTerm(): LeaderTerm | null {
    const spec = this.#observation?.spec;
    if (!spec) return this.#leading;
    return { term: spec.leaseTransitions ?? 0, holder: spec.holderIdentity ?? "" };
  }

  /** Who holds the Lease as last seen ("" when released, null before the first read). */
  get holder(): string | null {
    return this.#observation ? (this.#observation.spec.holderIdentity ?? "") : null;
  }

  /** When the API server last answered (ms), and the last failure's message (null after a success). */
  get contact(): { at: number | null; error: string | null } {
    return { at: this.#lastContactAt, error: this.#lastError };
  }

  /** Called with the new role on every change (and the term when leading). Returns the unsubscribe. */
  onChange(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  start(): void {
    if (this.#loop) return;
    this.#stopped = false;
    this.#loop = this.#run();
  }

  /**
   * A write of this term was refused because a newer term wrote first (the fencing rule): someone else leads.
   * Stop acting now; the loop goes on as a follower.
   */
  deposed(reason: string): void {
    if (this.#leading) this.#stepDown(`deposed: ${reason}`);
  }

  /** Stops the loop; a leader stops acting first, then releases the Lease (unless `release` is false). */
  async stop(options: { release?: boolean } = {}): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#loop;
    this.#loop = null;
    const wasLeading = this.#leading !== null;
    if (wasLeading) this.#stepDown("stopping");
    if (wasLeading && options.release !== false) await this.#release();
  }

  /** One attempt to acquire or renew; true when this replica holds the Lease after it. Exposed for tests. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const startedAt = this.#now();
    let lease: LeaseObject | null;
    try {
      lease = await this.#api.get();
      if (lease === null) {
        if (this.#stopped) return false;
        const created = await this.#api.create(nextSpec(null, this.identity, false, new Date(startedAt), this.timing));
        this.#contacted();
        return this.#took(created, startedAt);
      }
      this.#contacted();
      const rv = lease.metadata.resourceVersion ?? "";
      this.#observation = observe(this.#observation, lease.spec ?? {}, rv, startedAt);
      if (this.#stopped || !mayAcquire(this.#observation, this.identity, startedAt)) {
        if (this.#leading && (lease.spec?.holderIdentity ?? "") !== this.identity) this.#stepDown(`the Lease is held by ${lease.spec?.holderIdentity}`);
        return false;
      }
      const written = await this.#api.replace(nextSpec(lease.spec ?? {}, this.identity, this.#leading !== null, new Date(startedAt), this.timing), rv);
      this.#contacted();
      return this.#took(written, startedAt);
    } catch (error) {
      const status = (error as { status?: number }).status;
      // A 409 means the API server answered: someone wrote first. Anything else: it did not answer as it should.
      if (status === 409) this.#contacted();
      else this.#lastError = (error as Error).message;
      return false;
    }
  }

  #contacted(): void {
    this.#lastContactAt = this.#now();
    this.#lastError = null;
  }

  #took(lease: LeaseObject, startedAt: number): boolean {
    const spec = lease.spec ?? {};
    this.#observation = observe(null, spec, lease.metadata.resourceVersion ?? "", startedAt);
    // A renew that came back after the deadline passed does not bring leadership back: the next attempt takes
    // the Lease (still ours) with a new term.
    if (this.#leading && !stillLeading(this.#renewedAt, this.#now(), this.timing)) {
      this.#stepDown("renewed too late");
      return false;
    }
    const wasLeading = this.#leading !== null;
    this.#renewedAt = startedAt;
    if (!wasLeading) {
      this.#leading = { term: spec.leaseTransitions ?? 0, holder: this.identity };
      this.#log?.info({ identity: this.identity, term: this.#leading.term }, "leader election: leading");
      this.#emit("leader", this.#leading, "acquired the Lease");
    }
    this.#armDeadline();
    return true;
  }

  #armDeadline(): void {
    if (this.#deadline) clearTimeout(this.#deadline);
    const left = this.#renewedAt + this.timing.renewDeadlineMs - this.#now();
    this.#deadline = setTimeout(
      () => {
        this.#deadline = null;
        if (this.#leading && !stillLeading(this.#renewedAt, this.#now(), this.timing)) this.#stepDown("renew deadline passed");
        else if (this.#leading) this.#armDeadline();
      },
      Math.max(0, left),
    );
    this.#deadline.unref?.();
  }

  #stepDown(reason: string): void {
    if (this.#deadline) clearTimeout(this.#deadline);
    this.#deadline = null;
    const was = this.#leading;
    this.#leading = null;
    if (was) {
      this.#log?.warn({ identity: this.identity, term: was.term, reason }, "leader election: stopped leading");
      this.#emit("follower", null, reason);
    }
  }

  #emit(role: Role, term: LeaderTerm | null, reason: string): void {
    for (const listener of this.#listeners) {
      try {
        listener(role, term, reason);
      } catch (error) {
        this.#log?.warn({ err: error }, "leader election: a listener threw");
      }
    }
  }

  async #release(): Promise<void> {
    try {
      const lease = await this.#api.get();
      if (!lease || (lease.spec?.holderIdentity ?? "") !== this.identity) return;
      await this.#api.replace(releasedSpec(lease.spec ?? {}, new Date(this.#now())), lease.metadata.resourceVersion ?? "");
      this.#log?.info({ identity: this.identity }, "leader election: released the Lease");
    } catch (error) {
      // The Lease then expires on its own (leaseDuration after the last renew).
      this.#log?.warn({ err: error, identity: this.identity }, "leader election: could not release the Lease");
    }
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      await this.tryAcquireOrRenew();
      if (this.#stopped) break;
      const wait = retryDelay(this.timing, this.#leading !== null, this.#random());
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
    }
  }
}
