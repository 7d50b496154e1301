// Webhook gates and notifications on real Envoy: traffic through the compiled filter, the controller's driver
// ticking every 250 ms, a local judge asked with the evidence Envoy counted, a local receiver for the events.
//   a. the judge answers pass: the rollout goes through its stages to Succeeded; the receiver gets started,
//      stage_advanced, succeeded, in order;
//   b. the judge answers fail: rolled back, all traffic on stable; rolled_back names the judge as the failing gate;
//   c. the judge times out: Error, the stage holds (no rollback, no promotion), gate_error is announced; the
//      judge answers again: gate_recovered, and the rollout moves on.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Receiver } from "../notify/receiver.ts";
import { api, createManaged, decisionsOf, managedSpec, phaseOf, sendMany, startStack, waitFor, type Stack } from "./harness.ts";

let stack: Stack;
let judge: Receiver;
let hooks: Receiver;
const verdicts = new Map<string, () => ReturnType<Receiver["answer"]>>();

beforeAll(async () => {
  judge = await Receiver.start();
  hooks = await Receiver.start();
  judge.answer = (path) => (verdicts.get(path.split("/")[1]) ?? (() => ({ status: 404 })))();
  stack = await startStack({ controller: { tickIntervalMs: 250, notifications: { retryBaseMs: 50, retryMaxMs: 200 } } });
});
afterAll(async () => {
  await stack?.stop();
  await judge?.close();
  await hooks?.close();
});

const ctl = () => stack.controller!.url;

const spec = (name: string, extra: Record<string, unknown> = {}) =>
  managedSpec(name, "the judge fails the canary", {
    stages: [{ canaryPercent: 20, minDurationSeconds: 1, minRequests: 40, deadlineSeconds: 120 }, 100],
    stageDefaults: { minDurationSeconds: 1, deadlineSeconds: 120 },
    promotion_gates: { error_rate: { maximum: 0.05 }, llm_judge: { webhook: { url: `${judge.base}/${name}/judge`, timeoutMs: 300, intervalSeconds: 1 } } },
    notifications: { targets: [{ url: `${hooks.base}/${name}` }], gateErrorAfterSeconds: 1 },
    ...extra,
  });

/** Batches of 50 requests through Envoy until `done()`; returns how many were sent. */
async function traffic(name: string, done: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = performance.now();
  let sent = 0;
  while (performance.now() - started < timeoutMs) {
    if (await done()) return sent;
    const replies = await sendMany(`${stack.dataUrl}/${name}/predict`, 50, (i) => ({ "x-user-id": `${name}-${sent + i}` }), 8);
    sent += replies.length;
  }
  throw new Error(`${name}: still ${await phaseOf(ctl(), name)} after ${timeoutMs} ms (${sent} requests)`);
}

const eventsOf = (name: string) => hooks.accepted.filter((r) => r.path === `/${name}`).map((r) => r.body);
const judgeOf = (d: { measurements: Array<{ gate: string }> } | undefined) =>
  d?.measurements.find((m) => m.gate === "llm_judge") as Record<string, any> | undefined;

