/**
 * The panels' figures from GET /v1/rollouts/{name}/stats (Envoy's counts since the rollout was created) and
 * the gate rows per slice: traffic per variant, output (labels, schema failures, confidence), LLM fields,
 * the shadow comparison, and the segment table ("where is the canary worse"). Tolerant like read.ts: a
 * missing field shows as "–". Pure.
 */
import { arr, field, num, str, verdictRank, type GateRow, type Verdict } from "./read.ts";

export const VARIANTS = ["stable", "canary", "shadow"] as const;
export type VariantName = (typeof VARIANTS)[number];

export interface VariantFigures {
  requests: number | null;
  responses: Record<string, number>;
  errorRate: number | null;
  p50: number | null;
  p95: number | null;
  labels: Record<string, number>;
  schemaPassRate: number | null;
  schemaValidated: number | null;
  schemaFailures: Record<string, number>;
  confidenceMean: number | null;
  confidenceP50: number | null;
  llm: {
    outputs: number;
    promptP50: number | null;
    completionP50: number | null;
    citationRate: number | null;
    abstainRate: number | null;
    fallbackRate: number | null;
  } | null;
  /** Streamed LLM answers (times in ms), or null without any. */
  streams: {
    count: number;
    ttftP50: number | null;
    ttftP95: number | null;
    tpotP50: number | null;
    tpotP95: number | null;
    cutOffRate: number | null;
    outputTokensMean: number | null;
  } | null;
  comparison: {
    compared: number | null;
    statusMatchRate: number | null;
    agreementRate: number | null;
    missing: number | null;
    confidenceDeltaP50: number | null;
    confidenceDeltaP95: number | null;
    dropped: number | null;
    skippedLargeBody: number | null;
    incomplete: number | null;
  } | null;
}

const numbers = (value: unknown): Record<string, number> => {
  const out: Record<string, number> = {};
  if (typeof value === "object" && value !== null) for (const [k, v] of Object.entries(value)) if (typeof v === "number") out[k] = v;
  return out;
};

export function variantFigures(v: unknown): VariantFigures | null {
  if (typeof v !== "object" || v === null) return null;
  const llm = field(v, "output", "llm");
  const comparison = field(v, "comparison");
  const streams = field(v, "output", "streams");
  return {
    requests: num(field(v, "requests")),
    responses: numbers(field(v, "responses")),
    errorRate: num(field(v, "errorRate")),
    p50: num(field(v, "latencyMs", "p50")),
    p95: num(field(v, "latencyMs", "p95")),
    labels: numbers(field(v, "output", "labels")),
    schemaPassRate: num(field(v, "output", "schema", "passRate")),
    schemaValidated: num(field(v, "output", "schema", "validated")),
    schemaFailures: numbers(field(v, "output", "schema", "failures")),
    confidenceMean: num(field(v, "output", "confidence", "mean")),
    confidenceP50: num(field(v, "output", "confidence", "p50")),
    llm:
      typeof llm === "object" && llm !== null
        ? {
            outputs: num(field(llm, "outputs")) ?? 0,
            promptP50: num(field(llm, "promptTokens", "p50")),
            completionP50: num(field(llm, "completionTokens", "p50")),
            citationRate: num(field(llm, "citationRate")),
            abstainRate: num(field(llm, "abstainRate")),
            fallbackRate: num(field(llm, "fallbackRate")),
          }
        : null,
    streams:
      typeof streams === "object" && streams !== null
        ? {
            count: num(field(streams, "count")) ?? 0,
            ttftP50: num(field(streams, "ttftMs", "p50")),
            ttftP95: num(field(streams, "ttftMs", "p95")),
            tpotP50: num(field(streams, "tpotMs", "p50")),
            tpotP95: num(field(streams, "tpotMs", "p95")),
            cutOffRate: num(field(streams, "cutOffRate")),
            outputTokensMean: num(field(streams, "outputTokensMean")),
          }
        : null,
    comparison:
      typeof comparison === "object" && comparison !== null
        ? {
            compared: num(field(comparison, "compared")),
            statusMatchRate: num(field(comparison, "statusMatchRate")),
            agreementRate: num(field(comparison, "predictionAgreementRate")) ?? num(field(comparison, "agreementRate")),
            missing: num(field(comparison, "predictionMissing")),
            confidenceDeltaP50: num(field(comparison, "confidenceDelta", "p50")),
            confidenceDeltaP95: num(field(comparison, "confidenceDelta", "p95")),
            dropped: num(field(comparison, "dropped")),
            skippedLargeBody: num(field(comparison, "skippedLargeBody")),
            incomplete: num(field(comparison, "incomplete")),
          }
        : null,
  };
}

