// Tool calls in OpenAI chat-completion answers (`choices[].message.tool_calls[].function.{name, arguments}`):
// each call's arguments string must parse as JSON and match the parameter schema the rollout declares for that
// tool name (the output schema's compiled subset and validator). Counted per slice, beside the output metrics:
//   modelroll.rollout.<r>.variant.<v>[.seg.<d>.<value>].tool_calls             every call seen
//   ... .tool_calls_valid         arguments are JSON and match the tool's schema
//   ... .tool_calls_invalid_json  arguments are not a string of JSON
//   ... .tool_calls_schema_failed arguments are JSON but fail the tool's schema
//   ... .tool_calls_unknown_tool  the name is not a declared tool
// A streamed answer's calls are counted the same way once its message is assembled (`countToolCalls` takes the
// assembled message). Parsing the config and judging a call are pure.
import { defineMetric, incrementMetric, MetricType } from "./sdk/host";
import { JsonKind, JsonValue, parseJson } from "./json";
import { objectAt, Problems } from "./config-fields";
import { parseCompiledSchemaText, SchemaNode } from "./schema";
import { validate } from "./schema-validate";

export const TOOL_VALID: i32 = 0;
export const TOOL_INVALID_JSON: i32 = 1;
export const TOOL_SCHEMA_FAILED: i32 = 2;
export const TOOL_UNKNOWN: i32 = 3;

/** Arguments nest at most this deep; deeper ones are invalid_json. */
const MAX_ARGUMENTS_DEPTH: i32 = 32;
export const MAX_TOOLS: i32 = 64;

export class ToolConfig {
  constructor(
    public name: string,
    public schema: SchemaNode,
  ) {}
}

/** `{<tool name>: <compiled schema as JSON text>}`; problems are reported with their field path. */
export function parseTools(v: JsonValue, p: string, problems: Problems): Array<ToolConfig> {
  const tools = new Array<ToolConfig>();
  const reader = objectAt(v, p, problems);
  if (reader === null) return tools;
  const keys = v.keys;
  if (keys.length > MAX_TOOLS) {
    problems.add(p + ": at most " + MAX_TOOLS.toString() + " tools");
    return tools;
  }
  for (let i = 0; i < keys.length; i++) {
    const name = keys[i];
    const text = reader.string(name, true);
    if (name.length == 0 || name.length > 64) {
      reader.problem(name, "a tool name is 1-64 characters");
      continue;
    }
    if (text === null) continue;
    const compiled = parseCompiledSchemaText(text);
    const schema = compiled.schema;
    if (!compiled.ok || schema === null) reader.problem(name, compiled.error);
    else tools.push(new ToolConfig(name, schema));
  }
  return tools;
}

/** TOOL_* for one call object `{function: {name, arguments}}`. */
export function judgeToolCall(call: JsonValue, tools: Array<ToolConfig>): i32 {
  const fn = call.get("function");
  if (fn === null) return TOOL_UNKNOWN;
  const name = fn.get("name");
  if (name === null || name.kind != JsonKind.String) return TOOL_UNKNOWN;
  let tool: ToolConfig | null = null;
  for (let i = 0; i < tools.length; i++) {
    if (tools[i].name == name.str) {
      tool = tools[i];
      break;
    }
  }
  if (tool === null) return TOOL_UNKNOWN;
  const args = fn.get("arguments");
  if (args === null || args.kind != JsonKind.String) return TOOL_INVALID_JSON;
  const parsed = parseJson(args.str, MAX_ARGUMENTS_DEPTH);
  const doc = parsed.value;
  if (doc === null) return TOOL_INVALID_JSON;
  return validate(tool.schema, doc).valid ? TOOL_VALID : TOOL_SCHEMA_FAILED;
}

/** The tool calls of an answer's messages: choices[].message.tool_calls[] (every call object, in order). */
export function toolCallsOf(doc: JsonValue): Array<JsonValue> {
  const out = new Array<JsonValue>();
  const choices = doc.get("choices");
  if (choices === null || choices.kind != JsonKind.Array) return out;
  for (let i = 0; i < choices.items.length; i++) {
    const message = choices.items[i].get("message");
    if (message !== null) addCallsOf(message, out);
  }
  return out;
}

/** The calls of one message (`{tool_calls: [...]}`), e.g. a streamed answer's assembled message. */
export function addCallsOf(message: JsonValue, out: Array<JsonValue>): void {
  const calls = message.get("tool_calls");
  if (calls === null || calls.kind != JsonKind.Array) return;
  for (let j = 0; j < calls.items.length; j++) {
    if (calls.items[j].kind == JsonKind.Object) out.push(calls.items[j]);
  }
}

export class ToolMetrics {
  calls: u32;
  /** Indexed by TOOL_*. */
  results: Array<u32> = [];
  constructor(base: string) {
    this.calls = defineMetric(MetricType.Counter, base + "tool_calls");
    this.results.push(defineMetric(MetricType.Counter, base + "tool_calls_valid"));
    this.results.push(defineMetric(MetricType.Counter, base + "tool_calls_invalid_json"));
    this.results.push(defineMetric(MetricType.Counter, base + "tool_calls_schema_failed"));
    this.results.push(defineMetric(MetricType.Counter, base + "tool_calls_unknown_tool"));
  }
}

/** Judges each call once and counts it in every slice's tool metrics (null entries: slices without them). */
export function countToolCalls(calls: Array<JsonValue>, tools: Array<ToolConfig>, metrics: Array<ToolMetrics | null>): void {
  for (let c = 0; c < calls.length; c++) {
    const result = judgeToolCall(calls[c], tools);
    for (let i = 0; i < metrics.length; i++) {
      const m = metrics[i];
      if (m === null) continue;
      incrementMetric(m.calls);
      incrementMetric(m.results[result]);
    }
  }
}
