// Real Envoy + build/filter.wasm + two demo model servers + the controller, all on 127.0.0.1.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startModelServer } from "../../controller/src/demo/model-server.ts";
import { api, send, sendMany, startStack, waitFor, waitForRolloutActive, type Reply, type Stack } from "./harness.ts";

const Z_999 = 3.2905; // two-sided 99.9% normal quantile

function binomialInterval(n: number, p: number): [number, number] {
  const sd = Math.sqrt(n * p * (1 - p));
  return [n * p - Z_999 * sd, n * p + Z_999 * sd];
}

/** Every reply must come from the model server of the variant the filter names. */
function expectConsistent(replies: Reply[]): void {
  for (const r of replies) {
    expect(r.status).toBe(200);
    expect(r.modelVersion).toBe(r.variant === "canary" ? "v2" : "v1");
  }
}

let stack: Stack;
let ctl: string;

beforeAll(async () => {
  stack = await startStack();
  ctl = stack.controller!.url;
});
afterAll(async () => {
  await stack?.stop();
});

describe("weighted, sticky routing in real Envoy", () => {
  it("sends a 5% share within the 99.9% binomial interval over 10,000 distinct keys", async () => {
    const created = await api(ctl, "POST", "/v1/rollouts", {
      name: "share",
      match: { pathPrefix: "/share" },
      stickyKey: { header: "x-user-id" },
      canaryPercent: 5,
    });
    expect(created.status).toBe(201);
    await waitForRolloutActive(`${stack.dataUrl}/share`);
    const n = 10_000;
    const replies = await sendMany(`${stack.dataUrl}/share/predict`, n, (i) => ({ "x-user-id": `user-${i}` }), 48);
    expectConsistent(replies);
    const canary = replies.filter((r) => r.variant === "canary").length;
    const [lo, hi] = binomialInterval(n, 0.05);
    console.log(`canary share at 5%: ${canary}/${n} (99.9% interval ${lo.toFixed(0)}..${hi.toFixed(0)})`);
    expect(canary).toBeGreaterThanOrEqual(lo);
    expect(canary).toBeLessThanOrEqual(hi);
  });

  it("keeps a key on its variant, and raising 5% -> 25% never moves a canary key back to stable", async () => {
    await api(ctl, "POST", "/v1/rollouts", { name: "sticky", match: { pathPrefix: "/sticky" }, stickyKey: { header: "x-user-id" }, canaryPercent: 5 });
    await waitForRolloutActive(`${stack.dataUrl}/sticky`);
    const keys = 3000;
    const url = `${stack.dataUrl}/sticky/predict`;
    const first = await sendMany(url, keys, (i) => ({ "x-user-id": `k-${i}` }));
    const again = await sendMany(url, keys, (i) => ({ "x-user-id": `k-${i}` }));
    expectConsistent(first);
    expect(again.map((r) => r.variant)).toEqual(first.map((r) => r.variant));

    const raised = await api(ctl, "PUT", "/v1/rollouts/sticky/weight", { canaryPercent: 25 });
    expect(raised.status).toBe(200);
    await waitFor("25% to reach every worker", async () => {
      const probe = await sendMany(url, 400, (i) => ({ "x-user-id": `k-${i}` }), 16);
      return probe.filter((r) => r.variant === "canary").length > 50;
    });
    const after = await sendMany(url, keys, (i) => ({ "x-user-id": `k-${i}` }));
    expectConsistent(after);
    const movedBack = first.filter((r, i) => r.variant === "canary" && after[i].variant !== "canary").length;
    const canaryBefore = first.filter((r) => r.variant === "canary").length;
    const canaryAfter = after.filter((r) => r.variant === "canary").length;
    console.log(`sticky: canary keys ${canaryBefore} at 5% -> ${canaryAfter} at 25%, moved back: ${movedBack}`);
    expect(canaryBefore).toBeGreaterThan(0);
    expect(movedBack).toBe(0);
    const [lo, hi] = binomialInterval(keys, 0.25);
    expect(canaryAfter).toBeGreaterThanOrEqual(lo);
    expect(canaryAfter).toBeLessThanOrEqual(hi);
  });

  it("ignores a client-sent variant header, inside and outside a rollout", async () => {
    await api(ctl, "POST", "/v1/rollouts", { name: "forced", match: { pathPrefix: "/forced" }, stickyKey: { header: "x-user-id" }, canaryPercent: 0 });
    await waitForRolloutActive(`${stack.dataUrl}/forced`);
    const inside = await sendMany(`${stack.dataUrl}/forced/predict`, 200, (i) => ({ "x-user-id": `f-${i}`, "x-rollout-variant": "canary" }));
    expectConsistent(inside);
    expect(inside.every((r) => r.variant === "stable" && r.modelVersion === "v1")).toBe(true);
    const outside = await sendMany(`${stack.dataUrl}/not-a-rollout`, 50, () => ({ "x-rollout-variant": "canary" }));
    expect(outside.every((r) => r.status === 200 && r.modelVersion === "v1" && r.variant === null)).toBe(true);
  });

  it("shows weight changes and rollback in traffic", async () => {
    await api(ctl, "POST", "/v1/rollouts", { name: "flip", match: { pathPrefix: "/flip" }, stickyKey: { header: "x-user-id" }, canaryPercent: 0 });
    await waitForRolloutActive(`${stack.dataUrl}/flip`);
    const url = `${stack.dataUrl}/flip/predict`;
    // Each probe is a burst across both Envoy workers; a change has propagated when a whole burst agrees.
    const allAre = (variant: string) => async () => {
      const burst = await sendMany(url, 16, (i) => ({ "x-user-id": `p-${i}-${Math.random()}` }), 8);
      return burst.every((r) => r.variant === variant && r.modelVersion === (variant === "canary" ? "v2" : "v1"));
    };
    // Each change shows in traffic (the waits are deadlines, not speed assertions: how fast a rollback
    // propagates is measured by bench/routing.ts, npm run bench).
    for (let round = 0; round < 5; round++) {
      expect((await api(ctl, "PUT", "/v1/rollouts/flip/weight", { canaryPercent: 100 })).status).toBe(200);
      await waitFor("100% canary", allAre("canary"), 10_000, 0);
      const rb = await api(ctl, "POST", "/v1/rollouts/flip/rollback");
      expect(rb.status).toBe(200);
      expect(rb.json.canaryPercent).toBe(0);
      await waitFor("rollback to stable", allAre("stable"), 10_000, 0);
    }
  });

  it("counts in /v1/rollouts/{name}/stats exactly what was sent, per variant and class", async () => {
    await api(ctl, "POST", "/v1/rollouts", { name: "counted", match: { pathPrefix: "/counted" }, stickyKey: { header: "x-user-id" }, canaryPercent: 30 });
    await waitForRolloutActive(`${stack.dataUrl}/counted`);
    const before = (await api(ctl, "GET", "/v1/rollouts/counted/stats")).json;
    const replies = await sendMany(`${stack.dataUrl}/counted/predict`, 600, (i) => ({ "x-user-id": `c-${i}` }));
    expectConsistent(replies);
    const sent = { stable: replies.filter((r) => r.variant === "stable").length, canary: replies.filter((r) => r.variant === "canary").length };
    let stats: any;
    // Counters are live; histograms reach the admin endpoint at the next stats flush (1 s), so wait until
    // every counted request also has its latency sample.
    await waitFor(
      "stats to show every request",
      async () => {
        stats = (await api(ctl, "GET", "/v1/rollouts/counted/stats")).json;
        return (["stable", "canary"] as const).every(
          (v) => stats.variants[v].requests - before.variants[v].requests === sent[v] && stats.variants[v].latencyMs.count === stats.variants[v].requests,
        );
      },
      10_000,
      200,
    );
    console.log(`stats: sent stable=${sent.stable} canary=${sent.canary}; controller reports`, JSON.stringify(stats.variants));
    for (const v of ["stable", "canary"] as const) {
      expect(stats.variants[v].requests - before.variants[v].requests).toBe(sent[v]);
      expect(stats.variants[v].responses["2xx"] - before.variants[v].responses["2xx"]).toBe(sent[v]);
      expect(stats.variants[v].responses["2xx"]).toBe(stats.variants[v].requests);
      expect(stats.variants[v].errorRate).toBe(0);
      expect(stats.variants[v].latencyMs.p95).toBeGreaterThan(0);
      expect(stats.variants[v].latencyMs.p95).toBeGreaterThanOrEqual(stats.variants[v].latencyMs.p50);
    }
  });

  it("counts canary 5xx, and Envoy's own replies when the canary is down, as errors", async () => {
    await api(ctl, "POST", "/v1/rollouts", { name: "failing", match: { pathPrefix: "/failing" }, stickyKey: { header: "x-user-id" }, canaryPercent: 100 });
    await waitForRolloutActive(`${stack.dataUrl}/failing`);
    const res = await fetch(`${stack.canary.url}/__demo/behavior`, { method: "PUT", body: JSON.stringify({ errorRate: 1 }) });
    expect(res.status).toBe(200);
    const url = `${stack.dataUrl}/failing/predict`;
    const errors = await sendMany(url, 100, (i) => ({ "x-user-id": `e-${i}` }));
    expect(errors.every((r) => r.status === 500 && r.variant === "canary")).toBe(true);

    const canaryPort = stack.canary.port;
    await stack.canary.close();
    const refused = await sendMany(url, 50, (i) => ({ "x-user-id": `e-${i}` }));
    expect(refused.every((r) => r.status === 503 && r.variant === "canary")).toBe(true);
    stack.canary = await startModelServer({ version: "v2", port: canaryPort });

    let stats: any;
    await waitFor(
      "5xx and local replies in stats",
      async () => {
        stats = (await api(ctl, "GET", "/v1/rollouts/failing/stats")).json;
        return stats.variants.canary.responses["5xx"] >= 100 && stats.variants.canary.responses.local >= 50;
      },
      10_000,
      200,
    );
    const c = stats.variants.canary;
    console.log(`failing canary: responses ${JSON.stringify(c.responses)}, error rate ${c.errorRate}`);
    expect(c.responses["5xx"]).toBe(100);
    expect(c.responses.local).toBe(50);
    const total = Object.values(c.responses as Record<string, number>).reduce((s, x) => s + x, 0);
    expect(c.errorRate).toBeCloseTo(150 / total, 10);
  });
});

