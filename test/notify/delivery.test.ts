// Delivery beside the engine: a receiver that is down, then answers 503, then is back gets every event in
// order, once; a full queue drops its oldest events (counted); a receiver's 4xx drops that event and the queue
// goes on; a slow receiver does not slow the engine's ticks (durations printed, not asserted).
import { afterEach, describe, expect, it } from "vitest";
import { createRollout } from "../controller/helpers.ts";
import { harness, managedSpec, type Harness } from "../release/harness.ts";
import { eventually, Receiver } from "./receiver.ts";

const open: Receiver[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});
async function receiver(): Promise<Receiver> {
  const r = await Receiver.start();
  open.push(r);
  return r;
}

const metric = async (h: Harness, line: string): Promise<number> => {
  const text = (await h.app.inject({ url: "/metrics" })).body;
  const found = text.split("\n").find((l) => l.startsWith(`${line} `));
  return found ? Number(found.split(" ").at(-1)) : 0;
};
const outbox = async (h: Harness) => (await h.app.inject({ url: "/v1/notifications?limit=1000" })).json().deliveries as Array<Record<string, any>>;

/** Rounds until the rollout has Succeeded (5 events: started, three stage_advanced, succeeded). */
async function release(h: Harness, between: () => Promise<void> = async () => {}): Promise<void> {
  for (let i = 0; i < 60 && (await h.view()).phase !== "Succeeded"; i++) {
    await h.round();
    await between();
  }
  expect((await h.view()).phase).toBe("Succeeded");
}

