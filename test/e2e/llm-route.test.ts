// Rollouts chosen by the request's `model` and canaries selected by rewriting it, and tool-call validation, on real
// Envoy with the demo LLM model, driven by the official `openai` client. One /v1/chat/completions path carries two
// models with a rollout each; the adapter canary of one reaches its weight with every user sticky (the filter's own
// hash says who is in), its requests reaching stable's servers as the adapter's model name; a canary whose tool calls
// carry 5% broken arguments is rolled back by the engine naming tool_call_valid_rate.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLlmServer, type LlmServer } from "../../controller/src/demo/llm-model.ts";
import { loadFilterTesting, type FilterTesting } from "../unit/filter-testing.ts";
import { api, decisionsOf, waitFor } from "./harness.ts";
import { counters, startStack, type RouteStack } from "./llm-route-harness.ts";

let stable: LlmServer;
let canary: LlmServer;
let stack: RouteStack;
let filter: FilterTesting;
let client: OpenAI;
beforeAll(async () => {
  const behavior = { firstTokenMs: 1, tokenMs: 0, answerTokens: 4 };
  stable = await startLlmServer({ version: "v1", behavior });
  canary = await startLlmServer({ version: "v2", behavior });
  stack = await startStack({ stable, canary });
  filter = await loadFilterTesting();
  client = new OpenAI({ apiKey: "x", baseURL: `${stack.dataUrl}/v1`, maxRetries: 0 });
});
afterAll(async () => {
  await stack?.stop();
  await stable?.close();
  await canary?.close();
});

const PATH = "/v1/chat/completions";
const ask = (model: string, user: string, content = "is this payment fraud?") =>
  client.chat.completions.create({ model, messages: [{ role: "user", content }] }, { headers: { "x-user-id": user } }).withResponse();
const variantOf = (r: { response: Response }) => r.response.headers.get("x-rollout-variant");
const bucket = (rollout: string, user: string): number => filter.call("bucketFor", rollout, user) as number;

async function create(spec: Record<string, unknown>): Promise<void> {
  const created = await api(stack.controller.url, "POST", "/v1/rollouts", { stickyKey: { header: "x-user-id" }, ...spec });
  expect(created.status, JSON.stringify(created.json)).toBe(201);
}

/** Runs `f` over `n` items, `concurrency` at a time; results in order. */
async function pool<T>(n: number, concurrency: number, f: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await f(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return out;
}

describe("canaries by model name", () => {
  it("an adapter canary selected by rewriting model reaches its weight with sticky users, beside another model's rollout on the same path", async () => {
    await create({
      name: "fraud-llm",
      match: { pathPrefix: PATH, model: "fraud-llm", maxBodyBytes: 4096 },
      modelRewrite: { canary: "fraud-llm-lora-v2" },
      canaryPercent: 20,
    });
    await create({ name: "support-llm", match: { pathPrefix: PATH, model: "support-llm" }, canaryPercent: 100 });
    await waitFor(
      "both rollouts in the filter",
      async () => variantOf(await ask("fraud-llm", "probe")) !== null && variantOf(await ask("support-llm", "probe")) !== null,
      15_000,
      50,
    );

    const users = Array.from({ length: 200 }, (_, i) => `user-${i}`);
    const round = async (weightBp: number) => {
      const before = { fraud: await counters(stack, "fraud-llm", "canary"), canaryServed: canary.served() };
      // Two requests per user, interleaved with the other model's.
      const replies = await pool(users.length * 2, 16, async (i) => {
        const user = users[i % users.length] as string;
        if (i % 10 === 0) await ask("support-llm", user);
        return { user, reply: await ask("fraud-llm", user) };
      });
      const canaryServedByFraud = canary.served() - before.canaryServed - Math.ceil((users.length * 2) / 10);
      const byUser = new Map<string, Set<string>>();
      let canaryRequests = 0;
      for (const { user, reply } of replies) {
        const variant = variantOf(reply) ?? "none";
        byUser.set(user, (byUser.get(user) ?? new Set()).add(variant));
        // The rewrite reached the model server: the answer names the model it was asked for.
        expect(reply.data.model, `${user} (${variant})`).toBe(variant === "canary" ? "fraud-llm-lora-v2" : "fraud-llm");
        if (variant === "canary") canaryRequests++;
      }
      // Sticky, and exactly the users whose bucket is under the weight.
      for (const user of users) expect([...(byUser.get(user) ?? [])], user).toEqual([bucket("fraud-llm", user) < weightBp ? "canary" : "stable"]);
      const after = await counters(stack, "fraud-llm", "canary");
      const delta = (k: string) => (after[k] ?? 0) - (before.fraud[k] ?? 0);
      expect(delta("model_rewritten")).toBe(canaryRequests);
      expect(delta("answers{model=canary}")).toBe(canaryRequests);
      expect(delta("answers{model=other}") + delta("answers{model=stable}")).toBe(0);
      // Adapter canaries go where stable's requests go: the canary cluster saw only support-llm's.
      expect(canaryServedByFraud).toBe(0);
      return canaryRequests / replies.length;
    };
    const at20 = await round(2000);
    const put = await api(stack.controller.url, "PUT", "/v1/rollouts/fraud-llm/weight", { canaryPercent: 50 });
    expect(put.status, JSON.stringify(put.json)).toBe(200);
    // A user between the two weights moves to the canary once the filter has the new weight.
    const mover = users.find((u) => bucket("fraud-llm", u) >= 2000 && bucket("fraud-llm", u) < 5000) as string;
    await waitFor("the new weight in the filter", async () => variantOf(await ask("fraud-llm", mover)) === "canary", 15_000, 50);
    const at50 = await round(5000);
    console.log(`model rewrite: canary share ${(at20 * 100).toFixed(1)}% at weight 20%, ${(at50 * 100).toFixed(1)}% at 50% (200 users, 2 requests each)`);
    expect(at50).toBeGreaterThan(at20);
  });

  it("fails open to stable, counted, when the body is over the limit or names no model; other models pass untouched", async () => {
    const before = await counters(stack, "fraud-llm", "stable");
    const supportBefore = await counters(stack, "support-llm", "stable");
    // Over fraud-llm's 4 KiB: read (support-llm's limit is 64 KiB), then left to stable as fraud-llm's too large.
    const big = await ask("fraud-llm", "user-1", "x".repeat(5000));
    expect(variantOf(big)).toBeNull();
    expect(big.data.model).toBe("fraud-llm");
    // Over every limit of the path: not read; counted on both model rollouts, as either could have been its.
    const huge = await ask("fraud-llm", "user-1", "x".repeat(70_000));
    expect(variantOf(huge)).toBeNull();
    expect(huge.data.model).toBe("fraud-llm");
    const other = await ask("other-llm", "user-1");
    expect(variantOf(other)).toBeNull();
    const notJson = await fetch(`${stack.dataUrl}${PATH}`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-user-id": "u" },
      body: "model=fraud-llm",
    });
    expect(notJson.headers.get("x-rollout-variant")).toBeNull();
    const after = await counters(stack, "fraud-llm", "stable");
    expect((after.model_route_too_large ?? 0) - (before.model_route_too_large ?? 0)).toBe(2);
    expect((after.model_route_unreadable ?? 0) - (before.model_route_unreadable ?? 0)).toBe(1);
    const supportAfter = await counters(stack, "support-llm", "stable");
    expect((supportAfter.model_route_too_large ?? 0) - (supportBefore.model_route_too_large ?? 0)).toBe(1);
    expect((supportAfter.model_route_unreadable ?? 0) - (supportBefore.model_route_unreadable ?? 0)).toBe(1);
  });
});

