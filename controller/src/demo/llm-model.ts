// A demo LLM server speaking the OpenAI chat-completions protocol (POST /v1/chat/completions), streamed
// (`"stream": true`: Server-Sent Events, `data: {chunk}` ... `data: [DONE]`) and not, with `usage` (always in a
// plain answer; in a stream when `stream_options.include_usage` asks), tool calls (when the request offers
// `tools`), and misbehaviour set at start or at run time through PUT /__demo/behavior (GET shows it), so tests
// and demos can make a canary slow to its first token, long-winded, sloppy with tool-call JSON or cut off.
//
// A PUT body changes only the fields it names (llm-behavior.ts checks it; a bad one is a 400, nothing changes):
//   {"firstTokenMs": 130}                     the first content token 130 ms after the request (default 100)
//   {"tokenMs": 10, "answerTokens": 40}       one token every 10 ms, 40 tokens per answer
//   {"brokenToolCallRate": 0.05}              5% of tool calls carry arguments that are not JSON
//   {"cutOffRate": 0.1}                       10% of streams stop halfway: no finish_reason, no [DONE]
//   {"models": {"fraud-llm-lora-v2": {"firstTokenMs": 200}}}   per requested `model` (a LoRA adapter's own pace)
// The answer's `model` is the request's (or the server's `modelName` when the request names none); its text
// depends only on the prompt, so two servers answer a prompt alike unless told otherwise.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type LlmBehavior, type LlmFields, fieldsFor, DEFAULT_LLM_BEHAVIOR, parseLlmBehaviorUpdate } from "./llm-behavior.ts";

export type { LlmBehavior, LlmFields } from "./llm-behavior.ts";

export interface LlmServer {
  url: string;
  port: number;
  version: string;
  behavior: LlmBehavior;
  /** Chat completions answered so far (streamed or not). */
  served(): number;
  /** Streams cut off on purpose so far (cutOffRate). */
  cutOff(): number;
  /** Tool calls sent with broken arguments so far (brokenToolCallRate). */
  brokenToolCalls(): number;
  /** The body bytes sent for a completion id, for the last 32 answers (tests compare them with what a client got). */
  sentBytes(id: string): Buffer | undefined;
  close(): Promise<void>;
}

interface ChatRequest {
  model?: unknown;
  messages?: unknown;
  stream?: unknown;
  stream_options?: { include_usage?: unknown } | null;
  tools?: unknown;
  tool_choice?: unknown;
}

interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

const WORDS = ["the", "model", "answers", "with", "a", "short", "and", "steady", "reply", "about", "your", "request", "today"];

function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** The answer's tokens: `count` words picked by the prompt, each with its leading space but the first. */
export function answerTokens(prompt: string, count: number): string[] {
  const h = hash32(prompt);
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(`${i === 0 ? "" : " "}${WORDS[(h + i * 7) % WORDS.length]}`);
  return out;
}

/** About 4 characters a token, as tokenizers average on English. */
const promptTokensOf = (prompt: string): number => Math.max(1, Math.ceil(prompt.length / 4));

/** Arguments for a tool from its JSON Schema parameters: a value of each property's type. */
function argumentsFor(parameters: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const props = (parameters as { properties?: Record<string, { type?: string; enum?: unknown[] }> } | null)?.properties ?? {};
  for (const [name, schema] of Object.entries(props)) {
    if (Array.isArray(schema?.enum) && schema.enum.length > 0) out[name] = schema.enum[0];
    else if (schema?.type === "number" || schema?.type === "integer") out[name] = 1;
    else if (schema?.type === "boolean") out[name] = true;
    else if (schema?.type === "array") out[name] = [];
    else if (schema?.type === "object") out[name] = {};
    else out[name] = "demo";
  }
  return out;
}

