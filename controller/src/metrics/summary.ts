import { histogramQuantile } from "./histogram.ts";
import { LATENCY_UNITS_PER_MS } from "./envoy-series.ts";
import type { ResponseClass, VariantCounts } from "./provider.ts";

export interface VariantSummary {
  requests: number;
  responses: Record<ResponseClass, number>;
  /** (5xx + local) / all responses; null when there were no responses. */
  errorRate: number | null;
  latencyMs: { p50: number | null; p95: number | null; count: number };
}

export function summarizeVariant(counts: VariantCounts): VariantSummary {
  const { responses, latency } = counts;
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
  };
}
