// The filter's streamed-answer reader (filter/llm-stream.ts, llm-message.ts) through build/filter-testing.wasm:
// OpenAI SSE, NDJSON (OpenAI and Ollama lines), tool calls by index, timing, and hostile input (chunks split
// anywhere, mid-line and mid-UTF-8, over-long lines, missing [DONE], garbage).
import { beforeAll, describe, expect, it } from "vitest";
import { compiledText, type FilterTesting, loadFilterTesting } from "./schema-harness.ts";

let filter: FilterTesting;
beforeAll(async () => {
  filter = await loadFilterTesting();
});

interface Summary {
  chunks: number;
  malformed: number;
  done: boolean;
  tokenChunks: number;
  cutOff: boolean;
  finish: string;
  finishIndex: number;
  ttftUs: number;
  tpotUs: number;
  model: string;
  content: string;
  tools: Array<{ index: number; id: string; name: string; arguments: string }>;
  promptTokens: number | null;
  completionTokens: number | null;
  overflowed: boolean;
  verdict: string;
}

const SSE = 1;
const NDJSON = 2;
const enc = new TextEncoder();

function read(kind: number, body: string | Uint8Array, splits: number[] = [], limit = 65536, schema = ""): Summary {
  const bytes = typeof body === "string" ? enc.encode(body) : body;
  return JSON.parse(filter.str("llmStream", kind, bytes, splits.join(","), limit, schema)) as Summary;
}

const chunk = (delta: Record<string, unknown>, finish: string | null = null, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    id: "c1",
    object: "chat.completion.chunk",
    created: 1,
    model: "demo-llm",
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...extra,
  });
const usage = JSON.stringify({
  id: "c1",
  object: "chat.completion.chunk",
  created: 1,
  model: "demo-llm",
  choices: [],
  usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
});
const sse = (lines: string[], done = true) => `${lines.map((l) => `data: ${l}\n\n`).join("")}${done ? "data: [DONE]\n\n" : ""}`;

const TEXT = sse([
  chunk({ role: "assistant", content: "" }),
  chunk({ content: "héllo" }),
  chunk({ content: " 日本" }),
  chunk({ content: " 🎉" }),
  chunk({}, "stop"),
  usage,
]);

