// Leader election's decisions (controller/src/kube/lease-timing.ts, lease.ts) on an injected clock, against an
// in-memory Lease that keeps the API server's one rule that matters here: a write names the resourceVersion it
// read, or it is refused with 409. The same dance against the real API server: test/kube/lease.test.ts.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { LeaderElector, type LeaderTerm, type LeaseApi, type LeaseObject } from "../../controller/src/kube/lease.ts";
import { isFenced, termToWrite } from "../../controller/src/kube/fencing.ts";
import { SOLE_LEADER, type Leadership } from "../../controller/src/kube/leadership.ts";
import {
  DEFAULT_LEASE_TIMING,
  mayAcquire,
  nextSpec,
  observe,
  retryDelay,
  stillLeading,
  timingError,
  type LeaseSpec,
} from "../../controller/src/kube/lease-timing.ts";

class MemoryLease implements LeaseApi {
  object: LeaseObject | null = null;
  rv = 0;
  down = false;
  writes: LeaseSpec[] = [];
  #check(): void {
    if (this.down) throw Object.assign(new Error("connect ECONNREFUSED"), { status: undefined });
  }
  async get(): Promise<LeaseObject | null> {
    this.#check();
    return this.object ? structuredClone(this.object) : null;
  }
  async create(spec: LeaseSpec): Promise<LeaseObject> {
    this.#check();
    if (this.object) throw Object.assign(new Error("already exists"), { status: 409 });
    return this.#write(spec);
  }
  async replace(spec: LeaseSpec, resourceVersion: string): Promise<LeaseObject> {
    this.#check();
    if (!this.object || this.object.metadata.resourceVersion !== resourceVersion) throw Object.assign(new Error("conflict"), { status: 409 });
    return this.#write(spec);
  }
  #write(spec: LeaseSpec): LeaseObject {
    this.writes.push(spec);
    this.object = { metadata: { name: "modelroll-leader", resourceVersion: String(++this.rv) }, spec };
    return structuredClone(this.object);
  }
}

const T = DEFAULT_LEASE_TIMING;

describe("lease timing (pure)", () => {
  it("a held Lease is free only a lease duration after this replica saw it change, on its own clock", () => {
    const spec = { holderIdentity: "a", leaseDurationSeconds: 3, leaseTransitions: 4 };
    let seen = observe(null, spec, "10", 1000);
    expect(mayAcquire(seen, "b", 3999)).toBe(false);
    // Reading the same record again does not move the time it was seen; a new record does.
    seen = observe(seen, spec, "10", 3500);
    expect(seen.observedAt).toBe(1000);
    expect(mayAcquire(seen, "b", 4000)).toBe(true);
    seen = observe(seen, { ...spec, renewTime: "later" }, "11", 3800);
    expect(mayAcquire(seen, "b", 4000)).toBe(false);
    expect(mayAcquire(seen, "b", 6800)).toBe(true);
    // Its own, or released: at once.
    expect(mayAcquire(seen, "a", 3800)).toBe(true);
    expect(mayAcquire(observe(seen, { ...spec, holderIdentity: "" }, "12", 3900), "b", 3900)).toBe(true);
  });

  it("a leader stops acting at the renew deadline, a second before anyone else may take the Lease", () => {
    expect(stillLeading(1000, 1000 + T.renewDeadlineMs - 1, T)).toBe(true);
    expect(stillLeading(1000, 1000 + T.renewDeadlineMs, T)).toBe(false);
    // A follower that saw that renew at the same instant may take it only at leaseDuration.
    const seen = observe(null, { holderIdentity: "a", leaseDurationSeconds: T.leaseDurationMs / 1000 }, "1", 1000);
    expect(mayAcquire(seen, "b", 1000 + T.renewDeadlineMs)).toBe(false);
    expect(T.leaseDurationMs - T.renewDeadlineMs).toBeGreaterThanOrEqual(1000);
  });

  it("a renew keeps the term; taking the Lease (from another, or back after stepping down) starts a new one", () => {
    const at = new Date("2026-12-08T03:00:00.123Z");
    const created = nextSpec(null, "a", false, at, T);
    expect(created).toEqual({
      holderIdentity: "a",
      leaseDurationSeconds: 3,
      acquireTime: "2026-12-08T03:00:00.123000Z",
      renewTime: "2026-12-08T03:00:00.123000Z",
      leaseTransitions: 0,
    });
    const renewed = nextSpec(created, "a", true, new Date(at.getTime() + 500), T);
    expect(renewed.leaseTransitions).toBe(0);
    expect(renewed.acquireTime).toBe(created.acquireTime);
    expect(renewed.renewTime).toBe("2026-12-08T03:00:00.623000Z");
    expect(nextSpec(renewed, "b", false, at, T).leaseTransitions).toBe(1);
    expect(nextSpec(renewed, "a", false, at, T).leaseTransitions).toBe(1);
  });

  it("refuses timings that cannot elect safely, and jitters only followers", () => {
    expect(timingError(T)).toBeNull();
    expect(timingError({ ...T, renewDeadlineMs: 3000 })).toMatch(/shorter than --lease-duration/);
    expect(timingError({ ...T, leaseDurationMs: 2500 })).toMatch(/whole seconds/);
    expect(timingError({ ...T, retryPeriodMs: 1800 })).toMatch(/longer than --retry-period/);
    expect(retryDelay(T, true, 1)).toBe(500);
    expect(retryDelay(T, false, 0)).toBe(500);
    expect(retryDelay(T, false, 1)).toBe(600);
  });
});

