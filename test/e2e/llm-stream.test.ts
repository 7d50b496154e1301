// Streamed LLM answers on real Envoy, driven by the official `openai` client: through the filter the client gets
// every byte the model sent, streamed and not, while the filter counts streams, chunks, time to first token,
// time per output token, tokens, finish reasons, cut-off streams and the assembled message's schema verdict.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, waitFor } from "./harness.ts";
import { llmSeries, type LlmStack, startStack } from "./llm-harness.ts";

let stack: LlmStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const TOOLS = [{ type: "function" as const, function: { name: "block_card", parameters: { type: "object", properties: { card: { type: "string" } } } } }];
const messages = (i: number) => [{ role: "user" as const, content: `question ${i}: is this payment fraud?` }];

/** Waits until `n` requests of the rollout were answered by the canary, with the given sticky user prefix. */
async function createRollout(name: string, canaryPercent: number, extra: Record<string, unknown> = {}): Promise<void> {
  const created = await api(stack.controller.url, "POST", "/v1/rollouts", {
    name,
    match: { pathPrefix: `/${name}` },
    stickyKey: { header: "x-user-id" },
    canaryPercent,
    output: { schema: { type: "object", required: ["choices"] } },
    ...extra,
  });
  expect(created.status, JSON.stringify(created.json)).toBe(201);
  const probe = new OpenAI({ apiKey: "x", baseURL: `${stack.dataUrl}/${name}/v1`, maxRetries: 0 });
  await waitFor(
    `${name}: the filter to route`,
    async () => {
      const r = await probe.chat.completions.create({ model: "demo-llm", messages: messages(0) }).withResponse();
      return r.response.headers.get("x-rollout-variant") !== null;
    },
    15_000,
    50,
  );
  // The probes' histograms reach the admin endpoint at Envoy's next stats flush: wait for it, so later deltas are the test's own.
  await waitFor(
    `${name}: the probes' histograms`,
    async () => {
      for (const v of ["stable", "canary"]) {
        const s = await llmSeries(stack, name, v);
        if ((s.modelroll_completion_tokens_count ?? 0) !== (s["modelroll_outputs{schema=valid}"] ?? 0)) return false;
      }
      return true;
    },
    15_000,
    100,
  );
}

/** Raw bytes of a completion id's answer as the client got them vs as the server that answered sent them. */
function sentBy(id: string): Buffer | undefined {
  return stack.stable.sentBytes(id) ?? stack.canary.sentBytes(id);
}

