// The message a streamed LLM answer assembles to, one chunk at a time: OpenAI chat-completion chunks
// (`choices[].delta.content`, `delta.tool_calls[]` by index with `function.arguments` in pieces, `finish_reason`,
// a final `usage`), legacy completion chunks (`choices[].text`) and Ollama's NDJSON lines (`message.content`,
// `done`, `done_reason`, `prompt_eval_count`, `eval_count`). Pure: no host calls.
//
// For other readers of the answer (tool-call validation): after the stream ends, `AssembledMessage` holds
//   content()            the concatenated content of choice 0
//   toolCalls            choice 0's tool calls in index order, each with id, name and arguments() (the pieces joined)
//   finishReason         "" when the stream never said
//   promptTokens, completionTokens   from usage (NaN when absent)
// and toDoc() shapes it as a non-streamed chat.completion, which the output schema and the analysis read.
import { JsonKind, JsonValue } from "./json";
import { arrayValue, nullValue, numberValue, objectValue, stringValue } from "./json-build";

/** Top-level fields of chunks kept besides the message (e.g. `citations`), at most this many. */
const MAX_EXTRAS: i32 = 16;
/** Tool calls kept per answer; pieces for higher indexes are dropped (counted as overflow). */
const MAX_TOOL_CALLS: i32 = 64;

export const FINISH_NAMES: Array<string> = ["stop", "length", "tool_calls", "content_filter", "other"];

/** The index in FINISH_NAMES of a finish reason ("other" for any unknown one); -1 for none. */
export function finishIndex(reason: string): i32 {
  if (reason.length == 0) return -1;
  for (let i = 0; i < FINISH_NAMES.length - 1; i++) if (FINISH_NAMES[i] == reason) return i;
  // Ollama's and some gateways' words for the same ends.
  if (reason == "eos" || reason == "eos_token" || reason == "stop_sequence" || reason == "end_turn") return 0;
  if (reason == "max_tokens") return 1;
  if (reason == "function_call" || reason == "tool_use") return 2;
  return FINISH_NAMES.length - 1;
}

export class AssembledToolCall {
  id: string = "";
  type: string = "function";
  name: string = "";
  argumentParts: Array<string> = [];
  constructor(public index: i32) {}

  arguments(): string {
    return this.argumentParts.join("");
  }
}

/** What applyChunk learned from one chunk. */
export const CHUNK_MALFORMED: i32 = -1;
export const CHUNK_OTHER: i32 = 0;
/** The chunk carried content or a tool-call piece: a token arrived. */
export const CHUNK_TOKEN: i32 = 1;

export class AssembledMessage {
  id: string = "";
  model: string = "";
  role: string = "assistant";
  contentParts: Array<string> = [];
  toolCalls: Array<AssembledToolCall> = [];
  finishReason: string = "";
  promptTokens: f64 = NaN;
  completionTokens: f64 = NaN;
  totalTokens: f64 = NaN;
  extraKeys: Array<string> = [];
  extraValues: Array<JsonValue> = [];
  /** UTF-16 units of content and arguments kept (the bound is the caller's). */
  keptUnits: i32 = 0;
  /** Content or arguments beyond `limitUnits` were not kept: the assembled message is incomplete. */
  overflowed: bool = false;

  constructor(public limitUnits: i32) {}

  content(): string {
    return this.contentParts.join("");
  }

  toolCall(index: i32): AssembledToolCall | null {
    for (let i = 0; i < this.toolCalls.length; i++) if (this.toolCalls[i].index == index) return this.toolCalls[i];
    return null;
  }

