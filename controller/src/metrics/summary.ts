import { histogramQuantile } from "./histogram.ts";
import { LATENCY_UNITS_PER_MS } from "./envoy-series.ts";
import type { ResponseClass, ValueHistogram, VariantCounts } from "./provider.ts";

interface DistributionSummary {
  p50: number | null;
  p95: number | null;
  count: number;
}

/** What the filter read from a variant's answers (present when the rollout analyzes output). */
interface OutputSummary {
  /** Answers the filter parsed or tried to (every label count, "missing" included). */
  analyzed: number;
  labels: Record<string, number>;
  /** null without an output schema. passRate = valid / validated. */
  schema: { validated: number; valid: number; passRate: number | null; failures: Record<string, number> } | null;
  /** Answers not analyzed, by reason (error_status: not 2xx, counted as an error only; too_large, not_json_content_type, compressed, no_body). */
  unanalyzed: Record<string, number>;
  /** Confidence 0..1. */
  confidence: DistributionSummary & { mean: number | null };
  /** Canary output guard: answers replaced by stable's, replacements that failed (canary's went out), answers it could not hold. */
  guard: { replaced: number; failed: number; skipped: number };
  /** Tool calls judged against the declared tools (filter/tool-calls.ts); absent when there were none. */
  toolCalls?: { count: number; valid: number; invalidJson: number; schemaFailed: number; unknownTool: number; validRate: number | null };
  /** Streamed answers (SSE, NDJSON): null when there were none. Times in ms; rates per stream. */
  streams: StreamSummary | null;
  /** null when no answer carried token counts. Rates are per LLM answer. */
  llm: {
    outputs: number;
    promptTokens: DistributionSummary;
    completionTokens: DistributionSummary;
    citationRate: number | null;
    abstainRate: number | null;
    fallbackRate: number | null;
  } | null;
}

/** What the filter measured of streamed LLM answers (filter/llm-stream.ts). */
interface StreamSummary {
  count: number;
  chunks: number;
  /** Request -> first chunk with content or a tool-call piece. */
  ttftMs: DistributionSummary;
  /** Per stream: first to last token over the tokens after the first. */
  tpotMs: DistributionSummary;
  /** Streams without a finish reason, without [DONE] (SSE), or gone before their end. */
  cutOffRate: number | null;
  /** Streams with a chunk that was not JSON of a chunk shape. */
  malformedRate: number | null;
  /** Answers by finish reason (plain answers with choices[0].finish_reason included). */
  finish: Record<string, number>;
  /** Mean completion tokens per answer that reported usage (what output_tokens_per_answer gates). */
  outputTokensMean: number | null;
}

/** The shadow compared with the primary, over the mirrored requests. */
interface ShadowComparisonSummary {
  compared: number;
  statusMatchRate: number | null;
  /** agree / (agree + disagree): answers where either side had no prediction are left out, counted in predictionMissing. */
  predictionAgreementRate: number | null;
  predictionMissing: number;
  /**
   * Stable asked a second time on a sample of the mirrored requests (filter/noise.ts): how often its two answers
   * agree, the noise the shadow's agreement is judged against; absent when none was sent.
   */
  noise?: { requests: number; compared: number; agreementRate: number | null };
  /** |primary - shadow| confidence, 0..1. */
  confidenceDelta: DistributionSummary;
  /**
   * The primary's answers to the mirrored requests, timed like the mirrored calls (request complete -> whole
   * answer), in ms: what the shadow's latencyMs is compared with in a shadow stage.
   */
  primaryLatencyMs: DistributionSummary;
  dropped: number;
  skippedLargeBody: number;
  incomplete: number;
}

export interface VariantSummary {
  requests: number;
  responses: Record<ResponseClass, number>;
  /** (5xx + local) / all responses; null when there were no responses. */
  errorRate: number | null;
  latencyMs: { p50: number | null; p95: number | null; count: number };
  output?: OutputSummary;
  comparison?: ShadowComparisonSummary;
}

const ratio = (num: number, den: number): number | null => (den > 0 ? num / den : null);

function distribution(h: ValueHistogram | undefined, scale: number): DistributionSummary {
  if (!h || h.count <= 0) return { p50: null, p95: null, count: h?.count ?? 0 };
  const q = (x: number) => {
    const v = histogramQuantile(x, h.buckets);
    return v === null ? null : v / scale;
  };
  return { p50: q(0.5), p95: q(0.95), count: h.count };
}

/** Counters "<name>{<label>=<value>}" of one name, by value. */
function byLabel(counters: Record<string, number>, name: string): Record<string, number> {
  const out: Record<string, number> = {};
  const prefix = `${name}{`;
  for (const [key, n] of Object.entries(counters)) {
    if (!key.startsWith(prefix)) continue;
    const value = key.slice(key.indexOf("=") + 1, -1);
    out[value] = (out[value] ?? 0) + n;
  }
  return out;
}

