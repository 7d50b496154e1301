import { DISTINGUISHING_LABELS, LABELS, SERIES, SERIES_PREFIX, VALUE_HISTOGRAMS } from "./envoy-series.ts";
import { parseSampleValue, type Sample } from "./prometheus-text.ts";
import {
  RESPONSE_CLASSES,
  VARIANTS,
  emptyRolloutCounts,
  emptyVariantCounts,
  type ResponseClass,
  type RolloutCounts,
  type SliceCounts,
  type VariantCounts,
} from "./provider.ts";

type CountedVariant = "stable" | "canary" | "shadow";
const COUNTED_VARIANTS: readonly CountedVariant[] = [...VARIANTS, "shadow"];
const isCountedVariant = (value: string | undefined): value is CountedVariant =>
  (COUNTED_VARIANTS as readonly string[]).includes(value ?? "");

/** "confidence_milli" for "modelroll_confidence_milli_bucket", with the part; null for other series. */
function valueHistogramPart(name: string): { base: string; part: "bucket" | "sum" | "count" } | null {
  for (const base of VALUE_HISTOGRAMS) {
    const full = SERIES_PREFIX + base;
    if (name === `${full}_bucket`) return { base, part: "bucket" };
    if (name === `${full}_sum`) return { base, part: "sum" };
    if (name === `${full}_count`) return { base, part: "count" };
  }
  return null;
}
const isResponseClass = (value: string | undefined): value is ResponseClass =>
  (RESPONSE_CLASSES as readonly string[]).includes(value ?? "");

/** One slice's counts being summed, with its histogram buckets keyed by bound until the end. */
class SliceAccumulator {
  readonly counts: VariantCounts = emptyVariantCounts();
  readonly buckets = new Map<number, number>();
  readonly valueBuckets = new Map<string, Map<number, number>>();
  hasCountSeries = false;

  addOther(sample: Sample): void {
    const target = this.counts;
    const hist = valueHistogramPart(sample.name);
    if (hist) {
      const h = (target.histograms[hist.base] ??= { buckets: [], sum: 0, count: 0 });
      if (hist.part === "sum") h.sum += sample.value;
      else if (hist.part === "count") h.count += sample.value;
      else {
        const bound = readBound(sample.labels[LABELS.upperBound]);
        if (bound === null) return;
        let m = this.valueBuckets.get(hist.base);
        if (!m) this.valueBuckets.set(hist.base, (m = new Map()));
        m.set(bound, (m.get(bound) ?? 0) + sample.value);
      }
      return;
    }
    if (!sample.name.startsWith(SERIES_PREFIX)) return;
    let key = sample.name.slice(SERIES_PREFIX.length);
    for (const label of DISTINGUISHING_LABELS) {
      const value = sample.labels[label];
      if (value !== undefined) key += `{${label.slice(SERIES_PREFIX.length)}=${value}}`;
    }
    target.counters[key] = (target.counters[key] ?? 0) + sample.value;
  }

  add(sample: Sample): void {
    const target = this.counts;
    switch (sample.name) {
      case SERIES.requests:
        target.requests += sample.value;
        break;
      case SERIES.responses: {
        const responseClass = sample.labels[LABELS.responseClass];
        if (isResponseClass(responseClass)) target.responses[responseClass] += sample.value;
        break;
      }
      case SERIES.latencyBucket: {
        const bound = readBound(sample.labels[LABELS.upperBound]);
        if (bound !== null) this.buckets.set(bound, (this.buckets.get(bound) ?? 0) + sample.value);
        break;
      }
      case SERIES.latencySum:
        target.latency.sumUs += sample.value;
        break;
      case SERIES.latencyCount:
        target.latency.count += sample.value;
        this.hasCountSeries = true;
        break;
      default:
        this.addOther(sample);
    }
  }

  finish(): VariantCounts {
    for (const [base, m] of this.valueBuckets) {
      const h = (this.counts.histograms[base] ??= { buckets: [], sum: 0, count: 0 });
      h.buckets = [...m].map(([upperBound, cumulativeCount]) => ({ upperBound, cumulativeCount })).sort((a, b) => a.upperBound - b.upperBound);
    }
    const latency = this.counts.latency;
    latency.bucketsUs = [...this.buckets]
      .map(([upperBound, cumulativeCount]) => ({ upperBound, cumulativeCount }))
      .sort((a, b) => a.upperBound - b.upperBound);
    const infBucket = latency.bucketsUs.find((b) => b.upperBound === Infinity);
    if (!this.hasCountSeries && infBucket) latency.count = infBucket.cumulativeCount;
    // Without a +Inf bucket no quantile can be placed; the _count series knows the total.
    if (!infBucket && latency.count > 0 && latency.bucketsUs.length > 0) {
      latency.bucketsUs.push({ upperBound: Infinity, cumulativeCount: latency.count });
    }
    return this.counts;
  }
}

/**
 * Adds up one rollout's series from any number of scrapes (several Envoys: same series summed).
 * A series with a segment label counts for that segment value only; one without counts for the variant
 * overall. Labels we do not know (another Envoy's, a future one) are summed over.
 */
type Slice = Record<CountedVariant, SliceAccumulator>;
const newSlice = (): Slice => ({ stable: new SliceAccumulator(), canary: new SliceAccumulator(), shadow: new SliceAccumulator() });

function finishSlice(slice: Slice, seen: Set<SliceAccumulator>): SliceCounts {
  const out: SliceCounts = { stable: slice.stable.finish(), canary: slice.canary.finish() };
  if (seen.has(slice.shadow)) out.shadow = slice.shadow.finish();
  return out;
}

export function rolloutCountsFromSamples(samples: Iterable<Sample>, rollout: string): RolloutCounts {
  const overall = newSlice();
  const bySegment = new Map<string, Map<string, Slice>>();
  const seenShadow = new Set<SliceAccumulator>();

  for (const sample of samples) {
    if (sample.labels[LABELS.rollout] !== rollout) continue;
    const variant = sample.labels[LABELS.variant];
    // A NaN or infinite counter says nothing countable; leaving it out keeps the sums finite. (+Inf bucket
    // bounds are labels, not values, so histograms are unaffected.)
    if (!isCountedVariant(variant) || !Number.isFinite(sample.value)) continue;
    const dimension = sample.labels[LABELS.segmentDimension];
    const value = sample.labels[LABELS.segment];
    let slice = overall;
    if (dimension !== undefined && value !== undefined) {
      let values = bySegment.get(dimension);
      if (!values) bySegment.set(dimension, (values = new Map()));
      let found = values.get(value);
      if (!found) values.set(value, (found = newSlice()));
      slice = found;
    }
    if (variant === "shadow") seenShadow.add(slice.shadow);
    slice[variant].add(sample);
  }

  const counts = emptyRolloutCounts();
  const top = finishSlice(overall, seenShadow);
  counts.stable = top.stable;
  counts.canary = top.canary;
  if (top.shadow) counts.shadow = top.shadow;
  for (const [dimension, values] of [...bySegment].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    counts.segments[dimension] = {};
    for (const [value, slice] of [...values].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      counts.segments[dimension][value] = finishSlice(slice, seenShadow);
    }
  }
  return counts;
}

function readBound(le: string | undefined): number | null {
  if (le === undefined) return null;
  try {
    const bound = parseSampleValue(le);
    return Number.isNaN(bound) ? null : bound;
  } catch {
    return null;
  }
}
