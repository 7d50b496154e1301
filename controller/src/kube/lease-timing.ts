/**
 * The timing decisions of leader election, pure (the clock is an argument): when a Lease may be taken, when a
 * leader must stop acting, how long to wait between attempts. client-go's leaderelection semantics: a Lease is
 * free when nobody holds it or when its holder has not renewed it for `leaseDurationSeconds` as *this* replica
 * saw it (the time the replica last saw the record change, on its own clock: clocks of replicas are never
 * compared); a leader stops acting once `renewDeadline` passed since its last successful renew started, which is
 * before anyone else may take the Lease (`leaseDuration` after they saw that renew).
 */

export interface LeaseTiming {
  /** How long a holder's renew keeps others away (written to the Lease, whole seconds). */
  leaseDurationMs: number;
  /** A leader that has not renewed for this long stops acting as leader; shorter than leaseDurationMs. */
  renewDeadlineMs: number;
  /** Between attempts to acquire or renew. */
  retryPeriodMs: number;
}

/**
 * Defaults chosen for at most about 5 s without a leader after the leader dies (kill -9): the Lease expires 3 s
 * after a follower saw its last renew, which it saw at most one retry period (0.5 s) late, and a follower looks
 * again within a retry period and a fifth (jitter): 3 + 0.5 + 0.6 = 4.1 s at worst. client-go's 15/10/2 s
 * (Argo Rollouts' default) would take up to 15 s and more. A leader stops acting 2 s after its last successful
 * renew started, a second before anyone else can take the Lease.
 */
export const DEFAULT_LEASE_TIMING: LeaseTiming = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 };

/** Followers wait a retry period and up to this share more, so replicas do not ask in lockstep (client-go's jitter). */
export const RETRY_JITTER = 0.2;

/** Why a timing cannot elect safely, or null. Mirrors client-go's checks, on milliseconds. */
export function timingError(t: LeaseTiming): string | null {
  if (!(t.retryPeriodMs > 0)) return "--retry-period must be above 0";
  if (t.leaseDurationMs < 1000 || t.leaseDurationMs % 1000 !== 0) return "--lease-duration must be whole seconds (the Lease holds seconds), at least 1 s";
  if (!(t.renewDeadlineMs < t.leaseDurationMs))
    return `--renew-deadline (${t.renewDeadlineMs} ms) must be shorter than --lease-duration (${t.leaseDurationMs} ms): a leader must stop before others may take over`;
  if (!(t.renewDeadlineMs > t.retryPeriodMs * (1 + RETRY_JITTER)))
    return `--renew-deadline (${t.renewDeadlineMs} ms) must be longer than --retry-period (${t.retryPeriodMs} ms) and its jitter: a leader needs more than one try to renew`;
  return null;
}

/** The fields of a coordination.k8s.io/v1 Lease's spec that election reads and writes (times as RFC 3339 micro). */
export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number | null;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number | null;
}

/** What a replica last saw of the Lease, and when (on its own clock). */
export interface Observation {
  spec: LeaseSpec;
  resourceVersion: string;
  /** When this replica first saw this resourceVersion. */
  observedAt: number;
}

/** The observation after reading the Lease again: the time moves only when the record changed. */
export function observe(previous: Observation | null, spec: LeaseSpec, resourceVersion: string, now: number): Observation {
  if (previous && previous.resourceVersion === resourceVersion) return previous;
  return { spec, resourceVersion, observedAt: now };
}

function holderOf(spec: LeaseSpec): string {
  return spec.holderIdentity ?? "";
}

/**
 * May `me` write itself in as holder now? When the Lease is its own, when nobody holds it (released), or when
 * its holder has not renewed for the Lease's duration since this replica saw the record change.
 */
export function mayAcquire(observation: Observation, me: string, now: number): boolean {
  const holder = holderOf(observation.spec);
  if (holder === "" || holder === me) return true;
  const durationMs = Math.max(1, observation.spec.leaseDurationSeconds ?? 1) * 1000;
  return now >= observation.observedAt + durationMs;
}

/** Is a leader whose last successful renew started at `renewedAt` still allowed to act at `now`? */
export function stillLeading(renewedAt: number, now: number, timing: LeaseTiming): boolean {
  return now < renewedAt + timing.renewDeadlineMs;
}

/** The next Lease spec `me` writes: a renew keeps the term, taking it (from nobody, another, or after stepping down) starts a new one. */
export function nextSpec(current: LeaseSpec | null, me: string, leading: boolean, now: Date, timing: LeaseTiming): LeaseSpec {
  const at = microTime(now);
  const transitions = current?.leaseTransitions ?? 0;
  const renewing = leading && current !== null && holderOf(current) === me;
  return {
    holderIdentity: me,
    leaseDurationSeconds: timing.leaseDurationMs / 1000,
    acquireTime: renewing ? (current.acquireTime ?? at) : at,
    renewTime: at,
    // Every new leadership is a new term, also when the same identity takes its Lease back after stepping down:
    // the term fences writes (kube/fencing), so two periods of leadership must never share one.
    leaseTransitions: renewing ? transitions : current === null ? 0 : transitions + 1,
  };
}

/** What a leader writes on a clean shutdown: nobody holds it, so a follower takes it at its next look. */
export function releasedSpec(current: LeaseSpec, now: Date): LeaseSpec {
  const at = microTime(now);
  return { holderIdentity: "", leaseDurationSeconds: 1, acquireTime: at, renewTime: at, leaseTransitions: current.leaseTransitions ?? 0 };
}

/** How long to wait before the next attempt: a leader renews every retry period, a follower adds jitter. */
export function retryDelay(timing: LeaseTiming, leading: boolean, random: number): number {
  return leading ? timing.retryPeriodMs : Math.round(timing.retryPeriodMs * (1 + RETRY_JITTER * random));
}

/** The MicroTime form the API server stores (RFC 3339 with microseconds). */
export function microTime(at: Date): string {
  return at.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}
