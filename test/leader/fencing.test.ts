// The anchors' two bugs, against a real kube-apiserver with two controllers in Kubernetes mode in this process
// (the same simulated traffic and injected clock, the driver ticked by hand, each controller with its own
// watch-fed cache):
// - argo-rollouts#2117: an old leader that failed to renew keeps reconciling beside the new one. Here its
//   election never tells it (a leadership stuck at term 0) while the new leader acts in term 1: its first write
//   after the new leader's is refused by the CRD's fencing rule, it is told it was deposed and steps no more.
// - flagger#1613: two schedulers advanced one canary twice as fast. Here both step the rollout every round
//   until one is fenced: the decisions are exactly those one controller alone makes (count, kinds, stages and
//   order), not twice as many, and no stage is advanced twice.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../../controller/src/app.ts";
import { KubeClient } from "../../controller/src/kube/client.ts";
import type { Leadership } from "../../controller/src/kube/leadership.ts";
import type { LeaderTerm, Role } from "../../controller/src/kube/lease.ts";
import { CRD_FILE } from "../../controller/src/kube-state/crd-yaml.ts";
import { GROUP, ROLLOUT_PLURAL } from "../../controller/src/kube-state/crd.ts";
import { startKubeCluster, type KubeCluster } from "../kube/cluster.ts";
import { GOOD, PoissonTrafficSim } from "../engine/sim.ts";
import { SimProvider, managedSpec, T0, TIMING } from "../release/harness.ts";
import { within } from "../bounded.ts";

let cluster: KubeCluster;
const apps: FastifyInstance[] = [];

beforeAll(async () => {
  cluster = await startKubeCluster();
  await cluster.kubectlOk(["apply", "-f", CRD_FILE]);
  await cluster.kubectlOk(["wait", "--for=condition=Established", "--timeout=60s", `crd/${ROLLOUT_PLURAL}.${GROUP}`]);
}, 180_000);

afterAll(async () => {
  for (const app of apps) await app.close();
  await cluster?.stop();
});

