// The demo LLM server's behaviour (llm-model.ts): its fields, defaults, per-model overrides, and the check of a
// PUT /__demo/behavior body (every problem with its JSON pointer; nothing applies unless the whole body is valid).

/** What one request gets: the defaults, or the defaults with its requested model's overrides. */
export interface LlmFields {
  /** Milliseconds from the request to the first content token (or tool-call piece). */
  firstTokenMs: number;
  /** Milliseconds between two tokens after the first. */
  tokenMs: number;
  /** Content tokens in an answer without a tool call. */
  answerTokens: number;
  /** Fraction of requests answered with HTTP 500. */
  errorRate: number;
  /** Fraction of tool calls whose arguments are not JSON (the closing brace is missing). */
  brokenToolCallRate: number;
  /** Fraction of streams that stop halfway: no finish_reason, no [DONE], the connection closed cleanly. */
  cutOffRate: number;
  /** Streams as NDJSON (application/x-ndjson, one chunk a line, no [DONE]) instead of SSE. */
  ndjson: boolean;
}

export interface LlmBehavior extends LlmFields {
  /** Per requested `model`: its fields over the defaults (a LoRA adapter served beside its base model). */
  models: Record<string, Partial<LlmFields>>;
}

export const DEFAULT_LLM_BEHAVIOR: LlmFields = {
  firstTokenMs: 100,
  tokenMs: 5,
  answerTokens: 16,
  errorRate: 0,
  brokenToolCallRate: 0,
  cutOffRate: 0,
  ndjson: false,
};

interface Problem {
  path: string;
  reason: string;
}

const RANGES: Record<Exclude<keyof LlmFields, "ndjson">, { min: number; max: number; integer: boolean; what: string }> = {
  firstTokenMs: { min: 0, max: 60_000, integer: false, what: "milliseconds" },
  tokenMs: { min: 0, max: 10_000, integer: false, what: "milliseconds" },
  answerTokens: { min: 1, max: 100_000, integer: true, what: "tokens (a whole number)" },
  errorRate: { min: 0, max: 1, integer: false, what: "a fraction" },
  brokenToolCallRate: { min: 0, max: 1, integer: false, what: "a fraction" },
  cutOffRate: { min: 0, max: 1, integer: false, what: "a fraction" },
};
const FIELD_NAMES = [...Object.keys(RANGES), "ndjson"] as Array<keyof LlmFields>;
const MAX_MODELS = 32;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function parseFields(value: Record<string, unknown>, at: string, problems: Problem[], extra: string[]): Partial<LlmFields> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    if (!FIELD_NAMES.includes(key as keyof LlmFields) && !extra.includes(key))
      problems.push({ path: `${at}/${key}`, reason: `is not a known field (known: ${[...FIELD_NAMES, ...extra].join(", ")})` });
  }
  for (const [key, range] of Object.entries(RANGES)) {
    const v = value[key];
    if (v === undefined) continue;
    if (typeof v !== "number" || !(v >= range.min && v <= range.max) || (range.integer && !Number.isInteger(v)))
      problems.push({ path: `${at}/${key}`, reason: `must be ${range.what} from ${range.min} to ${range.max}` });
    else out[key] = v;
  }
  if (value.ndjson !== undefined) {
    if (typeof value.ndjson !== "boolean") problems.push({ path: `${at}/ndjson`, reason: "must be true or false" });
    else out.ndjson = value.ndjson;
  }
  return out as Partial<LlmFields>;
}

/** A PUT /__demo/behavior body -> the change it asks for, or every problem with it. */
export function parseLlmBehaviorUpdate(body: unknown): { ok: true; update: Partial<LlmBehavior> } | { ok: false; problems: Problem[] } {
  if (!isObject(body)) return { ok: false, problems: [{ path: "", reason: 'must be a JSON object, e.g. {"firstTokenMs": 130}' }] };
  const problems: Problem[] = [];
  const update: Partial<LlmBehavior> = parseFields(body, "", problems, ["models"]);
  if (body.models !== undefined) {
    if (!isObject(body.models)) problems.push({ path: "/models", reason: 'must be an object of model name to fields, e.g. {"m-lora": {"firstTokenMs": 200}}' });
    else {
      const entries = Object.entries(body.models);
      if (entries.length > MAX_MODELS) problems.push({ path: "/models", reason: `must name at most ${MAX_MODELS} models` });
      const models: Record<string, Partial<LlmFields>> = {};
      for (const [name, fields] of entries) {
        const at = `/models/${name.replaceAll("~", "~0").replaceAll("/", "~1")}`;
        if (!isObject(fields)) problems.push({ path: at, reason: "must be an object of behaviour fields" });
        else models[name] = parseFields(fields, at, problems, []);
      }
      update.models = models;
    }
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, update };
}

/** The fields a request for `model` gets: that model's overrides over the defaults. */
export function fieldsFor(behavior: LlmBehavior, model: string): LlmFields {
  const base: LlmFields = {
    firstTokenMs: behavior.firstTokenMs,
    tokenMs: behavior.tokenMs,
    answerTokens: behavior.answerTokens,
    errorRate: behavior.errorRate,
    brokenToolCallRate: behavior.brokenToolCallRate,
    cutOffRate: behavior.cutOffRate,
    ndjson: behavior.ndjson,
  };
  const own = Object.hasOwn(behavior.models, model) ? behavior.models[model] : undefined;
  return own ? { ...base, ...own } : base;
}