function summarizeOutput(counts: VariantCounts): OutputSummary | undefined {
  const c = counts.counters;
  const labels = byLabel(c, "predictions");
  const schemaResults = Object.fromEntries(
    Object.entries(c)
      .filter(([k]) => k.startsWith("outputs{schema="))
      .map(([k, n]) => [k.slice("outputs{schema=".length, -1), n]),
  );
  const unanalyzed = Object.fromEntries(
    Object.entries(c)
      .filter(([k]) => k.startsWith("outputs{unanalyzed="))
      .map(([k, n]) => [k.slice("outputs{unanalyzed=".length, -1), n]),
  );
  const analyzed = Object.values(labels).reduce((s, n) => s + n, 0);
  if (analyzed === 0 && Object.keys(unanalyzed).length === 0 && Object.keys(schemaResults).length === 0) return undefined;
  const validated = Object.values(schemaResults).reduce((s, n) => s + n, 0);
  const valid = schemaResults.valid ?? 0;
  const failures = Object.fromEntries(Object.entries(schemaResults).filter(([k, n]) => k !== "valid" && n > 0));
  const confidence = counts.histograms.confidence_milli;
  const llmOutputs = c.llm_outputs ?? 0;
  const streams = c.streams ?? 0;
  const finish = Object.fromEntries(
    Object.entries(c)
      .filter(([k, n]) => k.startsWith("finish_") && n > 0)
      .map(([k, n]) => [k.slice("finish_".length), n]),
  );
  const completion = counts.histograms.completion_tokens;
  const toolCalls = c.tool_calls ?? 0;
  return {
    ...(toolCalls > 0
      ? {
          toolCalls: {
            count: toolCalls,
            valid: c.tool_calls_valid ?? 0,
            invalidJson: c.tool_calls_invalid_json ?? 0,
            schemaFailed: c.tool_calls_schema_failed ?? 0,
            unknownTool: c.tool_calls_unknown_tool ?? 0,
            validRate: ratio(c.tool_calls_valid ?? 0, toolCalls),
          },
        }
      : {}),
    analyzed,
    labels,
    schema: Object.keys(schemaResults).length > 0 ? { validated, valid, passRate: ratio(valid, validated), failures } : null,
    unanalyzed,
    guard: { replaced: c.guard_replaced ?? 0, failed: c.guard_failed ?? 0, skipped: c.guard_skipped ?? 0 },
    confidence: {
      ...distribution(confidence, 1000),
      mean: confidence && confidence.count > 0 ? confidence.sum / confidence.count / 1000 : null,
    },
    streams:
      streams > 0 || Object.keys(finish).length > 0
        ? {
            count: streams,
            chunks: c.stream_chunks ?? 0,
            ttftMs: distribution(counts.histograms.ttft_latency_us, LATENCY_UNITS_PER_MS),
            tpotMs: distribution(counts.histograms.tpot_latency_us, LATENCY_UNITS_PER_MS),
            cutOffRate: ratio(c.stream_cut_off ?? 0, streams),
            malformedRate: ratio(c.stream_malformed ?? 0, streams),
            finish,
            outputTokensMean: completion && completion.count > 0 ? completion.sum / completion.count : null,
          }
        : null,
    llm:
      llmOutputs > 0
        ? {
            outputs: llmOutputs,
            promptTokens: distribution(counts.histograms.prompt_tokens, 1),
            completionTokens: distribution(counts.histograms.completion_tokens, 1),
            citationRate: ratio(c.citation_present ?? 0, llmOutputs),
            abstainRate: ratio(c.abstained ?? 0, llmOutputs),
            fallbackRate: ratio(c.fallback_used ?? 0, llmOutputs),
          }
        : null,
  };
}

function summarizeComparison(counts: VariantCounts): ShadowComparisonSummary {
  const c = counts.counters;
  const match = c.status_match ?? 0;
  const mismatch = c.status_mismatch ?? 0;
  const agree = c.prediction_agree ?? 0;
  const disagree = c.prediction_disagree ?? 0;
  const noiseAgree = c.noise_agree ?? 0;
  const noiseDisagree = c.noise_disagree ?? 0;
  return {
    ...((c.noise_requests ?? 0) > 0
      ? { noise: { requests: c.noise_requests ?? 0, compared: noiseAgree + noiseDisagree, agreementRate: ratio(noiseAgree, noiseAgree + noiseDisagree) } }
      : {}),
    compared: match + mismatch,
    statusMatchRate: ratio(match, match + mismatch),
    predictionAgreementRate: ratio(agree, agree + disagree),
    predictionMissing: c.prediction_missing ?? 0,
    confidenceDelta: distribution(counts.histograms.confidence_delta_milli, 1000),
    primaryLatencyMs: distribution(counts.histograms.primary_latency_us, LATENCY_UNITS_PER_MS),
    dropped: c.dropped ?? 0,
    skippedLargeBody: c.skipped_large_body ?? 0,
    incomplete: c.incomplete ?? 0,
  };
}

export function summarizeVariant(counts: VariantCounts): VariantSummary {
  const { responses, latency } = counts;
  const output = summarizeOutput(counts);
  const answered = Object.values(responses).reduce((sum, n) => sum + n, 0);
  const toMs = (us: number | null) => (us === null ? null : us / LATENCY_UNITS_PER_MS);
  return {
    requests: counts.requests,
    responses: { ...responses },
    errorRate: answered > 0 ? (responses["5xx"] + responses.local) / answered : null,
    latencyMs: {
      p50: latency.count > 0 ? toMs(histogramQuantile(0.5, latency.bucketsUs)) : null,
      p95: latency.count > 0 ? toMs(histogramQuantile(0.95, latency.bucketsUs)) : null,
      count: latency.count,
    },
    ...(output ? { output } : {}),
  };
}

export function summarizeShadow(counts: VariantCounts): VariantSummary {
  return { ...summarizeVariant(counts), comparison: summarizeComparison(counts) };
}
