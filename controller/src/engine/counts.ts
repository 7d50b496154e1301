/**
 * What the engine reads each tick, and the compact form it keeps as a stage's baseline.
 * Providers give cumulative counts since the data path started; a stage's window is "now minus the
 * reading at stage start", per slice (overall, or one segment value) and per variant.
 */
import { RESPONSE_CLASSES, type HistogramBucket, type ResponseClass, type RolloutCounts, type VariantCounts } from "../metrics/provider.ts";
import type { CumulativeHistogram } from "../metrics/histogram.ts";

export const ENGINE_VARIANTS = ["stable", "canary", "shadow"] as const;
export type EngineVariant = (typeof ENGINE_VARIANTS)[number];

/** Histogram in JSON-safe form (no Infinity): finite bounds, cumulative counts, total incl. +Inf, sum. */
export interface HistogramSnapshot extends CumulativeHistogram {
  bounds: number[];
  cumulative: number[];
  total: number;
  sum: number;
}

export interface SliceSnapshot {
  counters: Record<string, number>;
  histograms: Record<string, HistogramSnapshot>;
}

export type VariantSnapshots = Partial<Record<EngineVariant, SliceSnapshot>>;

/** Slice key -> variant -> counts. Slice keys: "overall", "<dimension>=<value>". */
export interface CountsSnapshot {
  slices: Record<string, VariantSnapshots>;
}

export const OVERALL = "overall";

export function sliceKey(segment: { dimension: string; value: string } | null): string {
  return segment === null ? OVERALL : `${segment.dimension}=${segment.value}`;
}

export function parseSliceKey(key: string): { dimension: string; value: string } | null {
  if (key === OVERALL) return null;
  const at = key.indexOf("=");
  return { dimension: key.slice(0, at), value: key.slice(at + 1) };
}

/**
 * Counter keys are the provider's (metrics/provider.ts): "requests", "responses{class=5xx}",
 * "outputs{schema=valid}", "prediction_agree", ...; histogram keys: "latency_us", "confidence_milli", ...
 */
export function toSnapshot(counts: RolloutCounts): CountsSnapshot {
  const slices: Record<string, VariantSnapshots> = {};
  slices[OVERALL] = variantsSnapshot({ stable: counts.stable, canary: counts.canary, shadow: counts.shadow });
  for (const [dimension, values] of Object.entries(counts.segments ?? {})) {
    for (const [value, variants] of Object.entries(values)) slices[sliceKey({ dimension, value })] = variantsSnapshot(variants);
  }
  return { slices };
}

function variantsSnapshot(variants: Partial<Record<EngineVariant, VariantCounts>>): VariantSnapshots {
  const out: VariantSnapshots = {};
  for (const variant of ENGINE_VARIANTS) {
    const counts = variants[variant];
    if (counts) out[variant] = sliceSnapshot(counts);
  }
  return out;
}

const RESPONSE_KEYS = Object.fromEntries(RESPONSE_CLASSES.map((c) => [c, `responses{class=${c}}`])) as Record<ResponseClass, string>;

function sliceSnapshot(counts: VariantCounts): SliceSnapshot {
  const counters: Record<string, number> = {};
  Object.assign(counters, counts.counters);
  counters.requests = counts.requests;
  for (const responseClass of RESPONSE_CLASSES) counters[RESPONSE_KEYS[responseClass]] = counts.responses[responseClass] ?? 0;
  const histograms: Record<string, HistogramSnapshot> = {};
  for (const [name, h] of Object.entries(counts.histograms ?? {})) histograms[name] = histogramSnapshot(h.buckets, h.count, h.sum);
  histograms.latency_us = histogramSnapshot(counts.latency.bucketsUs, counts.latency.count, counts.latency.sumUs);
  return { counters, histograms };
}

