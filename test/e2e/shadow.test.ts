// Shadow traffic on real Envoy: the filter mirrors a sticky sample to the "shadow" cluster, never delays
// or fails the primary, and compares the two answers whichever arrives first.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startModelServer } from "../../controller/src/demo/model-server.ts";
import { api, send, sendMany, startStack, waitFor, waitForRolloutActive, type Reply, type Stack } from "./harness.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

async function behave(server: { url: string }, behavior: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${server.url}/__demo/behavior`, {
    method: "PUT",
    body: JSON.stringify({ errorRate: 0, latencyMs: 0, labelShift: 0, garbage: false, ...behavior }),
  });
  expect(res.status).toBe(200);
}

/** The filter's shadow counters for a rollout, straight from Envoy's admin (overall slice). */
async function shadowStats(rollout: string): Promise<Record<string, number>> {
  const text = await (
    await fetch(
      `${stack.adminUrl}/stats?filter=${encodeURIComponent(`^wasmcustom\\.modelroll\\.rollout\\.${rollout}\\.variant\\.shadow\\.[a-z_]+$|^wasmcustom\\.modelroll\\.rollout\\.${rollout}\\.variant\\.shadow\\.class\\.`)}`,
    )
  ).text();
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = /\.variant\.shadow\.(.+): (\d+)$/.exec(line.trim());
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

function minus(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(after)) out[k] = after[k] - (before[k] ?? 0);
  return out;
}

async function createShadowed(name: string, shadow: Record<string, unknown>, canaryPercent = 0): Promise<string> {
  const created = await api(stack.controller!.url, "POST", "/v1/rollouts", {
    name,
    match: { pathPrefix: `/${name}` },
    stickyKey: { header: "x-user-id" },
    canaryPercent,
    shadow,
  });
  expect(created.status, JSON.stringify(created.json)).toBe(201);
  await waitForRolloutActive(`${stack.dataUrl}/${name}`);
  return `${stack.dataUrl}/${name}/predict`;
}

const allOk = (replies: Reply[]) => replies.every((r) => r.status === 200 && r.modelVersion === "v1");

describe("shadow traffic", () => {
  it("mirrors a sticky sample with method, path, headers and body, marked as shadow, and compares answers", async () => {
    const url = await createShadowed("mirror", { percent: 30 });
    await new Promise((r) => setTimeout(r, 300)); // let the probes' mirrored calls finish before the snapshot
    const before = stack.shadow.mirrored();
    const base = await shadowStats("mirror");
    const n = 1000;
    const replies = await sendMany(
      url,
      n,
      (i) => ({ "x-user-id": `m-${i}`, "x-tenant": "acme" }),
      16,
      (i) => JSON.stringify({ features: [i] }),
    );
    expect(allOk(replies)).toBe(true);
    let stats: Record<string, number> = {};
    await waitFor(
      "every mirrored call compared",
      async () => {
        stats = minus(await shadowStats("mirror"), base);
        return stats.requests > 0 && stats.status_match + stats.status_mismatch === stats.requests;
      },
      10_000,
      100,
    );
    const mirrored = stack.shadow.mirrored() - before;
    console.log(`shadow 30%: mirrored ${mirrored} of ${n}; filter stats ${JSON.stringify(stats)}`);
    // Sticky sample: 30% of keys within the 99.9% binomial interval, and every mirrored call reached the shadow.
    const sd = Math.sqrt(n * 0.3 * 0.7);
    expect(stats.requests).toBeGreaterThan(n * 0.3 - 3.29 * sd);
    expect(stats.requests).toBeLessThan(n * 0.3 + 3.29 * sd);
    expect(mirrored).toBe(stats.requests);
    // Same demo model logic on both sides: every prediction agrees, confidence delta 0.
    expect(stats.prediction_agree).toBe(stats.requests);
    expect(stats.prediction_disagree ?? 0).toBe(0);
    expect(stats["class.2xx.responses"]).toBe(stats.requests);

    // The same keys are mirrored again (sticky): a second pass mirrors exactly as many.
    const again = stack.shadow.mirrored();
    await sendMany(url, n, (i) => ({ "x-user-id": `m-${i}` }), 16);
    await waitFor("second pass mirrored", async () => stack.shadow.mirrored() - again === stats.requests, 10_000, 100);
  });

  it("copies method, path, query, headers and body, adds the shadow marker, and drops the variant header", async () => {
    await createShadowed("copy", { percent: 100 });
    const before = stack.shadow.mirrored();
    const body = JSON.stringify({ features: [3, 1, 4, 1, 5], note: "ünïcode" });
    const reply = await send(`${stack.dataUrl}/copy/score?explain=1`, { "x-user-id": "copy-1", "x-tenant-tier": "pro" }, body);
    expect(reply.status).toBe(200);
    await waitFor("the mirrored request", async () => stack.shadow.mirrored() > before, 5000, 20);
    const got = stack.shadow.lastMirrored()!;
    expect(got.method).toBe("POST");
    expect(got.url).toBe("/copy/score?explain=1");
    expect(got.body).toBe(body);
    expect(got.headers["x-tenant-tier"]).toBe("pro");
    expect(got.headers["x-user-id"]).toBe("copy-1");
    expect(got.headers["x-modelroll-shadow"]).toBe("copy");
    expect(got.headers["x-rollout-variant"]).toBeUndefined();
  });

  it("does not mirror bodies over the limit, and counts them", async () => {
    const url = await createShadowed("large", { percent: 100, maxBodyBytes: 100 });
    await new Promise((r) => setTimeout(r, 300));
    const base = await shadowStats("large");
    const replies = await sendMany(
      url,
      20,
      (i) => ({ "x-user-id": `l-${i}` }),
      4,
      (i) => JSON.stringify({ pad: "x".repeat(i % 2 === 0 ? 10 : 500) }),
    );
    expect(allOk(replies)).toBe(true);
    let stats: Record<string, number> = {};
    await waitFor("small bodies mirrored", async () => ((stats = minus(await shadowStats("large"), base)).status_match ?? 0) >= 10, 5000, 50);
    expect(stats.skipped_large_body).toBe(10);
    expect(stats.requests).toBe(10);
  });

  it("counts disagreeing predictions and answers that are not JSON", async () => {
    const url = await createShadowed("disagree", { percent: 100 });
    await new Promise((r) => setTimeout(r, 300));
    const base = await shadowStats("disagree");
    await behave(stack.shadow, { labelShift: 1 });
    try {
      expect(allOk(await sendMany(url, 100, (i) => ({ "x-user-id": `d-${i}` }), 8))).toBe(true);
      await waitFor("disagreements", async () => (minus(await shadowStats("disagree"), base).prediction_disagree ?? 0) >= 100, 10_000, 100);
      await behave(stack.shadow, { garbage: true });
      expect(allOk(await sendMany(url, 50, (i) => ({ "x-user-id": `d-${i}` }), 8))).toBe(true);
      let stats: Record<string, number> = {};
      await waitFor("missing predictions", async () => ((stats = minus(await shadowStats("disagree"), base)).prediction_missing ?? 0) >= 50, 10_000, 100);
      console.log(`disagreeing, then garbage shadow: ${JSON.stringify(stats)}`);
      expect(stats.prediction_disagree).toBe(100);
      expect(stats.prediction_missing).toBe(50);
      expect(stats.status_match).toBe(150);
      // Through the controller: the probes agreed, the 100 shifted answers disagreed.
      const shadow = (await api(stack.controller!.url, "GET", "/v1/rollouts/disagree/stats")).json.variants.shadow;
      console.log("shadow comparison through the API:", JSON.stringify(shadow.comparison));
      const c = shadow.comparison;
      expect(c.compared).toBe(base.status_match + 150);
      expect(c.predictionMissing).toBe(50);
      expect(c.predictionAgreementRate).toBeCloseTo(base.prediction_agree / (base.prediction_agree + 100), 10);
    } finally {
      await behave(stack.shadow, {});
    }
  });

  it("a slow shadow (2 s) delays nothing, and is compared after the client is gone", async () => {
    const url = await createShadowed("slow", { percent: 100, timeoutMs: 5000 });
    const warm = await sendMany(url, 40, (i) => ({ "x-user-id": `w-${i}` }), 4);
    expect(allOk(warm)).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    const base = await shadowStats("slow");
    await behave(stack.shadow, { latencyMs: 2000 });
    try {
      const replies = await sendMany(url, 40, (i) => ({ "x-user-id": `s-${i}` }), 4);
      expect(allOk(replies)).toBe(true);
      // Order, not a wall-clock threshold: when the client has all 40 answers, the shadow answers (2 s each)
      // have not all been compared yet. Had the primary waited for its shadow, every comparison would come
      // before its client's answer. What a slow shadow costs the primary is measured by npm run bench:shadow.
      const whenClientDone = minus(await shadowStats("slow"), base);
      expect(whenClientDone.status_match ?? 0).toBeLessThan(40);
      let stats: Record<string, number> = {};
      await waitFor("late shadow answers compared", async () => ((stats = minus(await shadowStats("slow"), base)).status_match ?? 0) >= 40, 15_000, 100);
      expect(stats.prediction_agree).toBe(40);
      expect(stats.requests).toBe(40);
      expect(stats.incomplete ?? 0).toBe(0);
    } finally {
      await behave(stack.shadow, {});
    }
  });

  it("a shadow that is down changes nothing for the client and is counted", async () => {
    const created = await api(stack.controller!.url, "POST", "/v1/rollouts", {
      name: "down",
      match: { pathPrefix: "/down" },
      stickyKey: { header: "x-user-id" },
      canaryPercent: 0,
      shadow: { percent: 100, cluster: "shadow" },
    });
    expect(created.status).toBe(201);
    await waitForRolloutActive(`${stack.dataUrl}/down`);
    await new Promise((r) => setTimeout(r, 300));
    const base = await shadowStats("down");
    const shadowPort = stack.shadow.port;
    await stack.shadow.close();
    try {
      const replies = await sendMany(`${stack.dataUrl}/down/predict`, 100, (i) => ({ "x-user-id": `x-${i}` }), 8);
      expect(allOk(replies)).toBe(true);
      let stats: Record<string, number> = {};
      await waitFor("failed shadow calls", async () => ((stats = minus(await shadowStats("down"), base)).status_mismatch ?? 0) >= 100, 10_000, 100).catch(
        (e) => {
          throw new Error(`${e.message}: ${JSON.stringify(stats)}`);
        },
      );
      console.log(`shadow down: ${JSON.stringify(stats)}`);
      expect(stats.status_mismatch).toBe(100);
      expect(stats["class.2xx.responses"]).toBe(0);
      const rollout = (await api(stack.controller!.url, "GET", "/v1/rollouts/down/stats")).json;
      expect(rollout.variants.stable.responses["5xx"] + rollout.variants.stable.responses.local).toBe(0);
    } finally {
      stack.shadow = await startModelServer({ version: "v3", port: shadowPort });
    }
  });

  it("caps mirrored calls in flight per worker and counts what the cap drops", async () => {
    const url = await createShadowed("capped", { percent: 100, maxInFlight: 2, timeoutMs: 3000 });
    await new Promise((r) => setTimeout(r, 300));
    const base = await shadowStats("capped");
    await behave(stack.shadow, { latencyMs: 400 });
    try {
      const replies = await sendMany(url, 64, (i) => ({ "x-user-id": `c-${i}` }), 16);
      expect(allOk(replies)).toBe(true);
      let stats: Record<string, number> = {};
      await waitFor(
        "capped calls answered",
        async () => {
          stats = minus(await shadowStats("capped"), base);
          return (stats.dropped ?? 0) > 0 && stats.status_match === stats.requests;
        },
        10_000,
        100,
      );
      console.log(`cap 2 per worker, 64 requests: ${JSON.stringify(stats)}`);
      expect(stats.requests + stats.dropped).toBe(64);
      // 2 Envoy workers x 2 in flight: at most 4 calls at once while each takes 400 ms.
      expect(stats.requests).toBeLessThan(64);
    } finally {
      await behave(stack.shadow, {});
    }
  });

  it("rollback stops mirroring at once", async () => {
    const url = await createShadowed("stopme", { percent: 100 }, 50);
    const rb = await api(stack.controller!.url, "POST", "/v1/rollouts/stopme/rollback");
    expect(rb.json.shadowPercent).toBe(0);
    expect(rb.json.canaryPercent).toBe(0);
    await waitFor(
      "rollback applied",
      async () => (await sendMany(url, 8, (i) => ({ "x-user-id": `r-${i}` }), 4)).every((r) => r.variant === "stable"),
      5000,
      10,
    );
    const before = stack.shadow.mirrored();
    expect(allOk(await sendMany(url, 50, (i) => ({ "x-user-id": `r-${i}` }), 8))).toBe(true);
    expect(stack.shadow.mirrored() - before).toBe(0);
  });
});