describe("delivery", () => {
  it("a receiver that is down, then answers 503, then is back gets every event in order, each once", async () => {
    const hooks = await receiver();
    await hooks.close();
    const h = await harness({ app: { notifications: { retryBaseMs: 20, retryMaxMs: 100 } } });
    await createRollout(h.app, managedSpec({ notifications: { targets: [{ url: `${hooks.base}/hook` }] } }));
    await release(h);
    const enqueued = (await outbox(h)).map((d) => d.id).reverse();
    expect(enqueued).toHaveLength(5);
    await eventually("refused attempts", async () => (await metric(h, 'modelroll_notifications_failed_total{format="webhook",reason="network"}')) >= 3);
    expect(await metric(h, "modelroll_notifications_pending")).toBe(5);

    await hooks.open();
    hooks.answer = () => ({ status: 503, body: { error: "deploying" } });
    await eventually("503 answers", () => hooks.received.length >= 3);
    expect(hooks.accepted).toHaveLength(0);
    // Only the head of the queue is tried while it fails: the others wait their turn.
    expect(new Set(hooks.received.map((r) => r.headers["x-modelroll-event-id"]))).toEqual(new Set([enqueued[0]]));

    hooks.answer = () => ({ status: 200 });
    await eventually("every event delivered", () => hooks.accepted.length === 5);
    await h.app.modelroll.dispatcher.idle();
    expect(hooks.accepted.map((r) => r.body.id)).toEqual(enqueued);
    expect(hooks.accepted.map((r) => r.body.type)).toEqual([
      "rollout.started",
      "rollout.stage_advanced",
      "rollout.stage_advanced",
      "rollout.stage_advanced",
      "rollout.succeeded",
    ]);
    const rows = await outbox(h);
    expect(rows.every((d) => d.state === "sent")).toBe(true);
    const first = rows.find((d) => d.id === enqueued[0])!;
    expect(first.attempts).toBeGreaterThanOrEqual(6);
    expect(first.lastError).toBeNull();
    expect(await metric(h, 'modelroll_notifications_sent_total{format="webhook"}')).toBe(5);
    expect(await metric(h, 'modelroll_notifications_failed_total{format="webhook",reason="status"}')).toBeGreaterThanOrEqual(3);
    expect(await metric(h, "modelroll_notifications_pending")).toBe(0);
    console.log(`down then 503 then back: ${hooks.received.length} requests for 5 events, the first delivered at its attempt ${first.attempts}`);
  });

  it("a full queue drops its oldest events, counted; the receiver then gets the newest in order", async () => {
    const hooks = await receiver();
    await hooks.close();
    const h = await harness({ app: { notifications: { retryBaseMs: 300, retryMaxMs: 300, maxPendingPerTarget: 2 } } });
    await createRollout(h.app, managedSpec({ notifications: { targets: [{ url: `${hooks.base}/hook` }] } }));
    // Between rounds nothing is in flight (the failed head waits for its retry), so the bound takes the oldest.
    await release(h, () => h.app.modelroll.dispatcher.idle());
    const rows = await outbox(h);
    expect(rows.map((d) => [d.type, d.state, d.dropReason])).toEqual([
      ["rollout.succeeded", "pending", null],
      ["rollout.stage_advanced", "pending", null],
      ["rollout.stage_advanced", "dropped", "queue_full"],
      ["rollout.stage_advanced", "dropped", "queue_full"],
      ["rollout.started", "dropped", "queue_full"],
    ]);
    expect(await metric(h, 'modelroll_notifications_dropped_total{format="webhook",reason="queue_full"}')).toBe(3);
    await hooks.open();
    await eventually("the two kept events", () => hooks.accepted.length === 2);
    expect(hooks.accepted.map((r) => r.body.id)).toEqual([rows[1].id, rows[0].id]);
  });

  it("a 4xx drops that event (the receiver will not take it) and the queue goes on", async () => {
    const hooks = await receiver();
    let refused = 0;
    hooks.answer = (_path, body) => {
      if (body.type !== "rollout.started") return { status: 204 };
      refused++;
      return { status: 400, body: { error: "invalid_payload" } };
    };
    const h = await harness();
    await createRollout(h.app, managedSpec({ notifications: { targets: [{ url: `${hooks.base}/hook` }] } }));
    await release(h, () => h.app.modelroll.dispatcher.idle());
    await h.app.modelroll.dispatcher.idle();
    expect(refused).toBe(1);
    expect(hooks.accepted.map((r) => r.body.type)).toEqual(["rollout.stage_advanced", "rollout.stage_advanced", "rollout.stage_advanced", "rollout.succeeded"]);
    const started = (await outbox(h)).find((d) => d.type === "rollout.started")!;
    expect(started).toMatchObject({ state: "dropped", dropReason: "rejected", attempts: 1 });
    expect(started.lastError).toBe('rejected: answered HTTP 400: {"error":"invalid_payload"}');
    expect(await metric(h, 'modelroll_notifications_dropped_total{format="webhook",reason="rejected"}')).toBe(1);
    expect(await metric(h, 'modelroll_notifications_failed_total{format="webhook",reason="rejected"}')).toBe(1);
  });

  it("a receiver that does not answer does not hold up the engine: the release ends with its first delivery still unanswered", async () => {
    /** Ticks with real time between them, as the driver's timer leaves it (deliveries and answers run there). */
    const release = async (mode: "none" | "fast" | "holding") => {
      const hooks = await receiver();
      hooks.answer = () => (mode === "holding" ? "hang" : { status: 200 });
      const h = await harness();
      const notifications =
        mode === "none" ? {} : { notifications: { targets: [{ url: `${hooks.base}/hook` }, { format: "slack", url: `${hooks.base}/slack` }] } };
      await createRollout(h.app, managedSpec({ stages: [1, 2, 5, 10, 25, 50, 100], ...notifications }));
      let ticks = 0;
      for (let i = 0; i < 80 && (await h.view()).phase !== "Succeeded"; i++) {
        h.sim.run(20000, await h.served());
        await new Promise((r) => setTimeout(r, 10));
        await h.app.modelroll.driver.tick(h.now() + (i + 1) * 10_000);
        ticks++;
      }
      const state = { phase: (await h.view()).phase, held: hooks.held, accepted: hooks.accepted.length, enqueued: (await outbox(h)).length };
      if (mode === "holding") {
        hooks.answer = () => ({ status: 200 });
        hooks.releaseHeld(200);
      }
      await eventually("every event delivered", () => hooks.accepted.length === state.enqueued, 20_000);
      return { ...state, ticks, order: hooks.accepted.filter((r) => r.path === "/hook").map((r) => r.body.type) };
    };
    const none = await release("none");
    const fast = await release("fast");
    const holding = await release("holding");
    // What the ticks cost in time is measured by npm run bench:notify (bench/notify-ticks.ts).
    // Order and state, not time: with every answer held, the engine still went through all stages, in as many ticks.
    expect(holding.phase).toBe("Succeeded");
    expect(holding.ticks).toBe(none.ticks);
    expect(holding.accepted).toBe(0);
    expect(holding.held).toBe(2);
    expect(holding.enqueued).toBe(16);
    // Then, answered, the receiver gets every event in the order the fast one did: started, six stage_advanced, succeeded.
    expect(holding.order).toEqual(fast.order);
    expect(fast.order).toEqual(["rollout.started", ...Array(6).fill("rollout.stage_advanced"), "rollout.succeeded"]);
  });
});
