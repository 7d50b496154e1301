/**
 * One telemetry snapshot of a rollout in its stored, compact form, and the readable point the series API
 * serves. Pure.
 *
 * A snapshot holds what happened between two readings of Envoy's cumulative counts (the window between
 * them), per slice (overall, and each segment value) and per variant (stable, canary, shadow). Everything
 * is kept as counts and sums, so several snapshots merge exactly into one step of the API by adding them;
 * only latency quantiles cannot be added (see mergeCells).
 *
 * Stored form: per variant an array of numbers at fixed positions (FIELD), trailing zeros cut, and sparse
 * maps for labels and schema failures. JSON, no keys repeated per number.
 */
import { OVERALL, sumCounters, type CountsSnapshot, type HistogramSnapshot, type SliceSnapshot } from "../engine/index.ts";
import { cumulativeQuantile } from "../metrics/histogram.ts";

export const SERIES_VARIANTS = ["stable", "canary", "shadow"] as const;
type SeriesVariant = (typeof SERIES_VARIANTS)[number];

/** Positions in a stored variant's number array. */
export const FIELD = {
  requests: 0,
  r2xx: 1,
  r3xx: 2,
  r4xx: 3,
  r5xx: 4,
  local: 5,
  latencyCount: 6,
  p50Us: 7,
  p95Us: 8,
  p99Us: 9,
  schemaValidated: 10,
  schemaValid: 11,
  confidenceCount: 12,
  confidenceSumMilli: 13,
  llmOutputs: 14,
  promptCount: 15,
  promptSum: 16,
  completionCount: 17,
  completionSum: 18,
  citation: 19,
  abstained: 20,
  fallback: 21,
  statusMatch: 22,
  statusMismatch: 23,
  agree: 24,
  disagree: 25,
  predictionMissing: 26,
  confidenceDeltaCount: 27,
  confidenceDeltaSumMilli: 28,
  dropped: 29,
  skippedLargeBody: 30,
  incomplete: 31,
  unanalyzed: 32,
} as const;
const FIELD_COUNT = 33;
/** Fields that are not counts and do not add: latency quantiles, merged weighted by latencyCount. */
const QUANTILES = [FIELD.p50Us, FIELD.p95Us, FIELD.p99Us] as const;

/** Confidence in ten bins of 0.1 (the bootstrap's confidence_milli buckets are 0.02 wide, so the bins are exact). */
const CONFIDENCE_BINS = 10;

export interface StoredCell {
  /** FIELD-indexed numbers, trailing zeros cut. */
  n: number[];
  /** Predictions by label. */
  l?: Record<string, number>;
  /** Schema failures by reason. */
  f?: Record<string, number>;
  /** Confidence histogram, CONFIDENCE_BINS bins. */
  c?: number[];
}

/** Slice key ("overall", "tier=free") -> variant -> cell. */
type StoredSlices = Record<string, Partial<Record<SeriesVariant, StoredCell>>>;

/** Gate -> [stable value, candidate value, verdict]: the engine's overall measurement at this snapshot. */
export type StoredGates = Record<string, [number | null, number | null, string]>;

export interface StoredSnapshot {
  s: StoredSlices;
  g?: StoredGates;
}

/** row[i] += v, for a row whose unset fields count as 0. */
function add(row: number[], i: number, v: number): void {
  row[i] = (row[i] ?? 0) + v;
}

const labelOf = (key: string, prefix: string): string | null => (key.startsWith(prefix) && key.endsWith("}") ? key.slice(prefix.length, -1) : null);

