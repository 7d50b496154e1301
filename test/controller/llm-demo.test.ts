// The demo LLM server (controller/src/demo/llm-model.ts) as the official `openai` client sees it: streamed and
// not, usage, tool calls, and each misbehaviour it can be told to show.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LlmServer, startLlmServer } from "../../controller/src/demo/llm-model.ts";

let server: LlmServer;
let client: OpenAI;

const put = (body: unknown) => fetch(`${server.url}/__demo/behavior`, { method: "PUT", body: JSON.stringify(body) });
const TOOLS = [
  {
    type: "function" as const,
    function: {
      name: "block_card",
      parameters: { type: "object", properties: { card: { type: "string" }, days: { type: "integer" }, reason: { enum: ["fraud", "lost"] } } },
    },
  },
];

beforeAll(async () => {
  server = await startLlmServer({ version: "v1", behavior: { firstTokenMs: 0, tokenMs: 0 } });
  client = new OpenAI({ apiKey: "demo", baseURL: `${server.url}/v1`, maxRetries: 0 });
});
afterAll(() => server.close());

describe("demo LLM server", () => {
  it("answers a plain chat completion with usage and the requested model", async () => {
    const answer = await client.chat.completions.create({ model: "demo-llm", messages: [{ role: "user", content: "hi" }] });
    expect(answer.model).toBe("demo-llm");
    expect(answer.choices[0]?.finish_reason).toBe("stop");
    expect(answer.choices[0]?.message.content?.split(" ").length).toBe(16);
    expect(answer.usage?.completion_tokens).toBe(16);
    expect(answer.usage?.prompt_tokens).toBeGreaterThan(0);
  });

  it("streams the same text, then the finish reason, then usage when asked", async () => {
    const plain = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "same" }] });
    const stream = await client.chat.completions.create({
      model: "m",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "same" }],
    });
    let text = "";
    const finishes: string[] = [];
    let usage: OpenAI.CompletionUsage | null | undefined = null;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta.content ?? "";
      if (chunk.choices[0]?.finish_reason) finishes.push(chunk.choices[0].finish_reason);
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(plain.choices[0]?.message.content);
    expect(finishes).toEqual(["stop"]);
    expect(usage?.completion_tokens).toBe(16);
    // The role chunk, 16 tokens, the finish chunk, the usage chunk.
    expect(chunks).toBe(19);
  });

  it("calls the first tool offered, its arguments JSON of the parameters' types, in pieces when streamed", async () => {
    const plain = await client.chat.completions.create({ model: "m", tools: TOOLS, messages: [{ role: "user", content: "block it" }] });
    expect(plain.choices[0]?.finish_reason).toBe("tool_calls");
    const call = plain.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === "function" ? JSON.parse(call.function.arguments) : null).toEqual({ card: "demo", days: 1, reason: "fraud" });
    const stream = await client.chat.completions.create({ model: "m", stream: true, tools: TOOLS, messages: [{ role: "user", content: "block it" }] });
    let args = "";
    let pieces = 0;
    for await (const chunk of stream) {
      for (const c of chunk.choices[0]?.delta.tool_calls ?? []) {
        pieces++;
        args += c.function?.arguments ?? "";
      }
    }
    expect(pieces).toBeGreaterThan(1);
    expect(JSON.parse(args)).toEqual({ card: "demo", days: 1, reason: "fraud" });
  });

  it("breaks tool-call JSON, cuts streams off, and lengthens answers when told, per model too", async () => {
    expect((await put({ brokenToolCallRate: 1 })).status).toBe(200);
    const broken = await client.chat.completions.create({ model: "m", tools: TOOLS, messages: [{ role: "user", content: "x" }] });
    const call = broken.choices[0]?.message.tool_calls?.[0];
    expect(() => JSON.parse(call?.type === "function" ? call.function.arguments : "")).toThrow();
    expect(server.brokenToolCalls()).toBe(1);

    await put({ brokenToolCallRate: 0, cutOffRate: 1 });
    const raw = await fetch(`${server.url}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model: "m", stream: true, messages: [] }) });
    const text = await raw.text();
    expect(text).not.toContain("[DONE]");
    expect(text).not.toContain('"finish_reason":"stop"');
    expect(server.cutOff()).toBe(1);

    await put({ cutOffRate: 0, models: { "m-long": { answerTokens: 32 } } });
    const long = await client.chat.completions.create({ model: "m-long", messages: [{ role: "user", content: "x" }] });
    const short = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "x" }] });
    expect([long.usage?.completion_tokens, short.usage?.completion_tokens]).toEqual([32, 16]);
  });

  it("streams NDJSON when told: one chunk a line, no [DONE]", async () => {
    await put({ ndjson: true });
    const raw = await fetch(`${server.url}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model: "m", stream: true, messages: [] }) });
    expect(raw.headers.get("content-type")).toBe("application/x-ndjson");
    const lines = (await raw.text()).trim().split("\n");
    expect(lines.map((l) => (JSON.parse(l) as { object: string }).object)).toEqual(Array(18).fill("chat.completion.chunk"));
    await put({ ndjson: false });
  });

  it("refuses a bad behaviour with every problem and changes nothing", async () => {
    const before = await (await fetch(`${server.url}/__demo/behavior`)).json();
    const res = await put({ firstTokenMs: -1, cutOffRate: 2, nope: 1, models: { a: { answerTokens: 1.5 } } });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { details: Array<{ path: string }> };
    expect(body.details.map((d) => d.path).sort()).toEqual(["/cutOffRate", "/firstTokenMs", "/models/a/answerTokens", "/nope"]);
    expect(await (await fetch(`${server.url}/__demo/behavior`)).json()).toEqual(before);
  });
});
