// The filter's pure LLM parts (build/filter-testing.wasm): the request body's top-level model and its rewrite
// (filter/model-route.ts), judging tool calls against their declared parameter schemas (filter/tool-calls.ts), and
// array parts in answer paths (filter/output.ts), plus the rollout table's new fields.
import { beforeAll, describe, expect, it } from "vitest";
import { compileOutputSchema } from "../../controller/src/schema/compile.ts";
import { loadFilterTesting, type FilterTesting } from "./filter-testing.ts";

let filter: FilterTesting;
const str = (name: string, ...args: string[]): string => filter.str(name, ...args);

beforeAll(async () => {
  filter = await loadFilterTesting();
});

describe("model route: the request body's model", () => {
  it("finds the top-level model string wherever it is, skipping nested ones", () => {
    const body = JSON.stringify({ messages: [{ role: "user", content: 'say "model": "x"', model: "inner" }], model: "fraud-llm", stream: false });
    const found = str("modelOf", body);
    expect(found.startsWith("fraud-llm@")).toBe(true);
    const [start, end] = found.split("@")[1]!.split("-").map(Number);
    expect(body.slice(start, end)).toBe('"fraud-llm"');
  });

  it("reads escapes, takes the last of repeated keys, and refuses what is not a JSON object with a model string", () => {
    expect(str("modelOf", '{"model":"a\\u002Db"}').split("@")[0]).toBe("a-b");
    expect(str("modelOf", '{"model":"a","model":"b"}').split("@")[0]).toBe("b");
    expect(str("modelOf", '{"model":"a","model":7}')).toBe("none");
    expect(str("modelOf", '{"model":1}')).toBe("none");
    expect(str("modelOf", '["model","x"]')).toBe("none");
    expect(str("modelOf", '{"model":"x"')).toBe("none");
    expect(str("modelOf", '{"model":"x"} trailing')).toBe("none");
    expect(str("modelOf", "")).toBe("none");
    expect(str("modelOf", '{"messages":[]}')).toBe("none");
  });

  it("rewrites only the model's value, byte for byte elsewhere", () => {
    const body = '{ "model" : "fraud-llm", "messages": [{"role":"user","content":"héllo \\"model\\""}], "temperature": 0.70 }';
    const out = str("modelRewritten", body, "fraud-llm-lora-v2");
    expect(out).toBe(body.replace('"fraud-llm"', '"fraud-llm-lora-v2"'));
    expect(JSON.parse(out).model).toBe("fraud-llm-lora-v2");
    expect(str("modelRewritten", '{"messages":[]}', "x")).toBe("none");
  });

  it("the rollout table takes model, refusing names that cannot be written into a JSON string and limits past 512 KiB", () => {
    const rollout = { name: "fraud-llm", pathPrefix: "/v1/chat/completions", stickyHeader: "x-user-id", canaryBasisPoints: 500 };
    const table = (model: unknown) => JSON.stringify({ epoch: "e", version: 1, rollouts: [{ ...rollout, model }] });
    expect(str("rolloutTableSummary", table({ name: "fraud-llm", canaryModel: "fraud-llm-lora-v2", canaryCluster: false, maxBodyBytes: 65536 }))).toMatch(
      /^v1 /,
    );
    expect(str("rolloutTableSummary", table({ name: 'a"b' }))).toMatch(/rollouts\[0\]\.model\.name: must be 1-256 printable/);
    expect(str("rolloutTableSummary", table({ name: "a", maxBodyBytes: 600000 }))).toMatch(
      /rollouts\[0\]\.model\.maxBodyBytes: must be an integer 1\.\.524288/,
    );
    expect(str("rolloutTableSummary", table({ canaryModel: "b" }))).toMatch(/rollouts\[0\]\.model\.name: is required/);
  });
});

describe("tool calls", () => {
  const schema = (s: unknown): string => {
    const r = compileOutputSchema(s);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    return JSON.stringify(r.compiled);
  };
  const tools = JSON.stringify({
    lookup_account: schema({
      type: "object",
      required: ["account_id"],
      properties: { account_id: { type: "string", minLength: 3 } },
      additionalProperties: false,
    }),
    refund: schema({ type: "object", required: ["amount"], properties: { amount: { type: "number", minimum: 0 } } }),
  });
  const call = (name: string, args: unknown) => ({ id: "c", type: "function", function: { name, arguments: args } });
  const answer = (...calls: unknown[]) =>
    JSON.stringify({ model: "m", choices: [{ index: 0, message: { role: "assistant", content: null, tool_calls: calls } }] });

  it("judges each call: valid, arguments not JSON, failing the tool's schema, unknown tool", () => {
    const verdicts = str(
      "toolCallVerdicts",
      tools,
      answer(
        call("lookup_account", '{"account_id":"acc-1"}'),
        call("lookup_account", '{"account_id": "acc-1"'),
        call("lookup_account", '{"account_id":"a"}'),
        call("refund", '{"amount":-3}'),
        call("transfer", '{"amount":3}'),
        call("refund", { amount: 3 }),
      ),
    );
    expect(verdicts).toBe("valid,invalid_json,schema_failed,schema_failed,unknown_tool,invalid_json");
  });

  it("counts nothing in an answer without tool calls, and every choice's calls otherwise", () => {
    expect(str("toolCallVerdicts", tools, JSON.stringify({ choices: [{ message: { content: "hi" } }] }))).toBe("");
    const two = JSON.stringify({
      choices: [{ message: { tool_calls: [call("refund", '{"amount":1}')] } }, { message: { tool_calls: [call("refund", "[]")] } }],
    });
    expect(str("toolCallVerdicts", tools, two)).toBe("valid,schema_failed");
  });

  it("refuses a tool whose schema is not a compiled schema, naming the tool", () => {
    expect(str("toolCallVerdicts", JSON.stringify({ refund: "{}" }), answer())).toMatch(/^error: tools\.refund: /);
  });
});

describe("answer paths with array parts", () => {
  it("choices.0.message.content reads the first choice's text", () => {
    const a = JSON.stringify({ choices: [{ message: { content: "approve" } }, { message: { content: "deny" } }] });
    expect(str("predictionAt", "choices.0.message.content", a)).toBe("s:approve");
    expect(str("predictionAt", "choices.1.message.content", a)).toBe("s:deny");
    expect(str("predictionAt", "choices.2.message.content", a)).toBe("none");
    expect(str("predictionAt", "choices.x.message.content", a)).toBe("none");
  });
});
