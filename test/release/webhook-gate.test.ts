// Webhook gates through the API with simulated traffic: a local judge answers pass, fail or inconclusive (or
// times out, fails, answers nonsense); the driver asks it beside the ticks and the engine judges its latest
// answer: pass advances, fail rolls back, anything without a verdict is Error and holds (never Failed).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createRollout } from "../controller/helpers.ts";
import { Receiver } from "../notify/receiver.ts";
import { harness, managedSpec, type Harness } from "./harness.ts";

let judge: Receiver;
beforeAll(async () => {
  judge = await Receiver.start();
});
afterAll(async () => {
  await judge.close();
});
beforeEach(() => {
  judge.received.length = 0;
  judge.answer = () => ({ status: 200, body: { verdict: "pass", reason: "all 120 golden prompts answered correctly" } });
});

// The judge is local and answers at once, but on a loaded machine "at once" can take longer than a short
// timeout: 10 s is a bound a working judge never reaches. Only the timeout case sets a short one (it never answers).
const spec = (gate: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  managedSpec({
    stages: [10, 50, 100],
    promotion_gates: { error_rate: { maximum: 0.01 }, llm_judge: { webhook: { url: `${judge.base}/judge?key=s3cret`, timeoutMs: 10_000, ...gate } } },
    ...extra,
  });

/** A round, then the judge's answers in hand (they arrive beside the ticks, in real time). */
async function round(h: Harness): Promise<void> {
  await h.round();
  await h.app.modelroll.driver.judges!.settle();
}

const judgeOf = (d: Record<string, any> | undefined) => (d?.measurements as Array<Record<string, any>> | undefined)?.find((m) => m.gate === "llm_judge");
const history = async (h: Harness) => (await h.app.inject({ url: "/v1/rollouts/fraud-model/history" })).json().decisions as Array<Record<string, any>>;

describe("webhook gates", () => {
  it("a judge answering pass lets every stage advance; it is asked with the rollout's evidence, once per stage at least", async () => {
    const h = await harness();
    await createRollout(h.app, spec({ intervalSeconds: 25 }));
    for (let i = 0; i < 40 && (await h.view()).phase !== "Succeeded"; i++) await round(h);
    const decisions = await history(h);
    expect((await h.view()).phase, JSON.stringify(decisions.map((d) => [d.kind, d.reason]))).toBe("Succeeded");
    const advances = decisions.filter((d) => d.kind === "advanced" || d.kind === "succeeded");
    expect(advances.map((d) => judgeOf(d)?.status)).toEqual(["Passed", "Passed", "Passed"]);
    expect(judgeOf(advances[0])!.reason).toBe("llm judge: the judge answered pass: all 120 golden prompts answered correctly");
    const questions = judge.received.map((r) => r.body);
    expect(new Set(questions.map((q) => q.stage.name))).toEqual(new Set(["10%", "50%", "100%"]));
    const q = questions.find((x) => x.stage.name === "50%" && x.evidence.length > 0);
    expect(q).toMatchObject({
      gate: "llm_judge",
      rollout: "fraud-model",
      phase: "Canary",
      stage: { index: 1, name: "50%", kind: "canary", of: 3 },
      candidate: "canary",
      owner: "team-fraud",
      weights: { canaryPercent: 50 },
      links: { report: "/v1/rollouts/fraud-model/report" },
    });
    expect(q.evidence.map((e: { gate: string }) => e.gate)).toContain("error_rate");
    expect(q.evidence.map((e: { gate: string }) => e.gate)).not.toContain("llm_judge");
    // Asked again intervalSeconds after its last answer: in 60 s stages with 10 s rounds, more than once per stage.
    expect(questions.filter((x) => x.stage.name === "10%").length).toBeGreaterThanOrEqual(2);
    // The URL (with its key) is shown redacted.
    const view = await h.view();
    expect(view.spec.promotion_gates.llm_judge.webhook.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/<redacted:[0-9a-f]{8}>$/);
    expect(JSON.stringify(view) + JSON.stringify(decisions)).not.toContain("s3cret");
  });

  it("a judge answering fail rolls the rollout back, its reason in the decision", async () => {
    const h = await harness();
    judge.answer = () => ({ status: 200, body: { verdict: "fail", reason: "7 of 120 golden prompts answered wrongly (limit 2)", score: 0.94 } });
    await createRollout(h.app, spec({}));
    for (let i = 0; i < 5 && (await h.view()).phase !== "RolledBack"; i++) await round(h);
    const rollback = (await history(h)).find((d) => d.kind === "rolledBack");
    expect(rollback, JSON.stringify(await history(h))).toBeDefined();
    expect(judgeOf(rollback)).toMatchObject({ status: "Failed", candidateValue: 0.94 });
    expect(rollback!.reason).toBe("canary worse overall: llm judge: the judge answered fail: 7 of 120 golden prompts answered wrongly (limit 2)");
    expect((await h.served()).canaryPercent).toBe(0);
  });

  it.each([
    ["a timeout", () => "hang" as const, /^llm judge: the judge did not answer: no answer within 300 ms$/, { timeoutMs: 300 }],
    ["a 503", () => ({ status: 503, body: { error: "busy" } }), /^llm judge: the judge did not answer: the judge answered HTTP 503$/, {}],
    ["a body that is not JSON", () => ({ status: 200, body: undefined }), /the judge answered HTTP 200 with a body that is not JSON$/, {}],
    [
      "an unknown verdict",
      () => ({ status: 200, body: { verdict: "maybe" } }),
      /the judge answered verdict "maybe"; expected "pass", "fail" or "inconclusive"$/,
      {},
    ],
  ])("%s is Error: the stage holds (no rollback) until the judge answers, then it advances", async (_what, answer, reason, short) => {
    const h = await harness();
    judge.answer = answer as () => never;
    await createRollout(h.app, spec({ intervalSeconds: 1, ...short }));
    // 60 s minimum per stage: ten 10 s rounds are well past it.
    for (let i = 0; i < 10; i++) await round(h);
    const view = await h.view();
    expect(view).toMatchObject({ phase: "Canary", stage: { name: "10%" }, canaryPercent: 10 });
    const gate = view.evaluation.gates.find((g: { gate: string }) => g.gate === "llm_judge");
    expect(gate.status).toBe("Error");
    expect(gate.reason).toMatch(reason);
    expect(view.evaluation.holds.map((x: { text: string }) => x.text).join("; ")).toContain("llm_judge Error");
    expect((await history(h)).some((d) => d.kind === "rolledBack")).toBe(false);
    const metrics = (await h.app.inject({ url: "/metrics" })).body;
    expect(metrics).toMatch(/modelroll_judge_answers_total\{gate="llm_judge",result="error"\} ([2-9]|\d\d+)/);

    judge.answer = () => ({ status: 200, body: { verdict: "pass", reason: "fine now" } });
    for (let i = 0; i < 3 && (await h.view()).stage?.name === "10%"; i++) await round(h);
    expect((await h.view()).stage.name).toBe("50%");
  });

  it("inconclusive holds; an answer about an earlier stage does not count for the next one", async () => {
    const h = await harness();
    judge.answer = () => ({ status: 200, body: { verdict: "inconclusive", reason: "only 12 of 100 prompts evaluated" } });
    await createRollout(h.app, spec({ intervalSeconds: 3600 }));
    for (let i = 0; i < 8; i++) await round(h);
    let gate = (await h.view()).evaluation.gates.find((g: { gate: string }) => g.gate === "llm_judge");
    expect(gate).toMatchObject({ status: "Inconclusive", reason: "llm judge: the judge answered inconclusive: only 12 of 100 prompts evaluated" });
    expect((await h.view()).stage.name).toBe("10%");

    // Passed for the 10% stage: the stage advances; in the 50% stage that pass no longer counts.
    judge.answer = () => ({ status: 200, body: { verdict: "pass", reason: "ok" } });
    await h.app.inject({ method: "POST", url: "/v1/rollouts/fraud-model/promote" });
    judge.answer = () => "hang";
    await h.round();
    gate = (await h.view()).evaluation.gates.find((g: { gate: string }) => g.gate === "llm_judge");
    expect((await h.view()).stage.name).toBe("50%");
    expect(gate).toMatchObject({ status: "Inconclusive" });
    expect(gate.reason).toMatch(/^llm judge: waiting for the judge's answer about this stage \(asked at 20/);
  });
});