export interface StatsPicture {
  variants: Partial<Record<VariantName, VariantFigures>>;
  windowNote: string | null;
  since: string | null;
  sourcesDown: string[];
  hasOutput: boolean;
  hasLlm: boolean;
  hasShadow: boolean;
}

export function readStats(stats: unknown): StatsPicture {
  const variants: StatsPicture["variants"] = {};
  for (const name of VARIANTS) {
    const figures = variantFigures(field(stats, "variants", name));
    if (figures) variants[name] = figures;
  }
  const all = Object.values(variants);
  return {
    variants,
    windowNote: str(field(stats, "window", "note")),
    since: str(field(stats, "window", "since")),
    sourcesDown: arr(field(stats, "sources"))
      .filter((s) => field(s, "ok") === false)
      .map((s) => `${str(field(s, "url")) ?? "?"}: ${str(field(s, "error")) ?? "down"}`),
    hasOutput: all.some((v) => Object.keys(v.labels).length > 0 || v.schemaValidated !== null),
    hasLlm: all.some((v) => v.llm !== null),
    hasShadow: variants.shadow !== undefined && ((variants.shadow.requests ?? 0) > 0 || (variants.shadow.comparison?.compared ?? 0) > 0),
  };
}

export interface SegmentRow {
  dimension: string;
  value: string;
  /** Share of the variant's requests in this dimension that carry this value; "canary" is the candidate (the shadow in a shadow stage). */
  stableShare: number | null;
  canaryShare: number | null;
  stableRequests: number | null;
  canaryRequests: number | null;
  gates: GateRow[];
  worst: Verdict;
  severity: number;
}

/** One row per declared segment value, worst first (by its gates' verdicts), then by canary traffic. */
export function segmentRows(stats: unknown, gates: GateRow[]): SegmentRow[] {
  const rows: SegmentRow[] = [];
  const dimensions = field(stats, "segments");
  const seen = new Set<string>();
  if (typeof dimensions === "object" && dimensions !== null) {
    for (const [dimension, values] of Object.entries(dimensions)) {
      if (typeof values !== "object" || values === null) continue;
      // The candidate is the canary, or the shadow while only the shadow has traffic (a shadow stage).
      const total = { stable: 0, canary: 0, shadow: 0 };
      for (const slice of Object.values(values)) {
        total.stable += num(field(slice, "stable", "requests")) ?? 0;
        total.canary += num(field(slice, "canary", "requests")) ?? 0;
        total.shadow += num(field(slice, "shadow", "requests")) ?? 0;
      }
      const candidate = total.canary === 0 && total.shadow > 0 ? "shadow" : "canary";
      for (const [value, slice] of Object.entries(values)) {
        const key = `${dimension}=${value}`;
        seen.add(key);
        const stableRequests = num(field(slice, "stable", "requests"));
        const canaryRequests = num(field(slice, candidate, "requests"));
        rows.push(
          row(
            dimension,
            value,
            gates.filter((g) => g.slice === key),
            {
              stableRequests,
              canaryRequests,
              stableShare: total.stable > 0 && stableRequests !== null ? stableRequests / total.stable : null,
              canaryShare: total[candidate] > 0 && canaryRequests !== null ? canaryRequests / total[candidate] : null,
            },
          ),
        );
      }
    }
  }
  // Slices the gates judged that /stats did not list (an older or a failed reading).
  for (const g of gates) {
    if (g.slice === "overall" || seen.has(g.slice)) continue;
    seen.add(g.slice);
    const [dimension, value] = [g.slice.slice(0, g.slice.indexOf("=")), g.slice.slice(g.slice.indexOf("=") + 1)];
    rows.push(
      row(
        dimension,
        value,
        gates.filter((x) => x.slice === g.slice),
        { stableRequests: null, canaryRequests: null, stableShare: null, canaryShare: null },
      ),
    );
  }
  return rows.sort((a, b) => verdictRank(a.worst) - verdictRank(b.worst) || b.severity - a.severity || (b.canaryRequests ?? 0) - (a.canaryRequests ?? 0));
}

function row(
  dimension: string,
  value: string,
  gates: GateRow[],
  traffic: Pick<SegmentRow, "stableShare" | "canaryShare" | "stableRequests" | "canaryRequests">,
): SegmentRow {
  let worst: Verdict = gates.length > 0 ? "Passed" : "Unknown";
  let severity = 0;
  for (const g of gates) {
    if (verdictRank(g.verdict) < verdictRank(worst)) worst = g.verdict;
    severity = Math.max(severity, g.severity);
  }
  return { dimension, value, gates, worst, severity, ...traffic };
}
