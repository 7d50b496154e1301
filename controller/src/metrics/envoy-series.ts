/**
 * How the filter's stats look in Envoy's /stats/prometheus output. The filter defines the metrics and
 * `stats_config.stats_tags` turns parts of the names into these labels; if Envoy prints them
 * differently, this is the one place to change.
 */

/**
 * One rollout's stats only: every stat the filter defines for a rollout is stored as
 * wasmcustom.modelroll.rollout.<rollout>.variant.<variant>... (filter/stats.ts), and the summing reads nothing
 * else (the filter-wide modelroll.config.* counters carry no rollout label). The trailing dot keeps
 * "fraud-model" from matching "fraud-model-2". Envoy matches `filter` against the stored name with RE2.
 */
export function envoyStatsPath(rollout: string): string {
  const name = rollout.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return `/stats/prometheus?usedonly&filter=${encodeURIComponent(`^wasmcustom\\.modelroll\\.rollout\\.${name}\\.`)}`;
}

export const SERIES = {
  requests: "modelroll_requests",
  responses: "modelroll_responses",
  latencyBucket: "modelroll_latency_us_bucket",
  latencySum: "modelroll_latency_us_sum",
  latencyCount: "modelroll_latency_us_count",
} as const;

export const LABELS = {
  rollout: "modelroll_rollout",
  variant: "modelroll_variant",
  responseClass: "modelroll_class",
  segmentDimension: "modelroll_segment_dimension",
  segment: "modelroll_segment",
  schemaResult: "modelroll_schema",
  unanalyzedReason: "modelroll_unanalyzed",
  label: "modelroll_label",
  /** How an answer's stated version compares with the declared models: stable, canary, other, missing. */
  model: "modelroll_model",
  upperBound: "le",
} as const;

/** The latency histogram records microseconds. */
export const LATENCY_UNITS_PER_MS = 1000;

/** Series prefix every filter stat has in Prometheus form. */
export const SERIES_PREFIX = "modelroll_";

/**
 * Histograms besides latency, by base name (the filter records integers in these units). primary_latency_us
 * (shadow slices only, microseconds): the primary's answers to the mirrored requests, timed like the calls.
 */
export const VALUE_HISTOGRAMS = [
  "confidence_milli",
  "prompt_tokens",
  "completion_tokens",
  "confidence_delta_milli",
  "primary_latency_us",
  // Streamed LLM answers (filter/llm-stream.ts), microseconds: time to first token, time per output token.
  "ttft_latency_us",
  "tpot_latency_us",
] as const;

/** Labels that tell apart counters of one name; they become part of the counter's key. */
export const DISTINGUISHING_LABELS = [LABELS.schemaResult, LABELS.unanalyzedReason, LABELS.label, LABELS.model] as const;
