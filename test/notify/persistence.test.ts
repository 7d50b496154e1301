// The outbox is written in the decision's transaction: a failing outbox write fails the decision too (neither is
// kept, the store keeps its previous state), and a failure to work out the events never fails the decision.
import { describe, expect, it } from "vitest";
import { Phase, type Decision } from "../../controller/src/engine/index.ts";
import { NotificationOutbox } from "../../controller/src/notify/outbox.ts";
import { NotifyingPersistence } from "../../controller/src/notify/persistence.ts";
import type { RolloutPersistence, StateChange } from "../../controller/src/rollouts/persistence.ts";
import { SqliteRolloutState } from "../../controller/src/rollouts/sqlite-state.ts";
import { createRollout } from "../controller/helpers.ts";
import { harness, managedSpec } from "../release/harness.ts";

describe("the outbox and the decisions, one transaction", () => {
  it("an outbox that cannot be written fails the decision with it: neither is kept", async () => {
    const h = await harness();
    await createRollout(h.app, managedSpec({ notifications: { targets: [{ url: "http://127.0.0.1:9/hook" }] } }));
    await h.round();
    const before = (await h.app.inject({ url: "/v1/rollouts/fraud-model/history" })).json().decisions.length;
    const db = h.app.modelroll.state.database;
    db.exec("ALTER TABLE notify_outbox RENAME TO notify_outbox_away");
    const paused = await h.app.inject({ method: "POST", url: "/v1/rollouts/fraud-model/pause" });
    expect(paused.statusCode).toBe(500);
    expect(paused.json().error).toMatch(/^rollout fraud-model: internal error \(.*notify_outbox/);
    const view = await h.view();
    expect(view.phase).toBe("Shadowing");
    expect((await h.app.inject({ url: "/v1/rollouts/fraud-model/history" })).json().decisions).toHaveLength(before);
    db.exec("ALTER TABLE notify_outbox_away RENAME TO notify_outbox");
    // Back: the same command goes through, with its event.
    expect((await h.app.inject({ method: "POST", url: "/v1/rollouts/fraud-model/pause" })).statusCode).toBe(200);
    const types = (await h.app.inject({ url: "/v1/notifications" })).json().deliveries.map((d: { type: string }) => d.type);
    expect(types).toContain("rollout.paused");
  });

  it("events that cannot be worked out are lost (logged, counted), the decision is written", () => {
    const state = new SqliteRolloutState(":memory:");
    try {
      const outbox = new NotificationOutbox(state.database);
      const writes: StateChange[] = [];
      const inner: RolloutPersistence = { load: () => null, initialize() {}, write: (c) => void writes.push(c), archivedDecisions: () => [], close() {} };
      const errors: Error[] = [];
      const persistence = new NotifyingPersistence(inner, state.database, outbox, {
        controllerTargets: [{ name: "ops", format: "webhook", url: "http://127.0.0.1:9/hook", events: null, timeoutMs: 1000 }],
        onError: (e) => void errors.push(e),
      });
      const decision = {
        at: 0,
        rollout: "r",
        kind: "started",
        from: Phase.Pending,
        to: Phase.Canary,
        stage: { index: 0, name: "1%" },
        actor: "engine",
        reason: "",
        measurements: [],
        trafficMix: [],
        window: null,
      } as Decision;
      // A rollout whose spec has no stages: building the event's payload throws.
      const rollout = {
        spec: { name: "r" },
        createdAt: new Date(0),
        canaryPercent: 1,
        shadowPercent: 0,
        engine: { state: { spec: {}, phase: Phase.Canary }, decisions: [decision], lastEvaluation: null },
      };
      persistence.write({ version: 2, rollout: rollout as never, newDecisions: [decision] });
      expect(writes).toHaveLength(1);
      expect(errors).toHaveLength(1);
      expect(outbox.pendingCount()).toBe(0);
    } finally {
      state.close();
    }
  });
});