  /** Reads one chunk; returns CHUNK_TOKEN, CHUNK_OTHER, or CHUNK_MALFORMED when it is not of a chunk shape. */
  applyChunk(chunk: JsonValue): i32 {
    if (chunk.kind != JsonKind.Object) return CHUNK_MALFORMED;
    let known = false;
    let token = false;
    for (let i = 0; i < chunk.keys.length; i++) {
      const key = chunk.keys[i];
      const value = chunk.values[i];
      if (key == "choices") {
        if (value.kind != JsonKind.Array) return CHUNK_MALFORMED;
        known = true;
        for (let c = 0; c < value.items.length; c++) {
          const r = this.applyChoice(value.items[c]);
          if (r == CHUNK_MALFORMED) return CHUNK_MALFORMED;
          if (r == CHUNK_TOKEN) token = true;
        }
      } else if (key == "usage") {
        if (value.kind == JsonKind.Null) continue;
        if (value.kind != JsonKind.Object) return CHUNK_MALFORMED;
        known = true;
        this.promptTokens = numberOr(value.get("prompt_tokens"), this.promptTokens);
        this.completionTokens = numberOr(value.get("completion_tokens"), this.completionTokens);
        this.totalTokens = numberOr(value.get("total_tokens"), this.totalTokens);
      } else if (key == "message") {
        // Ollama's NDJSON: {"message": {"role", "content"}, "done": false}
        if (value.kind != JsonKind.Object) return CHUNK_MALFORMED;
        known = true;
        if (this.applyDelta(value)) token = true;
      } else if (key == "done") {
        if (value.kind != JsonKind.Bool) return CHUNK_MALFORMED;
        known = true;
        if (value.bool && this.finishReason.length == 0) {
          const reason = chunk.get("done_reason");
          this.finishReason = reason !== null && reason.kind == JsonKind.String && reason.str.length > 0 ? reason.str : "stop";
        }
      } else if (key == "prompt_eval_count") this.promptTokens = numberOr(value, this.promptTokens);
      else if (key == "eval_count") this.completionTokens = numberOr(value, this.completionTokens);
      else if (key == "id") {
        if (value.kind == JsonKind.String && this.id.length == 0) this.id = value.str;
      } else if (key == "model") {
        if (value.kind == JsonKind.String && this.model.length == 0) this.model = value.str;
      } else if (!isChunkBookkeeping(key)) this.keepExtra(key, value);
    }
    if (!known) return CHUNK_MALFORMED;
    return token ? CHUNK_TOKEN : CHUNK_OTHER;
  }

  /** One element of `choices`: choice 0 is assembled, others only checked for shape. */
  private applyChoice(choice: JsonValue): i32 {
    if (choice.kind != JsonKind.Object) return CHUNK_MALFORMED;
    const index = choice.get("index");
    if (index !== null && (index.kind != JsonKind.Number || index.num != 0)) return index.kind == JsonKind.Number ? CHUNK_OTHER : CHUNK_MALFORMED;
    let token = false;
    const delta = choice.get("delta");
    if (delta !== null && delta.kind != JsonKind.Null) {
      if (delta.kind != JsonKind.Object) return CHUNK_MALFORMED;
      token = this.applyDelta(delta);
    }
    // Legacy completions stream `text` in the choice itself.
    const text = choice.get("text");
    if (text !== null && text.kind == JsonKind.String && text.str.length > 0) {
      this.addContent(text.str);
      token = true;
    }
    const finish = choice.get("finish_reason");
    if (finish !== null && finish.kind == JsonKind.String && finish.str.length > 0) this.finishReason = finish.str;
    return token ? CHUNK_TOKEN : CHUNK_OTHER;
  }

  /** A delta (or Ollama's message): role, content, tool-call pieces. Returns whether a token arrived. */
  private applyDelta(delta: JsonValue): bool {
    let token = false;
    const role = delta.get("role");
    if (role !== null && role.kind == JsonKind.String) this.role = role.str;
    const content = delta.get("content");
    if (content !== null && content.kind == JsonKind.String && content.str.length > 0) {
      this.addContent(content.str);
      token = true;
    }
    const calls = delta.get("tool_calls");
    if (calls !== null && calls.kind == JsonKind.Array) {
      for (let i = 0; i < calls.items.length; i++) if (this.applyToolCall(calls.items[i], i)) token = true;
    }
    return token;
  }

  private applyToolCall(piece: JsonValue, position: i32): bool {
    if (piece.kind != JsonKind.Object) return false;
    const indexValue = piece.get("index");
    const index = indexValue !== null && indexValue.kind == JsonKind.Number && indexValue.num >= 0 && indexValue.num < 1e6 ? <i32>indexValue.num : position;
    let call = this.toolCall(index);
    if (call === null) {
      if (this.toolCalls.length >= MAX_TOOL_CALLS) {
        this.overflowed = true;
        return true;
      }
      call = new AssembledToolCall(index);
      // Kept in index order: pieces arrive in order in practice, so this is an append.
      this.toolCalls.push(call);
      for (let at = this.toolCalls.length - 1; at > 0 && this.toolCalls[at - 1].index > index; at--) {
        this.toolCalls[at] = this.toolCalls[at - 1];
        this.toolCalls[at - 1] = call;
      }
    }
    const id = piece.get("id");
    if (id !== null && id.kind == JsonKind.String && id.str.length > 0) call.id = id.str;
    const type = piece.get("type");
    if (type !== null && type.kind == JsonKind.String) call.type = type.str;
    const fn = piece.get("function");
    if (fn === null || fn.kind != JsonKind.Object) return true;
    const name = fn.get("name");
    if (name !== null && name.kind == JsonKind.String && name.str.length > 0) call.name = name.str;
    const args = fn.get("arguments");
    if (args !== null && args.kind == JsonKind.String && args.str.length > 0 && this.keep(args.str.length)) call.argumentParts.push(args.str);
    return true;
  }