describe("tool calls", () => {
  it("rolls back a canary whose tool calls carry 5% broken arguments, naming the tool-call gate", async () => {
    const ctl = stack.controller.url;
    const model = "fraud-llm-tools";
    const res = await fetch(`${canary.url}/__demo/behavior`, { method: "PUT", body: JSON.stringify({ models: { [model]: { brokenToolCallRate: 0.05 } } }) });
    expect(res.status).toBe(200);
    const parameters = { type: "object", required: ["card"], properties: { card: { type: "string" } }, additionalProperties: false };
    await create({
      name: "tools-llm",
      match: { pathPrefix: PATH, model },
      owner: "team-fraud",
      rollbackCondition: "tool calls break",
      output: { tools: { block_card: parameters } },
      stages: [{ canaryPercent: 50, minDurationSeconds: 1, minRequests: 100, deadlineSeconds: 120 }, 100],
      promotion_gates: { tool_call_valid_rate: { minimum: 0.99 } },
    });
    await waitFor("the canary stage", async () => (await api(ctl, "GET", "/v1/rollouts/tools-llm")).json.phase === "Canary", 10_000, 50);
    const tools = [{ type: "function" as const, function: { name: "block_card", parameters } }];
    let sent = 0;
    let phase = "Canary";
    const deadline = performance.now() + 90_000;
    while (phase === "Canary" && performance.now() < deadline) {
      await pool(100, 16, async (i) => {
        const headers = { "x-user-id": `t${sent + i}` };
        const body = { model, messages: [{ role: "user" as const, content: `block card ${i}?` }], tools };
        // Half streamed: the filter assembles the call's argument pieces before judging them.
        if (i % 2 === 0) return client.chat.completions.create(body, { headers });
        const stream = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } }, { headers });
        for await (const _ of stream) {
          // read to the end
        }
        return null;
      });
      sent += 100;
      phase = (await api(ctl, "GET", "/v1/rollouts/tools-llm")).json.phase;
    }
    const last = (await decisionsOf(ctl, "tools-llm")).at(-1);
    const c = await counters(stack, "tools-llm", "canary");
    const s = await counters(stack, "tools-llm", "stable");
    console.log(
      `5% broken tool calls: ${phase} after ${sent} requests; canary ${c.tool_calls} calls (${c.tool_calls_invalid_json ?? 0} invalid JSON), stable ${s.tool_calls} (${s.tool_calls_invalid_json ?? 0}); ${last?.reason}`.slice(
        0,
        1000,
      ),
    );
    expect(phase).toBe("RolledBack");
    expect(last?.reason).toContain("valid tool-call rate");
    expect(last?.measurements.find((m) => m.status === "Failed")?.gate).toBe("tool_call_valid_rate");
    expect(c.tool_calls_invalid_json).toBeGreaterThan(0);
    expect(c.tool_calls).toBe((c.tool_calls_valid ?? 0) + (c.tool_calls_invalid_json ?? 0));
    expect(s.tool_calls_invalid_json ?? 0).toBe(0);
    expect(s.tool_calls).toBe(s.tool_calls_valid);
    expect((c.tool_calls_schema_failed ?? 0) + (c.tool_calls_unknown_tool ?? 0)).toBe(0);
    // The same, stable vs canary, as /stats shows it (modelroll stats and the API).
    const stats = (await api(ctl, "GET", "/v1/rollouts/tools-llm/stats")).json.variants;
    expect(stats.canary.output.toolCalls).toMatchObject({ invalidJson: expect.any(Number), schemaFailed: 0, unknownTool: 0 });
    expect(stats.canary.output.toolCalls.validRate).toBeLessThan(1);
    expect(stats.stable.output.toolCalls).toMatchObject({ invalidJson: 0, validRate: 1 });
  });
});
