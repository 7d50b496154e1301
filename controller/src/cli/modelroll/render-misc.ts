// Text for the commands other than get/list: history, stats, lint, measure, delete, status lines. Pure.
import type { ErrorDetail } from "../../errors.ts";
import { arr, count, field, num, percent, ratio, str, table, type Paint } from "./format.ts";
import { phaseText } from "./render-rollout.ts";

function time(at: unknown): string {
  const ms = typeof at === "number" ? at : typeof at === "string" ? Date.parse(at) : NaN;
  return Number.isFinite(ms) ? new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z") : "-";
}

/** GET /v1/rollouts/{name}/history as a table of decisions, oldest first. */
export function renderHistory(history: unknown, p: Paint): string {
  const decisions = arr(field(history, "decisions"));
  if (decisions.length === 0) return "no decisions yet\n";
  const rows = decisions.map((d) => [
    time(field(d, "at")),
    str(field(d, "kind")) ?? "-",
    `${str(field(d, "from")) ?? "?"} → ${str(field(d, "to")) ?? "?"}`,
    str(field(d, "stage", "name")) ?? "-",
    str(field(d, "actor")) ?? "-",
    str(field(d, "reason")) ?? "",
  ]);
  return table(["AT", "DECISION", "PHASE", "STAGE", "BY", "REASON"], rows, p);
}

function variantRow(slice: string, variant: string, v: unknown): string[] {
  return [
    slice,
    variant,
    count(field(v, "requests")),
    count(field(v, "responses", "2xx")),
    count(field(v, "responses", "4xx")),
    count(field(v, "responses", "5xx")),
    count(field(v, "responses", "local")),
    ratio(field(v, "errorRate")),
    ms(field(v, "latencyMs", "p50")),
    ms(field(v, "latencyMs", "p95")),
  ];
}

const ms = (value: unknown) => (num(value) === null ? "-" : `${Math.round((value as number) * 100) / 100} ms`);
const VARIANTS = ["stable", "canary", "shadow"];

/** A variant's streamed LLM answers, or null without any. */
function streamRow(slice: string, variant: string, v: unknown): string[] | null {
  const s = field(v, "output", "streams");
  if (typeof s !== "object" || s === null) return null;
  const tokens = num(field(s, "outputTokensMean"));
  return [
    slice,
    variant,
    count(field(s, "count")),
    ms(field(s, "ttftMs", "p50")),
    ms(field(s, "ttftMs", "p95")),
    ms(field(s, "tpotMs", "p50")),
    ms(field(s, "tpotMs", "p95")),
    ratio(field(s, "cutOffRate")),
    tokens === null ? "-" : String(Math.round(tokens * 10) / 10),
  ];
}

/** A variant's tool calls, or null without any. */
function toolRow(slice: string, variant: string, v: unknown): string[] | null {
  const t = field(v, "output", "toolCalls");
  if (typeof t !== "object" || t === null) return null;
  const cells = ["count", "valid", "invalidJson", "schemaFailed", "unknownTool"].map((k) => count(field(t, k)));
  return [slice, variant, ...cells, ratio(field(t, "validRate"))];
}

/** GET /v1/rollouts/{name}/stats: per variant overall, then per segment value; streamed LLM answers in a second table. */
export function renderStats(stats: unknown, p: Paint): string {
  const rows: string[][] = [];
  const streamRows: string[][] = [];
  const toolRows: string[][] = [];
  const slice = (label: string, variants: unknown) => {
    for (const variant of VARIANTS) {
      const v = field(variants, variant);
      if (v === undefined) continue;
      rows.push(variantRow(label, variant, v));
      const streamed = streamRow(label, variant, v);
      if (streamed) streamRows.push(streamed);
      const tools = toolRow(label, variant, v);
      if (tools) toolRows.push(tools);
    }
  };
  slice("overall", field(stats, "variants"));
  const segments = field(stats, "segments");
  if (typeof segments === "object" && segments !== null) {
    for (const [dimension, values] of Object.entries(segments)) {
      for (const [value, variants] of Object.entries((values ?? {}) as Record<string, unknown>)) slice(`${dimension}=${value}`, variants);
    }
  }
  const header = ["SLICE", "VARIANT", "REQUESTS", "2XX", "4XX", "5XX", "LOCAL", "ERRORS", "P50", "P95"];
  const sources = arr(field(stats, "sources"))
    .filter((s) => field(s, "ok") === false)
    .map((s) => `${p.yellow(`source ${str(field(s, "url")) ?? "?"} not read: ${str(field(s, "error")) ?? "unknown error"}`)}\n`);
  const streamTable =
    streamRows.length > 0
      ? `\n${table(["SLICE", "VARIANT", "STREAMS", "TTFT P50", "TTFT P95", "TPOT P50", "TPOT P95", "CUT OFF", "TOKENS/ANSWER"], streamRows, p)}`
      : "";
  const toolTable =
    toolRows.length > 0
      ? `\n${table(["SLICE", "VARIANT", "TOOL CALLS", "VALID", "INVALID JSON", "SCHEMA FAILED", "UNKNOWN TOOL", "VALID RATE"], toolRows, p)}`
      : "";
  return table(header, rows, p) + streamTable + toolTable + sources.join("");
}

export interface LintResult {
  file: string;
  ok: boolean;
  /** The rollout's name, when the spec has a readable one. */
  rollout: string | null;
  managed: boolean;
  errors: ErrorDetail[];
  /** What a valid spec leaves unprotected (engine specWarnings): printed, the exit code stays 0. */
  warnings: ErrorDetail[];
}

export function renderLint(result: LintResult, p: Paint): string {
  const warned = result.warnings.map((w) => `${result.file}: ${p.yellow(`warning ${w.path || "(root)"}`)} ${w.reason}\n`).join("");
  if (result.ok) return `${warned}${result.file}: ${p.green("valid")} (${result.managed ? "engine-managed" : "manual"} rollout ${result.rollout ?? "?"})\n`;
  const lines = result.errors.map((e) => `${result.file}: ${p.red(e.path || "(root)")} ${e.reason}`);
  lines.push(`${result.file}: ${p.red(`${result.errors.length} error${result.errors.length === 1 ? "" : "s"}`)}`);
  return `${lines.join("\n")}\n`;
}

export function renderMeasured(body: unknown): string {
  return `rollout ${str(field(body, "rollout")) ?? "?"}: recorded ${count(field(body, "recorded"))} value(s) of ${str(field(body, "metric")) ?? "?"} for ${str(field(body, "variant")) ?? "?"}\n`;
}

export function renderDeleted(name: string): string {
  return `rollout ${name}: deleted (its traffic goes to stable)\n`;
}

/** One line of `status`: when, phase, stage, weight. */
export function statusLine(view: unknown, at: number, p: Paint): string {
  const stage = str(field(view, "stage", "name"));
  const parts = [time(at), `rollout ${str(field(view, "name")) ?? "?"}`, phaseText(str(field(view, "phase")) ?? "Pending", p)];
  if (stage) parts.push(`stage ${stage}`);
  parts.push(`canary ${percent(field(view, "canaryPercent"))}`);
  return `${parts.join("  ")}\n`;
}

/** The stable identity of a status line: a new line is printed when it changes. */
export function statusKey(view: unknown): string {
  return `${str(field(view, "phase"))}|${num(field(view, "stage", "index"))}`;
}