  private addContent(text: string): void {
    if (this.keep(text.length)) this.contentParts.push(text);
  }

  private keep(units: i32): bool {
    if (this.overflowed || this.keptUnits + units > this.limitUnits) {
      this.overflowed = true;
      return false;
    }
    this.keptUnits += units;
    return true;
  }

  private keepExtra(key: string, value: JsonValue): void {
    for (let i = 0; i < this.extraKeys.length; i++) {
      if (this.extraKeys[i] == key) {
        this.extraValues[i] = value;
        return;
      }
    }
    if (this.extraKeys.length >= MAX_EXTRAS) return;
    this.extraKeys.push(key);
    this.extraValues.push(value);
  }

  /**
   * The message as a non-streamed chat.completion:
   *   {"id", "object": "chat.completion", "model", "choices": [{"index": 0, "message": {"role", "content",
   *    "tool_calls"?: [{"id", "type", "function": {"name", "arguments"}}]}, "finish_reason"}], "usage"?, ...extras}
   */
  toDoc(): JsonValue {
    const messageKeys: Array<string> = ["role", "content"];
    const hasContent = this.contentParts.length > 0;
    const messageValues: Array<JsonValue> = [stringValue(this.role), hasContent || this.toolCalls.length == 0 ? stringValue(this.content()) : nullValue()];
    if (this.toolCalls.length > 0) {
      const calls = new Array<JsonValue>();
      for (let i = 0; i < this.toolCalls.length; i++) {
        const c = this.toolCalls[i];
        const fn = objectValue(["name", "arguments"], [stringValue(c.name), stringValue(c.arguments())]);
        calls.push(objectValue(["id", "type", "function"], [stringValue(c.id), stringValue(c.type), fn]));
      }
      messageKeys.push("tool_calls");
      messageValues.push(arrayValue(calls));
    }
    const finish = this.finishReason.length > 0 ? stringValue(this.finishReason) : nullValue();
    const choice = objectValue(["index", "message", "finish_reason"], [numberValue(0), objectValue(messageKeys, messageValues), finish]);
    const keys: Array<string> = ["id", "object", "model", "choices"];
    const values: Array<JsonValue> = [stringValue(this.id), stringValue("chat.completion"), stringValue(this.model), arrayValue([choice])];
    if (!isNaN(this.promptTokens) || !isNaN(this.completionTokens)) {
      const usageKeys = new Array<string>();
      const usageValues = new Array<JsonValue>();
      if (!isNaN(this.promptTokens)) {
        usageKeys.push("prompt_tokens");
        usageValues.push(numberValue(this.promptTokens));
      }
      if (!isNaN(this.completionTokens)) {
        usageKeys.push("completion_tokens");
        usageValues.push(numberValue(this.completionTokens));
      }
      if (!isNaN(this.totalTokens)) {
        usageKeys.push("total_tokens");
        usageValues.push(numberValue(this.totalTokens));
      }
      keys.push("usage");
      values.push(objectValue(usageKeys, usageValues));
    }
    for (let i = 0; i < this.extraKeys.length; i++) {
      keys.push(this.extraKeys[i]);
      values.push(this.extraValues[i]);
    }
    return objectValue(keys, values);
  }
}

function numberOr(value: JsonValue | null, fallback: f64): f64 {
  return value !== null && value.kind == JsonKind.Number && isFinite(value.num) ? value.num : fallback;
}

/** Chunk fields that describe the chunk itself, not the answer. */
function isChunkBookkeeping(key: string): bool {
  return (
    key == "object" ||
    key == "created" ||
    key == "system_fingerprint" ||
    key == "service_tier" ||
    key == "created_at" ||
    key == "done_reason" ||
    key == "total_duration" ||
    key == "load_duration" ||
    key == "prompt_eval_duration" ||
    key == "eval_duration"
  );
}