/** `histogram`: keep the confidence histogram (overall only: per segment value it would triple the size). */
function cellOf(slice: SliceSnapshot, histogram: boolean): StoredCell | null {
  const c = slice.counters;
  const n = new Array<number>(FIELD_COUNT).fill(0);
  n[FIELD.requests] = c.requests ?? 0;
  n[FIELD.r2xx] = c["responses{class=2xx}"] ?? 0;
  n[FIELD.r3xx] = c["responses{class=3xx}"] ?? 0;
  n[FIELD.r4xx] = c["responses{class=4xx}"] ?? 0;
  n[FIELD.r5xx] = c["responses{class=5xx}"] ?? 0;
  n[FIELD.local] = c["responses{class=local}"] ?? 0;
  const latency = slice.histograms.latency_us;
  if (latency && latency.total > 0) {
    n[FIELD.latencyCount] = latency.total;
    for (const [i, q] of [
      [FIELD.p50Us, 0.5],
      [FIELD.p95Us, 0.95],
      [FIELD.p99Us, 0.99],
    ] as const)
      n[i] = Math.round(cumulativeQuantile(latency, q) ?? 0);
  }
  const labels: Record<string, number> = {};
  const failures: Record<string, number> = {};
  for (const [key, value] of Object.entries(c)) {
    if (!(value > 0)) continue;
    const label = labelOf(key, "predictions{label=");
    if (label !== null) labels[label] = value;
    const schema = labelOf(key, "outputs{schema=");
    if (schema !== null) {
      add(n, FIELD.schemaValidated, value);
      if (schema === "valid") add(n, FIELD.schemaValid, value);
      else failures[schema] = value;
    }
    if (labelOf(key, "outputs{unanalyzed=") !== null) add(n, FIELD.unanalyzed, value);
  }
  const sums = (h: HistogramSnapshot | undefined, count: number, sum: number) => {
    if (h && h.total > 0) {
      n[count] = h.total;
      n[sum] = Math.round(h.sum);
    }
  };
  sums(slice.histograms.confidence_milli, FIELD.confidenceCount, FIELD.confidenceSumMilli);
  sums(slice.histograms.prompt_tokens, FIELD.promptCount, FIELD.promptSum);
  sums(slice.histograms.completion_tokens, FIELD.completionCount, FIELD.completionSum);
  sums(slice.histograms.confidence_delta_milli, FIELD.confidenceDeltaCount, FIELD.confidenceDeltaSumMilli);
  const counter = (name: string) => sumCounters(slice, [name]);
  n[FIELD.llmOutputs] = counter("llm_outputs");
  n[FIELD.citation] = counter("citation_present");
  n[FIELD.abstained] = counter("abstained");
  n[FIELD.fallback] = counter("fallback_used");
  n[FIELD.statusMatch] = counter("status_match");
  n[FIELD.statusMismatch] = counter("status_mismatch");
  n[FIELD.agree] = counter("prediction_agree");
  n[FIELD.disagree] = counter("prediction_disagree");
  n[FIELD.predictionMissing] = counter("prediction_missing");
  n[FIELD.dropped] = counter("dropped");
  n[FIELD.skippedLargeBody] = counter("skipped_large_body");
  n[FIELD.incomplete] = counter("incomplete");
  if (n.every((v) => v === 0)) return null;
  while (n.length > 0 && n[n.length - 1] === 0) n.pop();
  const cell: StoredCell = { n };
  if (Object.keys(labels).length > 0) cell.l = labels;
  if (Object.keys(failures).length > 0) cell.f = failures;
  const bins = histogram ? confidenceBins(slice.histograms.confidence_milli) : null;
  if (bins) cell.c = bins;
  return cell;
}

/** Counts per 0.1 of confidence from the cumulative milli buckets (bounds at multiples of 100 read exactly). */
function confidenceBins(h: HistogramSnapshot | undefined): number[] | null {
  if (!h || h.total <= 0) return null;
  const at = (milli: number) => {
    let count = 0;
    for (const [i, bound] of h.bounds.entries()) {
      if (bound > milli) break;
      count = h.cumulative[i] ?? count;
    }
    return count;
  };
  const bins: number[] = [];
  let previous = 0;
  for (let b = 1; b <= CONFIDENCE_BINS; b++) {
    const cumulative = b === CONFIDENCE_BINS ? h.total : at(b * 100);
    bins.push(Math.max(0, cumulative - previous));
    previous = Math.max(previous, cumulative);
  }
  return bins;
}

/** The stored snapshot of one window (current minus previous reading); slices without any count are left out. */
export function snapshotOf(window: CountsSnapshot, gates?: StoredGates): StoredSnapshot {
  const s: StoredSlices = {};
  for (const [key, variants] of Object.entries(window.slices)) {
    const out: Partial<Record<SeriesVariant, StoredCell>> = {};
    for (const variant of SERIES_VARIANTS) {
      const slice = variants[variant];
      const cell = slice ? cellOf(slice, key === OVERALL) : null;
      if (cell) out[variant] = cell;
    }
    if (Object.keys(out).length > 0) s[key] = out;
  }
  return gates && Object.keys(gates).length > 0 ? { s, g: gates } : { s };
}

function addMaps(into: Record<string, number>, from: Record<string, number> | undefined): void {
  if (from) for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

/** A merged cell: counts added; latency quantiles averaged weighted by each snapshot's latency count. */
export interface MergedCell {
  n: number[];
  labels: Record<string, number>;
  failures: Record<string, number>;
  confidence: number[] | null;
}

export function mergeCells(cells: readonly StoredCell[]): MergedCell {
  const n = new Array<number>(FIELD_COUNT).fill(0);
  const weighted = [0, 0, 0];
  const labels: Record<string, number> = {};
  const failures: Record<string, number> = {};
  let confidence: number[] | null = null;
  for (const cell of cells) {
    const weight = cell.n[FIELD.latencyCount] ?? 0;
    for (let i = 0; i < cell.n.length; i++) {
      const q = (QUANTILES as readonly number[]).indexOf(i);
      if (q >= 0) add(weighted, q, (cell.n[i] ?? 0) * weight);
      else add(n, i, cell.n[i] ?? 0);
    }
    addMaps(labels, cell.l);
    addMaps(failures, cell.f);
    if (cell.c) {
      confidence ??= new Array<number>(CONFIDENCE_BINS).fill(0);
      for (let i = 0; i < CONFIDENCE_BINS; i++) add(confidence, i, cell.c[i] ?? 0);
    }
  }
  const count = n[FIELD.latencyCount] ?? 0;
  QUANTILES.forEach((i, q) => {
    n[i] = count > 0 ? (weighted[q] ?? 0) / count : 0;
  });
  return { n, labels, failures, confidence };
}
