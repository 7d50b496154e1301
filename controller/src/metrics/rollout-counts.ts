import { LABELS, SERIES } from "./envoy-series.ts";
import { parseSampleValue, type Sample } from "./prometheus-text.ts";
import {
  RESPONSE_CLASSES,
  VARIANTS,
  emptyRolloutCounts,
  emptyVariantCounts,
  type ResponseClass,
  type RolloutCounts,
  type Variant,
  type VariantCounts,
} from "./provider.ts";

const isVariant = (value: string | undefined): value is Variant =>
  (VARIANTS as readonly string[]).includes(value ?? "");
const isResponseClass = (value: string | undefined): value is ResponseClass =>
  (RESPONSE_CLASSES as readonly string[]).includes(value ?? "");

/** One slice's counts being summed, with its histogram buckets keyed by bound until the end. */
class SliceAccumulator {
  readonly counts: VariantCounts = emptyVariantCounts();
  readonly buckets = new Map<number, number>();
  hasCountSeries = false;

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
    }
  }

  finish(): VariantCounts {
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
export function rolloutCountsFromSamples(samples: Iterable<Sample>, rollout: string): RolloutCounts {
  const overall: Record<Variant, SliceAccumulator> = { stable: new SliceAccumulator(), canary: new SliceAccumulator() };
  const bySegment = new Map<string, Map<string, Record<Variant, SliceAccumulator>>>();

  for (const sample of samples) {
    if (sample.labels[LABELS.rollout] !== rollout) continue;
    const variant = sample.labels[LABELS.variant];
    // A NaN or infinite counter says nothing countable; leaving it out keeps the sums finite.
    if (!isVariant(variant) || !Number.isFinite(sample.value)) continue;
    const dimension = sample.labels[LABELS.segmentDimension];
    const value = sample.labels[LABELS.segment];
    if (dimension === undefined || value === undefined) {
      overall[variant].add(sample);
      continue;
    }
    let values = bySegment.get(dimension);
    if (!values) bySegment.set(dimension, (values = new Map()));
    let slices = values.get(value);
    if (!slices) values.set(value, (slices = { stable: new SliceAccumulator(), canary: new SliceAccumulator() }));
    slices[variant].add(sample);
  }

  const counts = emptyRolloutCounts();
  counts.stable = overall.stable.finish();
  counts.canary = overall.canary.finish();
  for (const [dimension, values] of [...bySegment].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    counts.segments[dimension] = {};
    for (const [value, slices] of [...values].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      counts.segments[dimension][value] = { stable: slices.stable.finish(), canary: slices.canary.finish() };
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
