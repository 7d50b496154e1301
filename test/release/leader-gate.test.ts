// Only the leader decides (kube/leadership.ts as buildApp wires it): the engine steps, webhook deliveries and the
// pushing config distributors run on the leader alone, while a follower serves the API, the long-poll and
// /readyz. The leadership here is a switch; the election itself is test/controller/lease.test.ts and, against
// the real API server, test/kube/lease.test.ts.
import { describe, expect, it } from "vitest";
import type { ConfigDistributor } from "../../controller/src/filter-config/distributor.ts";
import type { FilterConfig } from "../../controller/src/filter-config/projection.ts";
import type { Leadership } from "../../controller/src/kube/leadership.ts";
import type { LeaderTerm, Role } from "../../controller/src/kube/lease.ts";
import { createRollout, metricValue } from "../controller/helpers.ts";
import { harness, managedSpec } from "./harness.ts";

class Switch implements Leadership {
  readonly identity = "replica-a";
  leading = false;
  term: LeaderTerm | null = null;
  holder: string | null = "replica-b";
  contact: { at: number | null; error: string | null } = { at: 1, error: null };
  readonly #listeners = new Set<(role: Role, term: LeaderTerm | null, reason: string) => void>();
  readonly deposedFor: string[] = [];
  isLeader(): boolean {
    return this.leading;
  }
  get role(): Role {
    return this.leading ? "leader" : "follower";
  }
  get observedTerm(): LeaderTerm | null {
    return this.term ?? { term: 3, holder: "replica-b" };
  }
  deposed(reason: string): void {
    this.deposedFor.push(reason);
    this.set(false);
  }
  set(leading: boolean): void {
    this.leading = leading;
    this.term = leading ? { term: 4, holder: this.identity } : null;
    this.holder = leading ? this.identity : "replica-b";
    for (const l of this.#listeners) l(this.role, this.term, "switched");
  }
  onChange(listener: (role: Role, term: LeaderTerm | null, reason: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

class Pusher implements ConfigDistributor {
  readonly kind = "pusher";
  readonly pushed: number[] = [];
  publish(config: FilterConfig): void {
    this.pushed.push(config.version);
  }
  close(): void {}
}

describe("only the leader decides", () => {
  it("a follower steps nothing and pushes nothing but serves the API and the long-poll; once it leads it does both", async () => {
    const leadership = new Switch();
    const pusher = new Pusher();
    const h = await harness({ app: { leadership, configDistributors: [pusher] } });
    await createRollout(h.app, managedSpec());
    // The follower applied the write (every replica does) and serves its config, but pushes nothing.
    expect((await h.served()).version).toBe(2);
    expect(pusher.pushed).toEqual([]);
    for (let i = 0; i < 5; i++) await h.round();
    expect((await h.view()).phase).toBe("Pending");
    const ready = await h.app.inject({ url: "/readyz" });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ ready: true, role: "follower", identity: "replica-a", leader: "replica-b", term: 3, reasons: [] });
    expect(await metricValue(h.app, "modelroll_leader")).toBe(0);
    expect(await metricValue(h.app, "modelroll_leader_term")).toBe(3);

    // Leading: the latest config is pushed at once, and the next tick steps the rollout.
    leadership.set(true);
    expect(pusher.pushed).toEqual([2]);
    await h.round();
    expect((await h.view()).phase).toBe("Shadowing");
    expect(pusher.pushed.at(-1)).toBe((await h.served()).version);
    expect(await metricValue(h.app, "modelroll_leader")).toBe(1);
    expect((await h.app.inject({ url: "/readyz" })).json()).toMatchObject({ role: "leader", leader: "replica-a", term: 4 });

    // Deposed: no more steps.
    leadership.set(false);
    const decisions = (await h.app.inject({ url: "/v1/rollouts/fraud-model/history" })).json().decisions.length;
    for (let i = 0; i < 3; i++) await h.round();
    expect((await h.app.inject({ url: "/v1/rollouts/fraud-model/history" })).json().decisions).toHaveLength(decisions);
  });

  it("a leader deposed while it read the metrics applies nothing from that read", async () => {
    const leadership = new Switch();
    leadership.set(true);
    const h = await harness({ app: { leadership } });
    await createRollout(h.app, managedSpec());
    // The read returns after the Lease was lost (the renew deadline passed while it waited).
    const read = h.provider.readRollout.bind(h.provider);
    h.provider.readRollout = async (name: string) => {
      const reading = await read(name);
      leadership.set(false);
      return reading;
    };
    await h.round();
    expect(leadership.role).toBe("follower");
    expect((await h.view()).phase).toBe("Pending");
    expect((await h.app.inject({ url: "/v1/rollouts/fraud-model/history" })).json().decisions.map((d: { kind: string }) => d.kind)).toEqual([]);
  });

  it("a replica that cannot reach the API server is not ready (but alive)", async () => {
    const leadership = new Switch();
    leadership.contact = { at: 1, error: "Kubernetes API 127.0.0.1:6443: GET lease failed: ECONNREFUSED" };
    const h = await harness({ app: { leadership, notReady: () => ["the ModelRollout watch ended: 410 Gone, relisting"] } });
    const ready = await h.app.inject({ url: "/readyz" });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().reasons).toEqual([
      "the ModelRollout watch ended: 410 Gone, relisting",
      "cannot reach the Kubernetes API server: Kubernetes API 127.0.0.1:6443: GET lease failed: ECONNREFUSED",
    ]);
    expect((await h.app.inject({ url: "/healthz" })).statusCode).toBe(200);
  });
});
