// The LLM parts of a rollout spec through the API: a rollout chosen by the request's model with its canary's model
// rewrite, declared tools, the shadow's noise share and the two LLM gates, each refused with its field when wrong,
// and what the filters are sent (GET /v1/filter-config).
import { describe, expect, it } from "vitest";
import { createRollout, spec, testApp } from "./helpers.ts";
import { renderStats } from "../../controller/src/cli/modelroll/render-misc.ts";
import { paint } from "../../controller/src/cli/modelroll/format.ts";

const chat = (name: string, model: string, extra: Record<string, unknown> = {}) =>
  spec({ name, match: { pathPrefix: "/v1/chat/completions", model }, ...extra });
const accountSchema = { type: "object", required: ["account_id"], properties: { account_id: { type: "string" } }, additionalProperties: false };
const managed = {
  owner: "ml-platform",
  rollbackCondition: "tool calls break",
  stages: ["shadow", 10, 100],
};

describe("model rollouts", () => {
  it("takes many rollouts on one path, one per model, and refuses a second one for the same model", async () => {
    const app = await testApp();
    await createRollout(app, chat("fraud-llm", "fraud-llm", { modelRewrite: { canary: "fraud-llm-lora-v2" }, canaryPercent: 20 }));
    await createRollout(app, chat("support-llm", "support-llm"));
    await createRollout(app, spec({ name: "chat-default", match: { pathPrefix: "/v1/chat/completions" } }));
    const again = await app.inject({ method: "POST", url: "/v1/rollouts", payload: chat("fraud-llm-2", "fraud-llm") });
    expect(again.statusCode).toBe(409);
    expect(again.json().error).toMatch(/pathPrefix \/v1\/chat\/completions \(model fraud-llm\) is held by rollout fraud-llm/);

    const config = (await app.inject({ url: "/v1/filter-config" })).json();
    const byName = Object.fromEntries(config.rollouts.map((r: { name: string }) => [r.name, r]));
    expect(byName["fraud-llm"].model).toEqual({ name: "fraud-llm", maxBodyBytes: 65536, canaryModel: "fraud-llm-lora-v2", canaryCluster: false });
    // The rewrite declares the two models, checked by the answer's own model field.
    expect(byName["fraud-llm"].models).toEqual({ stable: "fraud-llm", canary: "fraud-llm-lora-v2", versionField: "model" });
    expect(byName["support-llm"].model).toEqual({ name: "support-llm", maxBodyBytes: 65536, canaryCluster: true });
    expect(byName["chat-default"].model).toBeUndefined();

    const view = (await app.inject({ url: "/v1/rollouts/fraud-llm" })).json();
    expect(view.spec.match).toEqual({ pathPrefix: "/v1/chat/completions", model: "fraud-llm", maxBodyBytes: 65536 });
    expect(view.spec.modelRewrite).toEqual({ canary: "fraud-llm-lora-v2", canaryCluster: false });
  });

  it("refuses a rewrite without a model to match, a rewrite to the same model, a body limit alone and one past 512 KiB", async () => {
    const app = await testApp();
    const refused = async (body: Record<string, unknown>) => {
      const r = await app.inject({ method: "POST", url: "/v1/rollouts", payload: body });
      expect(r.statusCode).toBe(400);
      return r.json().details.map((d: { path: string }) => d.path);
    };
    expect(await refused(spec({ modelRewrite: { canary: "x" } }))).toEqual(["/modelRewrite"]);
    expect(await refused(chat("a", "m", { modelRewrite: { canary: "m" } }))).toEqual(["/modelRewrite/canary"]);
    expect(await refused(spec({ match: { pathPrefix: "/v1/chat/completions", maxBodyBytes: 1000 } }))).toEqual(["/match/maxBodyBytes"]);
    expect(await refused(spec({ match: { pathPrefix: "/v1/chat/completions", model: "m", maxBodyBytes: 600000 } }))).toEqual(["/match/maxBodyBytes"]);
    expect(await refused(chat("a", 'say "hi"'))).toEqual(["/match/model"]);
  });

  it("a model and a rewrite are fixed for the rollout's life", async () => {
    const app = await testApp();
    await createRollout(app, chat("fraud-llm", "fraud-llm", { modelRewrite: { canary: "fraud-llm-lora-v2" } }));
    const put = await app.inject({
      method: "PUT",
      url: "/v1/rollouts/fraud-llm",
      payload: chat("fraud-llm", "fraud-llm", { modelRewrite: { canary: "fraud-llm-lora-v3" } }),
    });
    expect(put.statusCode).toBe(409);
    expect(JSON.stringify(put.json())).toMatch(/modelRewrite/);
  });
});

