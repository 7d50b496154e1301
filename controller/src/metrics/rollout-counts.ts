import { LABELS, SERIES } from "./envoy-series.ts";
import { parseSampleValue, type Sample } from "./prometheus-text.ts";
import {
  RESPONSE_CLASSES,
  VARIANTS,
  emptyRolloutCounts,
  type ResponseClass,
  type RolloutCounts,
  type Variant,
} from "./provider.ts";

const isVariant = (value: string | undefined): value is Variant =>
  (VARIANTS as readonly string[]).includes(value ?? "");
const isResponseClass = (value: string | undefined): value is ResponseClass =>
  (RESPONSE_CLASSES as readonly string[]).includes(value ?? "");

/**
 * Adds up one rollout's series from any number of scrapes. Series that differ only in labels we do not
 * know (another Envoy, a future segment label) are summed into their rollout and variant.
 */
export function rolloutCountsFromSamples(samples: Iterable<Sample>, rollout: string): RolloutCounts {
  const counts = emptyRolloutCounts();
  const buckets: Record<Variant, Map<number, number>> = { stable: new Map(), canary: new Map() };
  const hasCountSeries: Record<Variant, boolean> = { stable: false, canary: false };

  for (const sample of samples) {
    if (sample.labels[LABELS.rollout] !== rollout) continue;
    const variant = sample.labels[LABELS.variant];
    // A NaN or infinite counter says nothing countable; leaving it out keeps the sums finite.
    if (!isVariant(variant) || !Number.isFinite(sample.value)) continue;
    const target = counts[variant];
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
        if (bound !== null) {
          buckets[variant].set(bound, (buckets[variant].get(bound) ?? 0) + sample.value);
        }
        break;
      }
      case SERIES.latencySum:
        target.latency.sumUs += sample.value;
        break;
      case SERIES.latencyCount:
        target.latency.count += sample.value;
        hasCountSeries[variant] = true;
        break;
    }
  }

  for (const variant of VARIANTS) {
    const latency = counts[variant].latency;
    latency.bucketsUs = [...buckets[variant]]
      .map(([upperBound, cumulativeCount]) => ({ upperBound, cumulativeCount }))
      .sort((a, b) => a.upperBound - b.upperBound);
    const infBucket = latency.bucketsUs.find((b) => b.upperBound === Infinity);
    if (!hasCountSeries[variant] && infBucket) latency.count = infBucket.cumulativeCount;
    // Without a +Inf bucket no quantile can be placed; the _count series knows the total.
    if (!infBucket && latency.count > 0 && latency.bucketsUs.length > 0) {
      latency.bucketsUs.push({ upperBound: Infinity, cumulativeCount: latency.count });
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