describe("streamed LLM answers through the filter, with the openai client", () => {
  it("delivers every byte unchanged, streamed and not, and the client reads the same as a direct call", async () => {
    await createRollout("chat", 50);
    const via = new OpenAI({ apiKey: "x", baseURL: `${stack.dataUrl}/chat/v1`, maxRetries: 0, defaultHeaders: { "x-user-id": "alice" } });
    const direct = new OpenAI({ apiKey: "x", baseURL: `${stack.stable.url}/v1`, maxRetries: 0 });
    for (const stream of [false, true]) {
      for (const tools of [undefined, TOOLS]) {
        const body = {
          model: "demo-llm",
          messages: messages(1),
          stream,
          ...(stream ? { stream_options: { include_usage: true } } : {}),
          ...(tools ? { tools } : {}),
        };
        // Raw: the bytes the client received through Envoy are the bytes the model server sent.
        const raw = await via.chat.completions.create(body as never).asResponse();
        const bytes = Buffer.from(await raw.arrayBuffer());
        const id = /"id":"(chatcmpl-[^"]+)"/.exec(bytes.toString("utf8"))?.[1] ?? "";
        expect(sentBy(id), `stream=${stream} tools=${tools !== undefined}: bytes of ${id}`).toEqual(bytes);
        // Parsed by the client: the same answer as a direct call, but for id and created.
        const read = async (client: OpenAI) => {
          if (!stream) {
            const a = await client.chat.completions.create(body as never);
            return JSON.stringify({ ...(a as object), id: "", created: 0, system_fingerprint: "" });
          }
          const parts: unknown[] = [];
          for await (const c of (await client.chat.completions.create(body as never)) as unknown as AsyncIterable<Record<string, unknown>>)
            parts.push({ ...c, id: "", created: 0, system_fingerprint: "" });
          return JSON.stringify(parts);
        };
        const [throughFilter, straight] = [await read(via), await read(direct)];
        // alice is on one variant; the direct call goes to stable: their texts match since the demo's text depends on the prompt only.
        const same = (t: string) => t.replace(/call_v\d_\d+/g, "call_");
        expect(same(throughFilter)).toBe(same(straight));
      }
    }
  });

  it("counts streams, chunks, TTFT, TPOT, tokens and finish reasons per variant; the schema sees the assembled message", async () => {
    await createRollout("counts", 50);
    const before = { stable: await llmSeries(stack, "counts", "stable"), canary: await llmSeries(stack, "counts", "canary") };
    const n = 40;
    const seen = { stable: 0, canary: 0 };
    let chunks = 0;
    for (let i = 0; i < n; i++) {
      const client = new OpenAI({ apiKey: "x", baseURL: `${stack.dataUrl}/counts/v1`, maxRetries: 0, defaultHeaders: { "x-user-id": `u-${i}` } });
      const { data, response } = await client.chat.completions
        .create({ model: "demo-llm", messages: messages(i), stream: true, stream_options: { include_usage: true }, ...(i % 4 === 0 ? { tools: TOOLS } : {}) })
        .withResponse();
      for await (const _ of data) chunks++;
      seen[response.headers.get("x-rollout-variant") as "stable" | "canary"]++;
    }
    expect(seen.stable + seen.canary).toBe(n);
    expect(Math.min(seen.stable, seen.canary)).toBeGreaterThan(0);
    let d: Record<string, Record<string, number>> = {};
    await waitFor(
      "the stream counters",
      async () => {
        d = {};
        for (const v of ["stable", "canary"] as const) {
          const now = await llmSeries(stack, "counts", v);
          d[v] = Object.fromEntries(Object.entries(now).map(([k, x]) => [k, x - (before[v][k] ?? 0)]));
        }
        // Histograms reach the admin endpoint at Envoy's stats flush, counters at once: wait for both.
        const of = (v: "stable" | "canary", k: string) => d[v]?.[k] ?? 0;
        return (["stable", "canary"] as const).every((v) => of(v, "modelroll_streams") === seen[v] && of(v, "modelroll_tpot_latency_us_count") === seen[v]);
      },
      10_000,
      100,
    ).catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(d)} (seen ${JSON.stringify(seen)})`);
    });
    const total = (k: string) => (d.stable?.[k] ?? 0) + (d.canary?.[k] ?? 0);
    // Every chunk the client read is a chunk the filter counted (the client skips none of the demo's).
    expect(total("modelroll_stream_chunks")).toBe(chunks);
    expect(total("modelroll_ttft_latency_us_count")).toBe(n);
    expect(total("modelroll_tpot_latency_us_count")).toBe(n);
    expect(total("modelroll_finish_tool_calls")).toBe(n / 4);
    expect(total("modelroll_finish_stop")).toBe((3 * n) / 4);
    expect(total("modelroll_stream_cut_off")).toBe(0);
    expect(total("modelroll_stream_malformed")).toBe(0);
    expect(total("modelroll_completion_tokens_count")).toBe(n);
    expect(total("modelroll_outputs{schema=valid}")).toBe(n);
    // First tokens came after the server's 20 ms wait.
    expect(total("modelroll_ttft_latency_us_sum") / n).toBeGreaterThanOrEqual(20_000);
  });

  it("counts a cut-off stream and one reset mid-way; the client still gets what the server sent", async () => {
    await createRollout("cuts", 0);
    const before = await llmSeries(stack, "cuts", "stable");
    await fetch(`${stack.stable.url}/__demo/behavior`, { method: "PUT", body: JSON.stringify({ cutOffRate: 1 }) });
    try {
      const client = new OpenAI({ apiKey: "x", baseURL: `${stack.dataUrl}/cuts/v1`, maxRetries: 0, defaultHeaders: { "x-user-id": "bob" } });
      const raw = await client.chat.completions.create({ model: "demo-llm", messages: messages(7), stream: true }).asResponse();
      const bytes = Buffer.from(await raw.arrayBuffer());
      expect(bytes.toString()).not.toContain("[DONE]");
      const id = /"id":"(chatcmpl-[^"]+)"/.exec(bytes.toString("utf8"))?.[1] ?? "";
      expect(sentBy(id)).toEqual(bytes);
    } finally {
      await fetch(`${stack.stable.url}/__demo/behavior`, { method: "PUT", body: JSON.stringify({ cutOffRate: 0, firstTokenMs: 20 }) });
    }
    // The client gives up after the first chunk: Envoy resets the stream, the filter counts it cut off.
    const abort = new AbortController();
    const res = await fetch(`${stack.dataUrl}/cuts/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-user-id": "bob" },
      body: JSON.stringify({ model: "demo-llm", messages: messages(8), stream: true }),
      signal: abort.signal,
    });
    const reader = res.body?.getReader();
    await reader?.read();
    abort.abort();
    let d: Record<string, number> = {};
    await waitFor(
      "two cut-off streams",
      async () => {
        const now = await llmSeries(stack, "cuts", "stable");
        d = Object.fromEntries(Object.entries(now).map(([k, x]) => [k, x - (before[k] ?? 0)]));
        return (d.modelroll_stream_cut_off ?? 0) >= 2;
      },
      10_000,
      100,
    ).catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(d)}`);
    });
    expect(d.modelroll_stream_cut_off).toBe(2);
  });

  it("reads NDJSON streams the same way: one chunk a line, cut off only without a finish reason", async () => {
    await createRollout("lines", 0);
    const before = await llmSeries(stack, "lines", "stable");
    await fetch(`${stack.stable.url}/__demo/behavior`, { method: "PUT", body: JSON.stringify({ ndjson: true }) });
    let text = "";
    try {
      const res = await fetch(`${stack.dataUrl}/lines/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-user-id": "carol" },
        body: JSON.stringify({ model: "demo-llm", messages: messages(9), stream: true, stream_options: { include_usage: true } }),
      });
      expect(res.headers.get("content-type")).toBe("application/x-ndjson");
      text = await res.text();
    } finally {
      await fetch(`${stack.stable.url}/__demo/behavior`, { method: "PUT", body: JSON.stringify({ ndjson: false }) });
    }
    const lines = text.trim().split("\n");
    let d: Record<string, number> = {};
    await waitFor(
      "the NDJSON stream's counters",
      async () => {
        const now = await llmSeries(stack, "lines", "stable");
        d = Object.fromEntries(Object.entries(now).map(([k, x]) => [k, x - (before[k] ?? 0)]));
        return (d.modelroll_streams ?? 0) === 1 && (d.modelroll_ttft_latency_us_count ?? 0) === 1;
      },
      15_000,
      100,
    ).catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(d)}`);
    });
    expect(d).toMatchObject({ modelroll_stream_chunks: lines.length, modelroll_finish_stop: 1, "modelroll_outputs{schema=valid}": 1 });
    expect(d.modelroll_stream_cut_off ?? 0).toBe(0);
  });
});
