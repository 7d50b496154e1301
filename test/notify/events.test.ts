// Notifications through the API with simulated traffic and local HTTP receivers: every event of a release
// arrives once, in order, with the documented payload, in each format; a rollback names the failing gate and
// the worst segment; a stage past its deadline (hold) is announced.
import { afterEach, describe, expect, it } from "vitest";
import { createRollout } from "../controller/helpers.ts";
import { harness, managedSpec, T0, type Harness } from "../release/harness.ts";
import { GOOD, PoissonTrafficSim } from "../engine/sim.ts";
import { Receiver } from "./receiver.ts";

const TOKEN = "XoXb1234567890abcdefTOKEN";
const open: Receiver[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});
async function receiver(): Promise<Receiver> {
  const r = await Receiver.start();
  open.push(r);
  return r;
}

/** The payload's keys, as documented (README, Notifications). */
const DOCUMENTED = [
  "id",
  "type",
  "at",
  "summary",
  "rollout",
  "phase",
  "previousPhase",
  "stage",
  "weights",
  "actor",
  "decision",
  "reason",
  "owner",
  "rollbackCondition",
  "models",
  "variants",
  "failingGate",
  "worstSegment",
  "gate",
  "pending",
  "evidence",
  "window",
  "links",
];

/** A round, the judges' answers in hand, then every due delivery made. */
async function round(h: Harness): Promise<void> {
  await h.round();
  await h.app.modelroll.driver.judges!.settle();
  await h.app.modelroll.dispatcher.idle();
}

const post = (h: Harness, path: string, payload?: object) =>
  h.app.inject({ method: "POST", url: `/v1/rollouts/fraud-model/${path}`, headers: { "x-actor": "alice" }, ...(payload ? { payload } : {}) });

const typesAt = (r: Receiver, prefix: string) =>
  r.accepted.filter((x) => x.path.startsWith(prefix)).map((x) => String(x.headers["x-modelroll-event-type"]).replace("rollout.", ""));
const idsAt = (r: Receiver, prefix: string) => r.accepted.filter((x) => x.path.startsWith(prefix)).map((x) => String(x.headers["x-modelroll-event-id"]));

