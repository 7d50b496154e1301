// The tools a rollout's model may call (output.tools): per tool name, the JSON Schema its arguments must match, in
// the output schema's subset. The filter checks every tool call of every answer (filter/tool-calls.ts) and counts
// tool_calls, tool_calls_valid, tool_calls_invalid_json, tool_calls_schema_failed, tool_calls_unknown_tool; the
// gate tool_call_valid_rate reads them. Tool names need no escaping in a JSON pointer (no '~' or '/').
import { Type } from "@sinclair/typebox";
import { REASONS_KEYWORD, type ErrorDetail } from "../errors.ts";
import { compileOutputSchema, type CompiledSchema } from "../schema/compile.ts";

export const MAX_TOOLS = 64;

export const ToolsSpec = Type.Record(
  Type.String({
    pattern: "^[A-Za-z0-9_.-]{1,64}$",
    [REASONS_KEYWORD]: { pattern: "must be a tool name of 1 to 64 letters, digits, '_', '.' and '-' (as OpenAI function names are)" },
  }),
  Type.Unknown({ description: "The tool's parameters as JSON Schema (the output schema subset)." }),
  {
    maxProperties: MAX_TOOLS,
    description:
      "Tool name -> JSON Schema of its arguments (OpenAI `tools[].function.parameters`). Every tool call's arguments must parse as JSON and match its tool's schema; a call of a tool not listed counts as unknown_tool.",
  },
);

/** Each tool's schema compiled; problems under /output/tools/<name> with the keyword's pointer. */
export function compileTools(tools: Record<string, unknown> | undefined): { compiled: Record<string, CompiledSchema>; errors: ErrorDetail[] } {
  const compiled: Record<string, CompiledSchema> = {};
  const errors: ErrorDetail[] = [];
  for (const [name, schema] of Object.entries(tools ?? {})) {
    const result = compileOutputSchema(schema);
    if (result.ok) compiled[name] = result.compiled;
    else for (const e of result.errors) errors.push({ path: `/output/tools/${name}${e.path}`, reason: e.reason });
  }
  return { compiled, errors };
}

/** What the filter receives: tool name -> the compiled schema as JSON text (filter/tool-calls.ts). */
export function toFilterTools(compiled: Record<string, CompiledSchema>): Record<string, string> | undefined {
  const names = Object.keys(compiled);
  if (names.length === 0) return undefined;
  return Object.fromEntries(names.map((n) => [n, JSON.stringify(compiled[n])]));
}

/** The LLM gates read counters only some sections make the filter count: refused without them, naming both. */
export function checkLlmGateSources(spec: {
  output?: { tools?: Record<string, unknown> };
  shadow?: { noisePercent?: number };
  promotion_gates?: unknown;
}): ErrorDetail[] {
  const gates = spec.promotion_gates;
  if (typeof gates !== "object" || gates === null) return [];
  const errors: ErrorDetail[] = [];
  if ("tool_call_valid_rate" in gates && Object.keys(spec.output?.tools ?? {}).length === 0) {
    errors.push({
      path: "/promotion_gates/tool_call_valid_rate",
      reason: "needs output.tools: the filter checks tool calls only against declared tools (name -> JSON Schema of its arguments)",
    });
  }
  if ("shadow_disagreement_excess" in gates && !(spec.shadow?.noisePercent && spec.shadow.noisePercent > 0)) {
    errors.push({
      path: "/promotion_gates/shadow_disagreement_excess",
      reason: "needs shadow.noisePercent above 0: the noise is stable disagreeing with itself on that share of the mirrored requests",
    });
  }
  return errors;
}
