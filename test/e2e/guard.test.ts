// Canary output guard on real Envoy: a canary answer that fails the output schema is replaced by the
// stable model's answer to the same request; valid answers and guard-less rollouts pass untouched.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startModelServer } from "../../controller/src/demo/model-server.ts";
import { api, send, sendMany, startStack, waitFor, waitForRolloutActive, type Stack } from "./harness.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const schema = {
  type: "object",
  required: ["prediction", "confidence"],
  properties: { prediction: { enum: ["approve", "review", "decline"] }, confidence: { type: "number", minimum: 0, maximum: 1 } },
};
const broken = '{"prediction":"APPROVE!!","confidence":7}';

async function canaryAnswers(body: string | null): Promise<void> {
  const fixedResponse = body === null ? null : { headers: { "content-type": "application/json" }, bodyBase64: Buffer.from(body).toString("base64") };
  const res = await fetch(`${stack.canary.url}/__demo/behavior`, { method: "PUT", body: JSON.stringify({ fixedResponse }) });
  expect(res.status).toBe(200);
}

async function guardCounts(rollout: string): Promise<{ replaced: number; failed: number; skipped: number }> {
  return (
    (await api(stack.controller!.url, "GET", `/v1/rollouts/${rollout}/stats`)).json.variants.canary.output?.guard ?? { replaced: 0, failed: 0, skipped: 0 }
  );
}

describe("canary output guard", () => {
  it("is refused without a schema to judge by", async () => {
    const res = await api(stack.controller!.url, "POST", "/v1/rollouts", {
      name: "noschema",
      match: { pathPrefix: "/noschema" },
      stickyKey: { header: "x-user-id" },
      output: { guard: true },
    });
    expect(res.status).toBe(400);
    expect(res.json.details).toEqual([{ path: "/output/guard", reason: "the guard judges answers by the output schema: give output.schema" }]);
  });

  it("replaces a canary answer that fails the schema with stable's answer to the same request", async () => {
    await api(stack.controller!.url, "POST", "/v1/rollouts", {
      name: "guarded",
      match: { pathPrefix: "/guarded" },
      stickyKey: { header: "x-user-id" },
      canaryPercent: 100,
      output: { schema, guard: true },
    });
    await waitForRolloutActive(`${stack.dataUrl}/guarded`);
    const before = await guardCounts("guarded");
    const stableBefore = stack.stable.served();
    await canaryAnswers(broken);
    try {
      const body = '{"features":[9,9,9]}';
      const replies = await sendMany(
        `${stack.dataUrl}/guarded/predict`,
        20,
        (i) => ({ "x-user-id": `g-${i}` }),
        4,
        () => body,
      );
      for (const r of replies) {
        expect(r.status).toBe(200);
        expect(r.variant).toBe("canary");
        expect(r.modelVersion).toBe("v1"); // stable's answer
        expect(JSON.parse(r.body).prediction).toMatch(/^(approve|review|decline)$/);
      }
      const one = await fetch(`${stack.dataUrl}/guarded/predict`, { method: "POST", headers: { "x-user-id": "g-x" }, body });
      expect(one.headers.get("x-modelroll-guard")).toBe("replaced");
      expect(Number(one.headers.get("content-length"))).toBe(Buffer.byteLength(await one.text()));
      expect(stack.stable.served() - stableBefore).toBe(21);
    } finally {
      await canaryAnswers(null);
    }
    let after = before;
    await waitFor("guard counters", async () => (after = await guardCounts("guarded")).replaced - before.replaced === 21, 10_000, 100);
    // Valid canary answers pass untouched.
    const valid = await send(`${stack.dataUrl}/guarded/predict`, { "x-user-id": "g-valid" });
    expect(valid.modelVersion).toBe("v2");
    const schemaStats = (await api(stack.controller!.url, "GET", "/v1/rollouts/guarded/stats")).json.variants.canary.output.schema;
    console.log(`guard: ${JSON.stringify(after)}; canary schema ${JSON.stringify(schemaStats)}`);
    expect(schemaStats.failures.not_allowed).toBeGreaterThanOrEqual(21); // the canary's own answers are still counted as they were
  });

  it("lets the canary answer through, counted, when stable cannot answer", async () => {
    await api(stack.controller!.url, "POST", "/v1/rollouts", {
      name: "noback",
      match: { pathPrefix: "/noback" },
      stickyKey: { header: "x-user-id" },
      canaryPercent: 100,
      output: { schema, guard: true },
    });
    await waitForRolloutActive(`${stack.dataUrl}/noback`);
    const before = await guardCounts("noback");
    const stablePort = stack.stable.port;
    await canaryAnswers(broken);
    await stack.stable.close();
    try {
      const r = await send(`${stack.dataUrl}/noback/predict`, { "x-user-id": "n-1" });
      expect(r.status).toBe(200);
      expect(r.body).toBe(broken);
    } finally {
      stack.stable = await startModelServer({ version: "v1", port: stablePort });
      await canaryAnswers(null);
    }
    await waitFor("guard_failed", async () => (await guardCounts("noback")).failed - before.failed === 1, 10_000, 100);
  });

  it("does nothing without guard: true", async () => {
    await api(stack.controller!.url, "POST", "/v1/rollouts", {
      name: "unguarded",
      match: { pathPrefix: "/unguarded" },
      stickyKey: { header: "x-user-id" },
      canaryPercent: 100,
      output: { schema },
    });
    await waitForRolloutActive(`${stack.dataUrl}/unguarded`);
    await canaryAnswers(broken);
    try {
      const r = await send(`${stack.dataUrl}/unguarded/predict`, { "x-user-id": "u-1" });
      expect(r.body).toBe(broken);
    } finally {
      await canaryAnswers(null);
    }
  });
});
