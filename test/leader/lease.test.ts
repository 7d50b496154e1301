// Leader election and fencing against the real kube-apiserver and etcd (test/kube/cluster.ts): the Lease dance
// (create, renew, a 409 race, takeover after expiry with a new term, release handing over at once) and the
// CRD's fencing rule refusing a status written in an older term, which tells the deposed leader to stop.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeClient, type KubeObject } from "../../controller/src/kube/client.ts";
import { fencedClient } from "../../controller/src/kube/fencing.ts";
import { kubeLeaseApi, leaseRef } from "../../controller/src/kube/lease-api.ts";
import { LeaderElector, type LeaderTerm, type Role } from "../../controller/src/kube/lease.ts";
import type { Leadership } from "../../controller/src/kube/leadership.ts";
import { CRD_FILE } from "../../controller/src/kube-state/crd-yaml.ts";
import { GROUP, ROLLOUT_PLURAL, VERSION } from "../../controller/src/kube-state/crd.ts";
import { startKubeCluster, type KubeCluster } from "../kube/cluster.ts";
import { within } from "../bounded.ts";

let cluster: KubeCluster;
let client: KubeClient;

beforeAll(async () => {
  cluster = await startKubeCluster();
  client = KubeClient.fromKubeconfig(cluster.kubeconfig, { timeoutMs: 2000 });
  const applied = await cluster.kubectl(["apply", "-f", CRD_FILE]);
  expect(applied.code, applied.stderr).toBe(0);
  const established = await cluster.kubectl(["wait", "--for=condition=Established", "--timeout=60s", `crd/${ROLLOUT_PLURAL}.${GROUP}`]);
  expect(established.code, established.stderr).toBe(0);
}, 180_000);

