// The rollout engine on real Envoy: the controller's driver reads the filter's stats from Envoy's admin
// endpoint every tick and moves the rollout on its own. A canary answering 5% errors at its first stage
// is rolled back without anyone touching the API; the test measures how long it took.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, decisionsOf, managedSpec, send, sendMany, startStack, waitFor, type Stack } from "./harness.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ controller: { tickIntervalMs: 250 } });
});
afterAll(async () => {
  await stack?.stop();
});

const managed = (name: string) =>
  managedSpec(name, "canary error rate above 1%", {
    stages: [{ canaryPercent: 20, minDurationSeconds: 1, minRequests: 100, deadlineSeconds: 120 }, 100],
    promotion_gates: { error_rate: { maximum: 0.01 } },
  });

describe("the engine on real Envoy", () => {
  it("rolls back a canary with 5% errors at its first stage, by itself", async () => {
    const ctl = stack.controller!.url;
    const res = await fetch(`${stack.canary.url}/__demo/behavior`, { method: "PUT", body: JSON.stringify({ errorRate: 0.05 }) });
    expect(res.status).toBe(200);
    try {
      const created = await api(ctl, "POST", "/v1/rollouts", managed("auto"));
      expect(created.status, JSON.stringify(created.json)).toBe(201);
      expect(created.json.managed).toBe(true);

      // Wait until the engine has started the canary stage and the filter routes 20% to the canary.
      await waitFor("the first canary stage", async () => (await api(ctl, "GET", "/v1/rollouts/auto")).json.phase === "Canary", 10_000, 50);
      await waitFor(
        "canary traffic",
        async () => (await sendMany(`${stack.dataUrl}/auto/p`, 40, (i) => ({ "x-user-id": `w${i}-${Math.random()}` }), 8)).some((r) => r.variant === "canary"),
        10_000,
        20,
      );

      // Real traffic, until the engine decides.
      let sent = 0;
      let canarySent = 0;
      let canaryErrors = 0;
      let phase = "Canary";
      const deadline = performance.now() + 60_000;
      while (phase === "Canary" && performance.now() < deadline) {
        const replies = await sendMany(`${stack.dataUrl}/auto/p`, 100, (i) => ({ "x-user-id": `u${sent + i}` }), 16);
        sent += replies.length;
        canarySent += replies.filter((r) => r.variant === "canary").length;
        canaryErrors += replies.filter((r) => r.variant === "canary" && r.status === 500).length;
        phase = (await api(ctl, "GET", "/v1/rollouts/auto")).json.phase;
      }
      const history = (await api(ctl, "GET", "/v1/rollouts/auto/history")).json;
      const last = history.decisions[history.decisions.length - 1];
      console.log(
        `5% canary errors: ${phase} after ${sent} requests sent (${canarySent} canary, ${canaryErrors} canary errors); decision: ${JSON.stringify(last.reason ?? last)}`.slice(
          0,
          1200,
        ),
      );
      expect(phase).toBe("RolledBack");
      expect(JSON.stringify(last)).toContain("error_rate");

      // Traffic is back on stable, through the filter, at once.
      await waitFor(
        "all traffic on stable",
        async () =>
          (await sendMany(`${stack.dataUrl}/auto/p`, 32, (i) => ({ "x-user-id": `after-${i}` }), 8)).every(
            (r) => r.variant === "stable" && r.modelVersion === "v1",
          ),
        5000,
        20,
      );
      const view = (await api(ctl, "GET", "/v1/rollouts/auto")).json;
      expect(view.canaryPercent).toBe(0);
    } finally {
      await fetch(`${stack.canary.url}/__demo/behavior`, { method: "PUT", body: JSON.stringify({ errorRate: 0 }) });
    }
  });

  it("takes a good model through every stage, shadow -> 10% -> 50% -> 100% -> Succeeded, with no false alarm", async () => {
    const ctl = stack.controller!.url;
    const short = { minDurationSeconds: 1, minRequests: 100, deadlineSeconds: 120 };
    const created = await api(ctl, "POST", "/v1/rollouts", {
      ...managed("good"),
      // The harness's "shadow" cluster is a third demo model (v3), as good as the others.
      shadow: { percent: 50 },
      stages: ["shadow", 10, 50, 100],
      stageDefaults: short,
      promotion_gates: { error_rate: { maximum: 0.01 } },
    });
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    const url = `${stack.dataUrl}/good/p`;
    const seen: string[] = [];
    let sent = 0;
    let mirroredBefore = stack.shadow.mirrored();
    let mirroredInShadowStage = 0;
    const started = performance.now();
    let view = (await api(ctl, "GET", "/v1/rollouts/good")).json;
    while (view.phase !== "Succeeded" && !["RolledBack", "Failed"].includes(view.phase) && performance.now() - started < 90_000) {
      const phaseBefore = view.phase;
      const replies = await sendMany(url, 200, (i) => ({ "x-user-id": `g${sent + i}` }), 16);
      sent += replies.length;
      // Nobody gets an error at any stage.
      expect(replies.every((r) => r.status === 200)).toBe(true);
      view = (await api(ctl, "GET", "/v1/rollouts/good")).json;
      if (phaseBefore === "Shadowing" && view.phase === "Shadowing") {
        // The whole batch ran in the shadow stage: real traffic all on stable, a sample mirrored.
        expect(replies.every((r) => r.variant === "stable")).toBe(true);
        mirroredInShadowStage += stack.shadow.mirrored() - mirroredBefore;
      }
      mirroredBefore = stack.shadow.mirrored();
      const label = `${view.phase}${view.stage ? ` ${view.stage.name}` : ""}`;
      if (seen.at(-1) !== label) seen.push(label);
    }
    const kinds = (await decisionsOf(ctl, "good")).map((d) => d.kind).filter((k) => k !== "held");
    console.log(
      `good model: ${seen.join(" -> ")} in ${sent} requests (${mirroredInShadowStage} mirrored to the shadow during its stage); decisions: ${kinds.join(", ")}`,
    );
    expect(view.phase).toBe("Succeeded");
    // Order, not timing: the phases seen between rounds of traffic come in the plan's order and end Succeeded
    // (a round on a loaded machine may outlast a 1 s stage, so not every stage need be seen between rounds;
    // the decisions below show each one was passed).
    const plan = ["Shadowing shadow", "Canary 10%", "Canary 50%", "Baking 100%", "Succeeded 100%"];
    const observed = seen.filter((s) => s !== "Pending");
    expect(observed).toEqual(plan.filter((s) => observed.includes(s)));
    expect(observed.at(-1)).toBe("Succeeded 100%");
    expect(kinds).toEqual(["started", "advanced", "advanced", "advanced", "succeeded"]);
    expect(mirroredInShadowStage).toBeGreaterThan(0);
    const r = await send(url, { "x-user-id": "anyone" });
    expect(r.variant).toBe("canary");
    expect(r.modelVersion).toBe("v2");
  });
});
