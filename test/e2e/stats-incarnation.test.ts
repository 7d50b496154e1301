// /stats on real Envoy: a rollout deleted and created again under the same name starts from zero, although
// Envoy's counters under that name keep the earlier rollout's requests and errors.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, sendMany, startStack, waitFor, waitForRolloutActive, type Stack } from "./harness.ts";

let stack: Stack;
let ctl: string;

beforeAll(async () => {
  stack = await startStack();
  ctl = stack.controller!.url;
});
afterAll(async () => {
  await stack?.stop();
});

async function behave(errorRate: number): Promise<void> {
  const res = await fetch(`${stack.canary.url}/__demo/behavior`, { method: "PUT", body: JSON.stringify({ errorRate }) });
  expect(res.status).toBe(200);
}

const rollout = { name: "again", match: { pathPrefix: "/again" }, stickyKey: { header: "x-user-id" }, canaryPercent: 100 };

describe("stats per rollout incarnation, on real Envoy", () => {
  it("a re-created rollout does not show the earlier one's errors; Envoy's own counters still do", async () => {
    expect((await api(ctl, "POST", "/v1/rollouts", rollout)).status).toBe(201);
    await waitForRolloutActive(`${stack.dataUrl}/again`);
    await behave(1);
    await sendMany(`${stack.dataUrl}/again/predict`, 200, (i) => ({ "x-user-id": `u-${i}` }), 16);
    await behave(0);
    const first = (await api(ctl, "GET", "/v1/rollouts/again/stats")).json;
    expect(first.variants.canary.responses["5xx"]).toBe(200);

    expect((await api(ctl, "DELETE", "/v1/rollouts/again")).status).toBe(204);
    // Every worker has dropped the rollout once a keyed request carries no variant any more.
    await waitFor(
      "the rollout to leave every worker",
      async () => {
        const replies = await sendMany(`${stack.dataUrl}/again/predict`, 20, (i) => ({ "x-user-id": `p-${i}` }), 4);
        return replies.every((r) => r.variant === null);
      },
      15_000,
      20,
    );
    const created = await api(ctl, "POST", "/v1/rollouts", rollout);
    expect(created.status).toBe(201);

    const fresh = (await api(ctl, "GET", "/v1/rollouts/again/stats")).json;
    expect(fresh.window).toEqual({ kind: "rollout", since: created.json.createdAt, envoyRestarted: false, note: null });
    expect(fresh.variants.canary).toMatchObject({ requests: 0, errorRate: null });

    await waitForRolloutActive(`${stack.dataUrl}/again`);
    const before = (await api(ctl, "GET", "/v1/rollouts/again/stats")).json;
    await sendMany(`${stack.dataUrl}/again/predict`, 150, (i) => ({ "x-user-id": `v-${i}` }), 16);
    const after = (await api(ctl, "GET", "/v1/rollouts/again/stats")).json;
    expect(after.variants.canary.requests - before.variants.canary.requests).toBe(150);
    expect(after.variants.canary.responses["5xx"]).toBe(0);
    expect(after.variants.canary.errorRate).toBe(0);

    // Envoy itself still counts the first rollout's 200 errors under the name.
    const raw = await (await fetch(`${stack.adminUrl}/stats/prometheus?filter=${encodeURIComponent("^wasmcustom\\.modelroll\\.rollout\\.again\\.")}`)).text();
    const envoy5xx = raw
      .split("\n")
      .filter(
        (l) =>
          l.startsWith("modelroll_responses{") && !l.includes("segment") && l.includes('modelroll_class="5xx"') && l.includes('modelroll_variant="canary"'),
      );
    expect(envoy5xx.map((l) => Number(l.split(" ").at(-1))).reduce((a, b) => a + b, 0)).toBe(200);
  });
});