describe("streamed answers: SSE", () => {
  it("assembles the content, finish reason, usage and model of an OpenAI stream", () => {
    const s = read(SSE, TEXT);
    expect(s).toMatchObject({ chunks: 6, malformed: 0, done: true, tokenChunks: 3, cutOff: false, finish: "stop", finishIndex: 0, model: "demo-llm" });
    expect(s.content).toBe("héllo 日本 🎉");
    expect([s.promptTokens, s.completionTokens]).toEqual([7, 3]);
  });

  it("reads the same whatever the chunking: every split point (mid-line, mid-UTF-8) and one byte at a time", () => {
    const whole = read(SSE, TEXT);
    const bytes = enc.encode(TEXT);
    for (let at = 1; at < bytes.length; at++) {
      const s = read(SSE, bytes, [at]);
      expect({ ...s, ttftUs: 0, tpotUs: 0 }, `split at ${at}`).toEqual({ ...whole, ttftUs: 0, tpotUs: 0 });
    }
    const bytewise = read(
      SSE,
      bytes,
      Array.from({ length: bytes.length - 1 }, (_, i) => i + 1),
    );
    expect({ ...bytewise, ttftUs: 0, tpotUs: 0 }).toEqual({ ...whole, ttftUs: 0, tpotUs: 0 });
  });

  it("times the first token from the request and the tokens after it (usage's count when given, else chunks)", () => {
    // Chunk i arrives (i + 1) ms after the request: role at 1 ms, tokens at 2, 3, 4 ms.
    const lines = [chunk({ role: "assistant", content: "" }), chunk({ content: "a" }), chunk({ content: "b" }), chunk({ content: "c" }), chunk({}, "stop")];
    const body = sse(lines);
    const at = (n: number) => enc.encode(sse(lines.slice(0, n), false)).length;
    const splits = [at(1), at(2), at(3), at(4)];
    const s = read(SSE, body, splits);
    expect(s.ttftUs).toBe(2000);
    // Three token chunks, 2 ms from the first to the last: 1 ms a token.
    expect(s.tpotUs).toBe(1000);
    // With usage saying 5 completion tokens (several tokens a chunk), 2 ms over 4 tokens.
    const withUsage = sse([...lines, usage.replace('"completion_tokens":3', '"completion_tokens":5')]);
    expect(read(SSE, withUsage, splits).tpotUs).toBe(500);
  });

  it("counts a stream cut off: no [DONE], or no finish reason", () => {
    expect(read(SSE, sse([chunk({ content: "a" }), chunk({}, "stop")], false))).toMatchObject({ cutOff: true, done: false, finish: "stop" });
    expect(read(SSE, sse([chunk({ content: "a" })]))).toMatchObject({ cutOff: true, done: true, finish: "" });
    expect(read(SSE, `data: ${chunk({ content: "a" })}\n\ndata: ${chunk({ content: "b" }).slice(0, 20)}`)).toMatchObject({
      cutOff: true,
      malformed: 1,
      content: "a",
    });
  });

  it("assembles tool calls by index, arguments in pieces, two calls interleaved", () => {
    const call = (index: number, fn: Record<string, unknown>, id?: string) =>
      chunk({ tool_calls: [{ index, ...(id ? { id, type: "function" } : {}), function: fn }] });
    const s = read(
      SSE,
      sse([
        chunk({ role: "assistant", content: null }),
        call(0, { name: "block_card", arguments: "" }, "call_a"),
        call(1, { name: "notify", arguments: '{"to":' }, "call_b"),
        call(0, { arguments: '{"card":"4' }),
        call(0, { arguments: '2"}' }),
        call(1, { arguments: '"ops"}' }),
        chunk({}, "tool_calls"),
      ]),
    );
    expect(s.tools).toEqual([
      { index: 0, id: "call_a", name: "block_card", arguments: '{"card":"42"}' },
      { index: 1, id: "call_b", name: "notify", arguments: '{"to":"ops"}' },
    ]);
    expect(s).toMatchObject({ finish: "tool_calls", finishIndex: 2, tokenChunks: 5, cutOff: false });
  });

  it("ignores comments, other SSE fields and CRLF line ends; [DONE] with or without the space", () => {
    const body = `: keep-alive\r\nevent: message\r\nid: 1\r\ndata:${chunk({ content: "x" })}\r\n\r\nretry: 10\r\ndata: ${chunk({}, "length")}\r\n\r\ndata:[DONE]\r\n\r\n`;
    expect(read(SSE, body)).toMatchObject({ chunks: 2, malformed: 0, content: "x", finish: "length", finishIndex: 1, done: true, cutOff: false });
  });
});

describe("streamed answers: hostile input never traps, is counted", () => {
  it("skips a line longer than the limit (one malformed chunk) and reads on", () => {
    const huge = chunk({ content: "z".repeat(5000) });
    const s = read(SSE, sse([chunk({ content: "a" }), huge, chunk({ content: "b" }), chunk({}, "stop")]), [10, 300, 2000], 1024);
    expect(s).toMatchObject({ malformed: 1, content: "ab", cutOff: false });
  });

  it("stops keeping text past the limit (overflowed: too_large) but still counts and times the stream", () => {
    const s = read(
      SSE,
      sse([chunk({ content: "a".repeat(600) }), chunk({ content: "b".repeat(600) }), chunk({}, "stop")]),
      [],
      1000,
      compiledText({ type: "object" }),
    );
    expect(s).toMatchObject({ overflowed: true, tokenChunks: 2, finish: "stop", cutOff: false, verdict: "too_large" });
  });

  it("counts not-JSON, wrong-shape, invalid UTF-8 and too-deep chunks as malformed", () => {
    const bad = enc.encode(`data: {"choices":[{"delta":{"content":"\xff"}}]}\n\n`);
    bad[bad.indexOf(0xc3)] = 0xff; // "\xff" encodes as C3 BF; a lone 0xFF is invalid UTF-8
    const deep = `${"[".repeat(40)}${"]".repeat(40)}`;
    const body = `data: not json\n\ndata: [1,2]\n\ndata: {"error":{"message":"overloaded"}}\n\ndata: {"choices":"x"}\n\ndata: ${deep}\n\n`;
    const s = read(SSE, body);
    expect(s).toMatchObject({ chunks: 5, malformed: 5, tokenChunks: 0, cutOff: true, ttftUs: -1, tpotUs: -1 });
    expect(read(SSE, bad)).toMatchObject({ chunks: 1, malformed: 1 });
    expect(read(SSE, "")).toMatchObject({ chunks: 0, cutOff: true });
    expect(read(SSE, "\n\n\n\xff\xfe")).toMatchObject({ chunks: 0, malformed: 0, cutOff: true });
  });
});