function histogramSnapshot(buckets: readonly HistogramBucket[], count: number, sum: number): HistogramSnapshot {
  let ordered = true;
  let previous: number | null = null;
  for (const { upperBound } of buckets) {
    if (previous !== null && !(previous < upperBound)) {
      ordered = false;
      break;
    }
    previous = upperBound;
  }
  const sorted = ordered ? buckets : [...buckets].filter((b) => !Number.isNaN(b.upperBound)).sort((a, b) => a.upperBound - b.upperBound);
  const bounds: number[] = [];
  const cumulative: number[] = [];
  let running = 0;
  let infinite: number | null = null;
  for (const { upperBound, cumulativeCount } of sorted) {
    // Counters scraped at slightly different moments can dip; flatten like Prometheus does.
    running = Math.max(running, cumulativeCount);
    if (upperBound === Infinity) infinite = running;
    else if (bounds.length > 0 && bounds[bounds.length - 1] === upperBound) cumulative[cumulative.length - 1] = running;
    else {
      bounds.push(upperBound);
      cumulative.push(running);
    }
  }
  const total = Math.max(infinite ?? 0, count, running);
  return { bounds, cumulative, total, sum };
}

/**
 * current - baseline, slice by slice. A slice or stat missing from the baseline counts as zero there (it
 * had no traffic yet). Any count that went down means a data-path process restarted: `reset` is set and
 * the caller re-baselines, since a window across a reset would mix unrelated counts.
 */
export function windowBetween(current: CountsSnapshot, baseline: CountsSnapshot): { window: CountsSnapshot; reset: boolean } {
  let reset = false;
  const slices: Record<string, VariantSnapshots> = {};
  for (const [key, variants] of Object.entries(current.slices)) {
    const out: VariantSnapshots = {};
    for (const variant of ENGINE_VARIANTS) {
      const now = variants[variant];
      if (!now) continue;
      const before = baseline.slices[key]?.[variant];
      const counters: Record<string, number> = {};
      for (const [name, n] of Object.entries(now.counters)) {
        const delta = n - (before?.counters[name] ?? 0);
        if (delta < 0) reset = true;
        counters[name] = Math.max(0, delta);
      }
      const histograms: Record<string, HistogramSnapshot> = {};
      for (const [name, h] of Object.entries(now.histograms)) {
        const previous = before?.histograms[name];
        const delta = previous ? histogramDelta(h, previous) : h;
        if (delta === null) {
          reset = true;
          continue;
        }
        histograms[name] = delta;
      }
      out[variant] = { counters, histograms };
    }
    slices[key] = out;
  }
  return { window: { slices }, reset };
}

/**
 * Bucket-wise difference. Bounds listed in only one reading are read as a step function: the cumulative
 * count at an unlisted bound is the count at the nearest listed bound below it (exact when providers only
 * leave out bounds whose bucket is empty). Returns null when a count went down (reset).
 */
export function histogramDelta(now: HistogramSnapshot, before: HistogramSnapshot): HistogramSnapshot | null {
  if (now.total < before.total) return null;
  const bounds: number[] = [];
  const cumulative: number[] = [];
  let i = 0;
  let j = 0;
  let nowCount = 0;
  let beforeCount = 0;
  while (i < now.bounds.length || j < before.bounds.length) {
    const a = now.bounds[i] ?? Infinity;
    const b = before.bounds[j] ?? Infinity;
    const bound = Math.min(a, b);
    if (a === bound) nowCount = now.cumulative[i++] ?? nowCount;
    if (b === bound) beforeCount = before.cumulative[j++] ?? beforeCount;
    const delta = nowCount - beforeCount;
    if (delta < 0) return null;
    bounds.push(bound);
    cumulative.push(delta);
  }
  return { bounds, cumulative, total: now.total - before.total, sum: now.sum - before.sum };
}

/** Sum of the counters matching any of the patterns (each counter once); '*' stands for one name part or label value. */
export function sumCounters(slice: SliceSnapshot | undefined, patterns: readonly string[]): number {
  if (!slice) return 0;
  let total = 0;
  if (!patterns.some((p) => p.includes("*"))) {
    for (const pattern of new Set(patterns)) total += slice.counters[pattern] ?? 0;
    return total;
  }
  const matchers = patterns.map(wildcard);
  for (const [name, value] of Object.entries(slice.counters)) if (matchers.some((re) => re.test(name))) total += value;
  return total;
}

const compiled = new Map<string, RegExp>();
function wildcard(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (!re) {
    re = new RegExp(
      `^${pattern
        .split("*")
        .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
        .join("[^.{}=]+")}$`,
    );
    compiled.set(pattern, re);
  }
  return re;
}

export function requestsOf(slice: SliceSnapshot | undefined): number {
  return slice?.counters.requests ?? 0;
}
