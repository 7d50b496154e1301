// What the filter reads from the model's JSON answers. With an `output` section in the spec the filter
// analyzes every answer of the rollout (label distribution, confidence, LLM fields); without one it reads
// answers only to compare them with a shadow's.
import { Type, type Static } from "@sinclair/typebox";
import { REASONS_KEYWORD } from "../errors.ts";
import { SEGMENT_TOKEN_PATTERN } from "./segments.ts";
import { clusterName } from "./clusters.ts";
import { compileOutputSchema, type CompiledSchema } from "../schema/compile.ts";
import type { ErrorDetail } from "../errors.ts";
import { compileTools, toFilterTools, ToolsSpec } from "./tools.ts";

const FIELD_PATH = "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$";
const fieldPath = (description: string, defaultValue?: string) =>
  Type.String({
    pattern: FIELD_PATH,
    maxLength: 128,
    ...(defaultValue === undefined ? {} : { default: defaultValue }),
    description,
    [REASONS_KEYWORD]: { pattern: "must be a dotted path into the JSON answer, e.g. prediction or output.label" },
  });

export const OutputSpec = Type.Object(
  {
    predictionField: Type.Optional(fieldPath("Where the predicted label is in the model's JSON answer.", "prediction")),
    confidenceField: Type.Optional(fieldPath("Where the confidence (0..1) is in the model's JSON answer.", "confidence")),
    labels: Type.Optional(
      Type.Array(
        Type.String({
          pattern: SEGMENT_TOKEN_PATTERN,
          [REASONS_KEYWORD]: { pattern: "must be 1 to 32 of a-z, 0-9, '_' and '-' (it becomes a stat label)" },
        }),
        { maxItems: 32, uniqueItems: true, description: "Label set for the prediction distribution (compared lowercased); others count as 'other'." },
      ),
    ),
    maxBodyBytes: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 16 * 1024 * 1024, default: 65536, description: "Answers larger than this are not analyzed (counted as too_large)." }),
    ),
    schema: Type.Optional(Type.Unknown({ description: "JSON Schema (the subset in README 'Output schema subset') every answer is validated against." })),
    guard: Type.Optional(
      Type.Boolean({ default: false, description: "Canary output guard: a canary answer failing the schema is replaced by the stable model's answer." }),
    ),
    guardCluster: Type.Optional(clusterName("Envoy cluster the guard fetches the stable answer from; default clusters.stable, else stable.")),
    guardTimeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 60000, default: 2000 })),
    tools: Type.Optional(ToolsSpec),
    llm: Type.Optional(
      Type.Object(
        {
          promptTokensField: Type.Optional(fieldPath("Prompt token count; OpenAI-style by default.", "usage.prompt_tokens")),
          completionTokensField: Type.Optional(fieldPath("Completion token count; OpenAI-style by default.", "usage.completion_tokens")),
          citationField: Type.Optional(fieldPath("Set (non-empty) when the answer cites sources.")),
          abstainedField: Type.Optional(fieldPath("Set (true) when the model declined to answer.")),
          fallbackField: Type.Optional(fieldPath("Set when a fallback model produced the answer.")),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type OutputSpec = Static<typeof OutputSpec>;

export interface NormalizedOutput {
  /** True when the spec has an output section: every answer is analyzed. */
  analyze: boolean;
  predictionField: string;
  confidenceField: string;
  labels: string[];
  maxBodyBytes: number;
  llm: { promptTokensField: string; completionTokensField: string; citationField?: string; abstainedField?: string; fallbackField?: string };
  /** The schema as given, and compiled for the filter; null without one. */
  schema: unknown;
  compiledSchema: CompiledSchema | null;
  guard: { enabled: boolean; cluster: string; timeoutMs: number };
  /** Tool name -> its arguments' schema as given, and compiled (rollouts/tools.ts); absent without tools. */
  tools?: Record<string, unknown>;
  compiledTools?: Record<string, CompiledSchema>;
}

/** Compiles the output schema; problems are reported under /output/schema with the keyword's pointer. */
export function checkOutput(output: OutputSpec | undefined): { compiled: CompiledSchema | null; errors: ErrorDetail[] } {
  const tools = compileTools(output?.tools).errors;
  const result = checkOutputSchema(output);
  return tools.length === 0 ? result : { compiled: result.compiled, errors: [...result.errors, ...tools] };
}

function checkOutputSchema(output: OutputSpec | undefined): { compiled: CompiledSchema | null; errors: ErrorDetail[] } {
  if (output?.schema === undefined) {
    const errors = output?.guard ? [{ path: "/output/guard", reason: "the guard judges answers by the output schema: give output.schema" }] : [];
    return { compiled: null, errors };
  }
  const result = compileOutputSchema(output.schema);
  if (result.ok) return { compiled: result.compiled, errors: [] };
  return { compiled: null, errors: result.errors.map((e) => ({ path: `/output/schema${e.path}`, reason: e.reason })) };
}

/** `stableCluster`: the rollout's stable cluster when the spec names clusters (clusters.ts). */
export function normalizeOutput(output: OutputSpec | undefined, compiledSchema: CompiledSchema | null, stableCluster = "stable"): NormalizedOutput {
  // Only with tools, so a spec without them compares equal to one saved before tools existed.
  const tools = output?.tools && Object.keys(output.tools).length > 0 ? { tools: output.tools, compiledTools: compileTools(output.tools).compiled } : {};
  return {
    ...tools,
    schema: output?.schema ?? null,
    compiledSchema,
    guard: { enabled: output?.guard ?? false, cluster: output?.guardCluster ?? stableCluster, timeoutMs: output?.guardTimeoutMs ?? 2000 },
    analyze: output !== undefined,
    predictionField: output?.predictionField ?? "prediction",
    confidenceField: output?.confidenceField ?? "confidence",
    labels: output?.labels ?? [],
    maxBodyBytes: output?.maxBodyBytes ?? 65536,
    llm: {
      promptTokensField: output?.llm?.promptTokensField ?? "usage.prompt_tokens",
      completionTokensField: output?.llm?.completionTokensField ?? "usage.completion_tokens",
      ...(output?.llm?.citationField ? { citationField: output.llm.citationField } : {}),
      ...(output?.llm?.abstainedField ? { abstainedField: output.llm.abstainedField } : {}),
      ...(output?.llm?.fallbackField ? { fallbackField: output.llm.fallbackField } : {}),
    },
  };
}

/** What the filter receives (filter/config.ts, OutputConfig). */
export interface FilterOutput {
  analyze: boolean;
  maxBodyBytes: number;
  predictionField: string;
  confidenceField: string;
  labels: string[];
  promptTokensField: string;
  completionTokensField: string;
  citationField?: string;
  abstainedField?: string;
  fallbackField?: string;
  /** The compiled schema as JSON text (filter/schema.ts parses it once per config). */
  schema?: string;
  guard: boolean;
  guardCluster: string;
  guardTimeoutMs: number;
  /** Tool name -> compiled arguments schema as JSON text. */
  tools?: Record<string, string>;
}

export function toFilterOutput(output: NormalizedOutput): FilterOutput {
  const tools = toFilterTools(output.compiledTools ?? {});
  return {
    ...(tools ? { tools } : {}),
    ...(output.compiledSchema ? { schema: JSON.stringify(output.compiledSchema) } : {}),
    guard: output.guard.enabled,
    guardCluster: output.guard.cluster,
    guardTimeoutMs: output.guard.timeoutMs,
    analyze: output.analyze,
    maxBodyBytes: output.maxBodyBytes,
    predictionField: output.predictionField,
    confidenceField: output.confidenceField,
    labels: output.labels,
    ...output.llm,
  };
}

/** The normalized output section as the API shows it (defaults filled in). */
export const NormalizedOutputView = Type.Object({
  analyze: Type.Boolean(),
  predictionField: Type.String(),
  confidenceField: Type.String(),
  labels: Type.Array(Type.String()),
  maxBodyBytes: Type.Integer(),
  llm: Type.Object({
    promptTokensField: Type.String(),
    completionTokensField: Type.String(),
    citationField: Type.Optional(Type.String()),
    abstainedField: Type.Optional(Type.String()),
    fallbackField: Type.Optional(Type.String()),
  }),
  schema: Type.Unknown({ description: "The output schema as given, or null." }),
  guard: Type.Object({ enabled: Type.Boolean(), cluster: Type.String(), timeoutMs: Type.Integer() }),
  tools: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: "Tool name -> its arguments' JSON Schema, as given." })),
});