describe("notifications of a release", () => {
  it("every event arrives once, in order, with the documented payload; Slack and Teams get their formats", async () => {
    const hooks = await receiver();
    const judge = await receiver();
    judge.answer = () => ({ status: 503 });
    const h = await harness({
      app: {
        publicUrl: "https://modelroll.example",
        // Controller-wide: a Teams channel that wants only the ends.
        notifications: {
          targets: [{ name: "ops-teams", format: "teams", url: `${hooks.base}/teams/${TOKEN}`, events: ["rolled_back", "succeeded", "finalized"] }],
        },
      },
    });
    await createRollout(
      h.app,
      managedSpec({
        impact: "high",
        stages: [10, 50, 100],
        promotion_gates: { error_rate: { maximum: 0.01 }, llm_judge: { webhook: { url: `${judge.base}/judge`, intervalSeconds: 1 } } },
        notifications: {
          targets: [
            { name: "team-hook", url: `${hooks.base}/webhook?token=${TOKEN}` },
            { name: "team-slack", format: "slack", url: `${hooks.base}/slack/T0/B0/${TOKEN}` },
          ],
          gateErrorAfterSeconds: 20,
        },
      }),
    );
    await round(h);
    for (let i = 0; i < 10 && !typesAt(hooks, "/webhook").includes("gate_error"); i++) await round(h);
    expect((await post(h, "pause", { reason: "judge is down" })).statusCode).toBe(200);
    expect((await post(h, "resume")).statusCode).toBe(200);
    judge.answer = () => ({ status: 200, body: { verdict: "pass", reason: "ok" } });
    for (let i = 0; i < 40 && (await h.view()).phase !== "AwaitingReview"; i++) await round(h);
    expect((await post(h, "review", { approved: true, reason: "looks good" })).statusCode).toBe(200);
    expect((await post(h, "finalize", { verify: false })).statusCode).toBe(200);
    await h.app.modelroll.dispatcher.idle();

    const expected = [
      "started",
      "gate_error",
      "paused",
      "resumed",
      "gate_recovered",
      "stage_advanced",
      "stage_advanced",
      "awaiting_review",
      "succeeded",
      "finalized",
    ];
    expect(typesAt(hooks, "/webhook")).toEqual(expected);
    expect(typesAt(hooks, "/slack")).toEqual(expected);
    expect(typesAt(hooks, "/teams")).toEqual(["succeeded", "finalized"]);
    const ids = idsAt(hooks, "/webhook");
    expect(new Set(ids).size).toBe(ids.length);
    expect(idsAt(hooks, "/slack")).toEqual(ids);
    expect(hooks.received.every((r) => r.status === 200)).toBe(true);

    const events = hooks.accepted.filter((r) => r.path.startsWith("/webhook")).map((r) => r.body);
    for (const [i, e] of events.entries()) {
      expect(Object.keys(e).sort()).toEqual([...DOCUMENTED].sort());
      expect(e.id).toBe(ids[i]);
      expect(e).toMatchObject({ rollout: "fraud-model", owner: "team-fraud", rollbackCondition: "errors above 1% or p95 up 10%" });
      expect(e.links.report).toBe("https://modelroll.example/v1/rollouts/fraud-model/report");
      // No Envoy admin in this harness: the clusters are named, their hosts unknown.
      expect(e.variants.text).toBe("stable cluster stable (upstream unknown) · canary cluster canary (upstream unknown)");
    }
    const byType = Object.fromEntries(events.map((e) => [e.type.replace("rollout.", ""), e]));
    expect(byType.started).toMatchObject({
      phase: "Canary",
      previousPhase: "Pending",
      stage: { index: 0, name: "10%", of: 3 },
      weights: { canaryPercent: 10 },
      actor: "engine",
      decision: "started",
    });
    expect(byType.gate_error).toMatchObject({ decision: null, gate: { name: "llm_judge" }, stage: { name: "10%" } });
    expect(byType.gate_error.reason).toMatch(/^llm judge: the judge did not answer: the judge answered HTTP 503$/);
    expect(byType.gate_error.summary).toMatch(/^fraud-model: gate llm_judge cannot be measured \(Error for 2\d s\); the stage holds$/);
    expect(byType.paused).toMatchObject({ actor: "alice", phase: "Paused", reason: "paused by alice: judge is down" });
    expect(byType.gate_recovered.gate.name).toBe("llm_judge");
    expect(events.filter((e) => e.type === "rollout.stage_advanced").map((e) => [e.stage.name, e.weights.canaryPercent])).toEqual([
      ["50%", 50],
      ["100%", 100],
    ]);
    expect(byType.stage_advanced.evidence.map((m: { gate: string }) => m.gate)).toEqual(expect.arrayContaining(["error_rate", "llm_judge"]));
    expect(byType.stage_advanced.window.slices[0]).toMatchObject({
      segment: null,
      stable: { requests: expect.any(Number) },
      candidate: { requests: expect.any(Number) },
    });
    expect(byType.awaiting_review.pending).toMatch(/^a review: POST \/v1\/rollouts\/fraud-model\/review/);
    expect(byType.succeeded).toMatchObject({ phase: "Succeeded", previousPhase: "AwaitingReview", actor: "alice", decision: "reviewed" });
    expect(byType.succeeded.pending).toMatch(/^finalize: /);
    expect(byType.finalized).toMatchObject({ phase: "Finalized", decision: "finalized" });

    const slack = hooks.accepted.find((r) => r.path.startsWith("/slack") && r.headers["x-modelroll-event-type"] === "rollout.succeeded")!.body;
    expect(slack.text).toMatch(/^✅ fraud-model succeeded by alice/);
    expect(slack.blocks.find((b: { type: string }) => b.type === "actions").elements[0].url).toBe(
      "https://modelroll.example/v1/rollouts/fraud-model/report?format=markdown",
    );
    const teams = hooks.accepted.find((r) => r.path.startsWith("/teams"))!.body;
    expect(teams.attachments[0].content.type).toBe("AdaptiveCard");

    const metrics = (await h.app.inject({ url: "/metrics" })).body;
    expect(metrics).toContain('modelroll_notifications_sent_total{format="webhook"} 10');
    expect(metrics).toContain('modelroll_notifications_sent_total{format="slack"} 10');
    expect(metrics).toContain('modelroll_notifications_sent_total{format="teams"} 2');
    expect(metrics).toContain("modelroll_notifications_pending 0");
    expect(metrics).not.toMatch(/modelroll_notifications_failed_total\{/);
    const listed = (await h.app.inject({ url: "/v1/notifications?rollout=fraud-model&state=sent&limit=1000" })).json().deliveries;
    expect(listed).toHaveLength(22);
    expect(listed[0]).toMatchObject({
      state: "sent",
      attempts: 1,
      target: { name: "ops-teams", format: "teams", url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/<redacted:[0-9a-f]{8}>$/) },
    });
  });

  it("a rollback names the failing gate and the worst segment", async () => {
    const hooks = await receiver();
    const shares = { free: 0.6, pro: 0.3, enterprise: 0.1 };
    const sim = new PoissonTrafficSim({
      seed: 7,
      segment: { dimension: "tenant_tier", shares },
      behavior: (variant, value) => (variant === "canary" && value === "enterprise" ? { ...GOOD, errorRate: 0.4 } : GOOD),
    });
    const h = await harness({ resume: { sim, now: T0 } });
    await createRollout(
      h.app,
      managedSpec({
        stages: [10, 50, 100],
        segments: [{ name: "tenant_tier", header: "x-tenant-tier", values: ["free", "pro", "enterprise"] }],
        notifications: { targets: [{ url: `${hooks.base}/hook`, events: ["rolled_back"] }] },
      }),
    );
    for (let i = 0; i < 20 && (await h.view()).phase !== "RolledBack"; i++) await round(h);
    await h.app.modelroll.dispatcher.idle();
    expect(hooks.accepted.map((r) => r.body.type)).toEqual(["rollout.rolled_back"]);
    const e = hooks.accepted[0].body;
    const decision = (await h.app.inject({ url: "/v1/rollouts/fraud-model/history" })).json().decisions.find((d: { kind: string }) => d.kind === "rolledBack");
    expect(e).toMatchObject({
      phase: "RolledBack",
      previousPhase: "Canary",
      weights: { canaryPercent: 0, shadowPercent: 0 },
      decision: "rolledBack",
      reason: decision.reason,
    });
    expect(e.failingGate).toMatchObject({ gate: "error_rate", status: "Failed" });
    expect(e.worstSegment).toMatchObject({
      gate: "error_rate",
      dimension: "tenant_tier",
      segmentValue: "enterprise",
      slice: "tenant_tier=enterprise",
      status: "Failed",
    });
    expect(e.worstSegment.value).toBeGreaterThan(0.1);
    expect(e.summary).toMatch(
      /^fraud-model rolled back at stage 10% \(1 of 3\): error_rate tenant_tier=enterprise \d+(\.\d\d?)?% vs \d+(\.\d+)?% \(maximum 1%\); all traffic on stable$/,
    );
    expect(e.evidence.length).toBeGreaterThan(1);
    expect(e.evidence[0].slice).toBe("overall");
    // No public URL configured: links are paths on the controller.
    expect(e.links.report).toBe("/v1/rollouts/fraud-model/report");
  });

  it("a stage past its deadline with onDeadline hold is announced once", async () => {
    const hooks = await receiver();
    const judge = await receiver();
    judge.answer = () => ({ status: 200, body: { verdict: "inconclusive", reason: "still evaluating" } });
    const h = await harness();
    await createRollout(
      h.app,
      managedSpec({
        stages: [{ canaryPercent: 10, minDurationSeconds: 10, deadlineSeconds: 40, onDeadline: "hold" }, 100],
        promotion_gates: { error_rate: { maximum: 0.01 }, llm_judge: { webhook: { url: `${judge.base}/j` } } },
        notifications: { targets: [{ url: `${hooks.base}/hook` }] },
      }),
    );
    for (let i = 0; i < 8; i++) await round(h);
    expect(hooks.accepted.map((r) => r.body.type)).toEqual(["rollout.started", "rollout.deadline_passed"]);
    expect(hooks.accepted[1].body.reason).toMatch(
      /^stage 10% passed its deadline \(40 s\); holding for an operator as configured, waiting on: llm_judge Inconclusive: llm judge: the judge answered inconclusive: still evaluating/,
    );
  });
});
