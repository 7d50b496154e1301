/**
 * Where rollout telemetry comes from: Envoy admin endpoints (envoy-admin.ts) or Prometheus
 * (prometheus-provider.ts), chosen by sources.ts. Providers return raw cumulative counts, not rates or
 * percentiles, so that the gate engine can subtract two readings to get a stage window and only then summarize.
 */

export const VARIANTS = ["stable", "canary"] as const;
export type Variant = (typeof VARIANTS)[number];

/** "local": answered by Envoy itself (no upstream response), e.g. a timeout or an overflow. */
export const RESPONSE_CLASSES = ["2xx", "3xx", "4xx", "5xx", "local"] as const;
export type ResponseClass = (typeof RESPONSE_CLASSES)[number];

export interface HistogramBucket {
  /** Inclusive upper bound; the last bucket is +Infinity. */
  upperBound: number;
  /** Observations <= upperBound (cumulative, as Prometheus exposes them). */
  cumulativeCount: number;
}

interface LatencyHistogram {
  /** Sorted by upperBound, ending with +Infinity when any observation exists. Microseconds. */
  bucketsUs: HistogramBucket[];
  sumUs: number;
  count: number;
}

/** A histogram other than latency (confidence, tokens...), in the unit the filter records. */
export interface ValueHistogram {
  buckets: HistogramBucket[];
  sum: number;
  count: number;
}

export interface VariantCounts {
  requests: number;
  responses: Record<ResponseClass, number>;
  latency: LatencyHistogram;
  /**
   * Every other counter of the slice, by series name without the modelroll_ prefix and with its
   * distinguishing label, e.g. "outputs{schema=valid}", "predictions{label=approve}", "llm_outputs",
   * "status_match" (shadow). Absent keys are zero.
   */
  counters: Record<string, number>;
  /** Other histograms by name: confidence_milli, prompt_tokens, completion_tokens, confidence_delta_milli. */
  histograms: Record<string, ValueHistogram>;
}

/** One slice's variants: stable and canary always, shadow when the rollout mirrors traffic. */
export type SliceCounts = Record<Variant, VariantCounts> & { shadow?: VariantCounts };

/** Per segment dimension, per value ("other" included), per variant. */
type SegmentCounts = Record<string, Record<string, SliceCounts>>;

export interface RolloutCounts {
  stable: VariantCounts;
  canary: VariantCounts;
  /** Mirrored traffic and its comparison with the primary; present when the filter reported any. */
  shadow?: VariantCounts;
  segments: SegmentCounts;
}

export interface SourceStatus {
  url: string;
  ok: boolean;
  error?: string;
}

/**
 * A reading either measured something (possibly zero traffic: all counts 0) or could not measure at all.
 * The two must stay distinct: zero traffic makes a gate inconclusive, a failed reading is an error.
 * `sources` lists every endpoint asked, so a partial reading (some endpoints down) is visible.
 */
export type MetricReading<T> = { status: "measured"; value: T; sources: SourceStatus[] } | { status: "unmeasurable"; error: string; sources: SourceStatus[] };

/** What a reading is asked for: the tick's time, and when the rollout began (ms since the epoch). */
export interface ReadWindow {
  at: number;
  since: number;
}

export interface MetricProvider {
  /**
   * Cumulative counts summed over every source that answered: since the data-path processes started (Envoy
   * admin, which ignores `window`), or since `window.since` as of `window.at` (Prometheus). A count that goes
   * down between two readings tells the engine the data path restarted.
   */
  readRollout(rollout: string, window?: ReadWindow): Promise<MetricReading<RolloutCounts>>;
}

export function emptyVariantCounts(): VariantCounts {
  return {
    requests: 0,
    responses: { "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0, local: 0 },
    latency: { bucketsUs: [], sumUs: 0, count: 0 },
    counters: {},
    histograms: {},
  };
}

export function emptyRolloutCounts(): RolloutCounts {
  return { stable: emptyVariantCounts(), canary: emptyVariantCounts(), segments: {} };
}