afterAll(async () => {
  client?.close();
  await cluster?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  await within(
    ms,
    what,
    (async () => {
      while (!check()) await sleep(50);
    })(),
  );
}

function elector(name: string, identity: string): { e: LeaderElector; roles: string[] } {
  const e = new LeaderElector({ api: kubeLeaseApi(client, "default", name), identity });
  const roles: string[] = [];
  e.onChange((role, term, reason) => roles.push(`${identity} ${role}${term ? ` ${term.term}` : ""} (${reason})`));
  return { e, roles };
}

describe("the Lease on the real API server", () => {
  it("one leader; the other takes over with a new term after the leader stops renewing; a release hands over at once", async () => {
    const a = elector("dance", "replica-a");
    const b = elector("dance", "replica-b");
    a.e.start();
    await until("a leads", () => a.e.isLeader());
    b.e.start();
    // b keeps looking while a renews: for several lease durations nobody else leads.
    await sleep(2 * a.e.timing.leaseDurationMs);
    expect([a.e.role, b.e.role]).toEqual(["leader", "follower"]);
    expect(b.e.holder).toBe("replica-a");
    const lease = await client.get<KubeObject & { spec: Record<string, unknown> }>(leaseRef("default"), "dance");
    expect(lease.spec).toMatchObject({ holderIdentity: "replica-a", leaseDurationSeconds: 3, leaseTransitions: 0 });
    expect(String(lease.spec.renewTime) > String(lease.spec.acquireTime)).toBe(true);

    // a dies without releasing (kill -9): b takes the Lease only after it expired, in term 1.
    await a.e.stop({ release: false });
    await until("b leads", () => b.e.isLeader());
    expect(b.e.term).toEqual({ term: 1, holder: "replica-b" });

    // a comes back: a follower now; b stops cleanly and releases, a takes over at its next look (term 2).
    const a2 = elector("dance", "replica-a2");
    a2.e.start();
    await sleep(1000);
    expect(a2.e.role).toBe("follower");
    await b.e.stop();
    const releasedAt = Date.now();
    await until("a2 leads after the release", () => a2.e.isLeader());
    // Far under the lease duration: it did not wait for an expiry.
    expect(Date.now() - releasedAt).toBeLessThan(a2.e.timing.leaseDurationMs);
    expect(a2.e.term).toEqual({ term: 2, holder: "replica-a2" });
    await a2.e.stop();
    expect(a.roles).toEqual(["replica-a leader 0 (acquired the Lease)", "replica-a follower (stopping)"]);
    expect(b.roles).toEqual(["replica-b leader 1 (acquired the Lease)", "replica-b follower (stopping)"]);
  }, 60_000);

  it("two replicas racing for a new Lease: exactly one wins (the other's create is a 409)", async () => {
    const electors = ["r1", "r2", "r3"].map((id) => new LeaderElector({ api: kubeLeaseApi(client, "default", "race"), identity: id }));
    const won = await Promise.all(electors.map((e) => e.tryAcquireOrRenew()));
    expect(won.filter(Boolean)).toHaveLength(1);
    expect(electors.filter((e) => e.isLeader())).toHaveLength(1);
    for (const e of electors) expect(e.contact.error).toBeNull();
    await Promise.all(electors.map((e) => e.stop()));
  });
});

class Fixed implements Leadership {
  identity: string;
  leading = true;
  deposedFor: string[] = [];
  contact = { at: 1, error: null };
  constructor(
    identity: string,
    readonly myTerm: number,
  ) {
    this.identity = identity;
  }
  isLeader(): boolean {
    return this.leading;
  }
  get role(): Role {
    return this.leading ? "leader" : "follower";
  }
  get term(): LeaderTerm | null {
    return this.leading ? { term: this.myTerm, holder: this.identity } : null;
  }
  get observedTerm(): LeaderTerm | null {
    return { term: this.myTerm, holder: this.identity };
  }
  get holder(): string {
    return this.identity;
  }
  deposed(reason: string): void {
    this.deposedFor.push(reason);
    this.leading = false;
  }
  onChange(): () => void {
    return () => undefined;
  }
}

describe("fencing on the real API server (the CRD's CEL rule)", () => {
  const ref = { group: GROUP, version: VERSION, plural: ROLLOUT_PLURAL, namespace: "default" };
  type Obj = KubeObject & { status?: Record<string, unknown> };

  it("a status of an older term is refused, and its writer is told it was deposed; followers keep the stored term", async () => {
    await client.create<Obj>(ref, {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: "ModelRollout",
      metadata: { name: "fenced" },
      spec: { match: { pathPrefix: "/p" }, stickyKey: { header: "x-u" } },
    });
    const oldLeader = new Fixed("replica-a", 4);
    const newLeader = new Fixed("replica-b", 5);
    const viaOld = fencedClient(client, ROLLOUT_PLURAL, oldLeader);
    const viaNew = fencedClient(client, ROLLOUT_PLURAL, newLeader);

    let object = await viaOld.get<Obj>(ref, "fenced");
    object = await viaOld.replaceStatus<Obj>(ref, { ...object, status: { phase: "Canary", stage: "10%" } });
    expect(object.status?.leader).toEqual({ term: 4, holder: "replica-a" });
    // The new leader writes in term 5 (conditional on the version it read, as every write is).
    object = await viaNew.replaceStatus<Obj>(ref, { ...object, status: { ...object.status, stage: "50%" } });
    expect(object.status?.leader).toEqual({ term: 5, holder: "replica-b" });

    // The old leader, still believing it leads, reads the fresh object (no 409 to stop it) and writes: refused.
    const fresh = await viaOld.get<Obj>(ref, "fenced");
    const refused = await viaOld.replaceStatus<Obj>(ref, { ...fresh, status: { ...fresh.status, stage: "100%" } }).catch((e) => e);
    expect(refused).toMatchObject({ status: 422 });
    expect(String(refused.message)).toMatch(/deposed leader/);
    expect(oldLeader.deposedFor).toHaveLength(1);
    expect(oldLeader.role).toBe("follower");
    expect((await client.get<Obj>(ref, "fenced")).status).toMatchObject({ stage: "50%", leader: { term: 5, holder: "replica-b" } });

    // Now a follower (a command through its REST API): it writes the stored term, which passes.
    const current = await viaOld.get<Obj>(ref, "fenced");
    const byFollower = await viaOld.replaceStatus<Obj>(ref, { ...current, status: { ...current.status, pending: "resume" } });
    expect(byFollower.status).toMatchObject({ pending: "resume", leader: { term: 5, holder: "replica-b" } });
    // A stale resourceVersion is refused as before (409), whatever the term.
    const stale = await viaNew.replaceStatus<Obj>(ref, { ...current, status: { ...current.status, pending: "" } }).catch((e) => e);
    expect(stale).toMatchObject({ status: 409 });
    expect(newLeader.deposedFor).toEqual([]);
  });
});