describe("webhook gates on real Envoy", () => {
  it("a. a judge answering pass: the rollout succeeds, and its events arrive in order", { timeout: 60_000 }, async () => {
    const name = "judged-good";
    verdicts.set(name, () => ({ status: 200, body: { verdict: "pass", reason: "golden set: 50 of 50" } }));
    await createManaged(ctl(), spec(name));
    const sent = await traffic(name, async () => (await phaseOf(ctl(), name)) === "Succeeded", 40_000);
    await waitFor("the succeeded event", async () => eventsOf(name).some((e) => e.type === "rollout.succeeded"), 10_000, 20);
    const history = await decisionsOf(ctl(), name);
    const questions = judge.received.filter((r) => r.path.startsWith(`/${name}/`)).map((r) => r.body);
    const withTraffic = questions.find((q) =>
      q.evidence.some((e: { gate: string; samples: { candidate: number } }) => e.gate === "error_rate" && e.samples.candidate > 0),
    );
    console.log(
      `a. judge pass: Succeeded after ${sent} requests; the judge was asked ${questions.length} times; events: ${eventsOf(name)
        .map((e) => e.type.replace("rollout.", ""))
        .join(", ")}`,
    );
    expect(eventsOf(name).map((e) => e.type)).toEqual(["rollout.started", "rollout.stage_advanced", "rollout.succeeded"]);
    expect(judgeOf(history.find((d) => d.kind === "advanced"))).toMatchObject({
      status: "Passed",
      reason: "llm judge: the judge answered pass: golden set: 50 of 50",
    });
    // The judge saw what Envoy counted: the canary's error rate with its sample size.
    expect(withTraffic, JSON.stringify(questions.at(-1))).toBeDefined();
    expect(withTraffic).toMatchObject({ gate: "llm_judge", rollout: name, candidate: "canary" });
    expect(["20%", "100%"]).toContain(withTraffic.stage.name);
    const replies = await sendMany(`${stack.dataUrl}/${name}/predict`, 20, (i) => ({ "x-user-id": `after-${i}` }), 4);
    expect(replies.every((r) => r.variant === "canary")).toBe(true);
  });

  it("b. a judge answering fail: rolled back, all traffic on stable, the judge named in the event", { timeout: 60_000 }, async () => {
    const name = "judged-bad";
    verdicts.set(name, () => ({ status: 200, body: { verdict: "fail", reason: "hallucinated 9 of 50 citations", score: 0.82 } }));
    await createManaged(ctl(), spec(name));
    const sent = await traffic(name, async () => (await phaseOf(ctl(), name)) === "RolledBack", 30_000);
    await waitFor("the rolled_back event", async () => eventsOf(name).some((e) => e.type === "rollout.rolled_back"), 10_000, 20);
    const event = eventsOf(name).find((e) => e.type === "rollout.rolled_back");
    console.log(`b. judge fail: RolledBack after ${sent} requests: ${event.summary}`);
    expect(event.failingGate).toMatchObject({ gate: "llm_judge", status: "Failed", value: 0.82 });
    expect(event.reason).toBe("canary worse overall: llm judge: the judge answered fail: hallucinated 9 of 50 citations");
    const replies = await sendMany(`${stack.dataUrl}/${name}/predict`, 40, (i) => ({ "x-user-id": `after-${i}` }), 4);
    expect(replies.every((r) => r.variant === "stable")).toBe(true);
  });

  it("c. a judge that times out holds the stage (Error, announced), and the rollout moves on once it answers", { timeout: 60_000 }, async () => {
    const name = "judged-late";
    let answering = false;
    verdicts.set(name, () => (answering ? { status: 200, body: { verdict: "pass", reason: "back" } } : "hang"));
    await createManaged(ctl(), spec(name));
    await traffic(name, async () => eventsOf(name).some((e) => e.type === "rollout.gate_error"), 20_000);
    // Well past the stage's 1 s minimum and its 40 requests: only the judge holds it.
    await traffic(name, async () => false, 1500).catch(() => undefined);
    const view = (await api(ctl(), "GET", `/v1/rollouts/${name}`)).json;
    expect(view).toMatchObject({ phase: "Canary", stage: { name: "20%" } });
    const gate = view.evaluation.gates.find((g: { gate: string }) => g.gate === "llm_judge");
    expect(gate).toMatchObject({ status: "Error", reason: "llm judge: the judge did not answer: no answer within 300 ms" });
    expect((await decisionsOf(ctl(), name)).some((d) => d.kind === "rolledBack")).toBe(false);
    const error = eventsOf(name).find((e) => e.type === "rollout.gate_error");
    expect(error.gate).toMatchObject({ name: "llm_judge", reason: "llm judge: the judge did not answer: no answer within 300 ms" });

    answering = true;
    await traffic(name, async () => (await phaseOf(ctl(), name)) === "Succeeded", 30_000);
    await waitFor("the succeeded event", async () => eventsOf(name).some((e) => e.type === "rollout.succeeded"), 10_000, 20);
    const types = eventsOf(name).map((e) => e.type.replace("rollout.", ""));
    console.log(`c. judge timing out: held in stage 20% with llm_judge in Error; events: ${types.join(", ")}`);
    expect(types).toEqual(["started", "gate_error", "gate_recovered", "stage_advanced", "succeeded"]);
  });
});