/** The tool call this request gets (the first tool offered), or null when it offers none or asks for none. */
function toolCallFor(request: ChatRequest, id: string, broken: boolean): ToolCall | null {
  if (!Array.isArray(request.tools) || request.tools.length === 0 || request.tool_choice === "none") return null;
  const tool = request.tools[0] as { function?: { name?: unknown; parameters?: unknown } };
  const name = typeof tool?.function?.name === "string" ? tool.function.name : "tool";
  const args = JSON.stringify(argumentsFor(tool?.function?.parameters));
  // Broken: the closing brace is missing, as when a model stops early or loses count of its brackets.
  return { id: `call_${id}`, type: "function", function: { name, arguments: broken ? args.slice(0, -1) : args } };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

const sleep = (ms: number) => (ms > 0 ? new Promise<void>((r) => setTimeout(r, ms)) : Promise.resolve());

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): string {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", ...headers }).end(text);
  return text;
}

/** OpenAI's error shape: {"error": {"message", "type", "code"}}. */
const apiError = (message: string, type = "invalid_request_error") => ({ error: { message, type, param: null, code: null } });

export async function startLlmServer(opts: {
  version: string;
  host?: string;
  port?: number;
  /** The answer's `model` when a request names none. */
  modelName?: string;
  behavior?: Partial<LlmBehavior>;
}): Promise<LlmServer> {
  const behavior: LlmBehavior = { ...DEFAULT_LLM_BEHAVIOR, models: {}, ...opts.behavior };
  let served = 0;
  let cutOff = 0;
  let broken = 0;
  let nextId = 0;
  const sockets = new Set<import("node:net").Socket>();
  const sent = new Map<string, Buffer[]>();
  const record = (id: string, text: string) => {
    let parts = sent.get(id);
    if (!parts) {
      parts = [];
      sent.set(id, parts);
      if (sent.size > 32) sent.delete(sent.keys().next().value as string);
    }
    parts.push(Buffer.from(text));
  };

  const chat = async (res: ServerResponse, body: string) => {
    let request: ChatRequest;
    try {
      request = JSON.parse(body) as ChatRequest;
    } catch {
      sendJson(res, 400, apiError("the body is not JSON"));
      return;
    }
    if (typeof request !== "object" || request === null || !Array.isArray(request.messages)) {
      sendJson(res, 400, apiError("'messages' is required: a list of {role, content}"));
      return;
    }
    served++;
    const model = typeof request.model === "string" && request.model !== "" ? request.model : (opts.modelName ?? `demo-llm-${opts.version}`);
    const now: LlmFields = fieldsFor(behavior, model);
    const headers = { "x-model-version": opts.version };
    if (now.errorRate > 0 && Math.random() < now.errorRate) {
      sendJson(res, 500, apiError("the model failed", "server_error"), headers);
      return;
    }
    const prompt = JSON.stringify(request.messages);
    const id = `chatcmpl-${opts.version}-${++nextId}`;
    const created = Math.floor(Date.now() / 1000);
    const isBroken = now.brokenToolCallRate > 0 && Math.random() < now.brokenToolCallRate;
    const call = toolCallFor(request, `${opts.version}_${nextId}`, isBroken);
    if (call !== null && isBroken) broken++;
    const tokens = call === null ? answerTokens(prompt, now.answerTokens) : [];
    const completionTokens = call === null ? tokens.length : promptTokensOf(call.function.arguments);
    const usage = { prompt_tokens: promptTokensOf(prompt), completion_tokens: completionTokens, total_tokens: promptTokensOf(prompt) + completionTokens };
    const finish = call === null ? "stop" : "tool_calls";

    if (request.stream !== true) {
      await sleep(now.firstTokenMs + now.tokenMs * Math.max(0, completionTokens - 1));
      const message =
        call === null
          ? { role: "assistant", content: tokens.join(""), refusal: null }
          : { role: "assistant", content: null, tool_calls: [call], refusal: null };
      const text = sendJson(
        res,
        200,
        {
          id,
          object: "chat.completion",
          created,
          model,
          system_fingerprint: `fp_${opts.version}`,
          choices: [{ index: 0, message, logprobs: null, finish_reason: finish }],
          usage,
        },
        headers,
      );
      record(id, text);
      return;
    }

    const ndjson = now.ndjson;
    res.writeHead(200, {
      "content-type": ndjson ? "application/x-ndjson" : "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      ...headers,
    });
    res.flushHeaders();
    const write = (text: string) => {
      record(id, text);
      res.write(text);
    };
    const send = (chunk: unknown) => write(ndjson ? `${JSON.stringify(chunk)}\n` : `data: ${JSON.stringify(chunk)}\n\n`);
    const chunkOf = (delta: Record<string, unknown>, finishReason: string | null = null) => ({
      id,
      object: "chat.completion.chunk",
      created,
      model,
      system_fingerprint: `fp_${opts.version}`,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    });
    // The role first, at once, as vLLM and OpenAI do; the first content (or tool call) after firstTokenMs.
    send(chunkOf({ role: "assistant", content: "" }));
    const pieces =
      call === null
        ? tokens.map((t) => ({ content: t }))
        : splitArguments(call).map((args, i) => ({
            tool_calls: [
              i === 0
                ? { index: 0, id: call.id, type: "function", function: { name: call.function.name, arguments: args } }
                : { index: 0, function: { arguments: args } },
            ],
          }));
    const cutAt = now.cutOffRate > 0 && Math.random() < now.cutOffRate ? Math.floor(pieces.length / 2) : -1;
    for (let i = 0; i < pieces.length; i++) {
      await sleep(i === 0 ? now.firstTokenMs : now.tokenMs);
      if (res.destroyed) return;
      if (i === cutAt) {
        cutOff++;
        res.end();
        return;
      }
      send(chunkOf(pieces[i] as Record<string, unknown>));
    }
    send(chunkOf({}, finish));
    if (request.stream_options?.include_usage === true)
      send({ id, object: "chat.completion.chunk", created, model, system_fingerprint: `fp_${opts.version}`, choices: [], usage });
    if (!ndjson) write("data: [DONE]\n\n");
    res.end();
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const body = await readBody(req);
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (path === "/__demo/behavior") {
      if (req.method === "PUT") {
        let parsed: unknown;
        try {
          parsed = JSON.parse(body);
        } catch {
          sendJson(res, 400, { error: "llm model server: invalid behavior: (body) is not valid JSON", details: [{ path: "", reason: "is not valid JSON" }] });
          return;
        }
        const result = parseLlmBehaviorUpdate(parsed);
        if (!result.ok) {
          const error = `llm model server: invalid behavior: ${result.problems.map((p) => `${p.path || "(body)"} ${p.reason}`).join("; ")}`;
          sendJson(res, 400, { error, details: result.problems });
          return;
        }
        Object.assign(behavior, result.update);
      }
      sendJson(res, 200, behavior);
      return;
    }
    if (path === "/v1/models" && req.method === "GET") {
      const id = opts.modelName ?? `demo-llm-${opts.version}`;
      sendJson(res, 200, { object: "list", data: [{ id, object: "model", created: 0, owned_by: "modelroll-demo" }] });
      return;
    }
    if (path.endsWith("/chat/completions") && req.method === "POST") {
      await chat(res, body);
      return;
    }
    sendJson(res, 404, apiError(`no route ${req.method} ${path} (this demo serves POST /v1/chat/completions)`));
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  server.on("connection", (s) => {
    s.setNoDelay(true);
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${opts.host ?? "127.0.0.1"}:${port}`,
    port,
    version: opts.version,
    behavior,
    served: () => served,
    cutOff: () => cutOff,
    brokenToolCalls: () => broken,
    sentBytes: (id) => {
      const parts = sent.get(id);
      return parts ? Buffer.concat(parts) : undefined;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A tool call's arguments in the pieces a stream carries them in (about 8 characters each). */
function splitArguments(call: ToolCall): string[] {
  const args = call.function.arguments;
  const out: string[] = [];
  for (let i = 0; i < args.length; i += 8) out.push(args.slice(i, i + 8));
  return out.length > 0 ? out : [""];
}