describe("streamed answers: NDJSON", () => {
  it("reads OpenAI chunks one a line; cut off only without a finish reason", () => {
    const body = [chunk({ content: "a" }), chunk({ content: "b" }), chunk({}, "stop"), usage].join("\n");
    expect(read(NDJSON, `${body}\n`)).toMatchObject({ chunks: 4, content: "ab", cutOff: false, completionTokens: 3 });
    // The last line without its newline is read at the end.
    expect(read(NDJSON, body)).toMatchObject({ chunks: 4, cutOff: false });
    expect(read(NDJSON, `${chunk({ content: "a" })}\n`)).toMatchObject({ cutOff: true });
  });

  it("reads Ollama's lines: message.content, done, done_reason, eval counts", () => {
    const body = [
      JSON.stringify({ model: "llama3", created_at: "x", message: { role: "assistant", content: "Hi" }, done: false }),
      JSON.stringify({ model: "llama3", created_at: "x", message: { role: "assistant", content: " there" }, done: false }),
      JSON.stringify({
        model: "llama3",
        created_at: "x",
        message: { role: "assistant", content: "" },
        done: true,
        done_reason: "length",
        prompt_eval_count: 9,
        eval_count: 2,
      }),
    ].join("\n");
    expect(read(NDJSON, body)).toMatchObject({
      content: "Hi there",
      finish: "length",
      finishIndex: 1,
      promptTokens: 9,
      completionTokens: 2,
      cutOff: false,
      model: "llama3",
    });
  });
});

describe("streamed answers: the assembled message is what the output schema sees", () => {
  const schema = compiledText({
    type: "object",
    required: ["choices"],
    properties: {
      choices: {
        type: "array",
        items: {
          type: "object",
          required: ["message"],
          properties: { message: { type: "object", required: ["content"], properties: { content: { type: "string", maxLength: 12 } } } },
        },
      },
    },
  });

  it("passes or fails on the message, and a malformed chunk makes the verdict not_json", () => {
    expect(read(SSE, TEXT, [], 65536, schema).verdict).toBe("valid");
    expect(read(SSE, sse([chunk({ content: "far too long an answer" }), chunk({}, "stop")]), [], 65536, schema).verdict).toBe("bad_length");
    expect(read(SSE, `data: {oops\n\n${sse([chunk({ content: "ok" }), chunk({}, "stop")])}`, [], 65536, schema).verdict).toBe("not_json");
  });

  it("keeps top-level extras (e.g. citations) for the analysis, and knows the stream formats by content-type", () => {
    const cited = sse([chunk({ content: "x" }, null, { citations: ["https://a"] }), chunk({}, "stop")]);
    const withCitations = compiledText({ type: "object", required: ["citations"] });
    expect(read(SSE, cited, [], 65536, withCitations).verdict).toBe("valid");
    expect(read(SSE, TEXT, [], 65536, withCitations).verdict).toBe("missing_field");
    const kinds = ["text/event-stream; charset=utf-8", "Application/X-NDJSON", "application/jsonl", "application/json", "text/plain"].map((t) =>
      filter.call("llmStreamKind", t),
    );
    expect(kinds).toEqual([1, 2, 2, 0, 0]);
  });
});