describe("fail static when the controller is away", () => {
  it("keeps the last weights while the controller is down, and an Envoy restarted meanwhile sends all to stable", async () => {
    await api(ctl, "POST", "/v1/rollouts", { name: "static", match: { pathPrefix: "/static" }, stickyKey: { header: "x-user-id" }, canaryPercent: 100 });
    const url = `${stack.dataUrl}/static/predict`;
    await waitFor("100% canary", async () => (await sendMany(url, 16, (i) => ({ "x-user-id": `s-${i}` }), 8)).every((r) => r.variant === "canary"));
    await stack.stopController();
    // Long enough for several failed polls and backoffs on every worker.
    await new Promise((r) => setTimeout(r, 2500));
    const whileDown = await sendMany(url, 200, (i) => ({ "x-user-id": `s-${i}` }));
    expectConsistent(whileDown);
    expect(whileDown.every((r) => r.variant === "canary")).toBe(true);
    const failures = await (await fetch(`${stack.adminUrl}/stats?filter=modelroll.config.fetch_failures`)).text();
    console.log(`while the controller was down: ${failures.trim()}`);
    expect(Number(/: (\d+)/.exec(failures)?.[1] ?? "0")).toBeGreaterThan(0);

    await stack.restartEnvoy();
    const afterRestart = await sendMany(url, 200, (i) => ({ "x-user-id": `s-${i}` }));
    expect(afterRestart.every((r) => r.status === 200 && r.modelVersion === "v1")).toBe(true);

    // And when the controller comes back (with no state file it starts empty; test/e2e/restart.test.ts covers resuming) the filter picks it up again.
    await stack.startController();
    const again = await api(stack.controller!.url, "POST", "/v1/rollouts", {
      name: "static",
      match: { pathPrefix: "/static" },
      stickyKey: { header: "x-user-id" },
      canaryPercent: 100,
    });
    expect(again.status).toBe(201);
    await waitFor("the restarted controller's config", async () => (await send(url, { "x-user-id": "s-1" })).variant === "canary", 15_000, 50);
  });
});