describe("tools, noise and the LLM gates", () => {
  it("sends each tool's compiled schema and the noise share to the filters", async () => {
    const app = await testApp();
    await createRollout(
      app,
      chat("fraud-llm", "fraud-llm", {
        canaryPercent: 5,
        output: { tools: { lookup_account: accountSchema } },
        shadow: { percent: 50, noisePercent: 20 },
      }),
    );
    const [r] = (await app.inject({ url: "/v1/filter-config" })).json().rollouts;
    expect(Object.keys(r.output.tools)).toEqual(["lookup_account"]);
    expect(JSON.parse(r.output.tools.lookup_account)).toMatchObject({ v: expect.any(Number) });
    expect(r.shadow).toMatchObject({ basisPoints: 5000, noiseBasisPoints: 2000, noiseCluster: "stable" });
  });

  it("refuses a tool schema outside the subset, naming the tool, and the gates without what they read", async () => {
    const app = await testApp();
    const bad = await app.inject({
      method: "POST",
      url: "/v1/rollouts",
      payload: chat("a", "m", { output: { tools: { lookup: { type: "object", patternProperties: { x: {} } } } } }),
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().details[0].path).toMatch(/^\/output\/tools\/lookup/);

    const gates = await app.inject({
      method: "POST",
      url: "/v1/rollouts",
      payload: chat("b", "m", {
        ...managed,
        shadow: { percent: 10 },
        promotion_gates: { tool_call_valid_rate: { minimum: 0.99 }, shadow_disagreement_excess: { maximum: 0.05 } },
      }),
    });
    expect(gates.statusCode).toBe(400);
    expect(gates.json().details.map((d: { path: string }) => d.path)).toEqual([
      "/promotion_gates/tool_call_valid_rate",
      "/promotion_gates/shadow_disagreement_excess",
    ]);

    const limits = await app.inject({
      method: "POST",
      url: "/v1/rollouts",
      payload: chat("c", "m", {
        ...managed,
        output: { tools: { lookup: accountSchema } },
        shadow: { percent: 10, noisePercent: 20 },
        promotion_gates: { tool_call_valid_rate: { minimum: 1 }, shadow_disagreement_excess: {} },
      }),
    });
    expect(limits.statusCode).toBe(400);
    expect(
      limits
        .json()
        .details.map((d: { path: string }) => d.path)
        .sort(),
    ).toEqual(["/promotion_gates/shadow_disagreement_excess/maximum", "/promotion_gates/tool_call_valid_rate/minimum"]);
  });

  it("accepts both gates with their sources", async () => {
    const app = await testApp();
    const created = await createRollout(
      app,
      chat("fraud-llm", "fraud-llm", {
        ...managed,
        output: { tools: { lookup_account: accountSchema } },
        shadow: { percent: 10, noisePercent: 20 },
        promotion_gates: { tool_call_valid_rate: { minimum: 0.95, maximum_decrease: 0.02 }, shadow_disagreement_excess: { maximum: 0.1 } },
      }),
    );
    expect(created.name).toBe("fraud-llm");
  });
});

describe("modelroll stats", () => {
  it("prints tool calls stable vs canary in a table of their own", () => {
    const variant = (valid: number, invalidJson: number) => ({
      requests: valid + invalidJson,
      responses: { "2xx": valid + invalidJson, "3xx": 0, "4xx": 0, "5xx": 0, local: 0 },
      output: { toolCalls: { count: valid + invalidJson, valid, invalidJson, schemaFailed: 0, unknownTool: 0, validRate: valid / (valid + invalidJson) } },
    });
    const text = renderStats({ variants: { stable: variant(200, 0), canary: variant(95, 5) }, segments: [] }, paint(false));
    const lines = text.split("\n");
    const header = lines.findIndex((l) => l.includes("TOOL CALLS"));
    expect(header).toBeGreaterThan(0);
    expect(lines[header + 1]).toMatch(/overall\s+stable\s+200\s+200\s+0\s+0\s+0\s+100/);
    expect(lines[header + 2]).toMatch(/overall\s+canary\s+100\s+95\s+5\s+0\s+0\s+95/);
  });
});