describe("LeaderElector on an in-memory Lease", () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: new Date("2026-12-08T03:00:00Z") });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const elector = (api: LeaseApi, identity: string) => new LeaderElector({ api, identity, random: () => 0 });

  it("one leader at a time: the second waits for the Lease to expire, then takes it with a new term", async () => {
    const lease = new MemoryLease();
    const a = elector(lease, "a");
    const b = elector(lease, "b");
    const roles: string[] = [];
    a.onChange((role, term) => roles.push(`a ${role} ${term?.term ?? "-"}`));
    b.onChange((role, term) => roles.push(`b ${role} ${term?.term ?? "-"}`));
    expect(await a.tryAcquireOrRenew()).toBe(true);
    expect(await b.tryAcquireOrRenew()).toBe(false);
    expect([a.role, b.role]).toEqual(["leader", "follower"]);
    expect(b.observedTerm).toEqual({ term: 0, holder: "a" });

    // a renews every retry period: b never gets it.
    for (let i = 0; i < 10; i++) {
      await vi.advanceTimersByTimeAsync(T.retryPeriodMs);
      expect(await a.tryAcquireOrRenew()).toBe(true);
      expect(await b.tryAcquireOrRenew()).toBe(false);
    }
    // a stops renewing (killed): it would stop acting at the renew deadline; b takes over only at the lease duration.
    await vi.advanceTimersByTimeAsync(T.renewDeadlineMs);
    expect(a.isLeader()).toBe(false);
    expect(roles.at(-1)).toBe("a follower -");
    expect(await b.tryAcquireOrRenew()).toBe(false);
    await vi.advanceTimersByTimeAsync(T.leaseDurationMs - T.renewDeadlineMs);
    expect(await b.tryAcquireOrRenew()).toBe(true);
    expect(b.term).toEqual({ term: 1, holder: "b" });
    expect(roles).toEqual(["a leader 0", "a follower -", "b leader 1"]);
    // a comes back: the Lease is b's now; a stays a follower.
    expect(await a.tryAcquireOrRenew()).toBe(false);
    expect(a.observedTerm).toEqual({ term: 1, holder: "b" });
  });

  it("steps down at the renew deadline while its renews fail, and takes a new term when it gets the Lease back", async () => {
    const lease = new MemoryLease();
    const a = elector(lease, "a");
    expect(await a.tryAcquireOrRenew()).toBe(true);
    lease.down = true;
    await vi.advanceTimersByTimeAsync(T.retryPeriodMs);
    expect(await a.tryAcquireOrRenew()).toBe(false);
    expect(a.isLeader()).toBe(true);
    expect(a.contact.error).toMatch(/ECONNREFUSED/);
    // The deadline timer fires by itself: no further attempt is needed to stop acting.
    await vi.advanceTimersByTimeAsync(T.renewDeadlineMs - T.retryPeriodMs);
    expect(a.role).toBe("follower");
    lease.down = false;
    expect(await a.tryAcquireOrRenew()).toBe(true);
    expect(a.term).toEqual({ term: 1, holder: "a" });
  });

  it("a conflicting write (409) is a lost race: the loser is not leader", async () => {
    const lease = new MemoryLease();
    const a = elector(lease, "a");
    const b = elector(lease, "b");
    // Both read the missing Lease, both create: one wins.
    const results = await Promise.all([a.tryAcquireOrRenew(), b.tryAcquireOrRenew()]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(lease.writes).toHaveLength(1);
    expect([a.role, b.role].sort()).toEqual(["follower", "leader"]);
    expect(b.contact.error).toBeNull();
  });

  it("deposed (its term refused by a write): stops acting at once", async () => {
    const lease = new MemoryLease();
    const a = elector(lease, "a");
    await a.tryAcquireOrRenew();
    a.deposed("status term 3 is newer than 0");
    expect(a.role).toBe("follower");
  });

  it("a clean stop releases the Lease: a follower takes it at its next look, with a new term", async () => {
    const lease = new MemoryLease();
    const a = elector(lease, "a");
    const b = elector(lease, "b");
    a.start();
    await vi.advanceTimersByTimeAsync(10);
    expect(a.role).toBe("leader");
    expect(await b.tryAcquireOrRenew()).toBe(false);
    await a.stop();
    expect(a.role).toBe("follower");
    expect(lease.object?.spec?.holderIdentity).toBe("");
    expect(await b.tryAcquireOrRenew()).toBe(true);
    expect(b.term).toEqual({ term: 1, holder: "b" });
  });
});

describe("fencing terms (kube/fencing.ts)", () => {
  const leadership = (term: LeaderTerm | null, observed: LeaderTerm | null): Leadership => ({ ...SOLE_LEADER, identity: "me", term, observedTerm: observed });

  it("the leader writes its own term; any other replica the stored one, else the newest it saw", () => {
    expect(termToWrite(leadership({ term: 5, holder: "me" }, { term: 5, holder: "me" }), { term: 4, holder: "old" })).toEqual({ term: 5, holder: "me" });
    expect(termToWrite(leadership(null, { term: 6, holder: "b" }), { term: 5, holder: "me" })).toEqual({ term: 5, holder: "me" });
    expect(termToWrite(leadership(null, { term: 6, holder: "b" }), undefined)).toEqual({ term: 6, holder: "b" });
    expect(termToWrite(SOLE_LEADER, undefined)).toBeUndefined();
  });

  it("tells the fencing rule's refusal from other refusals", () => {
    expect(isFenced({ status: 422, causes: [{ field: "status.leader", message: "written by a deposed leader" }] })).toBe(true);
    expect(isFenced({ status: 422, causes: [{ field: "leader" }] })).toBe(true);
    expect(isFenced({ status: 422, causes: [{ field: "spec.stages[0]" }] })).toBe(false);
    expect(isFenced({ status: 409, causes: [] })).toBe(false);
    expect(isFenced(new Error("ECONNRESET"))).toBe(false);
  });
});