/** A leadership that never learns on its own that it lost the Lease (the bug of #2117); only a refused write tells it. */
class Believed implements Leadership {
  leading = true;
  readonly deposedFor: string[] = [];
  readonly contact = { at: 1, error: null };
  constructor(
    readonly identity: string,
    readonly myTerm: number,
  ) {}
  isLeader(): boolean {
    return this.leading;
  }
  get role(): Role {
    return this.leading ? "leader" : "follower";
  }
  get term(): LeaderTerm | null {
    return this.leading ? { term: this.myTerm, holder: this.identity } : null;
  }
  get observedTerm(): LeaderTerm {
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

interface Controller {
  app: FastifyInstance;
  leadership: Believed;
}

async function controller(leadership: Believed, provider: SimProvider, clock: () => number): Promise<Controller> {
  const app = await buildApp({
    kube: { client: KubeClient.fromKubeconfig(cluster.kubeconfig), namespace: "default" },
    leadership,
    metricProvider: provider,
    clock: () => new Date(clock()),
    tickIntervalMs: 0,
    seriesIntervalMs: 0,
    upstreamsIntervalMs: 0,
    epoch: "0123456789abcdef",
  });
  apps.push(app);
  await app.ready();
  return { app, leadership };
}

const canary = (app: FastifyInstance, name: string) => {
  const r = app.modelroll.store.find(name);
  return { canaryPercent: r?.canaryPercent ?? 0, shadowPercent: r?.shadowPercent ?? 0 };
};

/** Waits until the controller's cache has the rollout as the API server holds it (its watch delivered every write). */
async function caughtUp(c: Controller, name: string): Promise<void> {
  await c.app.modelroll.kube!.sync.settled();
  await within(
    20_000,
    `${c.leadership.identity} catching up with ${name}`,
    (async () => {
      for (;;) {
        const object = await cluster.kubectlOk(["get", "modelrollout", name, "-o", "jsonpath={.status.revision}"]);
        if (object !== "" && String(c.app.modelroll.store.find(name)?.revision) === object) return;
        await new Promise((r) => setTimeout(r, 50));
      }
    })(),
  );
}

const history = async (app: FastifyInstance, name: string) =>
  ((await app.inject({ url: `/v1/rollouts/${name}/history` })).json().decisions as Array<{ at: number; kind: string; stage: { index: number } | null }>)
    .filter((d) => d.kind !== "held")
    .map((d) => `${d.at - T0} ${d.kind} ${d.stage?.index ?? "-"}`);

/** Drives `name` to its end: each round, traffic at the weights served, the clock moves 10 s, the controllers tick in turn. */
async function drive(name: string, controllers: Controller[], sim: PoissonTrafficSim, clock: { now: number }): Promise<string> {
  const first = controllers[0].app;
  const created = await first.inject({
    method: "POST",
    url: "/v1/rollouts",
    payload: managedSpec({ name, match: { pathPrefix: `/${name}` }, stageDefaults: TIMING }),
  });
  expect(created.statusCode, created.body).toBe(201);
  for (const c of controllers) await caughtUp(c, name);
  for (let round = 0; round < 200; round++) {
    sim.run(20_000, canary(controllers.at(-1)!.app, name));
    clock.now += 10_000;
    for (const c of controllers) {
      await c.app.modelroll.driver.tick();
      for (const other of controllers) await caughtUp(other, name);
    }
    const phase = controllers.at(-1)!.app.modelroll.store.find(name)?.engine?.state.phase;
    if (phase === "Succeeded") return phase;
  }
  return "unfinished";
}

describe("fencing two controllers that both think they lead", () => {
  it("the old leader is refused and stops (argo-rollouts#2117); the decisions are one controller's (flagger#1613)", async () => {
    // One controller alone: the pace and the decisions to expect.
    const soloClock = { now: T0 };
    const soloSim = new PoissonTrafficSim({ seed: 7, behavior: () => GOOD });
    const solo = await controller(new Believed("solo", 0), new SimProvider(soloSim), () => soloClock.now);
    expect(await drive("solo-model", [solo], soloSim, soloClock)).toBe("Succeeded");
    const expected = await history(solo.app, "solo-model");
    expect(expected.map((d) => d.split(" ").slice(1).join(" "))).toEqual(["started 0", "advanced 0", "advanced 1", "advanced 2", "succeeded 3"]);

    // The same traffic and clock, two controllers: the old leader (term 0, never told) and the new one (term 1).
    const clock = { now: T0 };
    const sim = new PoissonTrafficSim({ seed: 7, behavior: () => GOOD });
    const provider = new SimProvider(sim);
    const old = await controller(new Believed("old-leader", 0), provider, () => clock.now);
    const fresh = await controller(new Believed("new-leader", 1), provider, () => clock.now);
    const end = await drive("dual-model", [old, fresh], sim, clock);
    if (end !== "Succeeded")
      console.log(
        JSON.stringify({
          old: old.leadership.deposedFor,
          fresh: fresh.leadership.deposedFor,
          h: await history(fresh.app, "dual-model"),
          state: fresh.app.modelroll.store.find("dual-model")?.engine?.state.phase,
          ev: fresh.app.modelroll.store.find("dual-model")?.engine?.lastEvaluation?.blocking,
          counts: fresh.app.modelroll.kube?.sync.counts,
        }),
      );
    expect(end).toBe("Succeeded");

    // The old leader's first write after the new leader's was refused, which deposed it; it stepped no more.
    expect(old.leadership.deposedFor).toHaveLength(1);
    expect(old.leadership.deposedFor[0]).toMatch(/written by a deposed leader/);
    expect(old.leadership.role).toBe("follower");
    expect(fresh.leadership.deposedFor).toEqual([]);
    // Both serve the same history, and it is exactly the one controller's: same count, kinds, stages and times.
    const served = await history(fresh.app, "dual-model");
    expect(served).toEqual(expected);
    expect(await history(old.app, "dual-model")).toEqual(served);
    const status = JSON.parse(await cluster.kubectlOk(["get", "modelrollout", "dual-model", "-o", "json"])).status;
    expect(status.leader).toEqual({ term: 1, holder: "new-leader" });
  }, 300_000);
});
